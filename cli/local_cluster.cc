// The main job's local cluster: coordinator in this process, one mpirun worker group, submit, follow, collect.
#include "cli/local_cluster.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "coordinator/client.h"
#include "coordinator/convert.h"
#include "coordinator/config.h"
#include "coordinator/server.h"
#include "core/file_util.h"
#include "core/run_layout.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// SIGINT, SIGTERM and SIGHUP while a LocalCluster runs: Follow returns and the cluster is stopped (its workers hand
// their tasks back and exit) instead of the process dying with its worker group left running.
std::atomic<bool> g_stop_requested{false};
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
extern "C" void RequestLocalClusterStop(int) { g_stop_requested = true; }

std::string RandomToken() {
  std::random_device rd;
  std::ostringstream o;
  for (int i = 0; i < 4; ++i) o << std::hex << rd();
  return o.str();
}


}  // namespace

StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(const LocalClusterOptions& o) {
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->options_ = o;
  g_stop_requested = false;
  struct sigaction stop = {};
  stop.sa_handler = RequestLocalClusterStop;
  sigemptyset(&stop.sa_mask);
  for (int i = 0; i < 3; ++i) sigaction(kStopSignals[i], &stop, &c->saved_handlers_[i]);
  c->handlers_installed_ = true;
  std::error_code ec;
  const fs::path dir = fs::absolute(o.work_dir);
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir.string() + ": cannot create: " + ec.message());
  c->token_ = RandomToken();
  const std::string worker_token = RandomToken();
  // Bearer tokens, owner-only from the moment they exist (0600): the submitter's (role user) and the worker group's
  // (role worker: it may serve tasks, not submit or read).
  Status s = WritePrivateFileAtomic((dir / "tokens.txt").string(), c->token_ + " demo user\n" + worker_token + " demo-workers worker\n");
  if (!s.ok()) return s;
  if (!(s = WritePrivateFileAtomic((dir / "worker.token").string(), worker_token + "\n")).ok()) return s;
  // The coordinator's state: created owner-only before SQLite opens it (its -wal and -shm files take this mode).
  if (!(s = MakeOwnerOnly((dir / "coordinator.db").string())).ok()) return s;

  coord::CoordinatorConfig config;
  config.listen = "127.0.0.1:0";
  config.database = (dir / "coordinator.db").string();
  config.tokens_file = (dir / "tokens.txt").string();
  config.heartbeat.period_ms = 500;
  config.heartbeat.failure_threshold = 10;
  config.heartbeat.grace_ms = 2000;
  config.heartbeat.reaper_interval_ms = 250;
  config.scheduler.lease_ms = 30000;
  config.idle_poll_ms = 100;
  auto server = coord::CoordinatorServer::Start(config);
  if (!server.ok()) return server.status().WithContext("coordinator");
  c->server_ = std::move(server).value();
  c->target_ = "127.0.0.1:" + std::to_string(c->server_->port());
  if (c->server_->http_port() > 0) c->http_url_ = "http://127.0.0.1:" + std::to_string(c->server_->http_port());
  coord::ClientOptions co;
  co.target = c->target_;
  co.token = c->token_;
  c->client_ = coord::CoordinatorClient::Connect(co);

  const std::string worker = coord::DefaultWorkerBinary();
  if (worker.find('/') != std::string::npos && !fs::exists(worker)) {
    return NotFound(worker + ": no cadenza-worker (build the cadenza-worker target, or run the demo with --single-process)");
  }
  coord::LocalLauncherOptions lo;
  lo.mpirun = std::getenv("CADENZA_MPIRUN") ? std::getenv("CADENZA_MPIRUN") : "mpirun";
  lo.worker = worker;
  lo.log_file = c->log_ = (dir / "workers.log").string();
  lo.name_prefix = "demo";
  c->launcher_ = coord::MakeLocalLauncher(lo);
  coord::GroupSpec spec;
  spec.ranks = o.ranks;
  spec.threads_per_rank = o.threads_per_rank;
  spec.coordinator = c->target_;
  spec.token_file = (dir / "worker.token").string();
  spec.worker_args = o.worker_args;
  if (o.progress) {
    std::cout << "cluster: coordinator on " << c->target_ << " (database " << config.database << "); worker group: mpirun -np "
              << o.ranks << " " << worker << " --coordinator " << c->target_ << " (log " << c->log_ << ")\n" << std::flush;
  }
  auto group = c->launcher_->Launch(spec);
  if (!group.ok()) return group.status().WithContext("cannot start " + lo.mpirun);
  c->group_ = group->id;
  return c;
}

void LocalCluster::Stop() {
  if (!group_.empty() && launcher_) {
    (void)launcher_->Cancel(group_);  // SIGUSR1: the workers hand their tasks back and exit 4
    const auto until = Clock::now() + 60s;
    while (Clock::now() < until) {
      auto groups = launcher_->List();
      if (!groups.ok() || std::none_of(groups->begin(), groups->end(), [&](const coord::LaunchedGroup& g) {
            return g.id == group_ && g.state != coord::GroupState::kEnded;
          })) {
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  group_.clear();
  launcher_.reset();  // a group still running after 60 s is killed here
  if (server_) server_->Shutdown();
  if (handlers_installed_) {
    for (int i = 0; i < 3; ++i) sigaction(kStopSignals[i], &saved_handlers_[i], nullptr);
    handlers_installed_ = false;
  }
}

LocalCluster::~LocalCluster() { Stop(); }

Status LocalCluster::Follow(const std::vector<int64_t>& jobs) {
  // A line whenever a task is leased or finishes.
  std::set<std::pair<int64_t, int>> seen;  // (task id, state)
  Status s;
  while (true) {
    if (g_stop_requested) return Aborted("stopped by a signal: the worker group hands its tasks back and exits");
    bool active = false;
    int done = 0;
    for (int64_t id : jobs) {
      v1::Job job;
      if (!(s = client_->GetJob(id, &job)).ok()) return s;
      if (job.state() == v1::JOB_STATE_FAILED || job.state() == v1::JOB_STATE_CANCELLED) {
        return InternalError("job " + std::to_string(id) + " (" + job.name() + ") failed: " + job.error() + " (see " + log_ + ")");
      }
      active = active || job.state() != v1::JOB_STATE_SUCCEEDED;
      done += job.state() == v1::JOB_STATE_SUCCEEDED;
      for (const v1::TaskStatus& t : job.tasks()) {
        if (t.state() != v1::TASK_STATE_LEASED && t.state() != v1::TASK_STATE_SUCCEEDED) continue;
        if (!seen.insert({t.task_id(), int(t.state())}).second || !options_.progress) continue;
        std::string what = coord::TaskKindName(t.kind());
        if (t.kind() == v1::TASK_KIND_GENERATE || t.kind() == v1::TASK_KIND_EVALUATE) what += " " + std::to_string(t.shard_index());
        if (t.state() == v1::TASK_STATE_LEASED) {
          std::cout << "  " << job.name() << ": " << what << " on rank " << t.worker().rank() << " of group "
                    << t.worker().group_id() << (t.attempt() > 1 ? " (attempt " + std::to_string(t.attempt()) + ")" : "") << "\n";
        } else {
          std::cout << "  " << job.name() << ": " << what << " done" << (t.message().empty() ? "" : ": " + t.message());
          if (t.kind() == v1::TASK_KIND_AGGREGATE && jobs.size() > 2) std::cout << " (" << done << " of " << jobs.size() << " runs finished)";
          std::cout << "\n";
        }
        std::cout << std::flush;
      }
    }
    if (!active) return Status::Ok();
    if (auto groups = launcher_->List(); groups.ok()) {
      for (const coord::LaunchedGroup& g : *groups) {
        if (g.id != group_ || g.state != coord::GroupState::kEnded) continue;
        group_.clear();
        return InternalError("the worker group exited with " + g.detail + " before the jobs finished (see " + log_ + ")");
      }
    }
    std::this_thread::sleep_for(200ms);
  }
}

Status RunOnLocalCluster(const LocalClusterOptions& o, const std::vector<LocalExperiment>& experiments,
                         std::vector<LocalExperimentResult>* results) {
  auto cluster = LocalCluster::Start(o);
  if (!cluster.ok()) return cluster.status();
  coord::CoordinatorClient& client = (*cluster)->client();
  Status s;
  std::vector<int64_t> jobs;
  for (const LocalExperiment& e : experiments) {
    std::ifstream in(e.yaml_file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return NotFound(e.yaml_file + ": cannot read the experiment");
    v1::SubmitExperimentRequest req;
    req.mutable_experiment()->set_experiment_yaml(text.str());
    req.mutable_experiment()->set_samples(e.samples);
    v1::SubmitResponse resp;
    s = client.SubmitExperiment(req, &resp);
    if (!s.ok() || resp.job_ids_size() != 1) return s.ok() ? InternalError("submit: no job id") : s.WithContext(e.yaml_file);
    jobs.push_back(resp.job_ids(0));
  }
  if (!(s = (*cluster)->Follow(jobs)).ok()) return s;

  // Collect the results before stopping the coordinator.
  results->clear();
  for (int64_t id : jobs) {
    v1::Job job;
    if (!(s = client.GetJob(id, &job)).ok()) break;
    LocalExperimentResult r;
    r.name = job.name();
    r.output_dir = job.output_dir();
    r.samples_dir = run_layout::SamplesRoot(job.output_dir());
    r.result_json = run_layout::Result(job.output_dir());
    for (v1::TaskKind k : {v1::TASK_KIND_TRAIN, v1::TASK_KIND_GENERATE, v1::TASK_KIND_AGGREGATE}) {
      v1::QueryResultsRequest q;
      q.set_job_id(id);
      q.set_kind(k);
      v1::QueryResultsResponse rows;
      if (!(s = client.QueryResults(q, &rows)).ok()) break;
      for (const v1::ResultRow& row : rows.rows()) {
        for (const auto& [name, value] : row.metrics()) {
          if (k == v1::TASK_KIND_TRAIN) r.train[name] = value;
          else if (k == v1::TASK_KIND_GENERATE) r.generate[name] += value;
          else r.aggregate[name] = value;
        }
        if (k == v1::TASK_KIND_TRAIN && row.artifacts_size() > 0) r.checkpoint = row.artifacts(0);
      }
    }
    results->push_back(std::move(r));
  }
  return s;
}

Status RunDemoStagesOnCluster(const std::string& out, const std::vector<std::string>& families,
                              const std::vector<std::string>& experiment_files, int samples, bool wav) {
  if (families.size() != experiment_files.size()) return InvalidArgument("families: one experiment file per family");
  LocalClusterOptions o;
  o.work_dir = (fs::path(out) / "cluster").string();
  o.worker_args = {"--bars", "8", "--max-tokens", "1500", "--top-p", "0.95"};
  if (wav) o.worker_args.push_back("--wav");
  std::vector<LocalExperiment> experiments;
  for (const std::string& f : experiment_files) experiments.push_back({f, samples});
  std::vector<LocalExperimentResult> results;
  Status s = RunOnLocalCluster(o, experiments, &results);
  if (!s.ok()) return s;
  if (results.size() != families.size()) return InternalError("cluster: " + std::to_string(results.size()) + " results for " +
                                                              std::to_string(families.size()) + " experiments");
  for (size_t i = 0; i < families.size(); ++i) {
    const fs::path dest = fs::path(out) / "samples" / families[i];
    std::error_code ec;
    fs::remove_all(dest, ec);
    fs::create_directories(dest, ec);
    if (ec) return IoError(dest.string() + ": cannot create: " + ec.message());
    int copied = 0;
    for (const auto& e : fs::recursive_directory_iterator(results[i].samples_dir, ec)) {
      if (!e.is_regular_file()) continue;
      fs::copy_file(e.path(), dest / e.path().filename(), fs::copy_options::overwrite_existing, ec);
      if (ec) return IoError(e.path().string() + ": cannot copy to " + dest.string() + ": " + ec.message());
      copied += e.path().extension() == ".mid";
    }
    const auto& g = results[i].generate;
    const double tokens = g.count("new_tokens") ? g.at("new_tokens") : 0, secs = g.count("generate_seconds") ? g.at("generate_seconds") : 0;
    std::printf("%s: %d pieces -> %s (%.0f tokens in %.2f s of generation, %.0f tokens/s over the ranks' tasks)\n",
                families[i].c_str(), copied, dest.string().c_str(), tokens, secs, tokens / std::max(1e-9, secs));
  }
  std::fflush(stdout);
  return Status::Ok();
}

}  // namespace cadenza
