// The worker agent: rank 0 registers the group and leases training tasks; every round it tells all ranks the next
// action over the communicator (train together, work alone, stop); each rank leases generate/evaluate/aggregate/
// score/probe tasks itself. The coordinator is reached through coord::WorkerClient (gRPC in production, a fake in
// tests/unit/worker/agent_test.cc); training runs through RunTraining, whose callback feeds the progress reports.
#include "worker/agent.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "coordinator/convert.h"
#include "core/experiment_config.h"
#include "core/model/trainer.h"
#include "core/run_layout.h"
#include "worker/gradient_reducer.h"
#include "worker/task_paths.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

enum Action { kWorkAlone = 0, kTrain = 1, kExit = 2 };

// The round header of the rank protocol, one allreduce (sum) per round: rank 0 writes the action, the size of the
// training task it broadcasts next and a new group id after re-registering (the other ranks write 0 there); every
// rank adds 1 to `stopping` when it saw a stop signal and to `busy` when it ran a task in the previous round.
struct RoundHeader {
  double action = kWorkAlone;
  double payload_bytes = 0;
  double stopping = 0;
  double busy = 0;
  double new_group_id = 0;

  static constexpr int kFields = 5;
  // Summed over every rank of `comm`, field by field.
  void AllreduceSum(Communicator& comm, const std::function<void(std::unique_ptr<CollectiveRequest>)>& await) {
    double v[kFields] = {action, payload_bytes, stopping, busy, new_group_id};
    await(comm.StartAllreduceSum(v, kFields));
    action = v[0];
    payload_bytes = v[1];
    stopping = v[2];
    busy = v[3];
    new_group_id = v[4];
  }
};

bool Transient(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

// Errors that another attempt cannot fix: the task itself is wrong (or its paths leave the roots).
bool Permanent(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kFailedPrecondition ||
         s.code() == StatusCode::kPermissionDenied;
}


class Agent {
 public:
  Agent(const AgentOptions& o, Communicator& comm, coord::WorkerClient& client, std::atomic<bool>* stop,
        std::atomic<int>* signo)
      : o_(o), comm_(comm), rank_(comm.rank()), world_(comm.world()), signal_stop_(stop), signo_(signo), client_(&client) {}

  int Run();

 private:
  void Log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  // Waits for a collective without a deadline (an idle rank may wait for a long task of another), sleeping
  // between polls so that waiting ranks leave the cores to the working ones.
  void Await(std::unique_ptr<CollectiveRequest> r) {
    while (!r->Test()) std::this_thread::sleep_for(1ms);
  }
  bool Stopping() const { return signal_stop_->load(); }
  Status Register(v1::RegisterWorkerGroupResponse* resp);
  int64_t Reregister(v1::RegisterWorkerGroupResponse* resp);
  Status ShareRoots(const v1::RegisterWorkerGroupResponse& resp);
  void HeartbeatLoop();
  void ProgressCheck();
  void OnTrainProgress(const TrainStepProgress& p);
  // Reports that must arrive: retried while the coordinator is away (e.g. restarting).
  // `lease_next`: the completion also leases this rank's next task (one round trip instead of two), kept in next_.
  void Complete(const v1::Task& t, const TaskOutcome& r, bool lease_next = false);
  // `preempted`: handed back because this group was told to stop (the retry does not spend the task's budget).
  void Fail(const v1::Task& t, const std::string& error, bool retryable, const std::string& checkpoint = "",
            bool preempted = false);
  template <typename Call>
  Status Retrying(const char* what, Call call);
  void SetRunning(const v1::Task* t);
  bool LeaseLocal(v1::Task* task, int64_t* retry_after_ms);
  // The kinds this rank leases on its own (rank 0: any; the others: everything but training).
  void AddLocalKinds(google::protobuf::RepeatedField<int>* kinds) const;
  // A task leased with the last completion, or through LeaseLocal.
  bool TakeNext(v1::Task* task, int64_t* retry_after_ms);
  // Hands a task leased with a completion back to the coordinator (this rank will not run it).
  void HandBackNext(const std::string& why);
  void RunLocal(const v1::Task& t);
  void RunTrain(const v1::Task& t);
  v1::WorkerRef Ref() const {
    v1::WorkerRef r;
    r.set_group_id(group_id_.load());
    r.set_rank(rank_);
    return r;
  }

  const AgentOptions& o_;
  Communicator& comm_;
  const int rank_, world_;
  std::atomic<bool>* signal_stop_;
  std::atomic<int>* signo_;
  coord::WorkerClient* const client_;
  std::atomic<int64_t> group_id_{0};
  std::atomic<bool> reregister_{false};  // a heartbeat got NOT_FOUND: the coordinator lost the group (new database)
  int64_t period_ms_ = 1000;
  coord::PathPolicy paths_;  // the coordinator's roots (from the latest registration): every task is checked again

  std::mutex mu_;
  std::optional<v1::Task> running_;  // the task this rank runs (its lease is renewed by the heartbeats)
  std::optional<v1::Task> next_;     // leased with the last completion, not started yet (renewed as running_)
  // Rank 0, while training: where the trainer stands (its progress callback), reported by the heartbeat thread.
  std::optional<TrainStepProgress> train_progress_;
  std::string unreported_checkpoint_;  // written since the last progress report that reached the coordinator
  std::atomic<bool> task_stop_{false};   // the coordinator said: stop the running task (cancelled, lease lost)
  std::atomic<bool> train_stop_{false};  // the trainer's stop flag: a signal or task_stop_
  std::atomic<bool> quit_{false};
};

void Agent::Log(const char* fmt, ...) {
  if (o_.quiet) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "cadenza-worker: rank %d of %d: %s\n", rank_, world_, buf);
  std::fflush(stderr);
}

template <typename Call>
Status Agent::Retrying(const char* what, Call call) {
  const auto until = Clock::now() + 300s;
  Status s;
  for (int attempt = 0;; ++attempt) {
    s = call();
    if (!Transient(s) || Clock::now() > until) break;
    if (attempt == 0) Log("%s: %s; retrying until the coordinator answers", what, s.message().c_str());
    std::this_thread::sleep_for(200ms);
  }
  return s;
}

Status Agent::Register(v1::RegisterWorkerGroupResponse* resp) {
  Status s = client_->WaitHealthy(o_.connect_timeout_ms);
  if (!s.ok()) return s;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  v1::RegisterWorkerGroupRequest req;
  req.mutable_group()->set_host(host);
  req.mutable_group()->set_ranks(world_);
  req.mutable_group()->set_threads_per_rank(o_.threads);
  req.mutable_group()->set_device("cpu");
  std::string name = o_.name;
  if (name.empty()) {
    const char* job = std::getenv("SLURM_JOB_ID");
    name = job ? std::string("slurm-") + job : std::string(host) + ":" + std::to_string(getpid());
  }
  req.mutable_group()->set_name(name);
  return client_->RegisterWorkerGroup(req, resp);
}

// Rank 0, between rounds: the coordinator answered NOT_FOUND for the group (it runs on a new database).
int64_t Agent::Reregister(v1::RegisterWorkerGroupResponse* resp) {
  Status s = Register(resp);
  if (!s.ok()) {
    Log("re-registering: %s", s.message().c_str());
    return 0;
  }
  Log("the coordinator did not know group %lld any more: registered again as group %lld", (long long)group_id_.load(),
      (long long)resp->group_id());
  return resp->group_id();
}

// Every rank, after each registration: the roots rank 0 got in `resp` (ignored on the other ranks) replace this
// rank's, so a coordinator restarted with other roots is obeyed from its first task on.
Status Agent::ShareRoots(const v1::RegisterWorkerGroupResponse& resp) {
  std::string roots;  // a RegisterWorkerGroupResponse holding only output_root and data_roots
  if (rank_ == 0) {
    v1::RegisterWorkerGroupResponse only_roots;
    only_roots.set_output_root(resp.output_root());
    *only_roots.mutable_data_roots() = resp.data_roots();
    roots = only_roots.SerializeAsString();
  }
  int64_t bytes = int64_t(roots.size());
  Await(comm_.StartBroadcast(&bytes, sizeof bytes, 0));
  roots.resize(size_t(bytes));
  if (bytes > 0) Await(comm_.StartBroadcast(roots.data(), roots.size(), 0));
  v1::RegisterWorkerGroupResponse only_roots;
  if (!only_roots.ParseFromString(roots)) return InternalError("the broadcast roots do not parse");
  paths_.output_root = only_roots.output_root();
  paths_.data_roots.assign(only_roots.data_roots().begin(), only_roots.data_roots().end());
  if (rank_ == 0 && !paths_.empty()) {
    std::string data;
    for (const std::string& d : paths_.data_roots) data += (data.empty() ? "" : ", ") + d;
    Log("tasks are checked again here: run folders inside %s, datasets inside %s",
        paths_.output_root.empty() ? "(anywhere)" : paths_.output_root.c_str(), data.empty() ? "(anywhere)" : data.c_str());
  }
  return Status::Ok();
}

void Agent::SetRunning(const v1::Task* t) {
  std::lock_guard<std::mutex> lock(mu_);
  if (t) running_ = *t;
  else running_.reset();
  task_stop_ = false;
  train_stop_ = Stopping();
}

void Agent::HeartbeatLoop() {
  auto last = Clock::now() - std::chrono::milliseconds(period_ms_);
  bool warned = false;
  while (!quit_.load()) {
    std::this_thread::sleep_for(20ms);
    if (Stopping()) train_stop_ = true;
    if (Clock::now() - last < std::chrono::milliseconds(period_ms_)) continue;
    last = Clock::now();
    v1::HeartbeatRequest req;
    *req.mutable_worker() = Ref();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (running_) {
        req.add_running()->set_task_id(running_->task_id());
        req.mutable_running(0)->set_attempt(running_->attempt());
      }
    }
    v1::HeartbeatResponse resp;
    Status s = client_->Heartbeat(req, &resp);
    if (s.code() == StatusCode::kNotFound) reregister_ = true;
    if (!s.ok()) {
      if (!warned && !Transient(s)) Log("heartbeat: %s", s.message().c_str());
      warned = !Transient(s);
      continue;
    }
    warned = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const v1::TaskAttempt& a : resp.stop()) {
        if (running_ && running_->task_id() == a.task_id() && running_->attempt() == a.attempt()) {
          Log("the coordinator stopped task %lld (attempt %d): cancelled or lease lost", (long long)a.task_id(), a.attempt());
          task_stop_ = true;
          train_stop_ = true;
        }
      }
    }
    if (rank_ == 0) ProgressCheck();
  }
}

// Rank 0, on the training thread: the trainer's callback after each step and each checkpoint.
void Agent::OnTrainProgress(const TrainStepProgress& p) {
  std::lock_guard<std::mutex> lock(mu_);
  train_progress_ = p;
  if (!p.checkpoint.empty()) unreported_checkpoint_ = p.checkpoint;
}

// Rank 0 while training (heartbeat thread): reports the step and, when a new checkpoint was written since the last
// report that arrived, its path (a retry resumes from it).
void Agent::ProgressCheck() {
  v1::ReportProgressRequest req;
  std::string checkpoint;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_ || running_->kind() != v1::TASK_KIND_TRAIN || !train_progress_) return;
    req.mutable_task()->set_task_id(running_->task_id());
    req.mutable_task()->set_attempt(running_->attempt());
    const TrainStepProgress& p = *train_progress_;
    req.set_step(p.step);
    if (p.tokens_per_second > 0) (*req.mutable_metrics())["tokens_per_second"] = p.tokens_per_second;  // /metrics
    req.set_fraction(p.steps > 0 ? std::min(1.0, double(p.step) / p.steps) : 0.0);
    req.set_message("step " + std::to_string(p.step) + " of " + std::to_string(p.steps));
    checkpoint = unreported_checkpoint_;
  }
  *req.mutable_worker() = Ref();
  if (!checkpoint.empty()) req.set_checkpoint(checkpoint);
  v1::ReportProgressResponse resp;
  Status s = client_->ReportProgress(req, &resp);
  if (s.ok() && !checkpoint.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (unreported_checkpoint_ == checkpoint) unreported_checkpoint_.clear();
  }
  if (s.ok() && resp.stop()) {
    task_stop_ = true;
    train_stop_ = true;
  }
}

void Agent::Complete(const v1::Task& t, const TaskOutcome& r, bool lease_next) {
  v1::CompleteTaskRequest req;
  if (lease_next && !Stopping()) {
    req.set_lease_next(true);
    AddLocalKinds(req.mutable_next_kinds());
  }
  *req.mutable_worker() = Ref();
  req.mutable_task()->set_task_id(t.task_id());
  req.mutable_task()->set_attempt(t.attempt());
  for (const auto& [k, v] : r.metrics) (*req.mutable_result()->mutable_metrics())[k] = v;
  for (const auto& a : r.artifacts) req.mutable_result()->add_artifacts(a);
  req.mutable_result()->set_checkpoint(r.checkpoint);
  req.mutable_result()->set_summary(r.summary);
  v1::CompleteTaskResponse resp;
  Status s = Retrying("CompleteTask", [&] { return client_->CompleteTask(req, &resp); });
  if (!s.ok()) {
    Log("task %lld (%s): the completion was refused: %s", (long long)t.task_id(), coord::TaskKindName(t.kind()), s.message().c_str());
  } else {
    Log("task %lld (%s, attempt %d) done%s: %s", (long long)t.task_id(), coord::TaskKindName(t.kind()), t.attempt(),
        resp.duplicate() ? " (duplicate report)" : !resp.accepted() ? " (job cancelled: dropped)" : "", r.summary.c_str());
    if (resp.next_leased()) {
      Log("task %lld (%s) leased with that completion", (long long)resp.next().task_id(), coord::TaskKindName(resp.next().kind()));
      next_ = resp.next();
      SetRunning(&*next_);  // the heartbeats renew its lease while this rank waits for the group's next round
    }
  }
}

void Agent::AddLocalKinds(google::protobuf::RepeatedField<int>* kinds) const {
  if (rank_ == 0) return;  // empty: any kind
  for (v1::TaskKind k : {v1::TASK_KIND_GENERATE, v1::TASK_KIND_EVALUATE, v1::TASK_KIND_AGGREGATE, v1::TASK_KIND_SCORE,
                         v1::TASK_KIND_PROBE}) {
    kinds->Add(k);
  }
}

bool Agent::TakeNext(v1::Task* task, int64_t* retry_after_ms) {
  if (!next_) return LeaseLocal(task, retry_after_ms);
  *task = *next_;
  next_.reset();
  *retry_after_ms = 0;
  return true;
}

void Agent::HandBackNext(const std::string& why) {
  if (!next_) return;
  Fail(*next_, why, true, "", true);
  next_.reset();
  SetRunning(nullptr);
}

void Agent::Fail(const v1::Task& t, const std::string& error, bool retryable, const std::string& checkpoint,
                 bool preempted) {
  v1::FailTaskRequest req;
  *req.mutable_worker() = Ref();
  req.mutable_task()->set_task_id(t.task_id());
  req.mutable_task()->set_attempt(t.attempt());
  req.set_error(error);
  req.set_retryable(retryable);
  req.set_checkpoint(checkpoint);
  req.set_preempted(preempted);
  v1::FailTaskResponse resp;
  Status s = Retrying("FailTask", [&] { return client_->FailTask(req, &resp); });
  Log("task %lld (%s, attempt %d) failed%s: %s%s", (long long)t.task_id(), coord::TaskKindName(t.kind()), t.attempt(),
      s.ok() ? (resp.will_retry() ? " (will be retried)" : " (no retry)") : "", error.c_str(),
      s.ok() ? "" : ("; the report was refused: " + s.message()).c_str());
}

bool Agent::LeaseLocal(v1::Task* task, int64_t* retry_after_ms) {
  v1::LeaseTaskRequest req;
  *req.mutable_worker() = Ref();
  AddLocalKinds(req.mutable_kinds());
  v1::LeaseTaskResponse resp;
  Status s = client_->LeaseTask(req, &resp);
  if (s.code() == StatusCode::kNotFound) reregister_ = true;
  if (!s.ok()) {
    if (!Transient(s)) Log("LeaseTask: %s", s.message().c_str());
    *retry_after_ms = 500;
    return false;
  }
  if (!resp.leased()) {
    *retry_after_ms = resp.retry_after_ms() > 0 ? resp.retry_after_ms() : 500;
    return false;
  }
  *task = resp.task();
  return true;
}

void Agent::RunLocal(const v1::Task& t) {
  SetRunning(&t);
  Log("task %lld: %s (job %lld %s, attempt %d, shard %d of %d)", (long long)t.task_id(), coord::TaskKindName(t.kind()),
      (long long)t.job_id(), t.experiment_name().c_str(), t.attempt(), t.shard_index() + 1, std::max(1, t.shard_count()));
  StatusOr<TaskOutcome> r = InvalidArgument("task.kind: " + std::string(coord::TaskKindName(t.kind())) + " is not run alone by a rank");
  // The experiment of a score or probe task: its YAML, with the task's dataset (the coordinator's resolved path).
  auto experiment = [&t]() -> StatusOr<ExperimentConfig> {
    auto config = ParseExperimentConfig(t.experiment_yaml(), "task " + std::to_string(t.task_id()) + ": experiment_yaml");
    if (!config.ok()) return config.status();
    if (!t.dataset().empty()) config->dataset = t.dataset();
    if (!t.output_dir().empty()) config->out = t.output_dir();
    return config;
  };
  try {  // a LibTorch error (c10::Error) inside a runner fails the task with its message; the rank lives on
    if (Status paths = CheckTaskPaths(t, paths_); !paths.ok()) {
      r = paths;  // nothing read or written: refused with the path
    } else if (t.kind() == v1::TASK_KIND_GENERATE) {
      std::vector<uint64_t> seeds(t.seeds().begin(), t.seeds().end());
      std::string note;
      SampleOptions sample = SampleOptionsFor(t.experiment_yaml(), o_.sample, &note);  // the job's generate:
      if (!t.dataset().empty()) sample.dataset = t.dataset();  // primers come from the job's dataset
      if (!note.empty()) Log("task %lld: %s", (long long)t.task_id(), note.c_str());
      r = RunGenerateTask(t.checkpoint(), seeds, t.sample_begin(), t.samples_dir(), sample);
    } else if (t.kind() == v1::TASK_KIND_EVALUATE) {
      r = RunEvaluateTask(t.samples_dir(), t.dataset(), t.reference_split(), t.report_path(), o_.eval_jobs);
    } else if (t.kind() == v1::TASK_KIND_AGGREGATE) {
      std::vector<std::string> inputs(t.inputs().begin(), t.inputs().end());
      r = RunAggregateTask(inputs, run_layout::SamplesRoot(t.output_dir()), t.dataset(), t.reference_split(),
                           t.report_path(), o_.eval_jobs);
    } else if (t.kind() == v1::TASK_KIND_SCORE || t.kind() == v1::TASK_KIND_PROBE) {
      auto config = experiment();
      if (!config.ok()) {
        r = config.status();
      } else if (t.checkpoint().empty()) {
        r = InvalidArgument("task.checkpoint: a " + std::string(coord::TaskKindName(t.kind())) + " task needs the trained checkpoint");
      } else if (t.report_path().empty()) {
        r = InvalidArgument("task.report_path: a " + std::string(coord::TaskKindName(t.kind())) + " task needs where to write its report");
      } else if (t.kind() == v1::TASK_KIND_SCORE) {
        r = RunScoreTask(t.checkpoint(), *config, t.report_path());
      } else {
        r = RunProbeTask(t.checkpoint(), *config, t.report_path());
      }
    }
  } catch (const std::exception& e) {
    r = InternalError(std::string(coord::TaskKindName(t.kind())) + " task: " + e.what());
  }
  if (r.ok()) {
    Complete(t, *r, /*lease_next=*/true);
  } else {
    Fail(t, r.status().message(), !Permanent(r.status()));
  }
  SetRunning(next_ ? &*next_ : nullptr);
}

// Every rank: the broadcast task, data-parallel. Rank 0 reports.
void Agent::RunTrain(const v1::Task& t) {
  SetRunning(rank_ == 0 ? &t : nullptr);
  if (rank_ == 0) {
    Log("task %lld: train job %lld %s (attempt %d%s) on %d rank(s)", (long long)t.task_id(), (long long)t.job_id(),
        t.experiment_name().c_str(), t.attempt(), t.resume() ? ", resuming from its checkpoint" : "", world_);
  }
  auto run = [&]() -> StatusOr<TrainingRun> {
    CADENZA_RETURN_IF_ERROR(CheckTaskPaths(t, paths_));  // before the trainer creates or locks the run folder
    auto config = ParseExperimentConfig(t.experiment_yaml(), "task " + std::to_string(t.task_id()) + ": experiment_yaml");
    if (!config.ok()) return config.status();
    if (!t.output_dir().empty()) config->out = t.output_dir();
    if (!t.dataset().empty()) config->dataset = t.dataset();
    if (t.seed() != 0) config->train.seed = t.seed();
    ReducerOptions ro;
    ro.bucket_bytes = size_t(o_.bucket_mb * 1024 * 1024);
    GradientReducer reducer(comm_, ro);
    TrainOptions to;
    to.resume = t.resume();
    to.progress = !o_.quiet;
    to.stop_requested = &train_stop_;
    to.threads = o_.threads;
    return RunTraining(*config, &reducer, [this](const TrainStepProgress& p) { OnTrainProgress(p); }, to);
  };
  StatusOr<TrainingRun> trained = run();
  if (rank_ == 0) {
    const std::string latest = run_layout::LatestCheckpoint(t.output_dir());
    if (!trained.ok()) {
      Fail(t, trained.status().message(), !Permanent(trained.status()), fs::exists(latest) ? latest : "");
    } else if (trained->summary.interrupted) {
      const TrainSummary& r = trained->summary;
      if (task_stop_) {
        Log("task %lld: training stopped at step %lld at the coordinator's request", (long long)t.task_id(), (long long)r.steps);
      } else {
        Fail(t, "stopped by signal " + std::to_string(signo_->load()) + " at step " + std::to_string(r.steps) +
                    ": resume from checkpoint " + latest,
             true, latest, /*preempted=*/true);
      }
    } else {
      const TrainSummary& r = trained->summary;
      TaskOutcome o;
      const std::string best = run_layout::BestCheckpoint(t.output_dir());
      o.checkpoint = fs::exists(best) ? best : latest;
      o.metrics["val_nll"] = r.best_val_nll;
      o.metrics["val_perplexity"] = r.best_val_perplexity;
      o.metrics["val_nll_per_bar"] = r.best_val_nll_per_bar;
      o.metrics["train_loss"] = r.last_train_loss;
      o.metrics["steps"] = double(r.steps);
      o.metrics["parameters"] = double(r.parameters);
      o.metrics["tokens_per_second"] = r.tokens_per_second;
      o.metrics["train_seconds"] = r.seconds;
      o.metrics["ranks"] = world_;
      // What the run trained on (the train task's data/... and train/... metrics).
      AddTrainDataMetrics(trained->train_pieces, trained->train_tokens, trained->config, r.steps, &o.metrics);
      for (const auto& [name, value] : r.sample_metrics) o.metrics[name] = value;  // structure at the last validation
      o.artifacts = {o.checkpoint, run_layout::MetricsCsv(t.output_dir()), run_layout::ConfigYaml(t.output_dir())};
      char line[200];
      std::snprintf(line, sizeof line, "%lld steps on %d rank(s), best val NLL/token %.4f%s", (long long)r.steps, world_,
                    r.best_val_nll, r.early_stopped ? " (early stop)" : "");
      o.summary = line;
      Complete(t, o);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    train_progress_.reset();
    unreported_checkpoint_.clear();
  }
  SetRunning(nullptr);
}

int Agent::Run() {
  // Rank 0 registers; every rank learns the group id, the heartbeat period and the coordinator's roots from it.
  int64_t reg[3] = {0, 1000, 0};
  v1::RegisterWorkerGroupResponse resp;
  if (rank_ == 0) {
    Status s = Register(&resp);
    if (s.ok()) {
      reg[0] = resp.group_id();
      reg[1] = resp.heartbeat_period_ms();
      reg[2] = resp.lease_duration_ms();
      Log("registered worker group %lld (%d rank(s), %d thread(s) each) with %s: heartbeat every %lld ms, leases of %lld ms",
          (long long)reg[0], world_, o_.threads, o_.client.target.c_str(), (long long)reg[1], (long long)reg[2]);
    } else {
      std::fprintf(stderr, "cadenza-worker: error: cannot register with %s: %s\n", o_.client.target.c_str(), s.message().c_str());
    }
  }
  Await(comm_.StartBroadcast(reg, sizeof reg, 0));
  if (reg[0] <= 0) return 1;
  if (Status s = ShareRoots(resp); !s.ok()) {
    Log("error: %s", s.message().c_str());
    return 1;
  }
  group_id_ = reg[0];
  period_ms_ = std::max<int64_t>(10, reg[1]);
  std::thread heartbeats([this] { HeartbeatLoop(); });

  int exit_code = 0;
  bool busy = true;
  auto last_busy = Clock::now();
  while (true) {
    // Rank 0 decides the action of this round; every rank adds its stop flag and whether it worked.
    RoundHeader h;
    h.stopping = Stopping() ? 1 : 0;
    h.busy = busy ? 1 : 0;
    v1::RegisterWorkerGroupResponse again;
    if (rank_ == 0 && reregister_.load() && !Stopping()) {
      h.new_group_id = double(Reregister(&again));
      if (h.new_group_id > 0) group_id_ = int64_t(h.new_group_id);
    }
    std::string payload;
    std::optional<v1::Task> mine;
    int64_t retry_after_ms = 0;
    if (rank_ == 0 && !Stopping()) {
      if (o_.max_idle_seconds > 0 && Clock::now() - last_busy > std::chrono::duration<double>(o_.max_idle_seconds)) {
        h.action = kExit;
      } else {
        v1::Task t;
        if (TakeNext(&t, &retry_after_ms)) {  // rank 0 may lease any kind: a training task goes to the group
          // Heartbeats renew it from now on: the collective below waits until every other rank has finished its
          // own task (a score task runs for a minute on a real corpus), longer than a lease lasts.
          SetRunning(&t);
          if (t.kind() == v1::TASK_KIND_TRAIN) {
            // An attempt that died before its first checkpoint starts afresh.
            t.set_resume(t.resume() && fs::exists(run_layout::LatestCheckpoint(t.output_dir())));
            payload = t.SerializeAsString();
            h.action = kTrain;
            h.payload_bytes = double(payload.size());
          } else {
            mine = t;
          }
        }
      }
    }
    h.AllreduceSum(comm_, [this](std::unique_ptr<CollectiveRequest> r) { Await(std::move(r)); });
    if (h.new_group_id > 0) {  // every rank takes the new group id and roots before anyone calls the coordinator again
      group_id_ = int64_t(h.new_group_id);
      reregister_ = false;
      if (Status s = ShareRoots(again); !s.ok()) {
        Log("error: %s", s.message().c_str());
        exit_code = 1;
        break;
      }
    }
    if (h.busy > 0 || h.action != kWorkAlone) last_busy = Clock::now();
    if (h.stopping > 0) {  // a signal reached some rank: hand back what rank 0 just leased, then every rank stops
      if (rank_ == 0) {
        v1::Task t;
        if (!payload.empty() && t.ParseFromString(payload)) Fail(t, "the worker group is stopping (signal)", true, "", true);
        if (mine) Fail(*mine, "the worker group is stopping (signal)", true, "", true);
      }
      HandBackNext("the worker group is stopping (signal)");
      exit_code = kExitStoppedBySignal;
      break;
    }
    if (h.action == kExit) {
      if (rank_ == 0) Log("no task for %.0f s: exiting", o_.max_idle_seconds);
      break;
    }
    if (h.action == kTrain) {
      HandBackNext("handed back: this rank joins its group's training");
      payload.resize(size_t(h.payload_bytes));
      Await(comm_.StartBroadcast(payload.data(), payload.size(), 0));
      v1::Task t;
      if (!t.ParseFromString(payload)) {
        Log("error: the broadcast training task does not parse");
        exit_code = 1;
        break;
      }
      RunTrain(t);
      busy = true;
      last_busy = Clock::now();
      continue;
    }
    // Work alone: rank 0 runs what it leased; the others lease their own.
    if (rank_ != 0 && !Stopping()) {
      v1::Task t;
      if (TakeNext(&t, &retry_after_ms)) mine = t;
    }
    busy = mine.has_value();
    if (mine) {
      RunLocal(*mine);
      last_busy = Clock::now();
    } else {
      const auto until = Clock::now() + std::chrono::milliseconds(std::clamp<int64_t>(retry_after_ms, 10, 1000));
      while (Clock::now() < until && !Stopping()) std::this_thread::sleep_for(5ms);
    }
  }
  HandBackNext("the worker group is exiting");
  quit_ = true;
  heartbeats.join();
  if (exit_code == kExitStoppedBySignal && rank_ == 0) {
    Log("stopped by signal %d: checkpointed and handed back; exit code %d", signo_->load(), kExitStoppedBySignal);
  }
  return exit_code;
}

}  // namespace

int RunAgent(const AgentOptions& options, Communicator& comm, coord::WorkerClient& client, std::atomic<bool>* stop,
             std::atomic<int>* signal_number) {
  Agent agent(options, comm, client, stop, signal_number);
  return agent.Run();
}

int RunAgent(const AgentOptions& options, Communicator& comm, std::atomic<bool>* stop, std::atomic<int>* signal_number) {
  std::unique_ptr<coord::WorkerClient> client = coord::ConnectWorkerClient(options.client);  // one channel per rank
  return RunAgent(options, comm, *client, stop, signal_number);
}

}  // namespace cadenza
