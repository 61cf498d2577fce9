// Scheduler: the facade over the task graph, the lease table and the commit log; jobs in memory, under one mutex.
#include "coordinator/scheduler.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "coordinator/task_graph.h"

namespace cadenza::coord {
namespace {

// `path` (absolute, normalised without touching the disk) lies inside `folder`; else INVALID_ARGUMENT naming `field`.
Status InsideFolder(const std::string& path, const std::string& folder, const std::string& field) {
  const std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  std::string f = std::filesystem::path(folder).lexically_normal().string();
  while (f.size() > 1 && f.back() == '/') f.pop_back();
  const std::string ps = p.string();
  if (p.is_absolute() && ps.size() > f.size() && ps.compare(0, f.size(), f) == 0 && ps[f.size()] == '/') return Status::Ok();
  return InvalidArgument(field + ": " + path + " is outside the job's run folder " + folder);
}

}  // namespace

Scheduler::Scheduler(Store* store, SchedulerOptions options, std::function<int()> live_ranks)
    : store_(store), options_(options), live_ranks_(std::move(live_ranks)), leases_(options.lease_ms), commit_(store) {}

// ---- memory, and the commit log ----

void Scheduler::PutLocked(const TaskRecord& t) {
  if (leases_.Put(t, jobs_.at(t.job_id).user)) job_tasks_[t.job_id].push_back(t.id);
}

std::vector<const TaskRecord*> Scheduler::TasksOfLocked(int64_t job_id) const {
  std::vector<const TaskRecord*> out;
  auto it = job_tasks_.find(job_id);
  if (it == job_tasks_.end()) return out;
  out.reserve(it->second.size());
  for (int64_t id : it->second) out.push_back(leases_.Find(id));
  return out;
}

std::vector<TaskCount> Scheduler::TaskCounts() const { return leases_.Counts(); }

std::map<int64_t, int> Scheduler::LeasesByGroup() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leases_.LeasesByGroup();
}

void Scheduler::CommitLocked(Change& c, std::unique_lock<std::mutex>& lock, bool wait) {
  for (TaskRecord& t : c.inserts) t.id = next_task_id_++;
  for (TaskRecord& t : c.inserts) {
    if (t.parent_id < 0) t.parent_id = c.inserts[static_cast<size_t>(-t.parent_id - 1)].id;
  }
  for (const JobRecord& j : c.jobs) jobs_[j.id] = j;
  for (const TaskRecord& t : c.updates) PutLocked(t);
  for (const TaskRecord& t : c.inserts) PutLocked(t);
  for (const auto& [w, n] : c.stops) leases_.Stop(w, n);
  const uint64_t ticket = commit_.Append(std::move(static_cast<ChangeSet&>(c)));
  ++version_;
  changed_.notify_all();
  if (wait) commit_.WaitDurable(lock, ticket);
}

// ---- recovery and submission ----

Status Scheduler::Recover(int64_t now_ms) {
  auto jobs = store_->LoadJobs();
  if (!jobs.ok()) return jobs.status();
  auto tasks = store_->LoadTasks();
  if (!tasks.ok()) return tasks.status();
  for (JobRecord& j : *jobs) j.experiment.probe = WantsProbe(j.experiment.experiment_yaml);  // YAML: before the lock
  std::unique_lock<std::mutex> lock(mu_);
  for (JobRecord& j : *jobs) {
    jobs_by_out_[j.experiment.output_dir].push_back(j.id);
    jobs_[j.id] = std::move(j);
  }
  for (TaskRecord& t : *tasks) {
    if (!jobs_.count(t.job_id)) return DataLoss("coordinator database: task " + std::to_string(t.id) + " has no job");
    if (t.state == TaskState::kLeased) t.lease_expires_ms = now_ms + options_.lease_ms;
    next_task_id_ = std::max(next_task_id_, t.id + 1);
    PutLocked(t);
  }
  ++version_;
  return Status::Ok();
}

StatusOr<std::vector<int64_t>> Scheduler::Submit(const std::string& user, const std::vector<Experiment>& experiments_in,
                                                 const SubmitOptions& how, int64_t now_ms, int64_t* sweep_id) {
  std::unique_lock<std::mutex> lock(mu_);
  // Run folders: one job each. A folder another job used gets a fresh <out>-r<k> (so a cancelled or failed run never
  // blocks a new one); a resumption continues the folder, which must then have no unfinished job.
  std::vector<Experiment> experiments = experiments_in;
  std::set<std::string> taken;
  auto used = [&](const std::string& out) { return taken.count(out) > 0 || jobs_by_out_.count(out) > 0; };
  for (Experiment& e : experiments) {
    if (how.resume) {
      auto it = jobs_by_out_.find(e.output_dir);
      if (it != jobs_by_out_.end()) {
        for (int64_t id : it->second) {
          const JobRecord& other = jobs_.at(id);
          if (!IsTerminal(other.state)) {
            return FailedPrecondition("experiment.out: " + e.output_dir + " is the run folder of job " + std::to_string(id) + " (" +
                                      JobStateName(other.state) + "); cancel it before resuming the folder");
          }
        }
      }
      if (taken.count(e.output_dir)) return InvalidArgument("experiment.out: " + e.output_dir + " is resumed twice in one submission");
    } else {
      e.output_dir = FreshRunFolder(e.output_dir, used);
    }
    taken.insert(e.output_dir);
  }
  // Written first (SQLite gives the job ids), then applied to memory.
  std::vector<JobRecord> jobs;
  std::vector<TaskRecord> trains;
  int64_t sid = how.into_sweep;
  int64_t next_id = next_task_id_;
  Status s = store_->Transaction([&]() -> Status {
    if (how.sweep && sid == 0) {
      if (Status e = store_->NewSweepId(&sid); !e.ok()) return e;
    }
    for (const Experiment& e : experiments) {
      JobRecord j;
      j.sweep_id = sid;
      j.user = user;
      j.experiment = e;
      j.created_ms = now_ms;
      if (Status st = store_->InsertJob(&j); !st.ok()) return st;
      TaskRecord t = FirstTask(e, j.id, 1 + options_.retry_budget, how.resume);
      t.id = next_id++;
      if (Status st = store_->InsertTask(&t); !st.ok()) return st;
      jobs.push_back(std::move(j));
      trains.push_back(std::move(t));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  next_task_id_ = next_id;
  std::vector<int64_t> ids;
  for (JobRecord& j : jobs) {
    ids.push_back(j.id);
    jobs_by_out_[j.experiment.output_dir].push_back(j.id);
    jobs_[j.id] = std::move(j);
  }
  for (const TaskRecord& t : trains) PutLocked(t);
  if (sweep_id) *sweep_id = sid;
  ++version_;
  changed_.notify_all();
  return ids;
}

// ---- leasing ----

StatusOr<std::optional<Assignment>> Scheduler::Lease(const WorkerKey& worker, uint32_t kind_mask_in, int64_t now_ms) {
  auto kind_mask = LeaseTable::KindsFor(worker, kind_mask_in);
  if (!kind_mask.ok()) return kind_mask.status();
  ExpireLeases(now_ms);
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t next = leases_.Next(*kind_mask);
  if (next == 0) return std::optional<Assignment>();
  TaskRecord t = leases_.Leased(*leases_.Find(next), worker, now_ms);
  Change c;
  c.updates.push_back(t);
  const JobRecord& job = jobs_.at(t.job_id);
  if (job.state == JobState::kQueued) {
    JobRecord j = job;
    j.state = JobState::kRunning;
    c.jobs.push_back(std::move(j));
  }
  CommitLocked(c, lock);
  return std::optional<Assignment>(AssignmentFor(jobs_.at(t.job_id), t));
}

std::vector<StopNotice> Scheduler::Heartbeat(const WorkerKey& worker, const std::vector<StopNotice>& running, int64_t now_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<StopNotice> out;
  for (const StopNotice& r : running) {
    if (!leases_.Renew(r.task_id, worker, r.attempt, now_ms)) out.push_back(r);  // not this worker's lease (any more): stop it
  }
  leases_.TakeStops(worker, &out);
  return out;
}

// ---- reports ----

StatusOr<ProgressAck> Scheduler::Progress(const WorkerKey& worker, int64_t task_id, int attempt, double fraction,
                                          const std::string& message, const std::string& checkpoint, int64_t now_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  const TaskRecord* t = leases_.Find(task_id);
  if (!t) return NotFound("task.task_id: no task " + std::to_string(task_id));
  ProgressAck ack;
  if (t->worker.group_id == worker.group_id && (attempt < 1 || attempt > t->attempt)) return LeaseTable::CheckAttempt(*t, attempt);
  if (!LeaseTable::Holds(*t, worker, attempt)) {
    ack.stop = true;  // not (or no longer) this rank's lease: stop it; nothing of the task is told or changed
    return ack;
  }
  ack.job_id = t->job_id;
  if (!checkpoint.empty() && checkpoint != t->checkpoint) {  // durable: a retry resumes from it
    TaskRecord u = *t;
    u.checkpoint = checkpoint;
    u.fraction = std::clamp(fraction, 0.0, 1.0);
    u.message = message;
    Change c;
    c.updates.push_back(std::move(u));
    CommitLocked(c, lock);
  } else {
    leases_.SetProgress(task_id, std::clamp(fraction, 0.0, 1.0), message);
    ++version_;
    changed_.notify_all();
  }
  // Renewed unless the lease expired or the task was cancelled while the write waited.
  if (!leases_.Renew(task_id, worker, attempt, now_ms, &ack.lease_expires_ms)) ack.stop = true;
  return ack;
}

void Scheduler::FollowUpsLocked(const TaskRecord& done, const ResultRecord& result, int64_t now_ms, Change* c) {
  const JobRecord& job = jobs_.at(done.job_id);
  const std::vector<const TaskRecord*> siblings = TasksOfLocked(done.job_id);
  const int ranks = done.kind == TaskKind::kTrain && live_ranks_ ? live_ranks_() : 1;
  FollowUps f = NextTasks(job.experiment, done, result.checkpoint, siblings, ranks, 1 + options_.retry_budget);
  if (JobComplete(done, siblings, f)) {
    JobRecord j = job;
    j.state = JobState::kSucceeded;
    j.finished_ms = now_ms;
    c->jobs.push_back(std::move(j));
  }
  for (TaskRecord& t : f.inserts) c->inserts.push_back(std::move(t));
  for (TaskRecord& t : f.updates) c->updates.push_back(std::move(t));
}

StatusOr<CompleteAck> Scheduler::Complete(const WorkerKey& worker, int64_t task_id, int attempt, ResultRecord result, int64_t now_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  const TaskRecord* found = leases_.Find(task_id);
  if (!found) return NotFound("task.task_id: no task " + std::to_string(task_id));
  const TaskRecord& cur = *found;
  // Only the group that holds (or last held, for a late but unreplaced attempt) the lease reports its result.
  if (Status s = LeaseTable::CheckReport(cur, worker, attempt); !s.ok()) return s;
  // A result names files of its own run only: never another job's, never outside the run folder.
  const std::string& folder = jobs_.at(cur.job_id).experiment.output_dir;
  for (size_t i = 0; i < result.artifacts.size(); ++i) {
    CADENZA_RETURN_IF_ERROR(InsideFolder(result.artifacts[i], folder, "result.artifacts[" + std::to_string(i) + "]"));
  }
  if (!result.checkpoint.empty()) CADENZA_RETURN_IF_ERROR(InsideFolder(result.checkpoint, folder, "result.checkpoint"));
  CompleteAck ack;
  ack.kind = cur.kind;
  if (cur.state == TaskState::kSucceeded && attempt == cur.attempt) {
    ack.duplicate = true;
    DurableLocked(lock);  // the first report's change may still be queued
    return ack;
  }
  if (Status s = LeaseTable::CheckAttempt(cur, attempt); !s.ok()) return s;
  if (cur.state == TaskState::kCancelled) {
    ack.accepted = false;
    DurableLocked(lock);
    return ack;
  }
  if (cur.state == TaskState::kFailed) return Aborted("task " + std::to_string(task_id) + " has failed (its retry budget is spent)");
  TaskRecord t = cur;  // leased, or pending after an expired lease that nobody took over: the work is valid
  t.state = TaskState::kSucceeded;
  t.fraction = 1;
  t.message = result.summary;
  if (t.kind == TaskKind::kTrain && !result.checkpoint.empty()) t.checkpoint = result.checkpoint;
  result.task_id = t.id;
  result.attempt = attempt;
  result.job_id = t.job_id;
  result.kind = t.kind;
  result.shard_index = t.shard_index;
  result.recorded_ms = now_ms;
  Change c;
  c.updates.push_back(t);
  FollowUpsLocked(t, result, now_ms, &c);
  c.result = std::move(result);
  CommitLocked(c, lock);
  return ack;
}

void Scheduler::FailJobLocked(const JobRecord& job, int64_t failed_task, const std::string& error, int64_t now_ms, Change* c) {
  JobRecord j = job;
  j.state = JobState::kFailed;
  j.finished_ms = now_ms;
  j.error = error;
  c->jobs.push_back(std::move(j));
  Cancellation x = CancelUnfinished(TasksOfLocked(job.id), failed_task, "job failed");
  for (TaskRecord& u : x.updates) c->updates.push_back(std::move(u));
  for (auto& s : x.stops) c->stops.push_back(std::move(s));
}

void Scheduler::DecidedLocked(RetryDecision d, int64_t now_ms, Change* c) {
  if (!d.will_retry) FailJobLocked(jobs_.at(d.task.job_id), d.task.id, d.job_error, now_ms, c);
  c->updates.push_back(std::move(d.task));
}

StatusOr<FailAck> Scheduler::Fail(const WorkerKey& worker, int64_t task_id, int attempt, const std::string& error, bool retryable,
                                  const std::string& checkpoint, int64_t now_ms, bool preempted) {
  std::unique_lock<std::mutex> lock(mu_);
  const TaskRecord* found = leases_.Find(task_id);
  if (!found) return NotFound("task.task_id: no task " + std::to_string(task_id));
  const TaskRecord& cur = *found;
  if (Status s = LeaseTable::CheckReport(cur, worker, attempt); !s.ok()) return s;
  if (!checkpoint.empty()) {
    CADENZA_RETURN_IF_ERROR(InsideFolder(checkpoint, jobs_.at(cur.job_id).experiment.output_dir, "checkpoint"));
  }
  if (Status s = LeaseTable::CheckAttempt(cur, attempt); !s.ok()) return s;
  FailAck ack;
  ack.attempts_left = std::max(0, cur.max_attempts - cur.attempt);
  if (cur.state == TaskState::kSucceeded) return Aborted("task " + std::to_string(task_id) + " has succeeded already");
  if (cur.state != TaskState::kLeased) {  // reported before (pending again, failed) or cancelled meanwhile
    ack.duplicate = cur.state != TaskState::kCancelled;
    ack.will_retry = cur.state == TaskState::kPending;
    DurableLocked(lock);
    return ack;
  }
  TaskRecord t = cur;
  if (!checkpoint.empty()) t.checkpoint = checkpoint;
  RetryDecision d = LeaseTable::Failed(std::move(t), error, retryable, preempted, now_ms);
  ack.will_retry = d.will_retry;
  Change c;
  DecidedLocked(std::move(d), now_ms, &c);
  CommitLocked(c, lock);
  return ack;
}

int Scheduler::ExpireLocked(const std::vector<int64_t>& ids, const std::string& why, int64_t now_ms, std::unique_lock<std::mutex>& lock) {
  int n = 0;
  for (int64_t id : ids) {
    const TaskRecord* t = leases_.Find(id);
    if (!t || t->state != TaskState::kLeased) continue;
    Change c;
    c.stops.push_back({t->worker, {t->id, t->attempt}});
    DecidedLocked(LeaseTable::Expire(*t, why, now_ms), now_ms, &c);
    CommitLocked(c, lock, false);
    ++n;
  }
  if (n > 0) commit_.WaitDurable(lock, commit_.last_ticket());
  return n;
}

int Scheduler::ExpireLeases(int64_t now_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  const std::vector<int64_t> ids = leases_.Expired(now_ms);
  if (ids.empty()) return 0;
  return ExpireLocked(ids, "lease expired", now_ms, lock);
}

int Scheduler::ReleaseWorker(const WorkerKey& worker, int64_t now_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  const std::vector<int64_t> ids = leases_.HeldBy(worker);
  if (ids.empty()) return 0;
  return ExpireLocked(ids, "worker declared dead (no heartbeat)", now_ms, lock);
}

int Scheduler::CancelJobLocked(const JobRecord& job, const std::string& user, int64_t now_ms, Change* c) {
  JobRecord j = job;
  j.state = JobState::kCancelled;
  j.finished_ms = now_ms;
  j.error = "cancelled by " + user;
  c->jobs.push_back(std::move(j));
  Cancellation x = CancelUnfinished(TasksOfLocked(job.id), 0, "");
  const int n = static_cast<int>(x.updates.size());
  for (TaskRecord& u : x.updates) c->updates.push_back(std::move(u));
  for (auto& s : x.stops) c->stops.push_back(std::move(s));
  return n;
}

StatusOr<CancelAck> Scheduler::Cancel(const std::string& user, int64_t job_id, int64_t now_ms, bool admin) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return NotFound("job_id: no job " + std::to_string(job_id));
  if (it->second.user != user && !admin) {
    return PermissionDenied("job " + std::to_string(job_id) + " belongs to another user; only its submitter (or an admin token) may cancel it");
  }
  CancelAck ack;
  ack.state = it->second.state;
  if (IsTerminal(it->second.state)) return ack;
  Change c;
  ack.tasks_cancelled = CancelJobLocked(it->second, user, now_ms, &c);
  ack.jobs_cancelled = 1;
  ack.state = JobState::kCancelled;
  CommitLocked(c, lock);
  return ack;
}

StatusOr<CancelAck> Scheduler::CancelSweep(const std::string& user, int64_t sweep_id, int64_t now_ms, bool admin) {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<const JobRecord*> jobs;
  for (const auto& [id, j] : jobs_) {
    if (j.sweep_id != sweep_id) continue;
    if (j.user != user && !admin) {
      return PermissionDenied("sweep " + std::to_string(sweep_id) + ": job " + std::to_string(id) +
                              " belongs to another user; only its submitter (or an admin token) may cancel it");
    }
    jobs.push_back(&j);
  }
  if (sweep_id == 0 || jobs.empty()) return NotFound("sweep_id: no sweep " + std::to_string(sweep_id));
  CancelAck ack;
  Change c;
  for (const JobRecord* j : jobs) {
    if (IsTerminal(j->state)) continue;
    ack.tasks_cancelled += CancelJobLocked(*j, user, now_ms, &c);
    ack.jobs_cancelled += 1;
  }
  ack.state = JobState::kCancelled;
  if (ack.jobs_cancelled == 0) return ack;
  CommitLocked(c, lock);
  return ack;
}

// ---- queries (memory, under the lock; results are ResultQuery's) ----

StatusOr<JobView> Scheduler::GetJob(int64_t job_id) const {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return NotFound("job_id: no job " + std::to_string(job_id));
  return ViewOf(it->second, TasksOfLocked(job_id), true);
}

std::vector<JobView> Scheduler::ListJobs(const JobFilter& f) const {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<JobView> out;
  const int limit = f.limit > 0 ? f.limit : 1000;
  for (auto it = jobs_.rbegin(); it != jobs_.rend() && static_cast<int>(out.size()) < limit; ++it) {
    const JobRecord& j = it->second;
    if (!f.user.empty() && j.user != f.user) continue;
    if (f.sweep_id != 0 && j.sweep_id != f.sweep_id) continue;
    if (f.active_only && IsTerminal(j.state)) continue;
    out.push_back(ViewOf(j, TasksOfLocked(j.id), false));
    out.back().job.experiment.experiment_yaml.clear();
  }
  return out;
}

uint64_t Scheduler::WaitForChange(uint64_t seen, int64_t timeout_ms) const {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return version_ != seen; });
  return version_;
}

uint64_t Scheduler::version() const {
  std::unique_lock<std::mutex> lock(mu_);
  return version_;
}

size_t Scheduler::NumTasks() const {
  std::unique_lock<std::mutex> lock(mu_);
  return leases_.size();
}

}  // namespace cadenza::coord
