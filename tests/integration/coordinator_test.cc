// The coordinator over gRPC on 127.0.0.1: authentication, permissions, field-naming validation, message limits,
// TLS, a fake worker group running an experiment to its result, and SIGKILL of a `cadenza coordinator` mid-run.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "coordinator/client.h"
#include "coordinator/server.h"
#include "tests/support/loopback_coordinator.h"

namespace cadenza::coord {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using loopback::Client;
using loopback::Dir;
using loopback::RegisterGroup;

const char* kAlice = "alice-token-0001";   // role user (the old two-column line)
const char* kBob = "bob-token-0002";       // role user
const char* kWorker = "worker-token-0003"; // role worker: the fake worker groups

std::string ExperimentYaml(const std::string& family = "lstm") {
  return "name: e2e\ndataset: /data/ds\nout: /runs/e2e\n"
         "model: {family: " + family + ", d_model: 32, layers: 1, hidden: 32}\ntrain: {seq_len: 32, steps: 5, seed: 3}\n";
}

CoordinatorConfig TestConfig(const Dir& dir) {
  CoordinatorConfig c;
  c.listen = "127.0.0.1:0";
  c.database = dir.File("coordinator.db");
  c.tokens_file = dir.Write("tokens.txt", std::string(kAlice) + " alice\n" + kBob + " bob user\n" + kWorker + " cluster worker\n");
  c.heartbeat.period_ms = 50;
  c.heartbeat.failure_threshold = 3;
  c.heartbeat.grace_ms = 50;
  c.heartbeat.reaper_interval_ms = 20;
  c.scheduler.lease_ms = 2000;
  c.idle_poll_ms = 10;
  c.max_receive_message_bytes = 64 * 1024;
  return c;
}

// A worker rank as a plain gRPC client: leases, completes with a metric, retries reports while the coordinator is
// away (UNAVAILABLE), stops when `stop` is set. Counts what it completed.
struct FakeRank {
  CoordinatorClient* client;
  v1::WorkerRef ref;
  std::atomic<bool>* stop;
  int completed = 0;
  int duplicates = 0;

  void Run() {
    while (!stop->load()) {
      v1::HeartbeatRequest hb;
      *hb.mutable_worker() = ref;
      v1::HeartbeatResponse hr;
      (void)client->Heartbeat(hb, &hr);
      v1::LeaseTaskRequest lr;
      *lr.mutable_worker() = ref;
      v1::LeaseTaskResponse resp;
      Status s = client->LeaseTask(lr, &resp);
      if (!s.ok() || !resp.leased()) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      const v1::Task& t = resp.task();
      v1::ReportProgressRequest pr;
      *pr.mutable_worker() = ref;
      pr.mutable_task()->set_task_id(t.task_id());
      pr.mutable_task()->set_attempt(t.attempt());
      pr.set_fraction(0.5);
      v1::ReportProgressResponse presp;
      (void)client->ReportProgress(pr, &presp);
      v1::CompleteTaskRequest cr;
      *cr.mutable_worker() = ref;
      *cr.mutable_task() = pr.task();
      (*cr.mutable_result()->mutable_metrics())["score"] = static_cast<double>(t.kind()) + 0.5;
      (*cr.mutable_result()->mutable_metrics())["shard"] = t.shard_index();
      cr.mutable_result()->add_artifacts(t.output_dir() + "/" + std::to_string(t.task_id()));
      while (true) {  // the report must arrive: retry the same (task, attempt) until answered
        v1::CompleteTaskResponse ack;
        Status c = client->CompleteTask(cr, &ack);
        if (c.code() == StatusCode::kUnavailable || c.code() == StatusCode::kDeadlineExceeded) {
          std::this_thread::sleep_for(20ms);
          continue;
        }
        if (c.ok()) {
          ++completed;
          if (ack.duplicate()) ++duplicates;
        }
        break;
      }
    }
  }
};

class CoordinatorGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = CoordinatorServer::Start(TestConfig(dir_));
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(s).value();
    target_ = "127.0.0.1:" + std::to_string(server_->port());
    alice_ = Client(target_, kAlice);
    bob_ = Client(target_, kBob);
    worker_ = Client(target_, kWorker);
    ASSERT_TRUE(alice_->WaitHealthy(5000).ok());
  }
  int64_t Submit(CoordinatorClient* c, const std::string& yaml, int samples = 4, Status* status = nullptr) {
    v1::SubmitExperimentRequest req;
    req.mutable_experiment()->set_experiment_yaml(yaml);
    req.mutable_experiment()->set_samples(samples);
    v1::SubmitResponse resp;
    Status s = c->SubmitExperiment(req, &resp);
    if (status) *status = s;
    else EXPECT_TRUE(s.ok()) << s.message();
    return resp.job_ids_size() ? resp.job_ids(0) : 0;
  }

  Dir dir_;
  std::unique_ptr<CoordinatorServer> server_;
  std::string target_;
  std::unique_ptr<CoordinatorClient> alice_, bob_, worker_;
};

TEST_F(CoordinatorGrpcTest, RefusesCallsWithoutAValidToken) {
  for (const std::string token : {"", "not-a-known-token"}) {
    auto anon = Client(target_, token);
    v1::ListJobsResponse jobs;
    Status s = anon->ListJobs({}, &jobs);
    EXPECT_EQ(s.code(), StatusCode::kUnauthenticated) << s.message();
    v1::LeaseTaskResponse lease;
    EXPECT_EQ(anon->LeaseTask({}, &lease).code(), StatusCode::kUnauthenticated);
    v1::SubmitResponse sub;
    v1::SubmitExperimentRequest req;
    req.mutable_experiment()->set_experiment_yaml(ExperimentYaml());
    EXPECT_EQ(anon->SubmitExperiment(req, &sub).code(), StatusCode::kUnauthenticated);
    v1::QueryResultsResponse rows;  // the raw callback method checks the token as the others do
    EXPECT_EQ(anon->QueryResults({}, &rows).code(), StatusCode::kUnauthenticated);
  }
}

TEST_F(CoordinatorGrpcTest, MalformedSpecNamesTheField) {
  Status s;
  Submit(alice_.get(), ExperimentYaml("mamba"), 4, &s);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("experiment.model.family: expected transformer, lstm or gru", 0), 0u) << s.message();
  Submit(alice_.get(), ExperimentYaml(), 0 - 5, &s);
  EXPECT_EQ(s.message().rfind("experiment.samples:", 0), 0u) << s.message();
  v1::SubmitSweepRequest sweep;
  sweep.mutable_sweep()->mutable_base()->set_experiment_yaml(ExperimentYaml());
  sweep.mutable_sweep()->add_model_families("transformer");
  sweep.mutable_sweep()->add_model_families("cnn");
  v1::SubmitResponse resp;
  s = alice_->SubmitSweep(sweep, &resp);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("sweep.model_families[1]:", 0), 0u) << s.message();
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(alice_->ListJobs({}, &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);  // nothing half-submitted
}

TEST_F(CoordinatorGrpcTest, RequestsAboveTheSizeLimitAreRefused) {
  Status s;
  Submit(alice_.get(), ExperimentYaml() + "# " + std::string(100 * 1024, 'x') + "\n", 4, &s);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("larger than max"), std::string::npos) << s.message();
}

TEST_F(CoordinatorGrpcTest, OnlyTheSubmitterCancels) {
  const int64_t job = Submit(alice_.get(), ExperimentYaml());
  v1::CancelJobResponse resp;
  Status s = bob_->CancelJob(job, &resp);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.message();
  EXPECT_EQ(bob_->CancelJob(job + 1000, &resp).code(), StatusCode::kNotFound);
  ASSERT_TRUE(alice_->CancelJob(job, &resp).ok());
  EXPECT_EQ(resp.state(), v1::JOB_STATE_CANCELLED);
  v1::Job j;
  ASSERT_TRUE(bob_->GetJob(job, &j).ok());  // everyone may look
  EXPECT_EQ(j.state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(CoordinatorGrpcTest, FakeWorkerGroupRunsAnExperimentToItsResult) {
  const int64_t job = Submit(alice_.get(), ExperimentYaml(), 5);
  const int64_t group = RegisterGroup(worker_.get(), 2);
  std::vector<v1::Job> seen;
  std::thread watcher([&] {
    auto c = Client(target_, kBob);
    Status s = c->WatchJob(job, [&](const v1::Job& j) {
      seen.push_back(j);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.message();
  });
  std::atomic<bool> stop{false};
  std::vector<FakeRank> ranks;
  for (int r = 0; r < 2; ++r) {
    v1::WorkerRef ref;
    ref.set_group_id(group);
    ref.set_rank(r);
    ranks.push_back({worker_.get(), ref, &stop});
  }
  std::thread t0([&] { ranks[0].Run(); }), t1([&] { ranks[1].Run(); });
  watcher.join();  // the stream ends when the job finishes
  stop = true;
  t0.join();
  t1.join();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_DOUBLE_EQ(seen.back().progress(), 1.0);
  v1::Job j;
  ASSERT_TRUE(alice_->GetJob(job, &j).ok());
  EXPECT_EQ(j.counts().succeeded(), 7);  // train, 2 generate (2 live ranks), 2 evaluate, aggregate, score
  EXPECT_EQ(ranks[0].completed + ranks[1].completed, 7);
  v1::QueryResultsRequest q;
  q.set_job_id(job);
  v1::QueryResultsResponse rows;
  ASSERT_TRUE(bob_->QueryResults(q, &rows).ok());
  ASSERT_EQ(rows.rows_size(), 1);
  EXPECT_EQ(rows.rows(0).kind(), v1::TASK_KIND_AGGREGATE);
  EXPECT_DOUBLE_EQ(rows.rows(0).metrics().at("score"), 4.5);
  EXPECT_EQ(rows.rows(0).model_family(), "lstm");
  q.set_kind(v1::TASK_KIND_GENERATE);
  ASSERT_TRUE(bob_->QueryResults(q, &rows).ok());
  EXPECT_EQ(rows.rows_size(), 2);
  // Asked again, the page comes from the kept one; compact and expanded, the same page.
  v1::QueryResultsResponse again, compact;
  ASSERT_TRUE(alice_->QueryResults(q, &again).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(again, rows)) << again.ShortDebugString();
  q.set_compact(true);
  ASSERT_TRUE(bob_->QueryResults(q, &compact).ok());
  EXPECT_EQ(compact.jobs_size(), 1);
  ExpandCompactResults(&compact);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(compact, rows)) << compact.ShortDebugString();
  q.set_compact(false);
  v1::AggregateResultsRequest agg;
  *agg.mutable_filter() = q;
  agg.add_group_by("model_family");
  v1::AggregateResultsResponse ar;
  ASSERT_TRUE(bob_->AggregateResults(agg, &ar).ok());
  ASSERT_EQ(ar.rows_size(), 1);
  EXPECT_EQ(ar.rows(0).count(), 2);
  EXPECT_EQ(ar.rows(0).group().at("model_family"), "lstm");
  agg.set_group_by(0, "colour");
  EXPECT_EQ(bob_->AggregateResults(agg, &ar).code(), StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorGrpcTest, SilentRankLosesItsLeaseWithinTheDetectionTime) {
  Submit(alice_.get(), ExperimentYaml());
  const int64_t g1 = RegisterGroup(worker_.get(), 1);
  v1::LeaseTaskRequest lr;
  lr.mutable_worker()->set_group_id(g1);
  v1::LeaseTaskResponse first;
  ASSERT_TRUE(worker_->LeaseTask(lr, &first).ok());
  ASSERT_TRUE(first.leased());
  const int64_t g2 = RegisterGroup(worker_.get(), 1);  // this one keeps heartbeating; g1 falls silent
  lr.mutable_worker()->set_group_id(g2);
  const auto t0 = std::chrono::steady_clock::now();
  v1::LeaseTaskResponse second;
  while (std::chrono::steady_clock::now() - t0 < 5s) {
    ASSERT_TRUE(worker_->LeaseTask(lr, &second).ok());
    if (second.leased()) break;
    std::this_thread::sleep_for(10ms);
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(second.leased());
  EXPECT_EQ(second.task().task_id(), first.task().task_id());
  EXPECT_EQ(second.task().attempt(), 2);
  EXPECT_TRUE(second.task().resume());
  const CoordinatorConfig c = TestConfig(dir_);
  EXPECT_LE(waited, c.heartbeat.WorstCaseDetectionMs() + 200) << "detection took " << waited << " ms";
}

// A self-signed certificate for localhost and 127.0.0.1 (PLATFORM.md); false without openssl.
bool MakeSelfSignedCertificate(const std::string& cert, const std::string& key) {
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout " + key + " -out " + cert +
                          " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

TEST(CoordinatorTlsTest, ServesOverTlsWithTheConfiguredCertificate) {
  Dir dir;
  const std::string cert = dir.File("cert.pem"), key = dir.File("key.pem");
  if (!MakeSelfSignedCertificate(cert, key)) GTEST_SKIP() << "no openssl to make a certificate";
  CoordinatorConfig c = TestConfig(dir);
  c.tls_cert = cert;
  c.tls_key = key;
  auto server = CoordinatorServer::Start(c);
  ASSERT_TRUE(server.ok()) << server.status().message();
  const std::string target = "127.0.0.1:" + std::to_string((*server)->port());
  std::stringstream pem;
  pem << std::ifstream(cert).rdbuf();
  ClientOptions o;
  o.target = target;
  o.token = kAlice;
  o.tls_root_cert_pem = pem.str();
  o.deadline_ms = 5000;
  auto tls = CoordinatorClient::Connect(o);
  v1::ListJobsResponse jobs;
  Status s = tls->ListJobs({}, &jobs);
  EXPECT_TRUE(s.ok()) << s.message();
  o.token = "wrong-token-123";
  EXPECT_EQ(CoordinatorClient::Connect(o)->ListJobs({}, &jobs).code(), StatusCode::kUnauthenticated);
  auto plain = Client(target, kAlice);
  EXPECT_EQ(plain->ListJobs({}, &jobs).code(), StatusCode::kUnavailable);
}

// ---- HTTP: the read-only API beside gRPC (docs/dashboard.md) ----

TEST(CoordinatorHttpTest, ServesTheApiWithTheSameTokensAndRefusesAPortInUse) {
  Dir dir;
  CoordinatorConfig c = TestConfig(dir);  // listen port 0: http "auto" picks a free port too
  auto server = CoordinatorServer::Start(c);
  ASSERT_TRUE(server.ok()) << server.status().message();
  const int port = (*server)->http_port();
  ASSERT_GT(port, 0);
  httplib::Client http("127.0.0.1", port);
  auto healthz = http.Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 401) << "no token";
  httplib::Headers auth = {{"Authorization", std::string("Bearer ") + kAlice}};
  healthz = http.Get("/healthz", auth);
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  EXPECT_EQ(healthz->body, R"({"status":"ok"})");
  auto jobs = http.Get("/api/v1/jobs?limit=abc", auth);
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->status, 400);
  EXPECT_EQ(jobs->get_header_value("Content-Type"), "application/json");
  auto post = http.Post("/api/v1/jobs", auth, "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  auto page = http.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("uPlot"), std::string::npos);

  // A second coordinator on the same ports must fail, naming the port, not share it (SO_REUSEPORT).
  Dir other;
  CoordinatorConfig second = TestConfig(other);
  second.listen = "127.0.0.1:" + std::to_string((*server)->port());
  second.http_listen = "off";
  auto refused = CoordinatorServer::Start(second);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(second.listen), std::string::npos) << refused.status().message();
  second.listen = "127.0.0.1:0";
  second.http_listen = "127.0.0.1:" + std::to_string(port);
  refused = CoordinatorServer::Start(second);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("http.listen 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << refused.status().message();
}

TEST(CoordinatorHttpTest, ServesHttpsWithTheGrpcCertificate) {
  Dir dir;
  const std::string cert = dir.File("cert.pem"), key = dir.File("key.pem");
  if (!MakeSelfSignedCertificate(cert, key)) GTEST_SKIP() << "no openssl to make a certificate";
  CoordinatorConfig c = TestConfig(dir);
  c.tls_cert = cert;
  c.tls_key = key;
  auto server = CoordinatorServer::Start(c);
  ASSERT_TRUE(server.ok()) << server.status().message();
  httplib::SSLClient https("127.0.0.1", (*server)->http_port());
  https.set_ca_cert_path(cert.c_str());
  https.enable_server_certificate_verification(true);
  auto r = https.Get("/healthz", {{"Authorization", std::string("Bearer ") + kAlice}});
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  httplib::Client plain("127.0.0.1", (*server)->http_port());
  auto p = plain.Get("/healthz");
  EXPECT_TRUE(!p || p->status != 200) << "plain HTTP to a TLS listener gets nothing";
}

// A worker rank that completes every task it leases until `until()` holds: a train task with a metrics.csv (the
// curves) and the validation NLL of its seed; the others with nothing.
void CompleteUntil(CoordinatorClient* client, const v1::WorkerRef& ref, const std::function<bool()>& until) {
  for (int idle = 0; !until() && idle < 2000; ) {
    v1::LeaseTaskRequest lr;
    *lr.mutable_worker() = ref;
    v1::LeaseTaskResponse resp;
    if (!client->LeaseTask(lr, &resp).ok() || !resp.leased()) {
      ++idle;
      std::this_thread::sleep_for(5ms);
      continue;
    }
    const v1::Task& t = resp.task();
    v1::CompleteTaskRequest cr;
    *cr.mutable_worker() = ref;
    cr.mutable_task()->set_task_id(t.task_id());
    cr.mutable_task()->set_attempt(t.attempt());
    if (t.kind() == v1::TASK_KIND_TRAIN) {
      const std::string run = t.output_dir();  // a result names files of its own run folder only
      fs::create_directories(run);
      const double nll = 1.0 + 0.1 * static_cast<double>(t.job_id());
      std::ofstream(run + "/metrics.csv") << "step,tag,value\n10,val/nll_per_token," << nll + 0.5 << "\n20,val/nll_per_token," << nll << "\n";
      (*cr.mutable_result()->mutable_metrics())["val/nll_per_token"] = nll;
      cr.mutable_result()->add_artifacts(run + "/metrics.csv");
    }
    v1::CompleteTaskResponse ack;
    ASSERT_TRUE(client->CompleteTask(cr, &ack).ok());
  }
}

// Real headless Chromium loads the live page while a sweep runs, draws the API's values, and shows the finished
// sweep without a reload (tests/browser/live_page.cjs).
TEST(CoordinatorHttpTest, LivePageDrawsTheApiValuesAndUpdatesWithoutReload) {
  const std::string node_modules = CADENZA_SOURCE_DIR "/core/report/web/node_modules";
  if (std::system("command -v node >/dev/null && command -v chromium >/dev/null") != 0 ||
      !fs::exists(node_modules + "/puppeteer-core")) {
    GTEST_SKIP() << "needs node, Debian's chromium and puppeteer-core (scripts/install-deps.sh installs them)";
  }
  Dir dir;
  auto server = CoordinatorServer::Start(TestConfig(dir));
  ASSERT_TRUE(server.ok()) << server.status().message();
  auto client = Client("127.0.0.1:" + std::to_string((*server)->port()), kAlice);
  v1::SubmitSweepRequest sweep;
  std::string yaml = ExperimentYaml();
  yaml.replace(yaml.find("out: /runs/e2e"), 14, "out: " + dir.File("runs"));  // the fake runs write their metrics.csv
  sweep.mutable_sweep()->mutable_base()->set_experiment_yaml(yaml);
  sweep.mutable_sweep()->mutable_base()->set_samples(1);
  for (uint64_t seed = 1; seed <= 3; ++seed) sweep.mutable_sweep()->add_seeds(seed);
  v1::SubmitResponse submitted;
  ASSERT_TRUE(client->SubmitSweep(sweep, &submitted).ok());
  auto worker = Client("127.0.0.1:" + std::to_string((*server)->port()), kWorker);
  v1::WorkerRef ref;
  ref.set_group_id(RegisterGroup(worker.get(), 1));
  ref.set_rank(0);
  auto job_done = [&](int64_t id) {
    v1::Job job;
    return client->GetJob(id, &job).ok() && job.state() == v1::JOB_STATE_SUCCEEDED;
  };
  CompleteUntil(worker.get(), ref, [&] { return job_done(submitted.job_ids(0)); });  // one run of three has a result
  ASSERT_TRUE(job_done(submitted.job_ids(0)));

  const std::string cmd = "node " CADENZA_SOURCE_DIR "/tests/browser/live_page.cjs " + node_modules + " http://127.0.0.1:" +
                          std::to_string((*server)->http_port()) + " " + kAlice + " " + std::to_string(submitted.sweep_id()) + " 90 " +
                          (std::getenv("CADENZA_BROWSER_SCREENSHOT") ? std::getenv("CADENZA_BROWSER_SCREENSHOT") : "") + " 2>&1";
  FILE* browser = popen(cmd.c_str(), "r");
  ASSERT_NE(browser, nullptr);
  std::string out;
  char line[4096];
  if (fgets(line, sizeof line, browser)) out += line;  // "partial ...": drawn, equal to the API, runs unfinished
  ASSERT_EQ(out.rfind("partial", 0), 0u) << out;
  CompleteUntil(worker.get(), ref, [&] {
    for (int64_t id : submitted.job_ids()) if (!job_done(id)) return false;
    return true;
  });
  while (fgets(line, sizeof line, browser)) out += line;
  EXPECT_EQ(pclose(browser), 0) << out;
  EXPECT_NE(out.find("\nok "), std::string::npos) << out;
}

// ---- the command line: cadenza submit / status / cancel / results against a coordinator ----

// Runs `cadenza ARGS` with the coordinator and token in the environment; returns exit code and stdout+stderr.
std::pair<int, std::string> Cli(const std::string& target, const std::string& token, const std::string& args) {
  const std::string cmd = "CADENZA_COORDINATOR=" + target + " CADENZA_TOKEN=" + token + " " + CADENZA_CLI + " " + args + " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_F(CoordinatorGrpcTest, CommandLineSubmitStatusCancelResults) {
  const std::string yaml = dir_.Write("exp.yaml", ExperimentYaml("gru"));
  const std::string sweep = dir_.Write("sweep.yaml", "name: sc\nseeds: [1, 2]\nmodel_families: [lstm, transformer]\nallow_unmatched: true\n");
  // The datasets are opened here first: /data/ds does not exist on this machine.
  auto [rc, out] = Cli(target_, kAlice, "submit " + yaml + " --samples 2");
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("dataset /data/ds: /data/ds: no such dataset folder"), std::string::npos) << out;
  std::tie(rc, out) = Cli(target_, kAlice, "submit " + yaml + " --samples 2 --skip-dataset-check");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "1 job(s): 1\n");
  // The old form's families differ in size: refused with the counts unless allowed.
  const std::string unmatched = dir_.Write("unmatched.yaml", "name: sc\nmodel_families: [lstm, transformer]\n");
  std::tie(rc, out) = Cli(target_, kAlice, "submit " + yaml + " --skip-dataset-check --sweep " + unmatched);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("sweep.models: parameter counts differ by"), std::string::npos) << out;
  std::tie(rc, out) = Cli(target_, kAlice, "submit " + yaml + " --skip-dataset-check --sweep " + sweep);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "sweep 1: 4 job(s): 2 3 4 5\n");
  std::tie(rc, out) = Cli(target_, kBob, "status 1");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("job 1 (e2e, user alice): queued"), std::string::npos) << out;
  EXPECT_NE(out.find("train"), std::string::npos) << out;
  std::tie(rc, out) = Cli(target_, kBob, "status");
  EXPECT_NE(out.find("sc-ds-transformer-s2"), std::string::npos) << out;
  std::tie(rc, out) = Cli(target_, kBob, "cancel 1");
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("only its submitter (or an admin token) may cancel it"), std::string::npos) << out;
  std::tie(rc, out) = Cli(target_, kAlice, "cancel 1");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "job 1: cancelled (1 tasks cancelled)\n");
  std::tie(rc, out) = Cli(target_, "no-such-token-1", "status");
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("unknown token"), std::string::npos) << out;
  std::tie(rc, out) = Cli(target_, kAlice, "results --format csv");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "job,experiment,dataset,family,seed,task,shard\n");
  std::string text = ExperimentYaml("lstm");
  text.replace(text.find("steps: 5"), 8, "steps: 0");
  std::tie(rc, out) = Cli(target_, kAlice, "submit " + dir_.Write("bad.yaml", text) + " --skip-dataset-check");
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("train.steps: expected >= 1"), std::string::npos) << out;
}

// ---- SIGKILL of a real `cadenza coordinator` ----

// Starts `cadenza coordinator` on `config`; returns its pid and the port it printed.
pid_t StartCoordinator(const Dir& dir, const std::string& config, int run, int* port) {
  const std::string log = dir.File("coordinator-" + std::to_string(run) + ".log");
  const pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log.c_str(), "w", stdout)) _exit(127);
    execl(CADENZA_CLI, CADENZA_CLI, "coordinator", "--config", config.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  *port = 0;
  for (int i = 0; i < 500 && *port == 0; ++i) {
    std::this_thread::sleep_for(10ms);
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line)) {
      const size_t at = line.find("listening on 127.0.0.1:");
      if (at != std::string::npos) *port = std::atoi(line.c_str() + at + 23);
    }
  }
  return pid;
}

TEST(CoordinatorKillTest, SigkillMidRunThenRestartFinishesWithOneResultPerTask) {
  Dir dir;
  const CoordinatorConfig c = TestConfig(dir);
  const std::string config = dir.Write(
      "coordinator.yaml", "listen: 127.0.0.1:0\ndatabase: " + c.database + "\ntokens_file: " + c.tokens_file +
                              "\nheartbeat: {period_ms: 200, failure_threshold: 5, grace_ms: 500, reaper_interval_ms: 50}\n"
                              "lease: {duration_ms: 1000, retry_budget: 3, idle_poll_ms: 10}\n");
  int port = 0;
  pid_t pid = StartCoordinator(dir, config, 1, &port);
  ASSERT_GT(port, 0) << "the coordinator did not start (see its log)";
  auto submitter = Client("127.0.0.1:" + std::to_string(port), kAlice);
  v1::SubmitSweepRequest sweep;
  sweep.mutable_sweep()->mutable_base()->set_experiment_yaml(ExperimentYaml());
  sweep.mutable_sweep()->mutable_base()->set_samples(3);
  sweep.mutable_sweep()->mutable_base()->set_samples_per_task(1);
  for (uint64_t seed = 1; seed <= 12; ++seed) sweep.mutable_sweep()->add_seeds(seed);
  v1::SubmitResponse submitted;
  ASSERT_TRUE(submitter->SubmitSweep(sweep, &submitted).ok());
  ASSERT_EQ(submitted.job_ids_size(), 12);  // 12 jobs x (train + 3 generate + 3 evaluate + aggregate + score) = 108 tasks

  auto worker = Client("127.0.0.1:" + std::to_string(port), kWorker);
  const int64_t group = RegisterGroup(worker.get(), 3);
  std::atomic<bool> stop{false};
  std::vector<FakeRank> ranks;
  for (int r = 0; r < 3; ++r) {
    v1::WorkerRef ref;
    ref.set_group_id(group);
    ref.set_rank(r);
    ranks.push_back({worker.get(), ref, &stop});
  }
  std::vector<std::thread> threads;
  for (auto& r : ranks) threads.emplace_back([&r] { r.Run(); });
  // Kill it mid-run: after some results, while the ranks keep leasing and completing.
  v1::QueryResultsRequest q;
  q.set_kind(v1::TASK_KIND_GENERATE);
  for (int i = 0; i < 1000; ++i) {
    v1::QueryResultsResponse rows;
    if (submitter->QueryResults(q, &rows).ok() && rows.rows_size() >= 10) break;
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  std::this_thread::sleep_for(100ms);
  // The restarted coordinator listens on the same port: the workers keep their address.
  std::stringstream text;
  text << std::ifstream(config).rdbuf();
  std::string yaml = text.str();
  yaml.replace(yaml.find("127.0.0.1:0"), 11, "127.0.0.1:" + std::to_string(port));
  const std::string config2 = dir.Write("coordinator2.yaml", yaml);
  int port2 = 0;
  pid = StartCoordinator(dir, config2, 2, &port2);
  ASSERT_EQ(port2, port);
  // Every job finishes.
  bool all_done = false;
  for (int i = 0; i < 2000 && !all_done; ++i) {
    v1::ListJobsRequest lr;
    lr.set_active_only(true);
    v1::ListJobsResponse active;
    all_done = submitter->ListJobs(lr, &active).ok() && active.jobs_size() == 0;
    if (!all_done) std::this_thread::sleep_for(10ms);
  }
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(all_done) << "jobs still active after the restart";
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(submitter->ListJobs({}, &jobs).ok());
  ASSERT_EQ(jobs.jobs_size(), 12);
  int tasks = 0;
  for (const v1::Job& j : jobs.jobs()) {
    EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.job_id() << ": " << j.error();
    tasks += j.counts().succeeded();
  }
  EXPECT_EQ(tasks, 108);  // 12 jobs x (train, 3 generate, 3 evaluate, aggregate, score)
  // Exactly one result per task, over every kind.
  std::set<int64_t> ids;
  int rows_total = 0;
  for (v1::TaskKind k : {v1::TASK_KIND_TRAIN, v1::TASK_KIND_GENERATE, v1::TASK_KIND_EVALUATE, v1::TASK_KIND_AGGREGATE, v1::TASK_KIND_SCORE}) {
    v1::QueryResultsRequest rq;
    rq.set_kind(k);
    v1::QueryResultsResponse rows;
    ASSERT_TRUE(submitter->QueryResults(rq, &rows).ok());
    for (const auto& r : rows.rows()) ids.insert(r.task_id());
    rows_total += rows.rows_size();
  }
  EXPECT_EQ(rows_total, 108);
  EXPECT_EQ(ids.size(), 108u);
  int completed = 0;
  for (const auto& r : ranks) completed += r.completed;
  EXPECT_GE(completed, 108);  // duplicates (a report retried across the restart) were answered, not recorded
  kill(pid, SIGTERM);
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "SIGTERM: clean exit expected";
}

}  // namespace
}  // namespace cadenza::coord
