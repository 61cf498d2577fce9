// Small helpers shared by the benchmarks: a monotonic clock, running a reference command, shell quoting.
#pragma once

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

namespace cadenza::bench {

inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs `cmd` through the shell and returns what it printed on stdout.
inline std::string Capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  return out;
}

// 'text' for /bin/sh, with embedded single quotes escaped.
inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace cadenza::bench
