// When to start and stop worker groups: submit one while tasks wait (up to max_groups), cancel one idle for
// idle_timeout. Pure: the caller passes the time, the waiting tasks and the groups; tested without a cluster.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coordinator/launcher.h"

namespace cadenza::coord {

// `launcher:` and `launch:` in configs/coordinator.yaml (every key commented there).
struct LaunchOptions {
  std::string launcher = "none";  // none | local | slurm
  int max_groups = 2;             // groups alive at once (queued, starting or running)
  int nodes_per_group = 1;
  int ranks_per_group = 2;
  int threads_per_rank = 1;
  int64_t idle_timeout_ms = 300000;   // a registered group that held no task this long is cancelled
  int64_t start_timeout_ms = 600000;  // a running group that has not registered after this long is cancelled
  int64_t poll_ms = 2000;             // how often the launcher looks (squeue) and decides
  std::string user;                   // whose token (tokens_file) the groups use; empty: the first line's
  std::string advertise;              // host:port the ranks dial; empty: the listen address (0.0.0.0: this host's name)
  std::string worker;                 // cadenza-worker binary; empty: $CADENZA_WORKER, else beside `cadenza`, else PATH
  std::vector<std::string> worker_args;
  std::string state_dir;              // worker.token and the groups' logs; empty: <database>.launch/
  // slurm
  std::string slurm_script = "slurm/worker.sbatch";
  std::string slurm_job_name = "cadenza-worker";
  std::vector<std::string> sbatch_args;
  // local
  std::string mpirun = "mpirun";
};

// What the policy knows of one launched group at a tick.
struct GroupView {
  LaunchedGroup group;
  bool registered = false;  // a group with its worker_name has a live rank at the coordinator
  int leases = 0;           // tasks its ranks hold now
};

struct LaunchDecision {
  enum Kind { kLaunch, kCancel } kind = kLaunch;
  std::string id;      // kCancel: the group
  std::string reason;  // "3 tasks waiting, 0 of 2 groups", "idle for 30 s"
};

class LaunchPolicy {
 public:
  explicit LaunchPolicy(const LaunchOptions& o) : o_(o) {}
  // `waiting`: tasks ready to lease (pending). At most one launch per call; every idle group is cancelled.
  std::vector<LaunchDecision> Decide(int64_t now_ms, int waiting, const std::vector<GroupView>& groups);
  // Milliseconds since the group last held a task or was starting (0 when unknown).
  int64_t IdleMs(const std::string& id, int64_t now_ms) const;

 private:
  LaunchOptions o_;
  std::map<std::string, int64_t> last_busy_ms_;  // by group id
  std::map<std::string, int64_t> running_since_ms_;
  std::map<std::string, bool> cancelled_;
};

}  // namespace cadenza::coord
