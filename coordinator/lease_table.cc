// Lease bookkeeping: queues per user and kind, expiry, holders, stop notices, report checks, retry-or-fail.
#include "coordinator/lease_table.h"

namespace cadenza::coord {
namespace {

std::string Describe(const TaskRecord& t) {
  std::string s = std::string(TaskKindName(t.kind)) + " task " + std::to_string(t.id);
  if (t.kind == TaskKind::kGenerate || t.kind == TaskKind::kEvaluate) s += " (shard " + std::to_string(t.shard_index) + ")";
  return s;
}

}  // namespace

void LeaseTable::Index(const TaskRecord& t, const std::string& user, int delta) {
  counts_[static_cast<int>(t.kind)][static_cast<int>(t.state)].fetch_add(delta, std::memory_order_relaxed);
  if (t.state == TaskState::kPending) {
    std::set<int64_t>& q = users_[user].pending[static_cast<int>(t.kind)];
    if (delta > 0) q.insert(t.id);
    else q.erase(t.id);
  } else if (t.state == TaskState::kLeased) {
    users_[user].leased += delta;
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

bool LeaseTable::Put(const TaskRecord& t, const std::string& user) {
  auto it = tasks_.find(t.id);
  const bool added = it == tasks_.end();
  if (added) {
    tasks_.emplace(t.id, t);
  } else {
    Index(it->second, user, -1);
    it->second = t;
  }
  Index(t, user, +1);
  return added;
}

const TaskRecord* LeaseTable::Find(int64_t task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}

void LeaseTable::SetProgress(int64_t task_id, double fraction, const std::string& message) {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return;
  it->second.fraction = fraction;
  it->second.message = message;
}

StatusOr<uint32_t> LeaseTable::KindsFor(const WorkerKey& worker, uint32_t kind_mask) {
  const uint32_t others = KindBit(TaskKind::kGenerate) | KindBit(TaskKind::kEvaluate) | KindBit(TaskKind::kAggregate) |
                          KindBit(TaskKind::kScore) | KindBit(TaskKind::kProbe);
  if (kind_mask == 0) kind_mask = others | (worker.rank == 0 ? KindBit(TaskKind::kTrain) : 0);
  if ((kind_mask & KindBit(TaskKind::kTrain)) && worker.rank != 0) {
    return InvalidArgument("kinds: train tasks are leased by rank 0 of a worker group (rank " + std::to_string(worker.rank) + " asked)");
  }
  return kind_mask;
}

int64_t LeaseTable::Next(uint32_t kind_mask) const {
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
  return best_task;
}

TaskRecord LeaseTable::Leased(const TaskRecord& t_in, const WorkerKey& worker, int64_t now_ms) const {
  TaskRecord t = t_in;
  t.state = TaskState::kLeased;
  t.attempt += 1;
  t.worker = worker;
  t.fraction = 0;
  t.message.clear();
  t.lease_expires_ms = now_ms + lease_ms_;
  return t;
}

bool LeaseTable::Holds(const TaskRecord& t, const WorkerKey& worker, int attempt) {
  return t.state == TaskState::kLeased && t.attempt == attempt && t.worker == worker;
}

bool LeaseTable::Renew(int64_t task_id, const WorkerKey& worker, int attempt, int64_t now_ms, int64_t* expires_ms) {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end() || !Holds(it->second, worker, attempt)) return false;
  TaskRecord& t = it->second;
  expiry_.erase({t.lease_expires_ms, t.id});
  t.lease_expires_ms = now_ms + lease_ms_;
  expiry_.insert({t.lease_expires_ms, t.id});
  if (expires_ms) *expires_ms = t.lease_expires_ms;
  return true;
}

std::vector<int64_t> LeaseTable::Expired(int64_t now_ms) const {
  std::vector<int64_t> ids;
  for (auto it = expiry_.begin(); it != expiry_.end() && it->first <= now_ms; ++it) ids.push_back(it->second);
  return ids;
}

std::vector<int64_t> LeaseTable::HeldBy(const WorkerKey& worker) const {
  auto h = held_.find(worker);
  if (h == held_.end()) return {};
  return std::vector<int64_t>(h->second.begin(), h->second.end());
}

std::map<int64_t, int> LeaseTable::LeasesByGroup() const {
  std::map<int64_t, int> out;
  for (const auto& [worker, ids] : held_) out[worker.group_id] += static_cast<int>(ids.size());
  return out;
}

void LeaseTable::Stop(const WorkerKey& worker, const StopNotice& n) { stops_[worker].push_back(n); }

void LeaseTable::TakeStops(const WorkerKey& worker, std::vector<StopNotice>* out) {
  auto s = stops_.find(worker);
  if (s == stops_.end()) return;
  for (const StopNotice& n : s->second) {
    bool dup = false;
    for (const StopNotice& o : *out) dup = dup || (o.task_id == n.task_id && o.attempt == n.attempt);
    if (!dup) out->push_back(n);
  }
  stops_.erase(s);
}

Status LeaseTable::CheckAttempt(const TaskRecord& t, int attempt) {
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

Status LeaseTable::CheckReport(const TaskRecord& t, const WorkerKey& worker, int attempt) {
  const bool holder = t.worker.group_id == worker.group_id;
  // A replaced attempt is ABORTED whoever sends it (the old holder's late report); only the holder learns more.
  if (attempt >= 1 && attempt < t.attempt) {
    return Aborted("task " + std::to_string(t.id) + ": attempt " + std::to_string(attempt) + " is stale (the lease was lost" +
                   (holder ? "; now attempt " + std::to_string(t.attempt) : std::string()) + ")");
  }
  // Another group learns nothing of the task (its attempts, state, spec or run folder).
  if (!holder) return PermissionDenied("task " + std::to_string(t.id) + " is not leased to worker group " + std::to_string(worker.group_id));
  return CheckAttempt(t, attempt);
}

RetryDecision LeaseTable::RetryOrFail(TaskRecord t, const std::string& error, bool retryable) {
  RetryDecision d;
  t.message = error;
  d.will_retry = retryable && t.attempt < t.max_attempts;
  t.state = d.will_retry ? TaskState::kPending : TaskState::kFailed;
  if (!d.will_retry) d.job_error = Describe(t) + " failed after " + std::to_string(t.attempt) + " attempt(s): " + error;
  d.task = std::move(t);
  return d;
}

RetryDecision LeaseTable::Failed(TaskRecord t, const std::string& error, bool retryable, bool preempted, int64_t now_ms) {
  t.lease_expires_ms = now_ms;
  if (preempted && retryable) ++t.max_attempts;  // a preemption is not the task's fault: the budget stays whole
  return RetryOrFail(std::move(t), error.empty() ? "failed (no reason given)" : error, retryable);
}

RetryDecision LeaseTable::Expire(TaskRecord t, const std::string& why, int64_t now_ms) {
  const std::string error = why + " (worker " + t.worker.ToString() + ", attempt " + std::to_string(t.attempt) + ")";
  t.lease_expires_ms = now_ms;
  return RetryOrFail(std::move(t), error, true);
}

std::vector<TaskCount> LeaseTable::Counts() const {
  std::vector<TaskCount> out;
  for (int k = 0; k < kNumTaskKinds; ++k) {
    for (int st = 0; st < kNumTaskStates; ++st) {
      const int64_t n = counts_[k][st].load(std::memory_order_relaxed);
      if (n > 0) out.push_back({static_cast<TaskKind>(k), static_cast<TaskState>(st), n});
    }
  }
  return out;
}

}  // namespace cadenza::coord
