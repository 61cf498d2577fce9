// The launcher loop: list, match with the registry, decide, act, log.
#include "coordinator/launch_controller.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>

#include "core/file_util.h"

namespace cadenza::coord {
namespace {

namespace fs = std::filesystem;

std::string Clock(int64_t now_ms) {
  const std::time_t t = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string WorkerBinaryFor(const LaunchOptions& o) {
  return o.worker.empty() ? DefaultWorkerBinary() : fs::absolute(o.worker).string();
}

}  // namespace

LaunchController::LaunchController(const LaunchOptions& options, std::unique_ptr<GroupLauncher> launcher, Scheduler* scheduler,
                                   WorkerRegistry* registry, std::string coordinator, std::string token_file)
    : o_(options),
      launcher_(std::move(launcher)),
      scheduler_(scheduler),
      registry_(registry),
      coordinator_(std::move(coordinator)),
      token_file_(std::move(token_file)),
      policy_(options) {
  snapshot_.kind = launcher_->kind();
  snapshot_.max_groups = o_.max_groups;
  thread_ = std::thread([this] { Loop(); });
}

LaunchController::~LaunchController() { Stop(); }

void LaunchController::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LaunchController::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Tick(NowMs());
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(o_.poll_ms), [this] { return stopping_; });
  }
}

void LaunchController::Log(int64_t now_ms, const std::string& line) {
  std::fprintf(stderr, "launcher: %s\n", line.c_str());
  std::fflush(stderr);
  std::lock_guard<std::mutex> lock(mu_);
  decisions_.push_back(Clock(now_ms) + " " + line);
  while (decisions_.size() > 20) decisions_.pop_front();
}

void LaunchController::Tick(int64_t now_ms) {
  auto listed = launcher_->List();
  if (!listed.ok()) {
    // Said once per distinct error, not every poll.
    bool fresh;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fresh = listed.status().message() != last_error_;
      last_error_ = listed.status().message();
    }
    if (fresh) Log(now_ms, "cannot list the worker groups: " + listed.status().message());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_.clear();
  }
  int waiting = 0;
  for (const TaskCount& c : scheduler_->TaskCounts()) {
    if (c.state == TaskState::kPending) waiting += static_cast<int>(c.count);
  }
  const std::multimap<std::string, int64_t> ids = registry_->LiveGroupIdsByName();
  const std::map<int64_t, int> leases = scheduler_->LeasesByGroup();
  std::vector<GroupView> views;
  for (const LaunchedGroup& g : *listed) {
    GroupView v{g, false, 0};
    auto [b, e] = ids.equal_range(g.worker_name);
    for (auto it = b; it != e; ++it) {
      v.registered = true;
      auto l = leases.find(it->second);
      if (l != leases.end()) v.leases += l->second;
    }
    views.push_back(v);
  }
  for (const LaunchDecision& d : policy_.Decide(now_ms, waiting, views)) {
    if (d.kind == LaunchDecision::kCancel) {
      Status s = launcher_->Cancel(d.id);
      Log(now_ms, "cancel " + d.id + ": " + d.reason + (s.ok() ? "" : " -- failed: " + s.message()));
    } else {
      GroupSpec spec;
      spec.nodes = o_.nodes_per_group;
      spec.ranks = o_.ranks_per_group;
      spec.threads_per_rank = o_.threads_per_rank;
      spec.coordinator = coordinator_;
      spec.token_file = token_file_;
      spec.worker_args = o_.worker_args;
      auto launched = launcher_->Launch(spec);
      if (launched.ok()) {
        views.push_back({*launched, false, 0});
        Log(now_ms, "launch " + launched->id + " (" + std::to_string(spec.ranks) + " ranks on " + std::to_string(spec.nodes) +
                        " node(s), registers as " + launched->worker_name + "): " + d.reason);
      } else {
        Log(now_ms, "launch failed: " + launched.status().message() + " (" + d.reason + ")");
      }
    }
  }
  LauncherSnapshot snap;
  snap.kind = launcher_->kind();
  snap.max_groups = o_.max_groups;
  for (const GroupView& v : views) {
    snap.groups.push_back({v.group.id, v.group.worker_name, v.registered ? "registered" : GroupStateName(v.group.state), v.group.detail,
                           v.leases, policy_.IdleMs(v.group.id, now_ms)});
  }
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = std::move(snap);
}

LauncherSnapshot LaunchController::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  LauncherSnapshot s = snapshot_;
  s.decisions.assign(decisions_.begin(), decisions_.end());
  return s;
}

StatusOr<std::unique_ptr<LaunchController>> StartLaunchController(const LaunchOptions& o, const std::string& listen, int port,
                                                                  const std::string& database, const std::string& tokens_file,
                                                                  Scheduler* scheduler, WorkerRegistry* registry) {
  if (o.launcher == "none") return std::unique_ptr<LaunchController>();
  const fs::path dir = fs::absolute(o.state_dir.empty() ? database + ".launch" : o.state_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir.string() + ": cannot create (launch.state_dir): " + ec.message());
  auto token = TokenOfUser(tokens_file, o.user);
  if (!token.ok()) return token.status();
  const std::string token_file = (dir / "worker.token").string();
  CADENZA_RETURN_IF_ERROR(WritePrivateFileAtomic(token_file, *token + "\n"));
  std::string address = o.advertise;
  if (address.empty()) {
    std::string host = listen.substr(0, listen.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "[::]") {
      char name[256] = {0};
      gethostname(name, sizeof name - 1);
      host = name;
    }
    address = host + ":" + std::to_string(port);
  }
  std::unique_ptr<GroupLauncher> launcher;
  const std::string worker = WorkerBinaryFor(o);
  if (o.launcher == "slurm") {
    SlurmLauncherOptions so;
    so.script = o.slurm_script;
    so.job_name = o.slurm_job_name;
    so.sbatch_args = o.sbatch_args;
    so.output = (dir / "%x-%j.out").string();
    so.worker = worker;
    launcher = MakeSlurmLauncher(so, MakeSystemProcessRunner());
  } else {
    LocalLauncherOptions lo;
    lo.mpirun = o.mpirun;
    lo.worker = worker;
    lo.log_dir = dir.string();
    launcher = MakeLocalLauncher(lo);
  }
  std::fprintf(stderr, "launcher: %s, up to %d group(s) of %d rank(s) dialing %s (worker %s, token of %s in %s; idle timeout %.0f s)\n",
               o.launcher.c_str(), o.max_groups, o.ranks_per_group, address.c_str(), worker.c_str(),
               o.user.empty() ? "the tokens file's first user" : o.user.c_str(), token_file.c_str(), o.idle_timeout_ms / 1000.0);
  return std::make_unique<LaunchController>(o, std::move(launcher), scheduler, registry, address, token_file);
}

}  // namespace cadenza::coord
