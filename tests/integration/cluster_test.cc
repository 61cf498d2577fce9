// A real `cadenza coordinator` and `mpirun ... cadenza-worker --coordinator` groups on loopback: an experiment end
// to end, SIGKILL of a worker group during training, SIGTERM hand-back, SIGKILL of the coordinator mid-run.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <array>
#include <functional>
#include <iostream>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/local_cluster.h"
#include "coordinator/client.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* kToken = "cluster-test-token-1";         // alice, role user: submits and reads
const char* kWorkerToken = "cluster-worker-token-2";  // the worker groups' (role worker)

std::string Slurp(const fs::path& p) {
  std::stringstream s;
  s << std::ifstream(p).rdbuf();
  return s.str();
}

std::string Shell(const std::string& cmd, int* exit_code) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// Waits for `pid` up to `timeout`; returns its exit code, 128+signal, or -1 on timeout (then kills its group).
int WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  int status = 0;
  while (Clock::now() < until) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(20ms);
  }
  kill(-pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    suite_ = fs::temp_directory_path() / ("cadenza_cluster_" + std::to_string(::getpid()));
    fs::remove_all(suite_);
    fs::create_directories(suite_);
    int rc = 0;
    std::string out = Shell(std::string(CADENZA_CLI) + " synth --out " + (suite_ / "midi").string() + " --count 30 --seed 4", &rc);
    ASSERT_EQ(rc, 0) << out;
    out = Shell(std::string(CADENZA_CLI) + " ingest " + (suite_ / "midi").string() + " --out " + (suite_ / "ds").string() +
                    " --val 0.2 --test 0.2 --quiet",
                &rc);
    ASSERT_EQ(rc, 0) << out;
  }
  static void TearDownTestSuite() { fs::remove_all(suite_); }

  void SetUp() override {
    dir_ = suite_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
    std::ofstream(dir_ / "tokens.txt") << kToken << " alice\n" << kWorkerToken << " cluster worker\n";  // alice: the old two-column form
    std::ofstream(dir_ / "alice.token") << kToken << "\n";
    std::ofstream(dir_ / "worker.token") << kWorkerToken << "\n";
  }
  void TearDown() override {
    for (pid_t p : children_) {
      kill(-p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    if (HasFailure()) {  // the logs say why
      for (const auto& e : fs::directory_iterator(dir_)) {
        if (e.path().extension() == ".log") std::cerr << "---- " << e.path().filename() << "\n" << Slurp(e.path()) << "\n";
      }
    }
  }

  // Starts `cadenza coordinator` (port 0: a free one; else that port) and waits for its "listening on" line.
  // `more_yaml`: further top-level keys of the coordinator's config.
  pid_t StartCoordinator(int port, const std::string& log_name, const std::string& more_yaml = "") {
    const fs::path config = dir_ / "coordinator.yaml";
    std::ofstream(config) << "listen: 127.0.0.1:" << port << "\ndatabase: " << (dir_ / "coordinator.db").string()
                          << "\ntokens_file: " << (dir_ / "tokens.txt").string()
                          << "\nheartbeat: {period_ms: 100, failure_threshold: 5, grace_ms: 300, reaper_interval_ms: 50}"
                          << "\nlease: {duration_ms: 2000, retry_budget: 3, idle_poll_ms: 100}\n" << more_yaml;
    const fs::path log = dir_ / log_name;
    const pid_t pid = coord::SpawnProcessGroup({CADENZA_CLI, "coordinator", "--config", config.string()}, log.string(), /*append=*/false);
    children_.push_back(pid);
    port_ = 0;
    WaitFor([&] {
      const std::string text = Slurp(log);
      const size_t at = text.find("listening on 127.0.0.1:");
      if (at != std::string::npos) port_ = std::atoi(text.c_str() + at + 23);
      const size_t web = text.find("/metrics on http://127.0.0.1:");
      if (web != std::string::npos) http_port_ = std::atoi(text.c_str() + web + 29);
      return port_ > 0 && http_port_ > 0;
    }, 10s);
    return pid;
  }
  std::string Target() const { return "127.0.0.1:" + std::to_string(port_); }

  // `mpirun -np N cadenza-worker --coordinator ...`, one thread per rank, small samples.
  pid_t StartGroup(int ranks, const std::string& name, double max_idle = 0) {
    std::vector<std::string> argv = {CADENZA_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                                     "-np", std::to_string(ranks), "-x", "OMP_WAIT_POLICY=passive", "-x", "OMP_NUM_THREADS=1",
                                     CADENZA_WORKER, "--coordinator", Target(), "--token-file", (dir_ / "worker.token").string(),
                                     "--name", name, "--threads", "1", "--bars", "4", "--max-tokens", "300",
                                     "--max-idle", std::to_string(max_idle)};
    const pid_t pid = coord::SpawnProcessGroup(argv, (dir_ / (name + ".log")).string(), /*append=*/false);
    children_.push_back(pid);
    return pid;
  }
  bool WaitRegistered(const std::string& name) {
    return WaitFor([&] { return Slurp(dir_ / (name + ".log")).find("registered worker group") != std::string::npos; }, 20s);
  }
  void Forget(pid_t pid) { children_.erase(std::remove(children_.begin(), children_.end(), pid), children_.end()); }

  // A tiny experiment; a validation (and checkpoint) every `eval_every` steps.
  std::string Experiment(const std::string& name, const std::string& family, int steps, int eval_every) {
    const std::string model = family == "transformer"
                                  ? "{family: transformer, d_model: 32, layers: 2, heads: 4, ff_dim: 64, max_len: 128, dropout: 0.0}"
                                  : "{family: lstm, d_model: 32, layers: 1, hidden: 48, attention: general, dropout: 0.0}";
    const fs::path exp = dir_ / (name + ".yaml");
    std::ofstream(exp) << "name: " << name << "\ndataset: " << (suite_ / "ds").string() << "\nout: " << (dir_ / "runs" / name).string()
                       << "\nmodel: " << model << "\ntrain: {seq_len: 64, batch_size: 8, steps: " << steps
                       << ", lr: 0.002, warmup_steps: 4, eval_every: " << eval_every << ", eval_windows: 8, threads: 1, seed: 3}\n";
    return exp.string();
  }
  int64_t Submit(const std::string& experiment, int samples) {
    int rc = 0;
    const std::string out = Shell(std::string(CADENZA_CLI) + " submit " + experiment + " --samples " + std::to_string(samples) +
                                      " --coordinator " + Target() + " --token-file " + (dir_ / "alice.token").string(),
                                  &rc);
    EXPECT_EQ(rc, 0) << out;
    const size_t at = out.find(": ");
    return at == std::string::npos ? 0 : std::atoll(out.c_str() + at + 2);
  }
  std::unique_ptr<coord::CoordinatorClient> Client() const {
    coord::ClientOptions o;
    o.target = Target();
    o.token = kToken;
    o.deadline_ms = 5000;
    return coord::CoordinatorClient::Connect(o);
  }
  // Waits until every job finished; false on timeout. The timeout is multiplied by $CADENZA_TEST_TIME_SCALE (the
  // sanitizer build trains 2-3x slower: scripts/test.sh --sanitize sets 4).
  bool WaitJobsDone(coord::CoordinatorClient* c, std::chrono::milliseconds timeout) {
    const char* scale = std::getenv("CADENZA_TEST_TIME_SCALE");
    if (scale != nullptr && std::atof(scale) > 1) timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout.count() * std::atof(scale)));
    return WaitFor([&] {
      v1::ListJobsRequest r;
      r.set_active_only(true);
      v1::ListJobsResponse active;
      return c->ListJobs(r, &active).ok() && active.jobs_size() == 0;
    }, timeout);
  }
  std::vector<v1::ResultRow> Results(coord::CoordinatorClient* c, v1::TaskKind kind, int64_t job = 0) {
    v1::QueryResultsRequest q;
    q.set_kind(kind);
    q.set_job_id(job);
    v1::QueryResultsResponse rows;
    EXPECT_TRUE(c->QueryResults(q, &rows).ok());
    return {rows.rows().begin(), rows.rows().end()};
  }

  static inline fs::path suite_;
  fs::path dir_;
  int port_ = 0;
  int http_port_ = 0;  // the coordinator's HTTP side (http.listen auto: port 0 -> a free one)
  std::vector<pid_t> children_;
};

TEST_F(ClusterTest, TwoWorkerGroupsRunExperimentsEndToEnd) {
  StartCoordinator(0, "coordinator.log");
  ASSERT_GT(port_, 0);
  const pid_t a = StartGroup(2, "group-a", 3), b = StartGroup(1, "group-b", 3);
  ASSERT_TRUE(WaitRegistered("group-a") && WaitRegistered("group-b"));
  const int64_t j1 = Submit(Experiment("e2e-lstm", "lstm", 30, 10), 6);
  const int64_t j2 = Submit(Experiment("e2e-transformer", "transformer", 30, 10), 6);
  ASSERT_GT(j1, 0);
  ASSERT_GT(j2, 0);
  auto c = Client();
  ASSERT_TRUE(WaitJobsDone(c.get(), 50s)) << "jobs still active";
  for (int64_t j : {j1, j2}) {
    v1::Job job;
    ASSERT_TRUE(c->GetJob(j, &job).ok());
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
    // train, G generate, G evaluate, aggregate, score; G = live ranks (3)
    EXPECT_EQ(job.counts().succeeded(), 1 + 3 + 3 + 1 + 1);
  }
  // Each group trained one experiment: the two training results came from a world of 2 and a world of 1.
  std::multiset<double> worlds;
  for (const auto& r : Results(c.get(), v1::TASK_KIND_TRAIN)) {
    worlds.insert(r.metrics().at("ranks"));
    EXPECT_GT(r.metrics().at("val_nll"), 0);
    EXPECT_EQ(r.metrics().at("steps"), 30);
  }
  EXPECT_EQ(worlds, (std::multiset<double>{1, 2}));
  // Samples, shard reports and the job's result are where the tasks said.
  for (const char* name : {"e2e-lstm", "e2e-transformer"}) {
    const fs::path run = dir_ / "runs" / name;
    int mids = 0;
    for (const auto& e : fs::recursive_directory_iterator(run / "samples")) mids += e.path().extension() == ".mid";
    EXPECT_EQ(mids, 6) << name;
    EXPECT_TRUE(fs::exists(run / "result.json")) << name;
    EXPECT_TRUE(fs::exists(run / "evaluation" / "shard-0.json")) << name;
  }
  // `cadenza results --format json`: one aggregate row per experiment with the evaluation's metrics.
  int rc = 0;
  const std::string out = Shell(std::string(CADENZA_CLI) + " results --format json --coordinator " + Target() +
                                    " --token-file " + (dir_ / "alice.token").string(),
                                &rc);
  ASSERT_EQ(rc, 0) << out;
  auto rows = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << out;
  ASSERT_EQ(rows.size(), 2u) << out;
  std::set<std::string> families;
  for (const auto& r : rows) {
    families.insert(r.at("family").get<std::string>());
    EXPECT_EQ(r.at("pieces").get<double>(), 6) << r.dump();
    EXPECT_TRUE(r.contains("pitch_class_entropy/mean")) << r.dump();
    EXPECT_TRUE(r.contains("pitch_class_entropy/overlap")) << r.dump();
  }
  EXPECT_EQ(families, (std::set<std::string>{"lstm", "transformer"}));
  // Idle for --max-idle: both groups exit 0.
  EXPECT_EQ(WaitExit(a, 20s), 0);
  EXPECT_EQ(WaitExit(b, 20s), 0);
  Forget(a);
  Forget(b);
}

// The scaling study in small: two families x 3 nested fractions x 2 seeds through one 2-rank group, cancelled
// mid-way and resubmitted: one result per task, one row per cell with n = 2, every fraction scored on the same
// test pieces, probes absent past a model's context.
TEST_F(ClusterTest, SweepCellsAcrossFractionsAndSeedsSurviveCancelAndResubmit) {
  StartCoordinator(0, "coordinator.log");
  ASSERT_GT(port_, 0);
  const pid_t g = StartGroup(2, "group-a");
  ASSERT_TRUE(WaitRegistered("group-a"));
  const std::string base = Experiment("study", "transformer", 12, 6);
  std::ofstream(dir_ / "sweep.yaml")
      << "name: study\n"
         "models:\n"
         "  tf: {family: transformer, d_model: 32, layers: 2, heads: 4, ff_dim: 64, max_len: 128, dropout: 0.0}\n"
         "  lstm: {family: lstm, d_model: 32, layers: 1, hidden: 48, attention: general, dropout: 0.0}\n"
         "match_tolerance: 0.9\n"
         "dataset_fractions: [0.25, 0.5, 1.0]\n"
         "seeds: [1, 2]\n"
         "budget: {steps: 12}\n"
         "probe_lengths: [32, 256]\n";
  const std::string conn = " --coordinator " + Target() + " --token-file " + (dir_ / "alice.token").string();
  int rc = 0;
  // Structure during training and primed samples ride along as key=value overrides of the experiment.
  std::string out = Shell(std::string(CADENZA_CLI) + " submit " + base + " --sweep " + (dir_ / "sweep.yaml").string() +
                              " --samples 2 train.eval_samples=2 train.eval_sample_bars=2 generate.primer_split=val"
                              " generate.primer_bars=1" + conn, &rc);
  ASSERT_EQ(rc, 0) << out;
  ASSERT_EQ(out.rfind("sweep ", 0), 0u) << out;
  const int64_t sweep = std::atoll(out.c_str() + 6);
  EXPECT_NE(out.find("12 job(s)"), std::string::npos) << out;
  auto c = Client();
  // Cancel once two runs have finished, then resubmit what did not finish.
  auto succeeded = [&] {
    v1::ListJobsRequest r;
    r.set_sweep_id(sweep);
    v1::ListJobsResponse jobs;
    int n = 0;
    if (c->ListJobs(r, &jobs).ok()) for (const auto& j : jobs.jobs()) n += j.state() == v1::JOB_STATE_SUCCEEDED;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return succeeded() >= 2; }, 120s)) << "no run finished";
  out = Shell(std::string(CADENZA_CLI) + " cancel --sweep " + std::to_string(sweep) + conn, &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("job(s) cancelled"), std::string::npos) << out;
  const int done_before = succeeded();
  out = Shell(std::string(CADENZA_CLI) + " resubmit --sweep " + std::to_string(sweep) + " --failed-only" + conn, &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(std::to_string(12 - done_before) + " new job(s) in fresh run folders"), std::string::npos) << out;
  ASSERT_TRUE(WaitJobsDone(c.get(), 240s)) << "the resubmitted runs did not finish";
  EXPECT_EQ(succeeded(), 12);
  // Exactly one train, score, probe and aggregate result per succeeded run.
  v1::ListJobsRequest lr;
  lr.set_sweep_id(sweep);
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(c->ListJobs(lr, &jobs).ok());
  std::set<int64_t> tokens_of_test;
  for (const auto& j : jobs.jobs()) {
    if (j.state() != v1::JOB_STATE_SUCCEEDED) continue;
    for (v1::TaskKind k : {v1::TASK_KIND_TRAIN, v1::TASK_KIND_SCORE, v1::TASK_KIND_PROBE, v1::TASK_KIND_AGGREGATE}) {
      EXPECT_EQ(Results(c.get(), k, j.job_id()).size(), 1u) << j.name() << " kind " << k;
    }
    const auto score = Results(c.get(), v1::TASK_KIND_SCORE, j.job_id());
    ASSERT_EQ(score.size(), 1u);
    tokens_of_test.insert(int64_t(score[0].metrics().at("test/tokens")));
    const auto probe = Results(c.get(), v1::TASK_KIND_PROBE, j.job_id());
    ASSERT_EQ(probe.size(), 1u);
    EXPECT_EQ(probe[0].metrics().count("probe/L32/b1/forward_ms"), 1u) << j.name();
    // 256 tokens exceed the Transformer's max_len of 128: absent, not zero. The LSTM has no such limit.
    EXPECT_EQ(probe[0].metrics().count("probe/L256/b1/forward_ms"), j.model_family() == "lstm" ? 1u : 0u) << j.name();
  }
  EXPECT_EQ(tokens_of_test.size(), 1u) << "every fraction must be scored on the same test pieces";
  // The cell table: 6 cells (2 models x 3 fractions), each over both seeds.
  out = Shell(std::string(CADENZA_CLI) + " results --sweep " + std::to_string(sweep) + " --format json" + conn, &rc);
  ASSERT_EQ(rc, 0) << out;
  auto cells = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(cells.is_array()) << out;
  ASSERT_EQ(cells.size(), 6u) << out;
  std::map<std::string, std::vector<double>> train_tokens;
  for (const auto& cell : cells) {
    EXPECT_EQ(cell.at("n"), 2) << cell.dump();
    EXPECT_TRUE(cell.at("parameters").is_number_integer()) << cell.dump();
    EXPECT_TRUE(cell.contains("test/nll_per_token_ci95")) << cell.dump();
    EXPECT_GT(cell.at("test/nll_per_token_mean").get<double>(), 0) << cell.dump();
    train_tokens[cell.at("model").get<std::string>()].push_back(cell.at("data/train_tokens_mean").get<double>());
  }
  for (const auto& [model, t] : train_tokens) {  // nested subsets grow with the fraction
    ASSERT_EQ(t.size(), 3u);
    EXPECT_LT(t[0], t[1]) << model;
    EXPECT_LT(t[1], t[2]) << model;
  }
  for (const auto& cell : cells) {  // structure of the samples drawn at each run's last validation
    EXPECT_TRUE(cell.contains("sample/pieces_mean")) << cell.dump();
  }
  for (const auto& j : jobs.jobs()) {  // every generate result records the experiment's primed sampling
    if (j.state() != v1::JOB_STATE_SUCCEEDED) continue;
    for (const auto& r : Results(c.get(), v1::TASK_KIND_GENERATE, j.job_id())) {
      EXPECT_EQ(r.metrics().at("generate/primer_bars"), 1.0) << j.name();
    }
  }
  // The structure curve: a sample/pieces row at each validation (steps 6 and 12) in every run's metrics.
  int curves = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "runs")) {
    if (e.path().filename() != "metrics.csv") continue;
    const std::string metrics = Slurp(e.path());
    if (metrics.find("12,val/nll_per_token,") == std::string::npos) continue;  // a run cancelled before its end
    EXPECT_NE(metrics.find("6,sample/pieces,"), std::string::npos) << e.path() << "\n" << metrics.substr(0, 400);
    EXPECT_NE(metrics.find("12,sample/pieces,"), std::string::npos) << e.path();
    ++curves;
  }
  EXPECT_GE(curves, 12);
  // The report draws the same numbers: its results.json is the cell table above.
  const fs::path report = dir_ / "report";
  out = Shell(std::string(CADENZA_CLI) + " report --sweep " + std::to_string(sweep) + " --out " + report.string() + conn, &rc);
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    EXPECT_NE(out.find("gnuplot"), std::string::npos) << "without gnuplot the error names it: " << out;
  } else {
    ASSERT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("report: 6 cell(s)"), std::string::npos) << out;
    EXPECT_EQ(nlohmann::json::parse(Slurp(report / "results.json")), cells);
    // The page embeds what it draws: the same cells and every figure's data.
    const std::string html = Slurp(report / "index.html");
    const std::string open = "<script id=\"cadenza-data\" type=\"application/json\">";
    const size_t from = html.find(open) + open.size();
    ASSERT_GT(from, open.size()) << "index.html embeds its data";
    const nlohmann::json page = nlohmann::json::parse(html.substr(from, html.find("</script>", from) - from));
    EXPECT_EQ(page["cells"], cells);
    std::set<std::string> ids;
    for (const auto& f : page["figures"]) ids.insert(f["id"].get<std::string>());
    // Validation NLL against the step: read from each run's metrics.csv among its training artifacts.
    EXPECT_TRUE(std::any_of(ids.begin(), ids.end(), [](const std::string& id) { return id.rfind("curve-val-nll", 0) == 0; }))
        << "no training curve";
    for (const char* f : {"quality-test-nll-ds", "latency-forward-ds", "memory-training-ds"}) {
      EXPECT_TRUE(fs::exists(report / "figures" / (std::string(f) + ".svg"))) << f;
      EXPECT_TRUE(fs::exists(report / "figures" / (std::string(f) + ".png"))) << f;
      EXPECT_TRUE(ids.count(f)) << f;
    }
    EXPECT_NE(page.dump().find("tf: no forward_ms at length 256"), std::string::npos) << "beyond the context: named, not drawn as 0";
    // The coordinator's API serves the same cells and the page's data for the live view.
    httplib::Client http("127.0.0.1", http_port_);
    const httplib::Headers auth = {{"Authorization", std::string("Bearer ") + kToken}};
    auto api = http.Get(("/api/v1/sweeps/" + std::to_string(sweep) + "/cells").c_str(), auth);
    ASSERT_TRUE(api);
    EXPECT_EQ(api->status, 200) << api->body;
    EXPECT_EQ(nlohmann::json::parse(api->body), cells) << "GET /api/v1/sweeps/N/cells == cadenza results --sweep N --format json";
    auto live = http.Get(("/api/v1/sweeps/" + std::to_string(sweep) + "/report").c_str(), auth);
    ASSERT_TRUE(live);
    const nlohmann::json live_data = nlohmann::json::parse(live->body);
    EXPECT_EQ(live_data["cells"], cells);
    EXPECT_EQ(live_data["figures"].size(), page["figures"].size()) << "the live page draws the report's figures";
    // One run's report: its own cell (n = 1), from the same builder.
    const auto trained = Results(c.get(), v1::TASK_KIND_TRAIN);
    ASSERT_FALSE(trained.empty());
    const std::string one = Shell(std::string(CADENZA_CLI) + " report --job " + std::to_string(trained.back().job_id()) + " --out " +
                                      (dir_ / "report-job").string() + conn, &rc);
    EXPECT_EQ(rc, 0) << one;
    EXPECT_NE(one.find("report: 1 cell(s)"), std::string::npos) << one;
    auto metrics = http.Get("/metrics", auth);
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("cadenza_results_total{kind=\"train\"} "), std::string::npos) << metrics->body;
  }
  out = Shell(std::string(CADENZA_CLI) + " report --sweep 424242 --out " + (dir_ / "nothing").string() + conn, &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("sweep 424242: no such sweep"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir_ / "nothing" / "index.html"));
  const std::string table = Shell(std::string(CADENZA_CLI) + " results --sweep " + std::to_string(sweep) + conn, &rc);
  EXPECT_EQ(rc, 0) << table;
  EXPECT_NE(table.find("test/nll_per_token (mean ± 95% CI)"), std::string::npos) << table;
  // Both ranks took tasks alone (score, probe, generate, evaluate); no lease was refused.
  const std::string log = Slurp(dir_ / "group-a.log");
  EXPECT_EQ(log.find("LeaseTask:"), std::string::npos) << log;
  EXPECT_NE(log.find("rank 1 of 2: task"), std::string::npos) << log;
  kill(-g, SIGUSR1);
  EXPECT_EQ(WaitExit(g, 30s), 4);
  Forget(g);
}

TEST_F(ClusterTest, KilledWorkerGroupsTrainingResumesFromItsCheckpointElsewhere) {
  StartCoordinator(0, "coordinator.log");
  ASSERT_GT(port_, 0);
  const pid_t a = StartGroup(2, "group-a");
  ASSERT_TRUE(WaitRegistered("group-a"));
  // 600 steps: long enough that the kill below lands mid-training (the fused kernels train 150 steps in ~1 s).
  const int64_t job = Submit(Experiment("killed", "lstm", 600, 10), 2);
  ASSERT_GT(job, 0);
  // Kill the whole group (mpirun and both ranks) once the first checkpoint was reported to the coordinator.
  auto c = Client();
  ASSERT_TRUE(WaitFor([&] {
    v1::Job j;
    if (!c->GetJob(job, &j).ok()) return false;
    for (const auto& t : j.tasks()) {
      if (t.kind() == v1::TASK_KIND_TRAIN && t.fraction() >= 0.1) return true;
    }
    return false;
  }, 30s)) << "no training progress";
  std::this_thread::sleep_for(300ms);  // a checkpoint or two more
  ASSERT_EQ(kill(-a, SIGKILL), 0);
  EXPECT_EQ(WaitExit(a, 10s), 128 + SIGKILL);
  Forget(a);
  // Another group takes the task over once the dead ranks are detected, and resumes.
  const pid_t b = StartGroup(1, "group-b", 3);
  ASSERT_TRUE(WaitJobsDone(c.get(), 50s)) << "the job did not finish after the kill";
  v1::Job j;
  ASSERT_TRUE(c->GetJob(job, &j).ok());
  EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.error();
  const auto train = Results(c.get(), v1::TASK_KIND_TRAIN, job);
  ASSERT_EQ(train.size(), 1u);
  EXPECT_GE(train[0].attempt(), 2);
  EXPECT_EQ(train[0].metrics().at("steps"), 600);
  EXPECT_EQ(train[0].metrics().at("ranks"), 1);
  const std::string log = Slurp(dir_ / "group-b.log");
  EXPECT_NE(log.find("resuming from its checkpoint"), std::string::npos) << log;
  const size_t at = log.find("resuming at step ");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_GE(std::atoi(log.c_str() + at + 17), 10) << log;
  EXPECT_EQ(WaitExit(b, 20s), 0);
  Forget(b);
}

TEST_F(ClusterTest, SignalCheckpointsHandsTheTaskBackAndExits4) {
  StartCoordinator(0, "coordinator.log");
  ASSERT_GT(port_, 0);
  const pid_t a = StartGroup(2, "group-a");
  ASSERT_TRUE(WaitRegistered("group-a"));
  const int64_t job = Submit(Experiment("termed", "lstm", 600, 50), 2);  // still training when the signal lands
  ASSERT_GT(job, 0);
  const fs::path metrics = dir_ / "runs" / "termed" / "metrics.csv";
  ASSERT_TRUE(WaitFor([&] { return Slurp(metrics).find("\n5,train/loss") != std::string::npos; }, 30s)) << "no training";
  // mpirun forwards SIGUSR1 to every rank and exits with their code. (On SIGTERM mpirun itself exits 1 after
  // forwarding it; the ranks stop the same way. srun forwards SIGTERM and reports the ranks' code.)
  ASSERT_EQ(kill(a, SIGUSR1), 0);
  EXPECT_EQ(WaitExit(a, 30s), 4);
  Forget(a);
  // The attempt was handed back with its checkpoint at once (no lease expiry needed): the task is pending again.
  auto c = Client();
  v1::Job j;
  ASSERT_TRUE(c->GetJob(job, &j).ok());
  bool pending = false;
  for (const auto& t : j.tasks()) {
    if (t.kind() == v1::TASK_KIND_TRAIN) {
      pending = t.state() == v1::TASK_STATE_PENDING;
      EXPECT_NE(t.message().find("resume from checkpoint"), std::string::npos) << t.message();
    }
  }
  EXPECT_TRUE(pending);
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "termed" / "checkpoints" / "latest.pt"));
  const pid_t b = StartGroup(1, "group-b", 3);
  ASSERT_TRUE(WaitJobsDone(c.get(), 50s));
  ASSERT_TRUE(c->GetJob(job, &j).ok());
  EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.error();
  EXPECT_NE(Slurp(dir_ / "group-b.log").find("resuming at step "), std::string::npos);
  EXPECT_EQ(WaitExit(b, 20s), 0);
  Forget(b);
}

TEST_F(ClusterTest, KilledCoordinatorRestartsAndEveryTaskHasExactlyOneResult) {
  pid_t coordinator = StartCoordinator(0, "coordinator-1.log");
  ASSERT_GT(port_, 0);
  const int port = port_;
  const pid_t a = StartGroup(2, "group-a", 4), b = StartGroup(1, "group-b", 4);
  ASSERT_TRUE(WaitRegistered("group-a") && WaitRegistered("group-b"));
  std::vector<int64_t> jobs;
  for (const char* name : {"ck-1", "ck-2", "ck-3"}) jobs.push_back(Submit(Experiment(name, "lstm", 40, 10), 4));
  auto c = Client();
  // Kill it mid-run: after the first training result, while other tasks run.
  ASSERT_TRUE(WaitFor([&] { return !Results(c.get(), v1::TASK_KIND_TRAIN).empty(); }, 40s));
  ASSERT_EQ(kill(coordinator, SIGKILL), 0);
  EXPECT_EQ(WaitExit(coordinator, 5s), 128 + SIGKILL);
  Forget(coordinator);
  std::this_thread::sleep_for(500ms);
  coordinator = StartCoordinator(port, "coordinator-2.log");
  ASSERT_EQ(port_, port) << "the restarted coordinator must take the same port";
  ASSERT_TRUE(WaitJobsDone(c.get(), 50s)) << "jobs still active after the restart";
  int succeeded = 0;
  for (int64_t id : jobs) {
    v1::Job j;
    ASSERT_TRUE(c->GetJob(id, &j).ok());
    EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.error();
    succeeded += j.counts().succeeded();
    EXPECT_EQ(j.counts().succeeded(), j.tasks_size()) << id;
  }
  std::set<int64_t> ids;
  size_t rows = 0;
  for (v1::TaskKind k : {v1::TASK_KIND_TRAIN, v1::TASK_KIND_GENERATE, v1::TASK_KIND_EVALUATE, v1::TASK_KIND_AGGREGATE,
                         v1::TASK_KIND_SCORE}) {
    for (const auto& r : Results(c.get(), k)) {
      ids.insert(r.task_id());
      ++rows;
    }
  }
  EXPECT_EQ(rows, size_t(succeeded));
  EXPECT_EQ(ids.size(), size_t(succeeded));
  EXPECT_EQ(WaitExit(a, 30s), 0);
  EXPECT_EQ(WaitExit(b, 30s), 0);
  Forget(a);
  Forget(b);
}

// A coordinator restarted on a NEW database answers NOT_FOUND for the old group: the group registers again (rank 0,
// the new id broadcast to every rank) and serves the new coordinator's jobs.
TEST_F(ClusterTest, GroupRegistersAgainWithACoordinatorOnANewDatabase) {
  pid_t coordinator = StartCoordinator(0, "coordinator-1.log");
  ASSERT_GT(port_, 0);
  const int port = port_;
  const pid_t a = StartGroup(2, "group-a", 8);
  ASSERT_TRUE(WaitRegistered("group-a"));
  ASSERT_EQ(kill(coordinator, SIGKILL), 0);
  EXPECT_EQ(WaitExit(coordinator, 5s), 128 + SIGKILL);
  Forget(coordinator);
  fs::remove(dir_ / "coordinator.db");
  fs::remove(dir_ / "coordinator.db-wal");
  fs::remove(dir_ / "coordinator.db-shm");
  // The new coordinator confines run folders to the test's folder: the group takes its roots when it registers again.
  coordinator = StartCoordinator(port, "coordinator-2.log", "paths: {output_root: " + dir_.string() + "}\n");
  ASSERT_EQ(port_, port);
  const int64_t job = Submit(Experiment("fresh-db", "lstm", 20, 10), 2);
  auto c = Client();
  ASSERT_TRUE(WaitJobsDone(c.get(), 40s));
  v1::Job j;
  ASSERT_TRUE(c->GetJob(job, &j).ok());
  EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.error();
  const std::string log = Slurp(dir_ / "group-a.log");
  EXPECT_NE(log.find("registered again"), std::string::npos) << log;
  EXPECT_NE(log.find("tasks are checked again here: run folders inside " + dir_.string()), std::string::npos) << log;
  EXPECT_EQ(WaitExit(a, 30s), 0);
  Forget(a);
}

// The same through two groups on a small Nottingham subset (60 tunes); skipped when ../shared/data is absent.
TEST_F(ClusterTest, NottinghamSubsetThroughTwoWorkerGroups) {
  const fs::path midi = fs::path(CADENZA_SHARED_DATA) / "nottingham" / "MIDI";
  if (!fs::is_directory(midi)) GTEST_SKIP() << midi << " is absent: the synthetic-corpus tests cover the cluster";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(midi)) {
    if (e.path().extension() == ".mid") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 60u);
  const fs::path subset = dir_ / "nottingham-60";
  fs::create_directories(subset);
  for (size_t i = 0; i < 60; ++i) fs::create_symlink(files[i * (files.size() / 60)], subset / files[i * (files.size() / 60)].filename());
  int rc = 0;
  const std::string out = Shell(std::string(CADENZA_CLI) + " ingest " + subset.string() + " --out " + (dir_ / "nds").string() +
                                    " --val 0.15 --test 0.15 --quiet", &rc);
  ASSERT_EQ(rc, 0) << out;
  StartCoordinator(0, "coordinator.log");
  ASSERT_GT(port_, 0);
  const pid_t a = StartGroup(2, "group-a", 3), b = StartGroup(1, "group-b", 3);
  ASSERT_TRUE(WaitRegistered("group-a") && WaitRegistered("group-b"));
  std::string exp = Slurp(Experiment("nottingham-tf", "transformer", 30, 10));
  exp.replace(exp.find((suite_ / "ds").string()), (suite_ / "ds").string().size(), (dir_ / "nds").string());
  std::ofstream(dir_ / "nottingham-tf.yaml") << exp;
  const int64_t job = Submit((dir_ / "nottingham-tf.yaml").string(), 6);
  auto c = Client();
  ASSERT_TRUE(WaitJobsDone(c.get(), 50s));
  v1::Job j;
  ASSERT_TRUE(c->GetJob(job, &j).ok());
  EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.error();
  const auto rows = Results(c.get(), v1::TASK_KIND_AGGREGATE, job);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].metrics().at("pieces"), 6);
  EXPECT_TRUE(rows[0].metrics().count("pitch_class_entropy/overlap"));  // compared with the subset's test split
  EXPECT_EQ(WaitExit(a, 20s), 0);
  EXPECT_EQ(WaitExit(b, 20s), 0);
  Forget(a);
  Forget(b);
}

// What `cadenza demo --cluster` runs: an in-process coordinator, one 2-rank group, the experiments, the results.
TEST_F(ClusterTest, LocalClusterRunsExperimentsAndCollectsTheirResults) {
  setenv("CADENZA_WORKER", CADENZA_WORKER, 1);
  setenv("CADENZA_MPIRUN", CADENZA_MPIEXEC, 1);
  LocalClusterOptions o;
  o.work_dir = (dir_ / "cluster").string();
  o.worker_args = {"--bars", "4", "--max-tokens", "300"};
  o.progress = false;
  std::vector<LocalExperimentResult> results;
  Status s = RunOnLocalCluster(o, {{Experiment("lc-transformer", "transformer", 20, 10), 4}, {Experiment("lc-lstm", "lstm", 20, 10), 4}},
                               &results);
  ASSERT_TRUE(s.ok()) << s.message() << "\n" << Slurp(dir_ / "cluster" / "workers.log");
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_GT(r.train.at("val_nll"), 0) << r.name;
    EXPECT_EQ(r.train.at("ranks"), 2) << r.name;
    EXPECT_EQ(r.generate.at("samples"), 4) << r.name;
    EXPECT_EQ(r.aggregate.at("pieces"), 4) << r.name;
    EXPECT_TRUE(fs::exists(r.checkpoint)) << r.checkpoint;
    EXPECT_TRUE(fs::exists(r.result_json)) << r.result_json;
  }
  EXPECT_NE(Slurp(dir_ / "cluster" / "workers.log").find("exit code 4"), std::string::npos);
}

// The README's main job: the default sweep (2 families x 3 fractions x 2 seeds) through the local cluster, the
// live page's address while it runs, and the report at the end with every cell at n = 2.
TEST_F(ClusterTest, DemoSweepRunsTheStudyAndWritesItsReport) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) GTEST_SKIP() << "the report needs gnuplot (scripts/install-deps.sh)";
  setenv("CADENZA_WORKER", CADENZA_WORKER, 1);
  setenv("CADENZA_MPIRUN", CADENZA_MPIEXEC, 1);
  const fs::path out = dir_ / "demo-sweep";
  int rc = 0;
  const std::string text = Shell(std::string(CADENZA_CLI) + " demo --sweep --out " + out.string() + " --count 120 --steps 24 --samples 4", &rc);
  ASSERT_EQ(rc, 0) << text << "\n" << Slurp(out / "cluster" / "workers.log");
  for (const char* line : {"2 families x 3 dataset fractions x 2 seeds, 6 steps each", "live page: http://127.0.0.1:",
                           "/?sweep=1#token=", "of 12 runs finished)", "report: 6 cell(s)"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  const nlohmann::json cells = nlohmann::json::parse(Slurp(out / "report" / "results.json"));
  ASSERT_EQ(cells.size(), 6u) << cells.dump(1);
  std::set<std::string> models;
  for (const auto& c : cells) {
    EXPECT_EQ(c["n"], 2) << c.dump();
    EXPECT_GT(c["test/nll_per_token_mean"].get<double>(), 0) << c.dump();
    models.insert(c["model"].get<std::string>());
  }
  EXPECT_EQ(models, (std::set<std::string>{"lstm", "transformer"}));
  for (const char* f : {"quality-test-nll-dataset", "latency-generation-dataset", "memory-training-dataset"}) {
    EXPECT_TRUE(fs::exists(out / "report" / "figures" / (std::string(f) + ".svg"))) << f;
  }
  EXPECT_TRUE(fs::exists(out / "sweep" / "sweep.yaml")) << "the sweep it ran, to submit again";
  // SSM heatmaps: a sample of each model beside the reference split's, shown by the page.
  for (const char* png : {"ssm-lstm.png", "ssm-transformer.png", "ssm-reference.png"}) {
    EXPECT_EQ(Slurp(out / "report" / "figures" / png).substr(1, 3), "PNG") << png;
  }
  const std::string html = Slurp(out / "report" / "index.html");
  EXPECT_NE(html.find("figures/ssm-reference.png"), std::string::npos);
}

// Processes whose command line mentions `text` (the worker ranks of one demo name its token file).
int ProcessesMentioning(const std::string& text) {
  int found = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::string cmdline = Slurp(e.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    found += cmdline.find(text) != std::string::npos;
  }
  return found;
}

// SIGTERM to `cadenza demo` while its cluster trains: the demo stops its worker group (the tasks handed back) and
// exits naming the signal; no worker of it keeps running.
// `launcher: local`: the coordinator starts an mpirun worker group by itself while tasks wait, and stops it once it
// has held no task for launch.idle_timeout_s; each decision is in its log and in `cadenza status`.
TEST_F(ClusterTest, LocalLauncherStartsAGroupForWaitingTasksAndStopsItWhenIdle) {
  const std::string state_dir = (dir_ / "coordinator.db.launch").string();  // the launched groups' token file is here
  StartCoordinator(0, "coordinator.log",
                   "launcher: local\nlaunch: {max_groups: 1, ranks_per_group: 2, threads_per_rank: 1, idle_timeout_s: 1, "
                   "poll_ms: 100, worker: \"" + std::string(CADENZA_WORKER) + "\", worker_args: [--bars, \"4\", --max-tokens, \"300\", --max-idle, \"60\"], "
                   "local: {mpirun: \"" + std::string(CADENZA_MPIEXEC) + "\"}}\n");
  ASSERT_GT(port_, 0);
  const fs::path log = dir_ / "coordinator.log";
  // (--max-idle: should the launcher fail to stop it, the group still ends on its own after the test)
  EXPECT_EQ(ProcessesMentioning(state_dir), 0) << "no task waits: no group";
  const int64_t job = Submit(Experiment("launched", "transformer", 12, 6), 2);
  ASSERT_GT(job, 0);
  auto c = Client();
  ASSERT_TRUE(WaitJobsDone(c.get(), 90s)) << Slurp(log);
  v1::Job j;
  ASSERT_TRUE(c->GetJob(job, &j).ok());
  EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.error();
  const auto trained = Results(c.get(), v1::TASK_KIND_TRAIN, job);
  ASSERT_EQ(trained.size(), 1u);
  EXPECT_EQ(trained[0].metrics().at("ranks"), 2) << "the launched group has launch.ranks_per_group ranks";
  EXPECT_NE(Slurp(log).find("launcher: launch local-1 (2 ranks on 1 node(s), registers as local-1)"), std::string::npos) << Slurp(log);
  EXPECT_TRUE(WaitFor([&] { return Slurp(log).find("launcher: cancel local-1: idle for") != std::string::npos; }, 20s)) << Slurp(log);
  EXPECT_TRUE(WaitFor([&] { return ProcessesMentioning(state_dir) == 0; }, 20s)) << "the idle group is stopped";
  EXPECT_EQ(Slurp(log).find("launch local-2"), std::string::npos) << "one group was enough";
  int rc = 0;
  const std::string status = Shell(std::string(CADENZA_CLI) + " status --coordinator " + Target() + " --token-file " +
                                       (dir_ / "alice.token").string(),
                                   &rc);
  EXPECT_EQ(rc, 0) << status;
  EXPECT_NE(status.find("launcher local:"), std::string::npos) << status;
  EXPECT_NE(status.find("cancel local-1: idle for"), std::string::npos) << status;
}

TEST_F(ClusterTest, DemoStoppedBySigtermLeavesNoWorkerBehind) {
  setenv("CADENZA_WORKER", CADENZA_WORKER, 1);
  setenv("CADENZA_MPIRUN", CADENZA_MPIEXEC, 1);
  const fs::path out = dir_ / "demo-term", log = dir_ / "demo-term.log";
  const pid_t demo = coord::SpawnProcessGroup({CADENZA_CLI, "demo", "--out", out.string(), "--count", "120", "--steps", "5000",
                                               "--samples", "2"},
                                              log.string(), /*append=*/false);
  ASSERT_GT(demo, 0);
  children_.push_back(demo);
  ASSERT_TRUE(WaitFor([&] { return Slurp(out / "cluster" / "workers.log").find(": train job") != std::string::npos; }, 90s))
      << Slurp(log) << Slurp(out / "cluster" / "workers.log");
  const std::string worker_token = (out / "cluster" / "worker.token").string();
  EXPECT_GT(ProcessesMentioning(worker_token), 0) << "the group runs";
  ASSERT_EQ(kill(demo, SIGTERM), 0);
  const int rc = WaitExit(demo, 90s);
  Forget(demo);
  const std::string text = Slurp(log);
  EXPECT_EQ(rc, 1) << text;
  EXPECT_NE(text.find("stopped by a signal: the worker group hands its tasks back and exits"), std::string::npos) << text;
  EXPECT_TRUE(WaitFor([&] { return ProcessesMentioning(worker_token) == 0; }, 10s)) << "a worker outlived the demo";
}

// The README's main job (the cluster is the default) and its --single-process form: both compare the two families
// at matched size and print the same table.
TEST_F(ClusterTest, DemoThroughTheLocalClusterPrintsTheSameTableAsOneProcess) {
  setenv("CADENZA_WORKER", CADENZA_WORKER, 1);
  setenv("CADENZA_MPIRUN", CADENZA_MPIEXEC, 1);
  // The row labels of comparison.txt (the table the demo prints), in order.
  auto rows = [](const std::string& text) {
    std::vector<std::string> labels;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) labels.push_back(line.substr(0, line.find("  ")));
    }
    return labels;
  };
  std::vector<std::string> tables[2];
  for (int mode = 0; mode < 2; ++mode) {
    const fs::path out = dir_ / (mode == 0 ? "demo-cluster" : "demo-single");
    int rc = 0;
    const std::string text = Shell(std::string(CADENZA_CLI) + " demo " + (mode == 0 ? "" : "--single-process ") + "--out " +
                                       out.string() + " --count 120 --steps 30 --samples 3",  // 60 tunes leave no val piece since vocabulary v2
                                   &rc);
    ASSERT_EQ(rc, 0) << text << "\n" << Slurp(out / "cluster" / "workers.log");
    std::string table = Slurp(out / "comparison.txt");
    for (size_t at; (at = table.find(out.string())) != std::string::npos;) table.replace(at, out.string().size(), "OUT");
    tables[mode] = rows(table);
    // The side-by-side table: matched sizes, validation NLL, speed, and the evaluation against the test split.
    for (const char* line : {"model                               transformer  lstm", "validation NLL per token",
                             "generation ms/token at context 512", "forward peak MiB, 512 tokens", "reference (test)",
                             "avg_pitch_deviation", "syncopation", "structureness"}) {
      EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
    }
    // Matched size: the two parameter counts printed in the table are within 10% of each other.
    const size_t at = text.find("\nparameters ");
    ASSERT_NE(at, std::string::npos) << text;
    std::istringstream counts(text.substr(at + 12));
    double transformer = 0, lstm = 0;
    counts >> transformer >> lstm;
    ASSERT_GT(transformer, 0);
    EXPECT_LE(std::max(transformer, lstm) / std::min(transformer, lstm), 1.10) << transformer << " vs " << lstm;
    for (const char* family : {"transformer", "lstm"}) {
      EXPECT_TRUE(fs::exists(out / "runs" / family / "checkpoints" / "best.pt")) << family;
      EXPECT_TRUE(fs::exists(out / "samples" / family / "sample-002.mid")) << family;
      EXPECT_TRUE(fs::exists(out / "evaluation" / (std::string(family) + ".json"))) << family;
    }
    std::istringstream probe(Slurp(out / "probe.csv"));
    int probe_rows = -1;
    for (std::string row; std::getline(probe, row);) ++probe_rows;
    EXPECT_EQ(probe_rows, 4) << "two families x contexts 128 and 512";
    if (mode == 0) {
      for (const char* line : {"through a local coordinator and a 2-rank worker group", "cluster: coordinator on 127.0.0.1:",
                               "demo-transformer: train done", "demo-lstm: aggregate done"}) {
        EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
      }
      EXPECT_TRUE(fs::exists(out / "runs" / "lstm" / "result.json"));
      EXPECT_NE(Slurp(out / "cluster" / "workers.log").find("exit code 4"), std::string::npos);
    } else {
      EXPECT_EQ(text.find("cluster: coordinator"), std::string::npos);
    }
  }
  EXPECT_GT(tables[0].size(), 20u);
  EXPECT_EQ(tables[0], tables[1]);
}

}  // namespace
}  // namespace cadenza
