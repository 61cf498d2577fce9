// Scheduler: the facade the gRPC and HTTP adapters call. It holds the one mutex and the jobs in memory, and composes
// one class per concern: the task graph (task_graph.h: pure functions), the lease table (lease_table.h: the tasks,
// their leases, expiry, retries, fair share) and the commit log (commit_log.h: group commit to SQLite). Result
// queries are not here: ResultQuery (result_query.h) reads on connections of its own, outside this lock.
//
// Order of a state change: applied to memory under the mutex, queued on the commit log, and answered once the commit
// log has written it (and everything queued before it) in one SQLite transaction; a submission is written first and
// applied to memory after. Reads (GetJob, ListJobs, WaitForChange) answer from memory and may show a change whose
// transaction is still being written (commit_log.h).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coordinator/commit_log.h"
#include "coordinator/lease_table.h"
#include "coordinator/store.h"
#include "coordinator/types.h"
#include "core/status.h"

namespace cadenza::coord {

struct SchedulerOptions {
  int64_t lease_ms = 30000;  // a lease lasts this long after its holder's last heartbeat or progress report
  int retry_budget = 3;      // a task is attempted at most 1 + retry_budget times
};

// Assignment, StopNotice, JobView, JobFilter, KindBit: coordinator/types.h.

struct ProgressAck {
  bool stop = false;
  int64_t lease_expires_ms = 0;
  int64_t job_id = 0;  // the task's; 0 when the report was refused (`stop`: not this rank's lease)
};
struct CompleteAck {
  bool duplicate = false;
  bool accepted = true;
  TaskKind kind = TaskKind::kUnspecified;  // the completed task's
};
struct FailAck {
  bool will_retry = false;
  int attempts_left = 0;
  bool duplicate = false;
};
struct CancelAck {
  int tasks_cancelled = 0;
  int jobs_cancelled = 0;
  JobState state = JobState::kCancelled;
};

// How Submit files the new jobs.
struct SubmitOptions {
  bool sweep = false;      // give them a new sweep id
  int64_t into_sweep = 0;  // or file them under this existing sweep (resubmission)
  bool resume = false;     // their training continues from the run folder's checkpoint (resubmit --resume)
};

class Scheduler {
 public:
  // `live_ranks` gives the fan-out of generate/evaluate tasks when a training task completes. Thread-safe.
  Scheduler(Store* store, SchedulerOptions options, std::function<int()> live_ranks);

  // Loads every job and task after a restart. Leased tasks keep their holder, with a fresh lease from `now_ms`.
  Status Recover(int64_t now_ms);

  // Creates one job per experiment (each with its training task) in one transaction. A run folder that another job
  // used is never shared: the new job gets <out>-r2, -r3, ... (with `how.resume` it continues the folder instead,
  // FAILED_PRECONDITION while a job there is unfinished).
  StatusOr<std::vector<int64_t>> Submit(const std::string& user, const std::vector<Experiment>& experiments, const SubmitOptions& how,
                                        int64_t now_ms, int64_t* sweep_id);

  // The next task for `worker` among `kind_mask` (0: every kind it may take), or nullopt. Fair share: the user
  // with the fewest leased tasks goes first; within a user, the oldest task.
  StatusOr<std::optional<Assignment>> Lease(const WorkerKey& worker, uint32_t kind_mask, int64_t now_ms);
  // Renews the leases of the tasks `worker` says it runs (a lease it does not mention, e.g. one whose LeaseTask
  // answer was lost, is not renewed and expires); returns (and forgets) the tasks it should stop, including listed
  // ones it no longer holds.
  std::vector<StopNotice> Heartbeat(const WorkerKey& worker, const std::vector<StopNotice>& running, int64_t now_ms);
  StatusOr<ProgressAck> Progress(const WorkerKey& worker, int64_t task_id, int attempt, double fraction,
                                 const std::string& message, const std::string& checkpoint, int64_t now_ms);
  StatusOr<CompleteAck> Complete(const WorkerKey& worker, int64_t task_id, int attempt, ResultRecord result, int64_t now_ms);
  // `preempted` (with retryable): the worker was stopped from outside; the retry does not spend the budget.
  StatusOr<FailAck> Fail(const WorkerKey& worker, int64_t task_id, int attempt, const std::string& error, bool retryable,
                         const std::string& checkpoint, int64_t now_ms, bool preempted = false);
  // Only the submitter, or an admin (`admin`, acting for any user), cancels (PERMISSION_DENIED otherwise); a finished
  // job is left as it is. The job's error says who cancelled it.
  StatusOr<CancelAck> Cancel(const std::string& user, int64_t job_id, int64_t now_ms, bool admin = false);
  // Every unfinished job of the sweep; all of its jobs must be `user`'s unless `admin` (PERMISSION_DENIED otherwise,
  // nothing cancelled).
  StatusOr<CancelAck> CancelSweep(const std::string& user, int64_t sweep_id, int64_t now_ms, bool admin = false);

  // Expired leases go back to pending (or fail the task when its budget is spent). Returns how many expired.
  int ExpireLeases(int64_t now_ms);
  // A dead worker's leases expire at once.
  int ReleaseWorker(const WorkerKey& worker, int64_t now_ms);

  StatusOr<JobView> GetJob(int64_t job_id) const;
  std::vector<JobView> ListJobs(const JobFilter& filter) const;
  // Blocks until the state version differs from `seen` or `timeout_ms` passed; returns the current version.
  uint64_t WaitForChange(uint64_t seen, int64_t timeout_ms) const;
  uint64_t version() const;
  size_t NumTasks() const;
  // Tasks by kind and state, from counters kept beside the queues: lock-free, for /metrics.
  std::vector<TaskCount> TaskCounts() const;
  // Leased tasks by worker group id (the launch policy's idleness).
  std::map<int64_t, int> LeasesByGroup() const;

 private:
  // A state change: what the commit log writes, and the stop notices for holders (memory only).
  struct Change : ChangeSet {
    std::vector<std::pair<WorkerKey, StopNotice>> stops;
  };
  // Gives the new tasks their ids (parent_id -(k+1) -> inserts[k]), applies `c` to memory, queues it on the commit
  // log and, with `wait`, returns once it is durable.
  void CommitLocked(Change& c, std::unique_lock<std::mutex>& lock, bool wait = true);
  // Returns once every change queued so far is durable: before an answer that reads a state a queued change may have
  // made (a duplicate report, a completion of a task cancelled meanwhile), so that no answer rests on a change a
  // crash could still take back.
  void DurableLocked(std::unique_lock<std::mutex>& lock) { commit_.WaitDurable(lock, commit_.last_ticket()); }
  void PutLocked(const TaskRecord& t);
  std::vector<const TaskRecord*> TasksOfLocked(int64_t job_id) const;
  // The job fails (or is cancelled by `user`): its unfinished tasks are cancelled into `c`.
  void FailJobLocked(const JobRecord& job, int64_t failed_task, const std::string& error, int64_t now_ms, Change* c);
  int CancelJobLocked(const JobRecord& job, const std::string& user, int64_t now_ms, Change* c);
  // Applies a retry-or-fail decision into `c` (the job fails with the task).
  void DecidedLocked(RetryDecision d, int64_t now_ms, Change* c);
  void FollowUpsLocked(const TaskRecord& done, const ResultRecord& result, int64_t now_ms, Change* c);
  int ExpireLocked(const std::vector<int64_t>& ids, const std::string& why, int64_t now_ms, std::unique_lock<std::mutex>& lock);

  Store* store_;
  SchedulerOptions options_;
  std::function<int()> live_ranks_;

  mutable std::mutex mu_;  // guards everything below, leases_ (but its counts) and commit_
  mutable std::condition_variable changed_;
  uint64_t version_ = 0;
  std::map<int64_t, JobRecord> jobs_;
  std::unordered_map<int64_t, std::vector<int64_t>> job_tasks_;        // job -> its task ids
  std::unordered_map<std::string, std::vector<int64_t>> jobs_by_out_;  // run folder -> the jobs that used it
  int64_t next_task_id_ = 1;  // task ids are given here (memory first), not by SQLite
  LeaseTable leases_;
  CommitLog commit_;
};

}  // namespace cadenza::coord
