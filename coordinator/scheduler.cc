// Scheduler: jobs and their task graphs (coordinator/task_graph.h) in memory, every change group-committed to SQLite.
#include "coordinator/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "coordinator/task_graph.h"
#include "core/run_layout.h"

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

std::string Describe(const TaskRecord& t) {
  std::string s = std::string(TaskKindName(t.kind)) + " task " + std::to_string(t.id);
  if (t.kind == TaskKind::kGenerate || t.kind == TaskKind::kEvaluate) s += " (shard " + std::to_string(t.shard_index) + ")";
  return s;
}

}  // namespace

const char* TaskKindName(TaskKind k) {
  static const char* names[] = {"unspecified", "train", "generate", "evaluate", "aggregate", "score", "probe"};
  return names[static_cast<int>(k)];
}
const char* TaskStateName(TaskState s) {
  static const char* names[] = {"unspecified", "blocked", "pending", "leased", "succeeded", "failed", "cancelled"};
  return names[static_cast<int>(s)];
}
const char* JobStateName(JobState s) {
  static const char* names[] = {"unspecified", "queued", "running", "succeeded", "failed", "cancelled"};
  return names[static_cast<int>(s)];
}

Scheduler::Scheduler(Store* store, SchedulerOptions options, std::function<int()> live_ranks)
    : store_(store), options_(options), live_ranks_(std::move(live_ranks)) {}

// ---- memory indexes ----

const std::string& Scheduler::UserOfLocked(const TaskRecord& t) const { return jobs_.at(t.job_id).user; }

void Scheduler::IndexLocked(const TaskRecord& t, int delta) {
  task_counts_[static_cast<int>(t.kind)][static_cast<int>(t.state)].fetch_add(delta, std::memory_order_relaxed);
  UserQueue& q = users_[UserOfLocked(t)];
  if (t.state == TaskState::kPending) {
    if (delta > 0) q.pending[static_cast<int>(t.kind)].insert(t.id);
    else q.pending[static_cast<int>(t.kind)].erase(t.id);
  } else if (t.state == TaskState::kLeased) {
    q.leased += delta;
    if (delta > 0) {
      expiry_.insert({t.lease_expires_ms, t.id});
      held_[t.worker].insert(t.id);
    } else {
      expiry_.erase({t.lease_expires_ms, t.id});
      auto h = held_.find(t.worker);
      if (h != held_.end()) {
        h->second.erase(t.id);
        if (h->second.empty()) held_.erase(h);
      }
    }
  }
}

std::vector<TaskCount> Scheduler::TaskCounts() const {
  std::vector<TaskCount> out;
  for (int k = 0; k < kNumTaskKinds; ++k) {
    for (int st = 0; st < kNumTaskStates; ++st) {
      const int64_t n = task_counts_[k][st].load(std::memory_order_relaxed);
      if (n > 0) out.push_back({static_cast<TaskKind>(k), static_cast<TaskState>(st), n});
    }
  }
  return out;
}

std::map<int64_t, int> Scheduler::LeasesByGroup() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<int64_t, int> out;
  for (const auto& [worker, ids] : held_) out[worker.group_id] += static_cast<int>(ids.size());
  return out;
}

void Scheduler::PutLocked(const TaskRecord& t) {
  auto it = tasks_.find(t.id);
  if (it != tasks_.end()) {
    IndexLocked(it->second, -1);
    it->second = t;
  } else {
    tasks_[t.id] = t;
    job_tasks_[t.job_id].push_back(t.id);
  }
  IndexLocked(t, +1);
}

Status Scheduler::CommitLocked(Change& c, std::unique_lock<std::mutex>& lock, bool wait) {
  for (TaskRecord& t : c.inserts) t.id = next_task_id_++;
  for (TaskRecord& t : c.inserts) {
    if (t.parent_id < 0) t.parent_id = c.inserts[static_cast<size_t>(-t.parent_id - 1)].id;
  }
  for (const JobRecord& j : c.jobs) jobs_[j.id] = j;
  for (const TaskRecord& t : c.updates) PutLocked(t);
  for (const TaskRecord& t : c.inserts) PutLocked(t);
  for (const auto& [w, n] : c.stops) stops_[w].push_back(n);
  c.stops.clear();
  pending_.push_back(std::move(c));
  const uint64_t ticket = ++enqueued_;
  ++version_;
  changed_.notify_all();
  if (wait) WaitDurableLocked(lock, ticket);
  return Status::Ok();
}

void Scheduler::WaitDurableLocked(std::unique_lock<std::mutex>& lock, uint64_t ticket) {
  while (durable_ < ticket) {
    if (committing_) {
      durable_cv_.wait(lock);
      continue;
    }
    committing_ = true;
    std::vector<Change> batch;
    batch.swap(pending_);
    const uint64_t last = enqueued_;
    lock.unlock();
    Status s = store_->Transaction([&]() -> Status {
      for (Change& c : batch) {
        for (const JobRecord& j : c.jobs) {
          if (Status e = store_->UpdateJob(j); !e.ok()) return e;
        }
        for (TaskRecord& t : c.inserts) {
          if (Status e = store_->InsertTask(&t); !e.ok()) return e;
        }
        for (const TaskRecord& t : c.updates) {
          if (Status e = store_->UpdateTask(t); !e.ok()) return e;
        }
        if (c.result) {
          if (Status e = store_->InsertResult(*c.result); !e.ok()) return e;
        }
      }
      return Status::Ok();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "cadenza coordinator: cannot write its database (%s); stopping: a restart recovers the last written state\n",
                   s.message().c_str());
      std::abort();
    }
    lock.lock();
    committing_ = false;
    durable_ = std::max(durable_, last);
    durable_cv_.notify_all();
  }
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
  for (Experiment& e : experiments) {
    auto used = [&](const std::string& out) { return taken.count(out) > 0 || jobs_by_out_.count(out) > 0; };
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
    } else if (used(e.output_dir)) {
      std::string fresh;
      for (int k = 2; fresh.empty() || used(fresh); ++k) fresh = e.output_dir + "-r" + std::to_string(k);
      e.output_dir = fresh;
    }
    taken.insert(e.output_dir);
  }
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
      TaskRecord t = FirstTask(e, j.id, 1 + options_.retry_budget);
      if (how.resume) {  // counted as a first attempt already made, so the first lease resumes (one attempt extra)
        t.attempt = 1;
        t.max_attempts += 1;
        t.message = "continues the run in " + e.output_dir;
      }
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

Assignment Scheduler::AssignmentLocked(const TaskRecord& t) const {
  const JobRecord& j = jobs_.at(t.job_id);
  Assignment a;
  a.task = t;
  a.user = j.user;
  a.experiment = j.experiment;
  a.checkpoint = t.checkpoint;
  const Experiment& e = j.experiment;
  switch (t.kind) {
    case TaskKind::kTrain:
      a.resume = t.attempt > 1;
      break;
    case TaskKind::kGenerate:
      a.samples_dir = run_layout::SamplesDir(e.output_dir, t.shard_index);
      for (int i = 0; i < t.sample_count; ++i) a.seeds.push_back(e.seed * 1000003ull + static_cast<uint64_t>(t.sample_begin + i));
      break;
    case TaskKind::kEvaluate:
      a.samples_dir = run_layout::SamplesDir(e.output_dir, t.shard_index);
      a.report_path = run_layout::ShardReport(e.output_dir, t.shard_index);
      break;
    case TaskKind::kAggregate:
      a.report_path = run_layout::Result(e.output_dir);
      for (int i = 0; i < t.shard_count; ++i) a.inputs.push_back(run_layout::ShardReport(e.output_dir, i));
      break;
    case TaskKind::kScore:
      a.report_path = run_layout::Score(e.output_dir);
      break;
    case TaskKind::kProbe:
      a.report_path = run_layout::Probe(e.output_dir);
      break;
    default:
      break;
  }
  return a;
}

StatusOr<std::optional<Assignment>> Scheduler::Lease(const WorkerKey& worker, uint32_t kind_mask, int64_t now_ms) {
  const uint32_t others = KindBit(TaskKind::kGenerate) | KindBit(TaskKind::kEvaluate) | KindBit(TaskKind::kAggregate) |
                          KindBit(TaskKind::kScore) | KindBit(TaskKind::kProbe);
  if (kind_mask == 0) kind_mask = others | (worker.rank == 0 ? KindBit(TaskKind::kTrain) : 0);
  if ((kind_mask & KindBit(TaskKind::kTrain)) && worker.rank != 0) {
    return InvalidArgument("kinds: train tasks are leased by rank 0 of a worker group (rank " + std::to_string(worker.rank) + " asked)");
  }
  ExpireLeases(now_ms);
  std::unique_lock<std::mutex> lock(mu_);
  // Fair share: the user with the fewest leased tasks among those with a ready task of an accepted kind.
  const UserQueue* best_q = nullptr;
  int64_t best_task = 0;
  for (const auto& [user, q] : users_) {
    int64_t head = 0;
    for (int k = 1; k < kNumTaskKinds; ++k) {
      if (!(kind_mask & (1u << k)) || q.pending[k].empty()) continue;
      const int64_t id = *q.pending[k].begin();
      if (head == 0 || id < head) head = id;
    }
    if (head == 0) continue;
    if (!best_q || q.leased < best_q->leased || (q.leased == best_q->leased && head < best_task)) {
      best_q = &q;
      best_task = head;
    }
  }
  if (!best_q) return std::optional<Assignment>();
  TaskRecord t = tasks_.at(best_task);
  t.state = TaskState::kLeased;
  t.attempt += 1;
  t.worker = worker;
  t.fraction = 0;
  t.message.clear();
  t.lease_expires_ms = now_ms + options_.lease_ms;
  Change c;
  c.updates.push_back(t);
  const JobRecord& job = jobs_.at(t.job_id);
  if (job.state == JobState::kQueued) {
    JobRecord j = job;
    j.state = JobState::kRunning;
    c.jobs.push_back(std::move(j));
  }
  if (Status s = CommitLocked(c, lock); !s.ok()) return s;
  return std::optional<Assignment>(AssignmentLocked(t));
}

std::vector<StopNotice> Scheduler::Heartbeat(const WorkerKey& worker, const std::vector<StopNotice>& running, int64_t now_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<StopNotice> out;
  for (const StopNotice& r : running) {
    auto it = tasks_.find(r.task_id);
    if (it == tasks_.end() || it->second.state != TaskState::kLeased || it->second.attempt != r.attempt || !(it->second.worker == worker)) {
      out.push_back(r);  // not this worker's lease (any more): stop it
      continue;
    }
    TaskRecord& t = it->second;
    expiry_.erase({t.lease_expires_ms, t.id});
    t.lease_expires_ms = now_ms + options_.lease_ms;
    expiry_.insert({t.lease_expires_ms, t.id});
  }
  auto s = stops_.find(worker);
  if (s != stops_.end()) {
    for (const StopNotice& n : s->second) {
      bool dup = false;
      for (const StopNotice& o : out) dup = dup || (o.task_id == n.task_id && o.attempt == n.attempt);
      if (!dup) out.push_back(n);
    }
    stops_.erase(s);
  }
  return out;
}

// ---- reports ----

Status Scheduler::CheckReportLocked(const TaskRecord& t, const WorkerKey& worker, int attempt) const {
  const bool holder = t.worker.group_id == worker.group_id;
  // A replaced attempt is ABORTED whoever sends it (the old holder's late report); only the holder learns more.
  if (attempt >= 1 && attempt < t.attempt) {
    return Aborted("task " + std::to_string(t.id) + ": attempt " + std::to_string(attempt) + " is stale (the lease was lost" +
                   (holder ? "; now attempt " + std::to_string(t.attempt) : std::string()) + ")");
  }
  // Another group learns nothing of the task (its attempts, state, spec or run folder).
  if (!holder) return PermissionDenied("task " + std::to_string(t.id) + " is not leased to worker group " + std::to_string(worker.group_id));
  return CheckAttemptLocked(t, attempt);
}

Status Scheduler::CheckAttemptLocked(const TaskRecord& t, int attempt) const {
  if (attempt < 1 || attempt > t.attempt) {
    return InvalidArgument("task.attempt: task " + std::to_string(t.id) + " has had " + std::to_string(t.attempt) +
                           " attempts, found " + std::to_string(attempt));
  }
  if (attempt < t.attempt) {
    return Aborted("task " + std::to_string(t.id) + ": attempt " + std::to_string(attempt) + " is stale (the lease was lost; now attempt " +
                   std::to_string(t.attempt) + ")");
  }
  return Status::Ok();
}

StatusOr<ProgressAck> Scheduler::Progress(const WorkerKey& worker, int64_t task_id, int attempt, double fraction,
                                          const std::string& message, const std::string& checkpoint, int64_t now_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return NotFound("task.task_id: no task " + std::to_string(task_id));
  ProgressAck ack;
  TaskRecord& t = it->second;
  if (t.worker.group_id == worker.group_id && (attempt < 1 || attempt > t.attempt)) return CheckAttemptLocked(t, attempt);
  if (t.state != TaskState::kLeased || attempt != t.attempt || !(t.worker == worker)) {
    ack.stop = true;  // not (or no longer) this rank's lease: stop it; nothing of the task is told or changed
    return ack;
  }
  ack.job_id = t.job_id;
  if (!checkpoint.empty() && checkpoint != t.checkpoint) {  // durable: a retry resumes from it
    TaskRecord u = t;
    u.checkpoint = checkpoint;
    u.fraction = std::clamp(fraction, 0.0, 1.0);
    u.message = message;
    Change c;
    c.updates.push_back(u);
    if (Status s = CommitLocked(c, lock); !s.ok()) return s;
  } else {
    t.fraction = std::clamp(fraction, 0.0, 1.0);
    t.message = message;
    ++version_;
    changed_.notify_all();
  }
  TaskRecord& cur = tasks_.at(task_id);
  if (cur.state != TaskState::kLeased || cur.attempt != attempt) {  // expired or cancelled while the write waited
    ack.stop = true;
    return ack;
  }
  expiry_.erase({cur.lease_expires_ms, task_id});
  cur.lease_expires_ms = now_ms + options_.lease_ms;
  expiry_.insert({cur.lease_expires_ms, task_id});
  ack.lease_expires_ms = cur.lease_expires_ms;
  return ack;
}

void Scheduler::FollowUpsLocked(const TaskRecord& done, const ResultRecord& result, int64_t now_ms, Change* c) {
  const JobRecord& job = jobs_.at(done.job_id);
  std::vector<const TaskRecord*> siblings;
  for (int64_t id : job_tasks_.at(done.job_id)) siblings.push_back(&tasks_.at(id));
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
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return NotFound("task.task_id: no task " + std::to_string(task_id));
  const TaskRecord& cur = it->second;
  // Only the group that holds (or last held, for a late but unreplaced attempt) the lease reports its result.
  if (Status s = CheckReportLocked(cur, worker, attempt); !s.ok()) return s;
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
    return ack;
  }
  if (Status s = CheckAttemptLocked(cur, attempt); !s.ok()) return s;
  if (cur.state == TaskState::kCancelled) {
    ack.accepted = false;
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
  if (Status s = CommitLocked(c, lock); !s.ok()) return s;
  return ack;
}

void Scheduler::FailJobLocked(const JobRecord& job, int64_t failed_task, const std::string& error, int64_t now_ms, Change* c) {
  JobRecord j = job;
  j.state = JobState::kFailed;
  j.finished_ms = now_ms;
  j.error = error;
  c->jobs.push_back(j);
  for (int64_t id : job_tasks_.at(job.id)) {
    const TaskRecord& t = tasks_.at(id);
    if (id == failed_task || IsTerminal(t.state)) continue;
    TaskRecord u = t;
    u.state = TaskState::kCancelled;
    u.message = "job failed";
    if (t.state == TaskState::kLeased) c->stops.push_back({t.worker, {t.id, t.attempt}});
    c->updates.push_back(u);
  }
}

void Scheduler::RetryOrFailLocked(TaskRecord t, const std::string& error, bool retryable, Change* c, bool* will_retry) {
  t.message = error;
  *will_retry = retryable && t.attempt < t.max_attempts;
  t.state = *will_retry ? TaskState::kPending : TaskState::kFailed;
  if (!*will_retry) {
    const std::string why = Describe(t) + " failed after " + std::to_string(t.attempt) + " attempt(s): " + error;
    FailJobLocked(jobs_.at(t.job_id), t.id, why, t.lease_expires_ms, c);
  }
  c->updates.push_back(std::move(t));
}

StatusOr<FailAck> Scheduler::Fail(const WorkerKey& worker, int64_t task_id, int attempt, const std::string& error, bool retryable,
                                  const std::string& checkpoint, int64_t now_ms, bool preempted) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return NotFound("task.task_id: no task " + std::to_string(task_id));
  const TaskRecord& cur = it->second;
  if (Status s = CheckReportLocked(cur, worker, attempt); !s.ok()) return s;
  if (!checkpoint.empty()) {
    CADENZA_RETURN_IF_ERROR(InsideFolder(checkpoint, jobs_.at(cur.job_id).experiment.output_dir, "checkpoint"));
  }
  if (Status s = CheckAttemptLocked(cur, attempt); !s.ok()) return s;
  FailAck ack;
  ack.attempts_left = std::max(0, cur.max_attempts - cur.attempt);
  if (cur.state == TaskState::kSucceeded) return Aborted("task " + std::to_string(task_id) + " has succeeded already");
  if (cur.state != TaskState::kLeased) {  // reported before (pending again, failed) or cancelled meanwhile
    ack.duplicate = cur.state != TaskState::kCancelled;
    ack.will_retry = cur.state == TaskState::kPending;
    return ack;
  }
  TaskRecord t = cur;
  if (!checkpoint.empty()) t.checkpoint = checkpoint;
  t.lease_expires_ms = now_ms;
  if (preempted && retryable) ++t.max_attempts;  // a preemption is not the task's fault: the budget stays whole
  Change c;
  RetryOrFailLocked(t, error.empty() ? "failed (no reason given)" : error, retryable, &c, &ack.will_retry);
  if (Status s = CommitLocked(c, lock); !s.ok()) return s;
  return ack;
}

int Scheduler::ExpireLocked(const std::vector<int64_t>& ids, const std::string& why, int64_t now_ms, std::unique_lock<std::mutex>& lock) {
  int n = 0;
  for (int64_t id : ids) {
    auto it = tasks_.find(id);
    if (it == tasks_.end() || it->second.state != TaskState::kLeased) continue;
    TaskRecord t = it->second;
    Change c;
    c.stops.push_back({t.worker, {t.id, t.attempt}});
    bool retry = false;
    const std::string error = why + " (worker " + t.worker.ToString() + ", attempt " + std::to_string(t.attempt) + ")";
    t.lease_expires_ms = now_ms;
    RetryOrFailLocked(t, error, true, &c, &retry);
    if (CommitLocked(c, lock, false).ok()) ++n;
  }
  if (n > 0) WaitDurableLocked(lock, enqueued_);
  return n;
}

int Scheduler::ExpireLeases(int64_t now_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<int64_t> ids;
  for (auto it = expiry_.begin(); it != expiry_.end() && it->first <= now_ms; ++it) ids.push_back(it->second);
  if (ids.empty()) return 0;
  return ExpireLocked(ids, "lease expired", now_ms, lock);
}

int Scheduler::ReleaseWorker(const WorkerKey& worker, int64_t now_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  auto h = held_.find(worker);
  if (h == held_.end()) return 0;
  const std::vector<int64_t> ids(h->second.begin(), h->second.end());
  return ExpireLocked(ids, "worker declared dead (no heartbeat)", now_ms, lock);
}

int Scheduler::CancelJobLocked(const JobRecord& job, const std::string& user, int64_t now_ms, Change* c) {
  JobRecord j = job;
  j.state = JobState::kCancelled;
  j.finished_ms = now_ms;
  j.error = "cancelled by " + user;
  c->jobs.push_back(j);
  int n = 0;
  for (int64_t id : job_tasks_.at(job.id)) {
    const TaskRecord& t = tasks_.at(id);
    if (IsTerminal(t.state)) continue;
    TaskRecord u = t;
    u.state = TaskState::kCancelled;
    if (t.state == TaskState::kLeased) c->stops.push_back({t.worker, {t.id, t.attempt}});
    c->updates.push_back(u);
    ++n;
  }
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
  if (Status s = CommitLocked(c, lock); !s.ok()) return s;
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
  if (Status s = CommitLocked(c, lock); !s.ok()) return s;
  return ack;
}

// ---- queries ----

JobView Scheduler::ViewLocked(const JobRecord& j, bool with_tasks) const {
  JobView v;
  v.job = j;
  double train = 0, rest = 0;
  int rest_n = 0;
  auto it = job_tasks_.find(j.id);
  if (it != job_tasks_.end()) {
    for (int64_t id : it->second) {
      const TaskRecord& t = tasks_.at(id);
      v.counts.by_state[static_cast<int>(t.state)]++;
      const double f = t.state == TaskState::kSucceeded ? 1.0 : t.state == TaskState::kLeased ? t.fraction : 0.0;
      if (t.kind == TaskKind::kTrain) {
        train = f;
      } else {
        rest += f;
        ++rest_n;
      }
      if (with_tasks) v.tasks.push_back(t);
    }
  }
  v.progress = j.state == JobState::kSucceeded ? 1.0 : 0.5 * train + (rest_n ? 0.5 * rest / rest_n : 0.0);
  return v;
}

StatusOr<JobView> Scheduler::GetJob(int64_t job_id) const {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return NotFound("job_id: no job " + std::to_string(job_id));
  return ViewLocked(it->second, true);
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
    out.push_back(ViewLocked(j, false));
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
  return tasks_.size();
}

}  // namespace cadenza::coord
