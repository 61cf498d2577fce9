// Runs `cadenza-model` for the model commands: signals to `cadenza` reach it, and it never outlives `cadenza`.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/fail.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
volatile sig_atomic_t g_child = 0;  // the running cadenza-model, or 0

extern "C" void ForwardToChild(int signo) {
  const pid_t child = g_child;
  if (child > 0) ::kill(child, signo);
}

// The model commands live in `cadenza-model`, next to this binary, so that only they load LibTorch.
std::string ModelBinary() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ((ec ? fs::path(".") : self.parent_path()) / "cadenza-model").string();
}

}  // namespace

// SIGTERM, SIGINT and SIGHUP to `cadenza` are forwarded to cadenza-model (training checkpoints and stops), and
// `cadenza` waits for it; if `cadenza` dies without forwarding (SIGKILL), the kernel sends cadenza-model SIGTERM
// (PR_SET_PDEATHSIG), so no model process is ever left behind. A child killed by a signal gives 128 + its number.
int RunModelBinary(const std::vector<std::string>& args) {
  const std::string binary = ModelBinary();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::cout << std::flush;
  // Signals wait (blocked) from before the fork until the forwarding handlers are in place: none is lost.
  const int forwarded[] = {SIGTERM, SIGINT, SIGHUP};
  sigset_t block, previous;
  sigemptyset(&block);
  for (int s : forwarded) sigaddset(&block, s);
  sigprocmask(SIG_BLOCK, &block, &previous);
  const pid_t parent = ::getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) _exit(kExitFailure);  // the parent died before prctl took effect
    sigprocmask(SIG_SETMASK, &previous, nullptr);    // the mask survives exec: give the child the parent's
    execv(binary.c_str(), argv.data());
    std::fprintf(stderr, "cadenza: error: cannot run %s: %s (build the cadenza-model target)\n", binary.c_str(), std::strerror(errno));
    _exit(kExitFailure);
  }
  if (pid < 0) {
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    return Fail(IoError("cannot start " + binary + ": " + std::strerror(errno)));
  }
  g_child = pid;
  struct sigaction forward = {}, saved[3];
  forward.sa_handler = ForwardToChild;
  sigemptyset(&forward.sa_mask);
  forward.sa_flags = SA_RESTART;
  for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &forward, &saved[i]);
  sigprocmask(SIG_SETMASK, &previous, nullptr);  // a signal that came meanwhile is forwarded now
  int status = 0;
  pid_t waited;
  while ((waited = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  g_child = 0;
  for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &saved[i], nullptr);
  if (waited < 0) return Fail(IoError("waiting for " + binary + ": " + std::strerror(errno)));
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailure;
}

}  // namespace cadenza
