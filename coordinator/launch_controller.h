// Runs the launch policy against a live coordinator: every poll_ms it lists the launched groups, matches them with the
// registered ones, decides, launches or cancels, and logs each decision (kept for `cadenza status`).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/launch_policy.h"
#include "coordinator/launcher.h"
#include "coordinator/registry.h"
#include "coordinator/scheduler.h"
#include "core/status.h"

namespace cadenza::coord {

// What `cadenza status` shows of the launcher.
struct LauncherSnapshot {
  std::string kind;
  int max_groups = 0;
  struct Group {
    std::string id, worker_name, state, detail;
    int leases = 0;
    int64_t idle_ms = 0;
  };
  std::vector<Group> groups;
  std::vector<std::string> decisions;  // newest last: "<time> launch: ...", "<time> cancel 12: ..."
};

class LaunchController {
 public:
  // `coordinator`: the host:port the ranks dial; `token_file`: what they present. Starts the loop thread.
  LaunchController(const LaunchOptions& options, std::unique_ptr<GroupLauncher> launcher, Scheduler* scheduler,
                   WorkerRegistry* registry, std::string coordinator, std::string token_file);
  ~LaunchController();  // stops the loop; launched groups keep running (a restarted coordinator finds them)

  // One round of list, decide, act (the loop calls it every poll_ms; tests may call it directly).
  void Tick(int64_t now_ms);
  LauncherSnapshot Snapshot() const;
  void Stop();

 private:
  void Loop();
  void Log(int64_t now_ms, const std::string& line);

  LaunchOptions o_;
  std::unique_ptr<GroupLauncher> launcher_;
  Scheduler* scheduler_;
  WorkerRegistry* registry_;
  std::string coordinator_, token_file_;
  LaunchPolicy policy_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  LauncherSnapshot snapshot_;
  std::deque<std::string> decisions_;
  std::string last_error_;
  bool stopping_ = false;
  std::thread thread_;
};

// Sets up the launcher of `options.launcher` for a coordinator listening on `port` (none: nullptr). Writes the groups'
// token (the tokens file's token of launch.user) to <state_dir>/worker.token, mode 0600.
StatusOr<std::unique_ptr<LaunchController>> StartLaunchController(const LaunchOptions& options, const std::string& listen,
                                                                  int port, const std::string& database,
                                                                  const std::string& tokens_file, Scheduler* scheduler,
                                                                  WorkerRegistry* registry);

}  // namespace cadenza::coord
