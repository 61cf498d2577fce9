// Store: schema, round trips, one result per task, and a SIGKILL in the middle of a transaction.
#include "coordinator/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/coordinator/test_util.h"

namespace cadenza::coord {
namespace {

using testing::TempDir;

JobRecord Job(const std::string& user) {
  JobRecord j;
  j.user = user;
  j.experiment = testing::MakeExperiment();
  j.created_ms = 5;
  return j;
}

TEST(StoreTest, RoundTripsJobsTasksResults) {
  TempDir dir;
  const std::string db = dir.File("c.db");
  {
    auto s = Store::Open(db);
    ASSERT_TRUE(s.ok()) << s.status().message();
    JobRecord j = Job("alice");
    TaskRecord t;
    ASSERT_TRUE((*s)->Transaction([&] {
      if (Status e = (*s)->InsertJob(&j); !e.ok()) return e;
      t.job_id = j.id;
      t.kind = TaskKind::kGenerate;
      t.shard_index = 2;
      t.checkpoint = "/ck.pt";
      return (*s)->InsertTask(&t);
    }).ok());
    ResultRecord r;
    r.task_id = t.id;
    r.attempt = 1;
    r.job_id = j.id;
    r.kind = TaskKind::kGenerate;
    r.metrics = {{"loss", 1.5}};
    r.artifacts = {"/a.mid"};
    ASSERT_TRUE((*s)->Transaction([&] { return (*s)->InsertResult(r); }).ok());
    Status again = (*s)->Transaction([&] { return (*s)->InsertResult(r); });
    EXPECT_EQ(again.code(), StatusCode::kAborted) << again.message();
  }
  auto s = Store::Open(db);
  ASSERT_TRUE(s.ok());
  auto jobs = (*s)->LoadJobs();
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].user, "alice");
  EXPECT_EQ((*jobs)[0].experiment.model_family, "transformer");
  EXPECT_EQ((*jobs)[0].experiment.seed, 7u);
  auto tasks = (*s)->LoadTasks();
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ((*tasks)[0].shard_index, 2);
  EXPECT_EQ((*tasks)[0].checkpoint, "/ck.pt");
  auto results = (*s)->LoadResults((*jobs)[0].id, TaskKind::kUnspecified);
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 1u);
  EXPECT_DOUBLE_EQ((*results)[0].metrics.at("loss"), 1.5);
  EXPECT_EQ((*results)[0].artifacts, std::vector<std::string>{"/a.mid"});
}

TEST(StoreTest, FailedTransactionRollsBack) {
  TempDir dir;
  auto s = Store::Open(dir.File("c.db"));
  ASSERT_TRUE(s.ok());
  JobRecord j = Job("bob");
  Status st = (*s)->Transaction([&] {
    (void)(*s)->InsertJob(&j);
    return InvalidArgument("changed my mind");
  });
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE((*s)->LoadJobs()->empty());
}

// A child process commits one job, then dies by SIGKILL in the middle of a second transaction: the reopened
// database has exactly the committed job.
TEST(StoreTest, SigkillMidTransactionKeepsCommittedStateOnly) {
  TempDir dir;
  const std::string db = dir.File("c.db");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto s = Store::Open(db);
    if (!s.ok()) _exit(2);
    JobRecord a = Job("committed");
    if (!(*s)->Transaction([&] { return (*s)->InsertJob(&a); }).ok()) _exit(3);
    (void)(*s)->Transaction([&] {
      JobRecord b = Job("torn");
      (void)(*s)->InsertJob(&b);
      raise(SIGKILL);  // dies with the transaction open
      return Status::Ok();
    });
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(WTERMSIG(status), SIGKILL);
  auto s = Store::Open(db);
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto jobs = (*s)->LoadJobs();
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].user, "committed");
}

}  // namespace
}  // namespace cadenza::coord
