// Job/task scheduler: the task graph of each experiment, leases with expiry, retries, cancellation, fair share.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/store.h"
#include "coordinator/types.h"
#include "core/status.h"

namespace cadenza::coord {

struct SchedulerOptions {
  int64_t lease_ms = 30000;  // a lease lasts this long after its holder's last heartbeat or progress report
  int retry_budget = 3;      // a task is attempted at most 1 + retry_budget times
};

// One attempt of one task, as a worker runs it (see Task in proto/cadenza/v1/common.proto).
struct Assignment {
  TaskRecord task;
  std::string user;
  Experiment experiment;
  std::string checkpoint;   // train: where latest.pt goes / resume from; generate: the trained checkpoint
  bool resume = false;      // train: resume from `checkpoint`
  std::vector<uint64_t> seeds;
  std::string samples_dir, report_path;
  std::vector<std::string> inputs;
};

struct StopNotice {
  int64_t task_id = 0;
  int attempt = 0;
};

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

struct TaskCountsView {
  int by_state[7] = {0, 0, 0, 0, 0, 0, 0};  // indexed by TaskState
};
struct JobView {
  JobRecord job;
  TaskCountsView counts;
  double progress = 0;
  std::vector<TaskRecord> tasks;  // filled by GetJob only
};

struct JobFilter {
  std::string user;
  int64_t sweep_id = 0;
  bool active_only = false;
  int limit = 1000;
};

// Bit mask of task kinds a worker takes.
constexpr uint32_t KindBit(TaskKind k) { return 1u << static_cast<int>(k); }

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
  // A set of changes written in one transaction, then applied to memory.
  struct Change {
    std::vector<TaskRecord> inserts;  // parent_id -(k+1) refers to inserts[k]
    std::vector<TaskRecord> updates;
    std::vector<JobRecord> jobs;
    std::optional<ResultRecord> result;
    std::vector<std::pair<WorkerKey, StopNotice>> stops;
  };
  // Applies `c` to memory at once and queues its writes; with `wait`, returns once they are durable. Group commit:
  // the first waiter writes every queued change in one transaction (without holding mu_), the others wait for it.
  // A failed write stops the process (fail-stop: memory would be ahead of the database; a restart recovers).
  Status CommitLocked(Change& c, std::unique_lock<std::mutex>& lock, bool wait = true);
  void WaitDurableLocked(std::unique_lock<std::mutex>& lock, uint64_t ticket);
  void PutLocked(const TaskRecord& t);
  void IndexLocked(const TaskRecord& t, int delta);
  const std::string& UserOfLocked(const TaskRecord& t) const;
  Status CheckAttemptLocked(const TaskRecord& t, int attempt) const;
  // A report (completion, failure) of `attempt` of `t` by `worker`: ABORTED for a replaced attempt, PERMISSION_DENIED
  // unless `worker`'s group holds (or last held) `t`'s lease, INVALID_ARGUMENT for an attempt never leased. Messages
  // to a group that does not hold the task name nothing of it but its id.
  Status CheckReportLocked(const TaskRecord& t, const WorkerKey& worker, int attempt) const;
  // Retry or fail `t` (leased or expired); appends to `c`.
  void RetryOrFailLocked(TaskRecord t, const std::string& error, bool retryable, Change* c, bool* will_retry);
  void FailJobLocked(const JobRecord& job, int64_t failed_task, const std::string& error, int64_t now_ms, Change* c);
  void FollowUpsLocked(const TaskRecord& done, const ResultRecord& result, int64_t now_ms, Change* c);
  Assignment AssignmentLocked(const TaskRecord& t) const;
  JobView ViewLocked(const JobRecord& j, bool with_tasks) const;
  // Cancels the job's unfinished tasks into `c`; returns how many.
  int CancelJobLocked(const JobRecord& job, const std::string& user, int64_t now_ms, Change* c);
  int ExpireLocked(const std::vector<int64_t>& ids, const std::string& why, int64_t now_ms, std::unique_lock<std::mutex>& lock);

  Store* store_;
  SchedulerOptions options_;
  std::atomic<int64_t> task_counts_[kNumTaskKinds][kNumTaskStates] = {};  // updated in IndexLocked, read without mu_
  std::function<int()> live_ranks_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  uint64_t version_ = 0;
  std::map<int64_t, JobRecord> jobs_;
  std::unordered_map<int64_t, TaskRecord> tasks_;
  std::unordered_map<int64_t, std::vector<int64_t>> job_tasks_;
  std::unordered_map<std::string, std::vector<int64_t>> jobs_by_out_;  // run folder -> the jobs that used it
  struct UserQueue {
    std::set<int64_t> pending[kNumTaskKinds];  // by TaskKind, oldest task first
    int leased = 0;
  };
  std::map<std::string, UserQueue> users_;
  std::set<std::pair<int64_t, int64_t>> expiry_;  // (lease_expires_ms, task id) of leased tasks
  std::map<WorkerKey, std::set<int64_t>> held_;   // leased task ids by holder
  std::map<WorkerKey, std::vector<StopNotice>> stops_;
  int64_t next_task_id_ = 1;       // task ids are given here (memory first), not by SQLite
  std::vector<Change> pending_;    // applied to memory, not yet written
  uint64_t enqueued_ = 0, durable_ = 0;  // tickets of queued and of written changes
  bool committing_ = false;
  std::condition_variable durable_cv_;
};

}  // namespace cadenza::coord
