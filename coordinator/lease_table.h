// The tasks in the scheduler's memory and their lease bookkeeping: ready queues per user and kind (fair share),
// leases and their expiry, holders, stop notices for holders, who may report an attempt, and the retry-or-fail
// decision. No I/O and no lock of its own (the Scheduler's mutex guards it; the counts are atomics, read without it);
// time is an argument, so tests drive expiry with a fake clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coordinator/types.h"
#include "core/status.h"

namespace cadenza::coord {

// A failed or expired attempt of a task, decided: the task as it is to be stored, and what happens to its job.
struct RetryDecision {
  TaskRecord task;         // pending again (will_retry) or failed; `message` the error
  bool will_retry = false;
  std::string job_error;   // when the task failed for good: why its job fails ("generate task 7 (shard 1) failed ...")
};

class LeaseTable {
 public:
  explicit LeaseTable(int64_t lease_ms) : lease_ms_(lease_ms) {}
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;
  int64_t lease_ms() const { return lease_ms_; }

  // Inserts or replaces `t`, a task of a job of `user`, keeping the queues, leases, holders and counts in step with
  // its state. Returns true when the task is new.
  bool Put(const TaskRecord& t, const std::string& user);
  const TaskRecord* Find(int64_t task_id) const;
  size_t size() const { return tasks_.size(); }
  // Progress of a task, kept in memory only (not a state change: no index moves).
  void SetProgress(int64_t task_id, double fraction, const std::string& message);

  // ---- leasing ----

  // The kinds `worker` takes given the `kind_mask` it asked for (0: every kind it may take; train only on rank 0).
  // INVALID_ARGUMENT when a rank other than 0 asks for training.
  static StatusOr<uint32_t> KindsFor(const WorkerKey& worker, uint32_t kind_mask);
  // Fair share: among the users with a ready task of a kind in `kind_mask`, the one with the fewest leased tasks
  // (ties: the oldest ready task, ids growing with time); its oldest ready task of those kinds. 0 when none.
  int64_t Next(uint32_t kind_mask) const;
  // `t` leased to `worker` at `now_ms`: the next attempt, its lease lasting lease_ms. Not stored (Put it).
  TaskRecord Leased(const TaskRecord& t, const WorkerKey& worker, int64_t now_ms) const;
  // Renews the lease when `worker` holds `attempt` of the task: it then lasts lease_ms from `now_ms`. False when
  // that attempt is not (or no longer) `worker`'s lease; `expires_ms` (optional) gets the new expiry.
  bool Renew(int64_t task_id, const WorkerKey& worker, int attempt, int64_t now_ms, int64_t* expires_ms = nullptr);
  // Leased tasks whose lease ended by `now_ms`, soonest expiry first.
  std::vector<int64_t> Expired(int64_t now_ms) const;
  // The tasks `worker` holds.
  std::vector<int64_t> HeldBy(const WorkerKey& worker) const;
  // Leased tasks by worker group id.
  std::map<int64_t, int> LeasesByGroup() const;

  // ---- stop notices ----

  // `worker` should stop `n` (told at its next heartbeat).
  void Stop(const WorkerKey& worker, const StopNotice& n);
  // Appends (and forgets) the notices for `worker` that `out` does not hold already.
  void TakeStops(const WorkerKey& worker, std::vector<StopNotice>* out);

  // ---- reports ----

  // True when `attempt` of `t` is `worker`'s current lease (a progress report it may make).
  static bool Holds(const TaskRecord& t, const WorkerKey& worker, int attempt);
  // INVALID_ARGUMENT for an attempt never leased, ABORTED for a replaced one.
  static Status CheckAttempt(const TaskRecord& t, int attempt);
  // A report (completion, failure) of `attempt` of `t` by `worker`: ABORTED for a replaced attempt, PERMISSION_DENIED
  // unless `worker`'s group holds (or last held) the lease, then CheckAttempt. A group that does not hold the task
  // learns nothing of it but its id.
  static Status CheckReport(const TaskRecord& t, const WorkerKey& worker, int attempt);

  // ---- failures ----

  // Retry `t` (pending again) while it is `retryable` and has attempts left, else fail it: `error` becomes its message.
  static RetryDecision RetryOrFail(TaskRecord t, const std::string& error, bool retryable);
  // The holder reported a failure at `now_ms`; `preempted` (with `retryable`): stopped from outside, the retry does not
  // spend the budget. An empty `error` reads "failed (no reason given)".
  static RetryDecision Failed(TaskRecord t, const std::string& error, bool retryable, bool preempted, int64_t now_ms);
  // The lease ended at `now_ms` without a report (`why`: "lease expired", "worker declared dead ..."): retried while
  // attempts are left; the error names the holder and the attempt.
  static RetryDecision Expire(TaskRecord t, const std::string& why, int64_t now_ms);

  // Tasks by kind and state, from atomic counters: safe without the Scheduler's mutex (/metrics).
  std::vector<TaskCount> Counts() const;

 private:
  void Index(const TaskRecord& t, const std::string& user, int delta);

  int64_t lease_ms_;
  std::unordered_map<int64_t, TaskRecord> tasks_;
  struct UserQueue {
    std::set<int64_t> pending[kNumTaskKinds];  // by TaskKind, oldest task first
    int leased = 0;
  };
  std::map<std::string, UserQueue> users_;
  std::set<std::pair<int64_t, int64_t>> expiry_;  // (lease_expires_ms, task id) of leased tasks
  std::map<WorkerKey, std::set<int64_t>> held_;   // leased task ids by holder
  std::map<WorkerKey, std::vector<StopNotice>> stops_;
  std::atomic<int64_t> counts_[kNumTaskKinds][kNumTaskStates] = {};
};

}  // namespace cadenza::coord
