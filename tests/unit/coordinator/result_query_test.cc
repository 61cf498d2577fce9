// ResultQuery: the filters of one join of results and jobs, snapshot reads beside an open write transaction, the
// axes/parameters columns, ":memory:" stores, and the page sent for them (full or compact).
#include "coordinator/result_query.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <limits>
#include <map>
#include <thread>

#include "coordinator/client.h"
#include "coordinator/convert.h"
#include "coordinator/store.h"
#include "tests/unit/coordinator/test_util.h"

namespace cadenza::coord {
namespace {

using testing::TempDir;

class ResultQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(dir_.File("c.db"));
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(s).value();
    // Every test reads through the page cache, wired to the store as the coordinator wires it; `uncached_` is the oracle.
    auto q = ResultQuery::Open(store_->path(), /*cache_rows=*/1000);
    ASSERT_TRUE(q.ok()) << q.status().message();
    query_ = std::move(q).value();
    store_->SetJobWriteObserver([q = query_.get()](int64_t job_id) { q->NoteJobWritten(job_id); });
    auto u = ResultQuery::Open(store_->path());
    ASSERT_TRUE(u.ok()) << u.status().message();
    uncached_ = std::move(u).value();
  }

  // One more result of kind `kind` for job `job_id`, in a transaction of its own.
  void AddResult(int64_t job_id, TaskKind kind) {
    Status st = store_->Transaction([&] {
      TaskRecord t;
      t.job_id = job_id;
      t.kind = kind;
      t.state = TaskState::kSucceeded;
      if (Status e = store_->InsertTask(&t); !e.ok()) return e;
      ResultRecord r;
      r.task_id = t.id;
      r.job_id = job_id;
      r.kind = kind;
      r.metrics = {{"m", 1.0}};
      return store_->InsertResult(r);
    });
    ASSERT_TRUE(st.ok()) << st.message();
  }

  // The task ids of a page, cached or read afresh.
  static std::vector<int64_t> TaskIds(const std::vector<ResultView>& rows) {
    std::vector<int64_t> ids;
    for (const ResultView& v : rows) ids.push_back(v.result.task_id);
    return ids;
  }
  std::vector<int64_t> FreshTaskIds(const ResultFilter& f) {
    auto rows = uncached_->Query(f);
    EXPECT_TRUE(rows.ok()) << rows.status().message();
    return rows.ok() ? TaskIds(rows->rows()) : std::vector<int64_t>();
  }

  // One job with one task per kind in `kinds`, each with a result whose metric "m" is `metric`.
  int64_t AddJob(const std::string& user, const std::string& dataset, const std::string& family, int64_t sweep_id,
                 std::vector<TaskKind> kinds, double metric) {
    JobRecord j;
    j.user = user;
    j.sweep_id = sweep_id;
    j.experiment = testing::MakeExperiment();
    j.experiment.dataset = dataset;
    j.experiment.model_family = family;
    j.experiment.name = user + "-" + dataset + "-" + family;
    j.experiment.axes = {{"context_length", "256"}, {"model", family + "-small"}};
    j.experiment.parameters = 123456;
    j.created_ms = 7;
    Status st = store_->Transaction([&] {
      if (Status e = store_->InsertJob(&j); !e.ok()) return e;
      for (TaskKind k : kinds) {
        TaskRecord t;
        t.job_id = j.id;
        t.kind = k;
        t.state = TaskState::kSucceeded;
        if (Status e = store_->InsertTask(&t); !e.ok()) return e;
        ResultRecord r;
        r.task_id = t.id;
        r.attempt = 1;
        r.job_id = j.id;
        r.kind = k;
        r.metrics = {{"m", metric}};
        r.artifacts = {"/out/" + std::to_string(t.id)};
        r.summary = "ok";
        r.recorded_ms = 99;
        if (Status e = store_->InsertResult(r); !e.ok()) return e;
      }
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.message();
    return j.id;
  }

  std::vector<ResultView> Query(const ResultFilter& f) {
    auto rows = query_->Query(f);
    EXPECT_TRUE(rows.ok()) << rows.status().message();
    return rows.ok() ? rows->rows() : std::vector<ResultView>();
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ResultQuery> query_;
  std::unique_ptr<ResultQuery> uncached_;
};

// A dashboard polling a page gets the kept page until a job the page reaches is written: a result of an earlier job,
// or the job's own record. Writes to later jobs keep a full page; a page that is not full goes at any write.
TEST_F(ResultQueryTest, ARepeatedQueryIsAnsweredFromItsPageUntilAJobItReachesIsWritten) {
  std::vector<int64_t> jobs;
  for (int i = 0; i < 4; ++i) jobs.push_back(AddJob("alice", "/data/a", "lstm", 1, {TaskKind::kAggregate}, i));
  ResultFilter full;
  full.limit = 2;  // jobs[0] and jobs[1]: a full page
  ResultFilter partial;
  partial.limit = 10;  // every row: not full
  auto counts = [&] { return query_->cache_counts(); };

  EXPECT_EQ(TaskIds(Query(full)), FreshTaskIds(full));
  EXPECT_EQ(counts().misses, 1);
  EXPECT_EQ(TaskIds(Query(full)), FreshTaskIds(full));
  EXPECT_EQ(counts().hits, 1);
  EXPECT_EQ(Query(partial).size(), 4u);
  EXPECT_EQ(counts().pages, 2);
  EXPECT_EQ(counts().rows, 6);

  // A result of a later job: the full page stays (and is still right), the partial one goes.
  AddResult(jobs[3], TaskKind::kAggregate);
  EXPECT_EQ(counts().pages, 1);
  EXPECT_EQ(TaskIds(Query(full)), FreshTaskIds(full));
  EXPECT_EQ(counts().hits, 2);
  EXPECT_EQ(Query(partial).size(), 5u);

  // A result of a job the full page reaches: read again, with the new row.
  AddResult(jobs[0], TaskKind::kAggregate);
  const std::vector<ResultView> rows = Query(full);
  EXPECT_EQ(counts().hits, 2);
  EXPECT_EQ(TaskIds(rows), FreshTaskIds(full));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].result.job_id, jobs[0]) << "the new result of the first job now ends the page";

  // The job's record itself (its state, as the scheduler writes it when the job ends).
  JobRecord j = rows[0].job;
  j.state = JobState::kFailed;
  j.error = "stopped";
  ASSERT_TRUE(store_->Transaction([&] { return store_->UpdateJob(j); }).ok());
  EXPECT_EQ(Query(full)[0].job.state, JobState::kFailed);
  EXPECT_EQ(Query(full)[0].job.error, "stopped");
}

// Pages go oldest first beyond cache_rows; a page larger than the whole cache is never kept; 0 keeps nothing.
TEST_F(ResultQueryTest, KeptPagesStayWithinTheirRows) {
  for (int i = 0; i < 6; ++i) AddJob("alice", "/data/a", "lstm", 1, {TaskKind::kAggregate}, i);
  auto small = ResultQuery::Open(store_->path(), /*cache_rows=*/5);
  ASSERT_TRUE(small.ok()) << small.status().message();
  ResultFilter a, b, c;
  a.limit = 3;
  b.limit = 2;
  c.limit = 6;
  ASSERT_TRUE((*small)->Query(a).ok());
  ASSERT_TRUE((*small)->Query(b).ok());
  EXPECT_EQ((*small)->cache_counts().rows, 5);
  ASSERT_TRUE((*small)->Query(b).ok());
  ASSERT_TRUE((*small)->Query(c).ok());  // 6 rows: more than the cache holds
  EXPECT_EQ((*small)->cache_counts().pages, 2);
  a.offset = 1;  // another page: the oldest (a at offset 0) goes
  ASSERT_TRUE((*small)->Query(a).ok());
  EXPECT_EQ((*small)->cache_counts().pages, 2);
  EXPECT_EQ((*small)->cache_counts().rows, 5);
  ASSERT_TRUE((*small)->Query(b).ok());
  EXPECT_EQ((*small)->cache_counts().hits, 2) << "b stayed: it was not the oldest";

  auto none = ResultQuery::Open(store_->path());
  ASSERT_TRUE(none.ok());
  ASSERT_TRUE((*none)->Query(b).ok());
  ASSERT_TRUE((*none)->Query(b).ok());
  EXPECT_EQ((*none)->cache_counts().hits, 0);
  EXPECT_EQ((*none)->cache_counts().pages, 0);
}

// Writes committed while a page is being read must not leave a stale page behind: every query that starts after a
// write has committed sees it, whether its page was read afresh or kept.
TEST_F(ResultQueryTest, NoQueryMissesAWriteCommittedBeforeItStarted) {
  const int64_t first = AddJob("alice", "/data/a", "lstm", 1, {TaskKind::kTrain}, 0);  // no aggregate row yet
  for (int i = 0; i < 3; ++i) AddJob("bob", "/data/b", "gru", 1, {TaskKind::kAggregate}, i);
  constexpr int kWrites = 300;
  std::atomic<int> written{0};
  std::atomic<int> stale{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      ResultFilter every, front;  // every aggregate row (never a full page); the first two (a full page)
      front.limit = 2;
      while (!done.load()) {
        const int before = written.load();
        auto all = query_->Query(every);
        auto top = query_->Query(front);
        if (!all.ok() || !top.ok()) {
          stale++;
          continue;
        }
        if (static_cast<int>(all->size()) < 3 + before) stale++;
        // The writes go to the first job: once two have landed the first page is that job's alone.
        if (before >= 1 && (*top)[0].result.job_id != first) stale++;
        if (before >= 2 && (*top)[1].result.job_id != first) stale++;
      }
    });
  }
  for (int i = 0; i < kWrites; ++i) {
    AddResult(first, TaskKind::kAggregate);
    written++;
  }
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(stale.load(), 0) << "queries answered without a write committed before they started";
  EXPECT_GT(query_->cache_counts().misses, 2);
  ResultFilter every;
  EXPECT_EQ(TaskIds(Query(every)), FreshTaskIds(every));
}

TEST_F(ResultQueryTest, ReturnsWhatWasCommittedUnderEachFilter) {
  const int64_t a = AddJob("alice", "/data/a", "transformer", 1, {TaskKind::kTrain, TaskKind::kAggregate}, 0.5);
  const int64_t b = AddJob("bob", "/data/b", "lstm", 1, {TaskKind::kTrain, TaskKind::kAggregate}, 0.25);
  const int64_t c = AddJob("alice", "/data/b", "lstm", 2, {TaskKind::kAggregate}, 0.75);

  ResultFilter f;  // default: aggregate results, every job
  std::vector<ResultView> rows = Query(f);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].job.id, a);
  EXPECT_EQ(rows[1].job.id, b);
  EXPECT_EQ(rows[2].job.id, c);
  const ResultView& r = rows[1];
  EXPECT_EQ(r.result.kind, TaskKind::kAggregate);
  EXPECT_EQ(r.result.job_id, b);
  EXPECT_DOUBLE_EQ(r.result.metrics.at("m"), 0.25);
  EXPECT_EQ(r.result.artifacts, std::vector<std::string>{"/out/" + std::to_string(r.result.task_id)});
  EXPECT_EQ(r.result.summary, "ok");
  EXPECT_EQ(r.result.recorded_ms, 99);
  EXPECT_EQ(r.job.user, "bob");
  EXPECT_EQ(r.job.sweep_id, 1);
  EXPECT_EQ(r.job.experiment.name, "bob-/data/b-lstm");
  EXPECT_EQ(r.job.experiment.seed, 7u);
  EXPECT_TRUE(r.job.experiment.experiment_yaml.empty());  // views carry no YAML

  f.kind = TaskKind::kUnspecified;
  EXPECT_EQ(Query(f).size(), 5u);
  f.kind = TaskKind::kTrain;
  EXPECT_EQ(Query(f).size(), 2u);
  f = ResultFilter();
  f.job_id = b;
  ASSERT_EQ(Query(f).size(), 1u);
  EXPECT_EQ(Query(f)[0].job.id, b);
  f = ResultFilter();
  f.sweep_id = 2;
  ASSERT_EQ(Query(f).size(), 1u);
  EXPECT_EQ(Query(f)[0].job.id, c);
  f = ResultFilter();
  f.user = "alice";
  EXPECT_EQ(Query(f).size(), 2u);
  f.dataset = "/data/b";
  ASSERT_EQ(Query(f).size(), 1u);
  EXPECT_EQ(Query(f)[0].job.id, c);
  f = ResultFilter();
  f.model_family = "lstm";
  EXPECT_EQ(Query(f).size(), 2u);
  f.model_family = "gru";
  EXPECT_TRUE(Query(f).empty());
  f = ResultFilter();
  f.limit = 2;
  rows = Query(f);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].job.id, b);  // the first two in job order
  f.job_id = 12345;
  EXPECT_TRUE(Query(f).empty());
}

TEST_F(ResultQueryTest, AxesAndParametersComeBackWithEachRow) {
  AddJob("alice", "/data/a", "transformer", 0, {TaskKind::kAggregate}, 1.0);
  std::vector<ResultView> rows = Query({});
  ASSERT_EQ(rows.size(), 1u);
  const std::map<std::string, std::string> axes = {{"context_length", "256"}, {"model", "transformer-small"}};
  EXPECT_EQ(rows[0].job.experiment.axes, axes);
  EXPECT_EQ(rows[0].job.experiment.parameters, 123456);
}

// Metrics come back as stored whatever their keys and values (the flat fast path and the general parser agree), and a
// job's second row carries the same job fields as its first (copied, not decoded again).
TEST_F(ResultQueryTest, MetricsOfEveryShapeComeBackAsStoredOnEveryRowOfAJob) {
  const int64_t id = AddJob("alice", "/data/a", "transformer", 3, {TaskKind::kTrain, TaskKind::kAggregate}, 0.5);
  const std::map<std::string, double> odd = {
      {"plain", -2.5e-7}, {"big", 1e300}, {"quote\"d", 1.5}, {"back\\slash", 3}, {"\u00e9t\u00e9", 4}, {"", 5}};
  ResultFilter f;
  f.job_id = id;
  f.kind = TaskKind::kUnspecified;
  std::vector<ResultView> rows = Query(f);
  ASSERT_EQ(rows.size(), 2u);
  Status st = store_->Transaction([&] {
    TaskRecord t;
    t.job_id = id;
    t.kind = TaskKind::kGenerate;
    t.state = TaskState::kSucceeded;
    if (Status e = store_->InsertTask(&t); !e.ok()) return e;
    ResultRecord r;
    r.task_id = t.id;
    r.attempt = 1;
    r.job_id = id;
    r.kind = TaskKind::kGenerate;
    r.metrics = odd;
    r.metrics["not_finite"] = std::numeric_limits<double>::quiet_NaN();  // stored as null, left out when read
    return store_->InsertResult(r);
  });
  ASSERT_TRUE(st.ok()) << st.message();
  rows = Query(f);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].result.metrics, odd);
  EXPECT_EQ(rows[0].result.metrics, (std::map<std::string, double>{{"m", 0.5}}));
  for (const ResultView& r : rows) {
    EXPECT_EQ(r.job.id, id);
    EXPECT_EQ(r.job.user, "alice");
    EXPECT_EQ(r.job.sweep_id, 3);
    EXPECT_EQ(r.job.experiment.name, "alice-/data/a-transformer");
    EXPECT_EQ(r.job.experiment.axes.at("model"), "transformer-small");
    EXPECT_EQ(r.job.experiment.parameters, 123456);
    EXPECT_EQ(r.job.created_ms, 7);
  }
}

// A compact page (QueryResultsRequest.compact) carries each job's fields once and fewer bytes, and made whole again by
// the client it equals the full page row for row.
TEST_F(ResultQueryTest, ACompactPageCarriesEachJobOnceAndExpandsToTheFullPage) {
  AddJob("alice", "/data/a", "transformer", 3, {TaskKind::kTrain, TaskKind::kGenerate, TaskKind::kAggregate}, 0.5);
  AddJob("bob", "/data/b", "lstm", 3, {TaskKind::kGenerate}, 1.5);
  AddJob("carol", "/data/c", "gru", 4, {TaskKind::kTrain, TaskKind::kAggregate}, 2.5);
  ResultFilter f;
  f.kind = TaskKind::kUnspecified;
  const std::vector<ResultView> rows = Query(f);
  ASSERT_EQ(rows.size(), 6u);
  v1::QueryResultsResponse full, compact;
  ToProto(rows, /*compact=*/false, &full);
  ToProto(rows, /*compact=*/true, &compact);
  ASSERT_EQ(full.rows_size(), 6);
  EXPECT_EQ(full.jobs_size(), 0);
  ASSERT_EQ(compact.rows_size(), 6);
  ASSERT_EQ(compact.jobs_size(), 3);
  EXPECT_EQ(compact.jobs(1).user(), "bob");
  EXPECT_EQ(compact.jobs(1).axes().at("model"), "lstm-small");
  EXPECT_EQ(compact.jobs(2).parameters(), 123456);
  EXPECT_EQ(compact.jobs(0).task_id(), 0) << "a job entry has no row fields";
  EXPECT_TRUE(compact.jobs(0).metrics().empty());
  for (const v1::ResultRow& r : compact.rows()) {
    EXPECT_TRUE(r.user().empty() && r.dataset().empty() && r.axes().empty() && r.parameters() == 0) << r.ShortDebugString();
    EXPECT_NE(r.job_id(), 0);
    EXPECT_FALSE(r.metrics().empty());
  }
  EXPECT_LT(compact.ByteSizeLong(), full.ByteSizeLong());
  ExpandCompactResults(&compact);
  EXPECT_EQ(compact.jobs_size(), 0);
  ASSERT_EQ(compact.rows_size(), full.rows_size());
  for (int i = 0; i < full.rows_size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(compact.rows(i), full.rows(i)))
        << "row " << i << ":\n" << compact.rows(i).ShortDebugString() << "\n" << full.rows(i).ShortDebugString();
  }
  v1::QueryResultsResponse untouched = full;
  ExpandCompactResults(&untouched);  // a full page is left as it is
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(untouched, full));
}

// A query that runs while the store holds a write transaction open reads the last committed snapshot at once (it
// neither waits for the writer's lock nor sees its uncommitted rows), and sees the rows once they are committed.
TEST_F(ResultQueryTest, QueryDuringAnOpenTransactionReadsTheSnapshotWithoutWaiting) {
  AddJob("alice", "/data/a", "transformer", 0, {TaskKind::kAggregate}, 1.0);
  ResultFilter every;
  every.kind = TaskKind::kUnspecified;
  size_t inside = 0;
  double waited_ms = -1;
  Status st = store_->Transaction([&] {
    JobRecord j;
    j.user = "bob";
    j.experiment = testing::MakeExperiment();
    if (Status e = store_->InsertJob(&j); !e.ok()) return e;
    TaskRecord t;
    t.job_id = j.id;
    t.kind = TaskKind::kAggregate;
    if (Status e = store_->InsertTask(&t); !e.ok()) return e;
    ResultRecord r;
    r.task_id = t.id;
    r.job_id = j.id;
    r.kind = TaskKind::kAggregate;
    if (Status e = store_->InsertResult(r); !e.ok()) return e;
    // From another thread, as the gRPC server does, while this transaction holds the write lock.
    std::thread reader([&] {
      const auto t0 = std::chrono::steady_clock::now();
      auto rows = query_->Query(every);
      waited_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      EXPECT_TRUE(rows.ok()) << rows.status().message();
      if (rows.ok()) inside = rows->size();
    });
    reader.join();
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(inside, 1u);  // the committed row only
  EXPECT_GE(waited_ms, 0);
  EXPECT_LT(waited_ms, 1000) << "the query waited for the writer (busy timeout 5 s)";
  EXPECT_EQ(Query(every).size(), 2u);  // committed now
}

// A query holding its snapshot open does not hold up a writer either: a transaction commits while a query's
// statement is mid-way, and the query still returns the rows of its own snapshot.
TEST_F(ResultQueryTest, WritesCommitWhileQueriesRun) {
  for (int i = 0; i < 50; ++i) AddJob("alice", "/data/a", "lstm", 0, {TaskKind::kAggregate}, i);
  std::atomic<bool> stop{false};
  std::atomic<int> queries{0};
  std::thread reader([&] {
    while (!stop.load()) {
      auto rows = query_->Query({});
      EXPECT_TRUE(rows.ok()) << rows.status().message();
      if (rows.ok()) {
        EXPECT_GE(rows->size(), 50u);
      }
      queries++;
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) AddJob("bob", "/data/b", "gru", 0, {TaskKind::kAggregate}, i);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (queries.load() < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;
  reader.join();
  EXPECT_EQ(Query({}).size(), 100u);
  EXPECT_LT(ms, 5000) << "50 transactions beside a query loop";
}

TEST(ResultQueryMemoryTest, MemoryStoreIsQueryableThroughItsPath) {
  std::string path;
  {
    auto s = Store::Open(":memory:");
    ASSERT_TRUE(s.ok()) << s.status().message();
    path = (*s)->path();
    EXPECT_NE(path, ":memory:");
    JobRecord j;
    j.user = "alice";
    j.experiment = testing::MakeExperiment();
    TaskRecord t;
    ASSERT_TRUE((*s)->Transaction([&] {
      if (Status e = (*s)->InsertJob(&j); !e.ok()) return e;
      t.job_id = j.id;
      t.kind = TaskKind::kAggregate;
      if (Status e = (*s)->InsertTask(&t); !e.ok()) return e;
      ResultRecord r;
      r.task_id = t.id;
      r.job_id = j.id;
      r.kind = TaskKind::kAggregate;
      return (*s)->InsertResult(r);
    }).ok());
    auto q = ResultQuery::Open(path);
    ASSERT_TRUE(q.ok()) << q.status().message();
    auto rows = (*q)->Query({});
    ASSERT_TRUE(rows.ok()) << rows.status().message();
    EXPECT_EQ(rows->size(), 1u);
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "the temporary database outlived its store";
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path + "-lock"));
}

TEST(ResultQueryOpenTest, MissingDatabaseIsAnErrorNamingIt) {
  TempDir dir;
  auto q = ResultQuery::Open(dir.File("absent.db"));
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("absent.db"), std::string::npos) << q.status().message();
}

}  // namespace
}  // namespace cadenza::coord
