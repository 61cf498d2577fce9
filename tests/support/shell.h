// Running a command line from a test: its exit code, its stdout and stderr together, and its wall time.
#pragma once

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

namespace cadenza {

struct ShellRun {
  int exit_code = -1;  // -1 when the command could not start or was killed by a signal
  std::string output;  // stdout and stderr together
  double seconds = 0;
};

inline ShellRun Shell(const std::string& command) {
  const auto t0 = std::chrono::steady_clock::now();
  ShellRun r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

#ifdef CADENZA_CLI
// `cadenza ARGS`: the command-line binary under test (its path is a compile definition of the test targets).
inline ShellRun Cadenza(const std::string& args) { return Shell(std::string(CADENZA_CLI) + " " + args); }
#endif

}  // namespace cadenza
