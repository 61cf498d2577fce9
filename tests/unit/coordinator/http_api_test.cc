// HttpApi without sockets: authentication, every endpoint's JSON, pagination, errors, and the Prometheus text
// (checked by promtool when it is installed).
#include "coordinator/http_api.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "coordinator/store.h"
#include "tests/unit/coordinator/test_util.h"

namespace cadenza::coord {
namespace {

using nlohmann::json;
using testing::TempDir;

constexpr char kToken[] = "Bearer alice-token-123";

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(dir_.File("c.db"));
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(s).value();
    auto q = ResultQuery::Open(store_->path(), /*cache_rows=*/1000);  // as the coordinator opens it
    ASSERT_TRUE(q.ok()) << q.status().message();
    reads_ = std::move(q).value();
    store_->SetJobWriteObserver([q = reads_.get()](int64_t job_id) { q->NoteJobWritten(job_id); });
    auto auth = TokenAuth::Parse("alice-token-123 alice\nrank-token-456 cluster worker\nroot-token-789 root admin\n", "tokens.txt");
    ASSERT_TRUE(auth.ok());
    auth_ = std::make_unique<TokenAuth>(std::move(auth).value());
    MakeApi(false);
    // Sweep 5: two families x two seeds, finished; and one run still training.
    for (const std::string family : {"transformer", "lstm"}) {
      for (int seed = 1; seed <= 2; ++seed) {
        AddJob(5, family, seed, JobState::kSucceeded, family == "lstm" ? 0.8 + 0.1 * seed : 1.1 + 0.02 * seed);
      }
    }
    AddJob(5, "lstm", 3, JobState::kRunning, 0);
  }

  void MakeApi(bool public_metrics) {
    HttpApiOptions o;
    o.public_metrics = public_metrics;
    o.source = "the coordinator at test";
    o.max_page = 50;
    HttpApi::Live live;
    live.task_counts = [this] { return reads_->TaskCounts().value(); };  // the database's counts (no scheduler here)
    live.workers = [] { return std::make_pair(1, 2); };
    api_ = std::make_unique<HttpApi>(auth_.get(), reads_.get(), &metrics_, live, o);
  }

  // A job with a train task; a finished one has its result (val/test NLL) and a metrics.csv.
  int64_t AddJob(int64_t sweep, const std::string& family, int seed, JobState state, double nll) {
    JobRecord j;
    j.user = "alice";
    j.sweep_id = sweep;
    j.state = state;
    j.experiment = testing::MakeExperiment();
    j.experiment.model_family = family;
    j.experiment.seed = seed;
    j.experiment.name = family + "-s" + std::to_string(seed);
    j.experiment.axes = {{"model", family}, {"dataset_fraction", "1"}, {"seed", std::to_string(seed)}};
    j.experiment.parameters = 1000;
    Status st = store_->Transaction([&] {
      if (Status e = store_->InsertJob(&j); !e.ok()) return e;
      TaskRecord t;
      t.job_id = j.id;
      t.kind = TaskKind::kTrain;
      t.state = state == JobState::kSucceeded ? TaskState::kSucceeded : TaskState::kLeased;
      t.fraction = state == JobState::kSucceeded ? 1.0 : 0.25;
      if (Status e = store_->InsertTask(&t); !e.ok()) return e;
      if (state != JobState::kSucceeded) return Status::Ok();
      const std::string run = dir_.File("run-" + std::to_string(j.id));
      std::filesystem::create_directories(run);
      const std::string csv = run + "/metrics.csv";
      std::ofstream(csv) << "step,tag,value\n10,train/loss,2.5\n10,val/nll_per_token," << nll + 0.3 << "\n20,train/loss,2\n20,val/nll_per_token,"
                         << nll << "\n";
      // One result per kind; the train task exists already, the others are added beside it.
      auto add_result = [&](TaskKind kind, std::map<std::string, double> metrics, std::vector<std::string> artifacts) -> Status {
        TaskRecord task = t;
        if (kind != TaskKind::kTrain) {
          task.id = 0;
          task.kind = kind;
          if (Status e = store_->InsertTask(&task); !e.ok()) return e;
        }
        ResultRecord r;
        r.task_id = task.id;
        r.attempt = 1;
        r.job_id = j.id;
        r.kind = kind;
        r.metrics = std::move(metrics);
        r.artifacts = std::move(artifacts);
        r.recorded_ms = 99;
        return store_->InsertResult(r);
      };
      if (Status e = add_result(TaskKind::kTrain, {{"val_nll", nll}, {"data/train_tokens", 5000}}, {csv}); !e.ok()) return e;
      if (Status e = add_result(TaskKind::kScore, {{"test/nll_per_token", nll + 0.05}, {"val/nll_per_token", nll}}, {}); !e.ok()) return e;
      std::ofstream(run + "/result.json") << "{}";
      std::ofstream(run + "/sample-000.png") << "\x89PNG fake " << family << seed;
      return add_result(TaskKind::kAggregate, {{"pieces", 4}}, {run + "/result.json", run + "/sample-000.png"});
    });
    EXPECT_TRUE(st.ok()) << st.message();
    return j.id;
  }

  HttpResponse Get(const std::string& path, std::multimap<std::string, std::string> query = {}, const std::string& auth = kToken) {
    HttpRequest r;
    r.path = path;
    r.query = std::move(query);
    r.authorization = auth;
    return api_->Handle(r);
  }
  json GetJson(const std::string& path, std::multimap<std::string, std::string> query = {}, int status = 200) {
    HttpResponse r = Get(path, std::move(query));
    EXPECT_EQ(r.status, status) << path << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    return json::parse(r.body);
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ResultQuery> reads_;
  std::unique_ptr<TokenAuth> auth_;
  CoordinatorMetrics metrics_;
  std::unique_ptr<HttpApi> api_;
};

TEST_F(HttpApiTest, EveryReadNeedsAValidBearerToken) {
  for (const std::string path : {"/api/v1/sweeps", "/api/v1/jobs", "/api/v1/sweeps/5/cells", "/metrics", "/healthz"}) {
    for (const std::string auth : {"", "Bearer wrong-token-99", "alice-token-123", "Basic YWxpY2U6eA=="}) {
      HttpResponse r = Get(path, {}, auth);
      EXPECT_EQ(r.status, 401) << path << " with '" << auth << "'";
      EXPECT_EQ(json::parse(r.body)["error"]["code"], 401);
      EXPECT_EQ(r.headers["WWW-Authenticate"], "Bearer realm=\"cadenza\"");
    }
  }
  // The page itself holds no data: it is served to anyone and asks for the token.
  HttpResponse page = Get("/", {}, "");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("data-live=\"1\""), std::string::npos);
}

// Reads are for user and admin tokens; a worker token (a worker group's) gets 403 naming the role it would need.
TEST_F(HttpApiTest, AWorkerTokenCannotRead) {
  for (const std::string path : {"/api/v1/sweeps", "/api/v1/jobs", "/api/v1/results", "/metrics", "/healthz"}) {
    HttpResponse r = Get(path, {}, "Bearer rank-token-456");
    EXPECT_EQ(r.status, 403) << path;
    EXPECT_EQ(json::parse(r.body)["error"]["message"],
              "GET " + path + " needs a user or admin token; this token (user 'cluster') has role worker");
    EXPECT_EQ(Get(path, {}, "Bearer root-token-789").status, 200) << path;
    EXPECT_EQ(Get(path).status, 200) << path;  // alice's two-column line: role user
  }
}

TEST_F(HttpApiTest, PublicMetricsOpensMetricsAndHealthAlone) {
  MakeApi(true);
  EXPECT_EQ(Get("/metrics", {}, "").status, 200);
  EXPECT_EQ(Get("/healthz", {}, "").status, 200);
  EXPECT_EQ(Get("/api/v1/sweeps", {}, "").status, 401);
  EXPECT_EQ(Get("/api/v1/jobs", {}, "").status, 401);
}

TEST_F(HttpApiTest, WritesAndUnknownPathsAreRefusedAsJson) {
  HttpRequest post;
  post.method = "POST";
  post.path = "/api/v1/jobs";
  post.authorization = kToken;
  HttpResponse r = api_->Handle(post);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["Allow"], "GET, HEAD");
  EXPECT_EQ(json::parse(r.body)["error"]["code"], 405);
  for (const std::string path : {"/api/v1/nope", "/api/v1/sweeps/abc/cells", "/api/v1/sweeps/5/nope", "/api/v2/jobs", "/api/v1/jobs/0"}) {
    HttpResponse n = Get(path);
    EXPECT_EQ(n.status, 404) << path;
    EXPECT_NE(json::parse(n.body)["error"]["message"].get<std::string>().find(path), std::string::npos) << n.body;
  }
}

TEST_F(HttpApiTest, SweepsCountTheirJobsByState) {
  const json s = GetJson("/api/v1/sweeps");
  ASSERT_EQ(s["sweeps"].size(), 1u);
  EXPECT_EQ(s["sweeps"][0]["id"], 5);
  EXPECT_EQ(s["sweeps"][0]["user"], "alice");
  EXPECT_EQ(s["sweeps"][0]["jobs"], 5);
  EXPECT_EQ(s["sweeps"][0]["jobs_by_state"]["succeeded"], 4);
  EXPECT_EQ(s["sweeps"][0]["jobs_by_state"]["running"], 1);
  EXPECT_EQ(GetJson("/api/v1/sweeps", {{"user", "bob"}})["sweeps"].size(), 0u);
}

TEST_F(HttpApiTest, CellsAggregateTheSeedsOfEachCell) {
  const json cells = GetJson("/api/v1/sweeps/5/cells");
  ASSERT_EQ(cells.size(), 2u) << cells.dump(1);
  for (const json& c : cells) {
    EXPECT_EQ(c["n"], 2);
    EXPECT_EQ(c["train_tokens"], 5000);
    const double expect = c["model_family"] == "lstm" ? 0.95 : 1.13;
    EXPECT_NEAR(c["val/nll_per_token_mean"].get<double>(), expect, 1e-9) << c.dump();
    EXPECT_NEAR(c["test/nll_per_token_mean"].get<double>(), expect + 0.05, 1e-9);
    EXPECT_EQ(c["test/nll_per_token_n"], 2);
    EXPECT_GT(c["val/nll_per_token_ci95"].get<double>(), 0);
  }
  EXPECT_EQ(Get("/api/v1/sweeps/77/cells").status, 404);
  EXPECT_EQ(Get("/api/v1/sweeps/5/cells", {{"x", "1"}}).status, 400);
}

TEST_F(HttpApiTest, ReportHasTheFiguresTheCurvesAndNamesUnfinishedRuns) {
  const json r = GetJson("/api/v1/sweeps/5/report");
  EXPECT_EQ(r["cells"], GetJson("/api/v1/sweeps/5/cells")) << "the page draws exactly the cell table";
  ASSERT_EQ(r["notes"].size(), 1u) << r["notes"].dump();
  EXPECT_NE(r["notes"][0].get<std::string>().find("1 of 5 runs have no result yet"), std::string::npos);
  EXPECT_NE(r["notes"][0].get<std::string>().find("lstm-s3 (running)"), std::string::npos);
  bool quality = false, curve = false;
  for (const json& f : r["figures"]) {
    for (const char* k : {"id", "title", "xlabel", "ylabel", "logx", "series", "missing"}) EXPECT_TRUE(f.contains(k)) << k;
    if (f["id"].get<std::string>().find("val") != std::string::npos && f["id"].get<std::string>().rfind("quality", 0) == 0) quality = true;
    if (f["id"].get<std::string>().rfind("curve-", 0) == 0) {
      curve = true;
      ASSERT_FALSE(f["series"].empty());
      EXPECT_EQ(f["series"][0]["x"].size(), 2u) << "steps 10 and 20 of metrics.csv";
    }
  }
  EXPECT_TRUE(quality) << r["figures"].dump(1).substr(0, 2000);
  EXPECT_TRUE(curve);
  EXPECT_EQ(r["files"], false);
}

TEST_F(HttpApiTest, JobsArePagedAndParametersChecked) {
  const json first = GetJson("/api/v1/jobs", {{"limit", "2"}});
  ASSERT_EQ(first["jobs"].size(), 2u);
  EXPECT_EQ(first["next_offset"], 2);
  const json rest = GetJson("/api/v1/jobs", {{"limit", "50"}, {"offset", "2"}});
  ASSERT_EQ(rest["jobs"].size(), 3u);
  EXPECT_TRUE(rest["next_offset"].is_null());
  EXPECT_EQ(rest["jobs"][0]["id"], first["jobs"][1]["id"].get<int64_t>() + 1);
  const json& running = rest["jobs"][2];
  EXPECT_EQ(running["state"], "running");
  EXPECT_DOUBLE_EQ(running["progress"].get<double>(), 0.25);
  EXPECT_EQ(running["tasks"]["leased"], 1);
  EXPECT_EQ(running["axes"]["model"], "lstm");
  for (const auto& [k, v] : std::multimap<std::string, std::string>{{"limit", "0"}, {"limit", "51"}, {"limit", "x"}, {"offset", "-1"}, {"sweep", "1e3"}, {"color", "red"}}) {
    HttpResponse bad = Get("/api/v1/jobs", {{k, v}});
    EXPECT_EQ(bad.status, 400) << k << "=" << v;
    EXPECT_NE(json::parse(bad.body)["error"]["message"].get<std::string>().find(k), std::string::npos) << bad.body;
  }
  const json one = GetJson("/api/v1/jobs/" + std::to_string(running["id"].get<int64_t>()));
  EXPECT_EQ(one, running);
  EXPECT_EQ(Get("/api/v1/jobs/9999").status, 404);
}

TEST_F(HttpApiTest, SeriesComeFromTheRunsMetricsCsv) {
  const json s = GetJson("/api/v1/jobs/1/series", {{"tag", "val/nll_per_token"}});
  ASSERT_EQ(s["series"].size(), 1u);
  EXPECT_EQ(s["series"]["val/nll_per_token"].size(), 2u);
  EXPECT_EQ(s["series"]["val/nll_per_token"][1][0], 20);
  EXPECT_EQ(GetJson("/api/v1/jobs/1/series")["series"].size(), 2u) << "no tag: every series";
  EXPECT_EQ(Get("/api/v1/jobs/1/series", {{"tag", "nope"}}).status, 404);
  EXPECT_EQ(Get("/api/v1/jobs/5/series").status, 404) << "a run without a finished training";
}

TEST_F(HttpApiTest, ResultsFilterByKindAndPage) {
  const json all = GetJson("/api/v1/results", {{"sweep", "5"}});
  EXPECT_EQ(all["results"].size(), 12u) << "train, score and aggregate of 4 runs";
  const json scores = GetJson("/api/v1/results", {{"kind", "score"}, {"limit", "3"}});
  ASSERT_EQ(scores["results"].size(), 3u);
  EXPECT_EQ(scores["next_offset"], 3);
  EXPECT_EQ(scores["results"][0]["kind"], "score");
  EXPECT_TRUE(scores["results"][0]["metrics"].contains("test/nll_per_token"));
  EXPECT_EQ(GetJson("/api/v1/results", {{"kind", "probe"}})["results"].size(), 0u);
  EXPECT_EQ(Get("/api/v1/results", {{"kind", "bogus"}}).status, 400);
}

TEST_F(HttpApiTest, MetricsAreValidPrometheusText) {
  metrics_.ObserveLease(0.0003);
  metrics_.ObserveLease(0.02);
  metrics_.ObserveLease(3.0);
  metrics_.CountResult(TaskKind::kTrain);
  metrics_.SetTrainingSpeed(5, 12345.5);
  ASSERT_EQ(Get("/api/v1/results", {{"kind", "score"}}).status, 200);
  ASSERT_EQ(Get("/api/v1/results", {{"kind", "score"}}).status, 200);  // the same page again: kept
  HttpResponse r = Get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  const std::string& t = r.body;
  EXPECT_NE(t.find("cadenza_tasks{kind=\"train\",state=\"succeeded\"} 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("cadenza_tasks{kind=\"train\",state=\"leased\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_leased_tasks 1\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_worker_groups 1\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_worker_ranks 2\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_lease_latency_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_lease_latency_seconds_bucket{le=\"0.025\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_lease_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_lease_latency_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_results_total{kind=\"train\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_training_tokens_per_second{job=\"5\"} 12345.5\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_result_cache_hits_total 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("cadenza_result_cache_misses_total 1\n"), std::string::npos);
  EXPECT_NE(t.find("cadenza_result_cache_rows "), std::string::npos);
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  const std::string file = dir_.File("metrics.txt");
  std::ofstream(file) << t;
  const std::string cmd = "promtool check metrics < " + file + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[256];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  const int rc = p ? pclose(p) : -1;
  EXPECT_EQ(rc, 0) << "promtool: " << out;
}

// The live page shows a sample heatmap per model, read through /api/v1/artifact: PNGs a result lists, nothing else.
TEST_F(HttpApiTest, HeatmapsAreServedFromTheResultsArtifactsOnly) {
  const json r = GetJson("/api/v1/sweeps/5/report");
  ASSERT_EQ(r["images"].size(), 2u) << r["images"].dump();
  for (const json& im : r["images"]) {
    const std::string file = im["file"];
    ASSERT_EQ(file.rfind("/api/v1/artifact?task=", 0), 0u) << file;
    const size_t amp = file.find("&index=");
    HttpResponse png = Get("/api/v1/artifact", {{"task", file.substr(22, amp - 22)}, {"index", file.substr(amp + 7)}});
    EXPECT_EQ(png.status, 200) << png.body;
    EXPECT_EQ(png.content_type, "image/png");
    EXPECT_EQ(png.body.rfind("\x89PNG fake ", 0), 0u);
    EXPECT_NE(png.body.find(im["title"].get<std::string>().substr(0, im["title"].get<std::string>().find(':')) + "1"), std::string::npos)
        << "seed 1 of the model's largest fraction: " << png.body;
    HttpResponse json_file = Get("/api/v1/artifact", {{"task", file.substr(22, amp - 22)}, {"index", "0"}});
    EXPECT_EQ(json_file.status, 404) << "result.json is not a picture";
  }
  EXPECT_EQ(Get("/api/v1/artifact", {{"task", "99999"}, {"index", "1"}}).status, 404);
  EXPECT_EQ(Get("/api/v1/artifact", {{"task", "1"}, {"index", "x"}}).status, 400);
  EXPECT_EQ(Get("/api/v1/artifact", {{"path", "/etc/passwd"}}).status, 400);
  EXPECT_EQ(Get("/api/v1/artifact", {{"task", "3"}, {"index", "1"}}, "").status, 401);
}

TEST_F(HttpApiTest, HealthSaysOk) {
  EXPECT_EQ(GetJson("/healthz")["status"], "ok");
}

}  // namespace
}  // namespace cadenza::coord
