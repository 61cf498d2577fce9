// Worker registry: registered worker groups and the liveness of every rank, by heartbeats with documented numbers.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "coordinator/store.h"
#include "coordinator/types.h"
#include "core/status.h"

namespace cadenza::coord {

// Liveness numbers (coordinator.yaml: heartbeat.*). A rank is declared dead when no heartbeat arrived for
// period_ms * failure_threshold + grace_ms; the reaper looks every reaper_interval_ms, so the worst-case detection
// time after a rank's last heartbeat is period_ms * failure_threshold + grace_ms + reaper_interval_ms.
struct HeartbeatOptions {
  int64_t period_ms = 1000;
  int failure_threshold = 5;
  int64_t grace_ms = 1000;  // network delay and scheduling slack on top of the missed periods
  int64_t reaper_interval_ms = 500;

  int64_t TimeoutMs() const { return period_ms * failure_threshold + grace_ms; }
  int64_t WorstCaseDetectionMs() const { return TimeoutMs() + reaper_interval_ms; }
};

class WorkerRegistry {
 public:
  // `store` may be null (nothing persisted). Thread-safe.
  WorkerRegistry(Store* store, HeartbeatOptions options) : store_(store), options_(options) {}

  // Loads the registered groups after a restart; every rank counts as alive as of `now_ms` (it has a full timeout
  // to send a heartbeat again).
  Status Recover(int64_t now_ms);
  // Registers a new group (group_id 0) or re-registers a known one (only by its owner, `group.owner`, or an admin:
  // `admin`; the owner stays); every rank is alive as of `now_ms`.
  StatusOr<int64_t> Register(const WorkerGroup& group, int64_t group_id, int64_t now_ms, bool admin = false);
  // Whether `user` may act for the worker's group: the token that registered a group owns it (PERMISSION_DENIED for
  // another user's unless `admin`; NOT_FOUND for an unknown group). Every worker call is checked.
  Status CheckOwner(const WorkerKey& worker, const std::string& user, bool admin = false) const;
  // NOT_FOUND for an unknown group (the worker should register again), INVALID_ARGUMENT for a rank out of range.
  Status Heartbeat(const WorkerKey& worker, int64_t now_ms);
  // Ranks whose last heartbeat is older than the timeout, each reported once (a later heartbeat revives the rank:
  // its group stays registered, only its leases were given up).
  std::vector<WorkerKey> CollectDead(int64_t now_ms);
  // Ranks alive now, over every group: the fan-out of generate/evaluate tasks.
  int LiveRanks() const;
  // Groups with at least one rank alive now.
  int LiveGroups() const;
  // Their ids by the name they registered with (a launched group is found by its name: slurm-<job id>).
  std::multimap<std::string, int64_t> LiveGroupIdsByName() const;
  const HeartbeatOptions& options() const { return options_; }

 private:
  Store* store_;
  HeartbeatOptions options_;
  mutable std::mutex mu_;
  std::map<int64_t, WorkerGroup> groups_;
  std::map<WorkerKey, int64_t> last_seen_ms_;  // alive ranks only
};

}  // namespace cadenza::coord
