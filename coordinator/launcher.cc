// Worker-group launchers: sbatch/scancel/squeue through a ProcessRunner, and mpirun process groups.
#include "coordinator/launcher.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace cadenza::coord {
namespace {

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string Joined(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// `cadenza coordinator` blocks SIGINT/SIGTERM in every thread (a sigwait thread takes them); a child must not inherit that.
void UnblockSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

class SystemProcessRunner final : public ProcessRunner {
 public:
  StatusOr<ProcessResult> Run(const std::vector<std::string>& argv) override {
    if (argv.empty()) return InvalidArgument("no command");
    int fds[2];
    if (pipe(fds) != 0) return IoError(std::string("pipe: ") + std::strerror(errno));
    const pid_t pid = fork();
    if (pid < 0) return IoError(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      UnblockSignals();
      close(fds[0]);
      dup2(fds[1], STDOUT_FILENO);
      dup2(fds[1], STDERR_FILENO);
      close(fds[1]);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    ProcessResult r;
    std::array<char, 4096> buf;
    ssize_t n;
    while ((n = read(fds[0], buf.data(), buf.size())) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      r.output.append(buf.data(), size_t(n));
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r.exit_code == 127 && r.output.empty()) return NotFound(argv[0] + ": cannot run it (not installed, or not on PATH)");
    return r;
  }
};

// ---- Slurm ----

class SlurmLauncher final : public GroupLauncher {
 public:
  SlurmLauncher(SlurmLauncherOptions o, std::unique_ptr<ProcessRunner> r) : o_(std::move(o)), runner_(std::move(r)) {}
  std::string kind() const override { return "slurm"; }

  StatusOr<LaunchedGroup> Launch(const GroupSpec& spec) override {
    std::vector<std::string> argv = {"sbatch", "--parsable", "--job-name=" + o_.job_name, "--nodes=" + std::to_string(spec.nodes),
                                     "--ntasks=" + std::to_string(spec.ranks), "--cpus-per-task=" + std::to_string(spec.threads_per_rank)};
    if (!o_.output.empty()) argv.push_back("--output=" + o_.output);
    if (!o_.worker.empty()) argv.push_back("--export=ALL,CADENZA_WORKER=" + o_.worker);
    argv.insert(argv.end(), o_.sbatch_args.begin(), o_.sbatch_args.end());
    argv.insert(argv.end(), {o_.script, spec.coordinator, spec.token_file});
    argv.insert(argv.end(), spec.worker_args.begin(), spec.worker_args.end());
    auto r = runner_->Run(argv);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) return Unavailable(Joined(argv) + ": exit code " + std::to_string(r->exit_code) + ": " + Trim(r->output));
    // --parsable: "<job id>[;<cluster>]" on the last line (sbatch may print warnings first).
    std::string last, line;
    std::istringstream in(r->output);
    while (std::getline(in, line)) {
      if (!Trim(line).empty()) last = Trim(line);
    }
    const std::string id = last.substr(0, last.find(';'));
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
      return InternalError("sbatch: expected a job id, got '" + Trim(r->output) + "'");
    }
    return LaunchedGroup{id, "slurm-" + id, GroupState::kQueued, ""};
  }

  Status Cancel(const std::string& id) override {
    auto r = runner_->Run({"scancel", id});
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) return Unavailable("scancel " + id + ": exit code " + std::to_string(r->exit_code) + ": " + Trim(r->output));
    return Status::Ok();
  }

  StatusOr<std::vector<LaunchedGroup>> List() override {
    auto r = runner_->Run({"squeue", "--noheader", "--me", "--name=" + o_.job_name, "--format=%i|%T|%r"});
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) return Unavailable("squeue: exit code " + std::to_string(r->exit_code) + ": " + Trim(r->output));
    std::vector<LaunchedGroup> groups;
    std::istringstream in(r->output);
    std::string line;
    while (std::getline(in, line)) {
      line = Trim(line);
      if (line.empty()) continue;
      const size_t a = line.find('|'), b = line.find('|', a == std::string::npos ? a : a + 1);
      if (a == std::string::npos || b == std::string::npos) return InternalError("squeue: cannot read the line '" + line + "'");
      LaunchedGroup g;
      g.id = line.substr(0, a);
      g.worker_name = "slurm-" + g.id;
      const std::string state = line.substr(a + 1, b - a - 1);
      g.detail = state + (line.size() > b + 1 && line.substr(b + 1) != "None" ? " (" + line.substr(b + 1) + ")" : "");
      if (state == "RUNNING") g.state = GroupState::kRunning;
      else if (state == "PENDING" || state == "CONFIGURING" || state == "REQUEUED" || state == "REQUEUE_HOLD" ||
               state == "REQUEUE_FED" || state == "RESIZING" || state == "SUSPENDED") g.state = GroupState::kQueued;
      else g.state = GroupState::kEnded;  // COMPLETING, CANCELLED, ... leave the list
      if (g.state != GroupState::kEnded) groups.push_back(g);
    }
    return groups;
  }

 private:
  SlurmLauncherOptions o_;
  std::unique_ptr<ProcessRunner> runner_;
};

// ---- local mpirun ----

class LocalLauncher final : public GroupLauncher {
 public:
  explicit LocalLauncher(LocalLauncherOptions o) : o_(std::move(o)) {}
  ~LocalLauncher() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, pid] : pids_) kill(pid, SIGUSR1);  // what still runs hands its tasks back and exits 4
    for (auto& [id, pid] : pids_) {
      bool gone = false;
      for (int i = 0; i < 3000 && !gone; ++i) {  // 60 s, then the whole process group is killed
        gone = waitpid(pid, nullptr, WNOHANG) == pid;
        if (!gone) usleep(20000);
      }
      if (!gone) {
        kill(-pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  }
  std::string kind() const override { return "local"; }

  StatusOr<LaunchedGroup> Launch(const GroupSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string id = o_.name_prefix + "-" + std::to_string(++launched_);
    std::vector<std::string> argv = {o_.mpirun, "--oversubscribe", "--bind-to", "none", "-np", std::to_string(spec.ranks),
                                     "-x", "OMP_WAIT_POLICY=passive", "-x", "OMP_NUM_THREADS=" + std::to_string(spec.threads_per_rank)};
    if (geteuid() == 0) argv.insert(argv.begin() + 1, "--allow-run-as-root");
    argv.insert(argv.end(), {o_.worker, "--coordinator", spec.coordinator, "--token-file", spec.token_file, "--name", id,
                             "--threads", std::to_string(spec.threads_per_rank)});
    argv.insert(argv.end(), spec.worker_args.begin(), spec.worker_args.end());
    const std::string log = o_.log_file.empty() ? o_.log_dir + "/" + id + ".log" : o_.log_file;
    const pid_t pid = SpawnProcessGroup(argv, log, /*append=*/true);
    if (pid < 0) return IoError(std::string("fork: ") + std::strerror(errno));
    pids_[id] = pid;
    return LaunchedGroup{id, id, GroupState::kRunning, "pid " + std::to_string(pid) + ", log " + log};
  }

  Status Cancel(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pids_.find(id);
    if (it == pids_.end()) return NotFound(id + ": no such local group");
    kill(it->second, SIGUSR1);  // mpirun forwards it: every rank hands its task back and exits 4 (docs/worker.md)
    return Status::Ok();
  }

  StatusOr<std::vector<LaunchedGroup>> List() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<LaunchedGroup> groups;
    for (auto it = pids_.begin(); it != pids_.end();) {
      int status = 0;
      if (waitpid(it->second, &status, WNOHANG) == it->second) {  // listed once more as ended, with its exit code
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        groups.push_back({it->first, it->first, GroupState::kEnded, "exit code " + std::to_string(code)});
        it = pids_.erase(it);
        continue;
      }
      groups.push_back({it->first, it->first, GroupState::kRunning, "pid " + std::to_string(it->second)});
      ++it;
    }
    return groups;
  }

 private:
  LocalLauncherOptions o_;
  std::mutex mu_;
  int launched_ = 0;
  std::map<std::string, pid_t> pids_;
};

}  // namespace

const char* GroupStateName(GroupState s) {
  switch (s) {
    case GroupState::kQueued: return "queued";
    case GroupState::kRunning: return "running";
    case GroupState::kEnded: return "ended";
  }
  return "?";
}

std::unique_ptr<ProcessRunner> MakeSystemProcessRunner() { return std::make_unique<SystemProcessRunner>(); }

std::unique_ptr<GroupLauncher> MakeSlurmLauncher(SlurmLauncherOptions options, std::unique_ptr<ProcessRunner> runner) {
  return std::make_unique<SlurmLauncher>(std::move(options), std::move(runner));
}

std::unique_ptr<GroupLauncher> MakeLocalLauncher(LocalLauncherOptions options) {
  return std::make_unique<LocalLauncher>(std::move(options));
}

StatusOr<std::string> TokenOfUser(const std::string& tokens_file, const std::string& user) {
  std::ifstream in(tokens_file);
  if (!in) return NotFound(tokens_file + ": cannot read the tokens file");
  // Lines "<token> <user> [role]" (coordinator/auth.h): a group registers with a worker token (or an admin's).
  std::string line, admin;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string token, name, role = "user";
    if (!(ls >> token >> name) || token[0] == '#') continue;
    ls >> role;
    if (!user.empty() && name != user) continue;
    if (role == "worker") return token;
    if (role == "admin" && admin.empty()) admin = token;
  }
  if (!admin.empty()) return admin;
  return NotFound(tokens_file + ": no worker (or admin) token" + (user.empty() ? std::string() : " of user '" + user + "'") +
                  " (launch.user): the launched worker groups need one; add a line '<token> " +
                  (user.empty() ? std::string("<user>") : user) + " worker'");
}

pid_t SpawnProcessGroup(const std::vector<std::string>& argv, const std::string& log, bool append) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    UnblockSignals();
    setpgid(0, 0);
    if (!freopen(log.c_str(), append ? "a" : "w", stdout)) _exit(127);
    dup2(STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s\n", args[0]);
    _exit(127);
  }
  if (pid > 0) setpgid(pid, pid);  // also here: no race with a signal sent to the group right after fork
  return pid;
}

std::string DefaultWorkerBinary() {
  if (const char* w = std::getenv("CADENZA_WORKER")) return w;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const auto& p : {self.parent_path() / "cadenza-worker", self.parent_path().parent_path() / "worker" / "cadenza-worker"}) {
      if (std::filesystem::exists(p)) return p.string();
    }
  }
  return "cadenza-worker";
}

}  // namespace cadenza::coord
