// The commit log over a real Store: a queued change is not in the database until a waiter writes it; one wait
// writes every change queued before it, in order; concurrent callers each return only once their change is durable.
#include "coordinator/commit_log.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "tests/unit/coordinator/test_util.h"

namespace cadenza::coord {
namespace {

class CommitLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(dir_.File("c.db"));
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(s).value();
    JobRecord j;
    j.user = "alice";
    j.experiment.output_dir = "/runs/unit";
    ASSERT_TRUE(store_->Transaction([&] { return store_->InsertJob(&j); }).ok());
    job_ = j;
  }
  TaskRecord Task(int64_t id) {
    TaskRecord t;
    t.id = id;
    t.job_id = job_.id;
    t.kind = TaskKind::kScore;
    return t;
  }
  std::vector<TaskRecord> Stored() {
    auto tasks = store_->LoadTasks();
    EXPECT_TRUE(tasks.ok()) << tasks.status().message();
    return tasks.ok() ? *tasks : std::vector<TaskRecord>();
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  JobRecord job_;
  std::mutex mu_;  // the caller's mutex, as the Scheduler's
};

TEST_F(CommitLogTest, AQueuedChangeIsWrittenOnlyWhenAWaiterWritesIt) {
  CommitLog log(store_.get());
  std::unique_lock<std::mutex> lock(mu_);
  ChangeSet a;
  a.inserts.push_back(Task(1));
  EXPECT_EQ(log.Append(std::move(a)), 1u);
  EXPECT_EQ(log.last_ticket(), 1u);
  EXPECT_EQ(log.durable_ticket(), 0u);
  EXPECT_TRUE(Stored().empty());  // memory is ahead of the database until a wait
  log.WaitDurable(lock, 1);
  EXPECT_TRUE(lock.owns_lock());
  EXPECT_EQ(log.durable_ticket(), 1u);
  ASSERT_EQ(Stored().size(), 1u);
  log.WaitDurable(lock, 1);  // already durable: returns at once
}

TEST_F(CommitLogTest, OneWaitWritesEveryChangeQueuedBeforeItInOrder) {
  CommitLog log(store_.get());
  std::unique_lock<std::mutex> lock(mu_);
  ChangeSet a;
  a.inserts.push_back(Task(1));
  a.inserts.push_back(Task(2));
  log.Append(std::move(a));
  ChangeSet b;  // a later change to a task the first one inserted: applied after it
  TaskRecord t1 = Task(1);
  t1.state = TaskState::kSucceeded;
  t1.message = "done";
  b.updates.push_back(t1);
  ResultRecord r;
  r.task_id = 1;
  r.job_id = job_.id;
  r.attempt = 1;
  r.kind = TaskKind::kScore;
  b.result = r;
  JobRecord j = job_;
  j.state = JobState::kRunning;
  b.jobs.push_back(j);
  const uint64_t second = log.Append(std::move(b));
  EXPECT_EQ(second, 2u);
  log.WaitDurable(lock, 1);  // waits for the first; the batch holds both
  EXPECT_EQ(log.durable_ticket(), 2u);
  std::vector<TaskRecord> tasks = Stored();
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].state, TaskState::kSucceeded);
  EXPECT_EQ(tasks[0].message, "done");
  EXPECT_EQ(*store_->CountResults(), 1);
  EXPECT_EQ((*store_->LoadJobs())[0].state, JobState::kRunning);
}

TEST_F(CommitLogTest, ConcurrentCallersEachReturnOnceTheirChangeIsDurable) {
  CommitLog log(store_.get());
  constexpr int kThreads = 4, kEach = 50;
  std::vector<std::thread> threads;
  std::mutex seen_mu;
  int not_durable = 0;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < kEach; ++i) {
        std::unique_lock<std::mutex> lock(mu_);
        ChangeSet c;
        c.inserts.push_back(Task(1 + k * kEach + i));
        const uint64_t ticket = log.Append(std::move(c));
        log.WaitDurable(lock, ticket);
        if (log.durable_ticket() < ticket) {
          std::lock_guard<std::mutex> g(seen_mu);
          ++not_durable;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(not_durable, 0);
  EXPECT_EQ(log.durable_ticket(), static_cast<uint64_t>(kThreads * kEach));
  EXPECT_EQ(Stored().size(), static_cast<size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace cadenza::coord
