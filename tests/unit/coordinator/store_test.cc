// Store: schema, round trips, one result per task, and a SIGKILL in the middle of a transaction.
#include "coordinator/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator/result_query.h"
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
  auto reader = ResultQuery::Open(db);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  ResultFilter every;
  every.job_id = (*jobs)[0].id;
  every.kind = TaskKind::kUnspecified;
  auto views = (*reader)->Query(every);
  ASSERT_TRUE(views.ok()) << views.status().message();
  std::vector<ResultRecord> rows;
  for (const ResultView& v : *views) rows.push_back(v.result);
  auto* results = &rows;
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

// One coordinator per database: a second Store on the same file (here, or in another process) fails with a message
// naming the lock file; once the first is closed the database opens again.
TEST(StoreTest, SecondStoreOnTheSameDatabaseFailsNamingTheLockFile) {
  TempDir dir;
  const std::string db = dir.File("c.db");
  auto first = Store::Open(db);
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto second = Store::Open(db);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(db + "-lock"), std::string::npos) << second.status().message();
  const pid_t pid = fork();  // and from another process
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(Store::Open(db).ok() ? 1 : 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a second process opened a locked database";
  // Readers are not coordinators: a ResultQuery opens beside the Store.
  EXPECT_TRUE(ResultQuery::Open(db).ok());
  first->reset();
  EXPECT_TRUE(Store::Open(db).ok());
}

TEST(StoreTest, AxesAndParametersRoundTrip) {
  TempDir dir;
  const std::string db = dir.File("c.db");
  {
    auto s = Store::Open(db);
    ASSERT_TRUE(s.ok()) << s.status().message();
    JobRecord a = Job("alice");
    a.experiment.axes = {{"model", "tiny"}, {"dataset_fraction", "0.25"}, {"quote", "a \"b\"\n"}};
    a.experiment.parameters = 9876543210;
    JobRecord b = Job("bob");  // no axes, no parameter count
    b.experiment.axes.clear();
    b.experiment.parameters = 0;
    ASSERT_TRUE((*s)->Transaction([&] {
      if (Status e = (*s)->InsertJob(&a); !e.ok()) return e;
      return (*s)->InsertJob(&b);
    }).ok());
  }
  auto s = Store::Open(db);
  ASSERT_TRUE(s.ok());
  auto jobs = (*s)->LoadJobs();
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 2u);
  const std::map<std::string, std::string> axes = {{"model", "tiny"}, {"dataset_fraction", "0.25"}, {"quote", "a \"b\"\n"}};
  EXPECT_EQ((*jobs)[0].experiment.axes, axes);
  EXPECT_EQ((*jobs)[0].experiment.parameters, 9876543210);
  EXPECT_TRUE((*jobs)[1].experiment.axes.empty());
  EXPECT_EQ((*jobs)[1].experiment.parameters, 0);
}

// A database written before the axes_json and parameters columns existed gains them (with their defaults) on open,
// keeps its rows, and takes new jobs with both.
TEST(StoreTest, OldSchemaDatabaseIsMigrated) {
  TempDir dir;
  const std::string db = dir.File("old.db");
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
    const char* old_schema = R"sql(
      PRAGMA journal_mode=WAL;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, sweep_id INTEGER NOT NULL, user TEXT NOT NULL, name TEXT NOT NULL,
        dataset TEXT NOT NULL, model_family TEXT NOT NULL, seed INTEGER NOT NULL, output_dir TEXT NOT NULL,
        reference_split TEXT NOT NULL, samples INTEGER NOT NULL, samples_per_task INTEGER NOT NULL,
        experiment_yaml TEXT NOT NULL, state INTEGER NOT NULL, created_ms INTEGER NOT NULL,
        finished_ms INTEGER NOT NULL, error TEXT NOT NULL);
      INSERT INTO jobs (sweep_id, user, name, dataset, model_family, seed, output_dir, reference_split, samples,
        samples_per_task, experiment_yaml, state, created_ms, finished_ms, error)
        VALUES (0, 'old', 'old-job', '/data/old', 'lstm', 3, '/runs/old', 'test', 8, 0, 'name: old', 3, 1, 2, '');
    )sql";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(raw, old_schema, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(raw);
  }
  for (int pass = 0; pass < 2; ++pass) {  // the second open finds the columns already there
    auto s = Store::Open(db);
    ASSERT_TRUE(s.ok()) << s.status().message();
    auto jobs = (*s)->LoadJobs();
    ASSERT_TRUE(jobs.ok()) << jobs.status().message();
    ASSERT_EQ(jobs->size(), pass == 0 ? 1u : 2u);
    EXPECT_EQ((*jobs)[0].user, "old");
    EXPECT_EQ((*jobs)[0].experiment.model_family, "lstm");
    EXPECT_TRUE((*jobs)[0].experiment.axes.empty());
    EXPECT_EQ((*jobs)[0].experiment.parameters, 0);
    if (pass == 0) {
      JobRecord j = Job("new");
      j.experiment.axes = {{"model", "tiny"}};
      j.experiment.parameters = 42;
      ASSERT_TRUE((*s)->Transaction([&] { return (*s)->InsertJob(&j); }).ok());
    } else {
      EXPECT_EQ((*jobs)[1].experiment.axes.at("model"), "tiny");
      EXPECT_EQ((*jobs)[1].experiment.parameters, 42);
    }
  }
}

}  // namespace
}  // namespace cadenza::coord

namespace cadenza::coord {
namespace {

// The coordinator's state and its lock are owner-only from creation (issue "trust boundaries", item 10).
TEST(StoreFilesTest, DatabaseAndLockAreOwnerOnly) {
  testing::TempDir dir;
  auto store = Store::Open(dir.File("c.db"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  for (const std::string f : {"c.db", "c.db-lock"}) {
    struct stat st {};
    ASSERT_EQ(::stat(dir.File(f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
}

}  // namespace
}  // namespace cadenza::coord
