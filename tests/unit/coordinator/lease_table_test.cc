// The lease table alone: fair share, leases and their expiry on a fake clock (times are plain numbers), holders,
// stop notices, who may report, and the retry-or-fail decision. No store, no scheduler.
#include "coordinator/lease_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace cadenza::coord {
namespace {

constexpr int64_t kLeaseMs = 1000;

TaskRecord Task(int64_t id, TaskKind kind, TaskState state = TaskState::kPending, int max_attempts = 3) {
  TaskRecord t;
  t.id = id;
  t.job_id = 1;
  t.kind = kind;
  t.state = state;
  t.max_attempts = max_attempts;
  return t;
}

int64_t Count(const LeaseTable& table, TaskKind kind, TaskState state) {
  for (const TaskCount& c : table.Counts()) {
    if (c.kind == kind && c.state == state) return c.count;
  }
  return 0;
}

class LeaseTableTest : public ::testing::Test {
 protected:
  // Leases `id` to `w` at now_ as the scheduler does: the leased record, stored.
  TaskRecord LeaseTo(int64_t id, const WorkerKey& w, const std::string& user) {
    TaskRecord t = table_.Leased(*table_.Find(id), w, now_);
    table_.Put(t, user);
    return t;
  }
  uint32_t AllKinds(const WorkerKey& w) { return *LeaseTable::KindsFor(w, 0); }

  LeaseTable table_{kLeaseMs};
  int64_t now_ = 50000;  // the fake clock
  const WorkerKey w0_{1, 0}, w1_{1, 1}, v0_{2, 0};
};

TEST_F(LeaseTableTest, OnlyRankZeroTrains) {
  EXPECT_TRUE(AllKinds(w0_) & KindBit(TaskKind::kTrain));
  EXPECT_FALSE(AllKinds(w1_) & KindBit(TaskKind::kTrain));
  EXPECT_TRUE(AllKinds(w1_) & KindBit(TaskKind::kGenerate));
  auto bad = LeaseTable::KindsFor(w1_, KindBit(TaskKind::kTrain));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*LeaseTable::KindsFor(w1_, KindBit(TaskKind::kScore)), KindBit(TaskKind::kScore));
}

TEST_F(LeaseTableTest, FairShareGoesToTheUserWithFewestLeasesThenTheOldestTask) {
  for (int64_t id = 1; id <= 4; ++id) table_.Put(Task(id, TaskKind::kGenerate), "alice");  // a sweep, submitted first
  table_.Put(Task(10, TaskKind::kGenerate), "bob");
  table_.Put(Task(11, TaskKind::kGenerate), "bob");
  const uint32_t gen = KindBit(TaskKind::kGenerate);
  EXPECT_EQ(table_.Next(gen), 1);  // nobody holds anything: the oldest task
  LeaseTo(1, w0_, "alice");
  EXPECT_EQ(table_.Next(gen), 10);  // bob holds fewer
  LeaseTo(10, w1_, "bob");
  EXPECT_EQ(table_.Next(gen), 2);  // 1 each: the oldest head
  LeaseTo(2, v0_, "alice");
  EXPECT_EQ(table_.Next(gen), 11);
  EXPECT_EQ(table_.Next(KindBit(TaskKind::kScore)), 0);  // no ready task of that kind
  // A blocked task is never offered.
  table_.Put(Task(20, TaskKind::kScore, TaskState::kBlocked), "carol");
  EXPECT_EQ(table_.Next(KindBit(TaskKind::kScore)), 0);
  EXPECT_EQ(Count(table_, TaskKind::kGenerate, TaskState::kLeased), 3);
  EXPECT_EQ(Count(table_, TaskKind::kGenerate, TaskState::kPending), 3);
  EXPECT_EQ(Count(table_, TaskKind::kScore, TaskState::kBlocked), 1);
  EXPECT_EQ(table_.size(), 7u);
}

TEST_F(LeaseTableTest, ALeaseIsTheNextAttemptAndLastsUntilRenewedOrExpired) {
  table_.Put(Task(1, TaskKind::kTrain), "alice");
  TaskRecord t = LeaseTo(1, w0_, "alice");
  EXPECT_EQ(t.attempt, 1);
  EXPECT_EQ(t.state, TaskState::kLeased);
  EXPECT_EQ(t.lease_expires_ms, now_ + kLeaseMs);
  EXPECT_EQ(table_.Next(AllKinds(w0_)), 0);  // leased: not offered again
  EXPECT_EQ(table_.HeldBy(w0_), (std::vector<int64_t>{1}));
  EXPECT_EQ(table_.LeasesByGroup(), (std::map<int64_t, int>{{1, 1}}));
  now_ += kLeaseMs - 1;
  EXPECT_TRUE(table_.Expired(now_).empty());
  int64_t expires = 0;
  EXPECT_TRUE(table_.Renew(1, w0_, 1, now_, &expires));
  EXPECT_EQ(expires, now_ + kLeaseMs);
  EXPECT_FALSE(table_.Renew(1, w0_, 2, now_));  // an attempt it does not hold
  EXPECT_FALSE(table_.Renew(1, v0_, 1, now_));  // another worker
  EXPECT_FALSE(table_.Renew(99, w0_, 1, now_));  // no such task
  now_ += kLeaseMs - 1;
  EXPECT_TRUE(table_.Expired(now_).empty());
  now_ += 1;
  EXPECT_EQ(table_.Expired(now_), (std::vector<int64_t>{1}));
  // Expired: pending again, retried as the next attempt by anyone.
  RetryDecision d = LeaseTable::Expire(*table_.Find(1), "lease expired", now_);
  EXPECT_TRUE(d.will_retry);
  EXPECT_EQ(d.task.state, TaskState::kPending);
  EXPECT_EQ(d.task.message, "lease expired (worker 1/0, attempt 1)");
  table_.Put(d.task, "alice");
  EXPECT_TRUE(table_.Expired(now_ + 10 * kLeaseMs).empty());
  EXPECT_TRUE(table_.HeldBy(w0_).empty());
  EXPECT_TRUE(table_.LeasesByGroup().empty());
  EXPECT_EQ(table_.Next(AllKinds(w0_)), 1);
  EXPECT_EQ(LeaseTo(1, v0_, "alice").attempt, 2);
}

TEST_F(LeaseTableTest, StopNoticesAreTakenOnceAndNotDoubled) {
  table_.Stop(w0_, {7, 1});
  table_.Stop(w0_, {8, 2});
  std::vector<StopNotice> out = {{7, 1}};  // already told (e.g. listed by its heartbeat but not its lease)
  table_.TakeStops(w0_, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].task_id, 8);
  out.clear();
  table_.TakeStops(w0_, &out);
  EXPECT_TRUE(out.empty());
  table_.TakeStops(v0_, &out);
  EXPECT_TRUE(out.empty());
}

TEST_F(LeaseTableTest, ReportsComeFromTheHoldingGroupForTheCurrentAttempt) {
  TaskRecord t = Task(5, TaskKind::kGenerate, TaskState::kLeased);
  t.attempt = 2;
  t.worker = w1_;
  EXPECT_TRUE(LeaseTable::CheckReport(t, w1_, 2).ok());
  EXPECT_TRUE(LeaseTable::CheckReport(t, w0_, 2).ok());  // same group, another rank
  EXPECT_TRUE(LeaseTable::Holds(t, w1_, 2));
  EXPECT_FALSE(LeaseTable::Holds(t, w0_, 2));  // progress: the rank itself
  Status other = LeaseTable::CheckReport(t, v0_, 2);
  EXPECT_EQ(other.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(other.message(), "task 5 is not leased to worker group 2");  // nothing else of the task
  Status stale = LeaseTable::CheckReport(t, v0_, 1);
  EXPECT_EQ(stale.code(), StatusCode::kAborted);
  EXPECT_EQ(stale.message().find("now attempt"), std::string::npos);  // another group learns no attempt count
  EXPECT_NE(LeaseTable::CheckReport(t, w1_, 1).message().find("now attempt 2"), std::string::npos);
  EXPECT_EQ(LeaseTable::CheckReport(t, w1_, 3).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LeaseTable::CheckReport(t, w1_, 0).code(), StatusCode::kInvalidArgument);
}

TEST_F(LeaseTableTest, RetriesUntilTheBudgetIsSpentThenTheJobFails) {
  TaskRecord t = Task(3, TaskKind::kGenerate, TaskState::kLeased, /*max_attempts=*/2);
  t.shard_index = 1;
  t.attempt = 1;
  RetryDecision d = LeaseTable::Failed(t, "out of memory", true, false, now_);
  EXPECT_TRUE(d.will_retry);
  EXPECT_EQ(d.task.state, TaskState::kPending);
  EXPECT_TRUE(d.job_error.empty());
  EXPECT_EQ(d.task.lease_expires_ms, now_);
  t.attempt = 2;
  d = LeaseTable::Failed(t, "out of memory", true, false, now_);
  EXPECT_FALSE(d.will_retry);
  EXPECT_EQ(d.task.state, TaskState::kFailed);
  EXPECT_EQ(d.job_error, "generate task 3 (shard 1) failed after 2 attempt(s): out of memory");
  // Not retryable: failed at once, whatever the budget.
  t.attempt = 1;
  d = LeaseTable::Failed(t, "", false, false, now_);
  EXPECT_FALSE(d.will_retry);
  EXPECT_EQ(d.task.message, "failed (no reason given)");
  // A preemption gives the attempt back: the last attempt is retried.
  t.attempt = 2;
  d = LeaseTable::Failed(t, "preempted", true, true, now_);
  EXPECT_TRUE(d.will_retry);
  EXPECT_EQ(d.task.max_attempts, 3);
  // An expiry on the last attempt fails the task too.
  t.worker = w0_;
  d = LeaseTable::Expire(t, "worker declared dead (no heartbeat)", now_);
  EXPECT_FALSE(d.will_retry);
  EXPECT_EQ(d.job_error, "generate task 3 (shard 1) failed after 2 attempt(s): worker declared dead (no heartbeat) (worker 1/0, attempt 2)");
}

TEST_F(LeaseTableTest, ProgressChangesNoIndex) {
  table_.Put(Task(1, TaskKind::kScore), "alice");
  LeaseTo(1, w0_, "alice");
  table_.SetProgress(1, 0.5, "half");
  EXPECT_DOUBLE_EQ(table_.Find(1)->fraction, 0.5);
  EXPECT_EQ(table_.Find(1)->message, "half");
  EXPECT_EQ(table_.Expired(now_ + kLeaseMs), (std::vector<int64_t>{1}));
  EXPECT_EQ(Count(table_, TaskKind::kScore, TaskState::kLeased), 1);
}

}  // namespace
}  // namespace cadenza::coord
