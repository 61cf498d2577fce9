// The worker agent's rank protocol (worker/agent.cc) without a network or MPI: N ranks on threads
// (MakeThreadWorld) serve a fake coordinator client (FakeCoordinator below: a scripted task queue that records every
// call). Registration, leases, heartbeats, training progress from the trainer's callback, stop notices (heartbeat or
// progress answer), completion (retried while the coordinator is away), failure, the hand-back on a signal and of a
// task leased with a completion when the group trains; a LibTorch-side exception inside training fails the task.
#include "worker/agent.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "coordinator/worker_client.h"
#include "core/experiment_config.h"
#include "core/model/trainer.h"
#include "core/run_layout.h"
#include "core/vocabulary.h"
#include "core/window_source.h"
#include "storage/ingest.h"
#include "tests/unit/storage/storage_test_util.h"
#include "worker/test_communicators.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A coordinator as the agent sees it: tasks leased in queue order (to a rank whose kinds allow them), a stop notice
// for a task on the first heartbeat or in the progress answer after it reported a given step, a group it can forget
// (as a coordinator restarted on a new database does), completions refused while it is "away", and every request kept.
class FakeCoordinator : public coord::WorkerClient {
 public:
  static constexpr int64_t kGroupId = 41;  // the first registration's; each later one gets the next id

  // `only_rank` >= 0: only that rank may lease the task (alone or with a completion).
  void Add(const v1::Task& t, int only_rank = -1) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({t, only_rank});
  }
  // Training is leased only after a completion brought its rank the next task, and a LeaseTask that would lease it
  // while another task runs first waits for that task's report: rank 0 starts training while another rank holds a
  // piggybacked task, whatever the threads' timing.
  void HoldTrainingForAPiggyback() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_training_ = true;
  }
  // A task handed back (FailTask with preempted) is leased again with the next attempt, as the coordinator does.
  void RequeueHandBacks() {
    std::lock_guard<std::mutex> lock(mu_);
    requeue_hand_backs_ = true;
  }
  // The next `n` CompleteTask calls answer UNAVAILABLE and take nothing, as while the coordinator restarts.
  void UnavailableCompletions(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    unavailable_completions_ = n;
  }
  // Progress reports of `task_id` at step >= `step` are answered "stop" (no heartbeat carries a stop notice).
  void AnswerProgressWithStopAfterStep(int64_t task_id, int64_t step) {
    std::lock_guard<std::mutex> lock(mu_);
    stop_answer_after_step_[task_id] = step;
  }
  // The heartbeat after a progress report of `task_id` at step >= `step` tells its rank to stop the task.
  void StopTaskAfterStep(int64_t task_id, int64_t step) {
    std::lock_guard<std::mutex> lock(mu_);
    stop_after_step_[task_id] = step;
  }
  // The `n`-th heartbeat from now, and every call of the group after it, is answered NOT_FOUND until it registers again.
  void ForgetGroupAfterHeartbeats(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    forget_after_ = n;
  }

  Status WaitHealthy(int64_t) override { return Status::Ok(); }
  Status RegisterWorkerGroup(const v1::RegisterWorkerGroupRequest& req, v1::RegisterWorkerGroupResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    registrations_.push_back(req);
    group_ = kGroupId + int64_t(registrations_.size()) - 1;
    resp->set_group_id(group_);
    resp->set_heartbeat_period_ms(10);
    resp->set_lease_duration_ms(60000);
    return Status::Ok();
  }
  Status Heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (req.worker().group_id() != group_) return NotFound("unknown group");
    if (forget_after_ > 0 && --forget_after_ == 0) {
      group_ = 0;
      return NotFound("unknown group (forgotten)");
    }
    ++heartbeats_[{req.worker().group_id(), req.worker().rank()}];
    for (const v1::TaskAttempt& a : req.running()) {
      if (stopping_.count(a.task_id())) *resp->add_stop() = a;
    }
    return Status::Ok();
  }
  Status LeaseTask(const v1::LeaseTaskRequest& req, v1::LeaseTaskResponse* resp) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (req.worker().group_id() != group_) return NotFound("unknown group");
    // Once a completion has brought a rank its next task there is nothing to wait for: that task is reported only
    // after the group's training starts (waiting for it stalled the test until the 60 s limit).
    if (hold_training_ && piggybacked_.empty() && !in_flight_.empty() && req.kinds().empty() && QueuedTraining()) {
      const int reports = reports_;
      reported_.wait_for(lock, 60s, [&] { return reports_ > reports; });
    }
    if (auto t = Take(req.worker().rank(), req.kinds())) {
      resp->set_leased(true);
      *resp->mutable_task() = *t;
    } else {
      resp->set_retry_after_ms(20);
    }
    return Status::Ok();
  }
  Status ReportProgress(const v1::ReportProgressRequest& req, v1::ReportProgressResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    progress_.push_back(req);
    auto stop = stop_after_step_.find(req.task().task_id());
    if (stop != stop_after_step_.end() && req.step() >= stop->second) stopping_.insert(req.task().task_id());
    auto answer = stop_answer_after_step_.find(req.task().task_id());
    if (answer != stop_answer_after_step_.end() && req.step() >= answer->second) {
      resp->set_stop(true);
      ++stop_answers_;
    }
    return Status::Ok();
  }
  Status CompleteTask(const v1::CompleteTaskRequest& req, v1::CompleteTaskResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++complete_calls_;
    if (unavailable_completions_ > 0) {
      --unavailable_completions_;
      return Unavailable("the coordinator is restarting");
    }
    completed_.push_back(req);
    Reported(req.task().task_id());
    resp->set_accepted(true);
    if (req.lease_next()) {
      if (auto t = Take(req.worker().rank(), req.next_kinds())) {
        resp->set_next_leased(true);
        *resp->mutable_next() = *t;
        piggybacked_.push_back(t->task_id());
      }
    }
    return Status::Ok();
  }
  Status FailTask(const v1::FailTaskRequest& req, v1::FailTaskResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    failed_.push_back(req);
    Reported(req.task().task_id());
    resp->set_will_retry(req.retryable());
    if (requeue_hand_backs_ && req.preempted()) {
      auto it = tasks_.find(req.task().task_id());
      if (it != tasks_.end()) {
        it->second.first.set_attempt(req.task().attempt() + 1);
        queue_.push_front(it->second);
      }
    }
    return Status::Ok();
  }

  std::vector<v1::RegisterWorkerGroupRequest> registrations() const { return Copy(registrations_); }
  std::vector<v1::ReportProgressRequest> progress() const { return Copy(progress_); }
  std::vector<v1::CompleteTaskRequest> completed() const { return Copy(completed_); }
  std::vector<v1::FailTaskRequest> failed() const { return Copy(failed_); }
  std::map<int, int> leased_by() const {  // task id -> the rank that leased it
    std::lock_guard<std::mutex> lock(mu_);
    return leased_by_;
  }
  int heartbeats(int64_t group, int rank) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = heartbeats_.find({group, rank});
    return it == heartbeats_.end() ? 0 : it->second;
  }
  int64_t last_step() const {
    std::lock_guard<std::mutex> lock(mu_);
    return progress_.empty() ? -1 : progress_.back().step();
  }
  std::vector<int64_t> piggybacked() const { return Copy(piggybacked_); }  // tasks leased with a completion, in order
  int complete_calls() const {  // every CompleteTask call, refused ones included
    std::lock_guard<std::mutex> lock(mu_);
    return complete_calls_;
  }
  int stop_answers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_answers_;
  }

 private:
  template <typename T>
  std::vector<T> Copy(const std::vector<T>& v) const {
    std::lock_guard<std::mutex> lock(mu_);
    return v;
  }
  std::optional<v1::Task> Take(int rank, const google::protobuf::RepeatedField<int>& kinds) {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      const v1::Task& task = it->first;
      const bool any = kinds.empty();  // rank 0: any kind, training included
      if (!any && std::find(kinds.begin(), kinds.end(), task.kind()) == kinds.end()) continue;
      if (it->second >= 0 && it->second != rank) continue;
      if (hold_training_ && task.kind() == v1::TASK_KIND_TRAIN && piggybacked_.empty()) continue;
      v1::Task t = task;
      tasks_[t.task_id()] = *it;
      queue_.erase(it);
      leased_by_[int(t.task_id())] = rank;
      in_flight_.insert(t.task_id());
      return t;
    }
    return std::nullopt;
  }
  bool QueuedTraining() const {
    return std::any_of(queue_.begin(), queue_.end(), [](const auto& q) { return q.first.kind() == v1::TASK_KIND_TRAIN; });
  }
  void Reported(int64_t task_id) {
    in_flight_.erase(task_id);
    ++reports_;
    reported_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable reported_;                  // a completion or failure arrived
  std::deque<std::pair<v1::Task, int>> queue_;        // (task, the only rank that may lease it or -1)
  std::map<int64_t, std::pair<v1::Task, int>> tasks_;  // every task leased, by id (RequeueHandBacks)
  std::set<int64_t> in_flight_;                       // leased, not yet completed or failed
  int reports_ = 0;
  std::vector<int64_t> piggybacked_;
  bool hold_training_ = false;
  bool requeue_hand_backs_ = false;
  int unavailable_completions_ = 0;
  int complete_calls_ = 0;
  std::map<int64_t, int64_t> stop_answer_after_step_;
  int stop_answers_ = 0;
  std::map<int64_t, int64_t> stop_after_step_;
  std::set<int64_t> stopping_;
  int64_t group_ = 0;      // the group this coordinator knows (0: none)
  int forget_after_ = 0;   // ForgetGroupAfterHeartbeats
  std::map<std::pair<int64_t, int>, int> heartbeats_;  // (group id, rank) -> heartbeats
  std::map<int, int> leased_by_;
  std::vector<v1::RegisterWorkerGroupRequest> registrations_;
  std::vector<v1::ReportProgressRequest> progress_;
  std::vector<v1::CompleteTaskRequest> completed_;
  std::vector<v1::FailTaskRequest> failed_;
};

// Forwards to a thread rank; its first gradient allreduce throws, as a failing collective library would inside
// backward (the reducer starts it from a gradient hook that LibTorch's autograd calls).
class ThrowingCommunicator : public ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;
  using ForwardingCommunicator::StartAllreduceSum;
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(float* data, size_t count) override {
    if (!thrown_) {
      thrown_ = true;
      throw std::runtime_error("injected: the gradient allreduce failed");
    }
    return ForwardingCommunicator::StartAllreduceSum(data, count);
  }

 private:
  bool thrown_ = false;
};

// A tiny Transformer's experiment: 4 windows of 32 tokens a step (2 per rank on two ranks).
ExperimentConfig TinyExperiment(const std::string& dataset, const std::string& out, int64_t steps, int64_t eval_every) {
  ExperimentConfig c;
  c.name = "tiny";
  c.dataset = dataset;
  c.out = out;
  c.model.family = "transformer";
  c.model.vocab_size = Vocabulary::Get().size();
  c.model.d_model = 16;
  c.model.layers = 1;
  c.model.heads = 2;
  c.model.ff_dim = 32;
  c.model.max_len = 32;
  c.model.dropout = 0;
  c.train.seq_len = 32;
  c.train.batch_size = 4;
  c.train.steps = steps;
  c.train.warmup_steps = 1;
  c.train.eval_every = eval_every;
  c.train.eval_windows = 4;
  c.train.threads = 1;
  return c;
}

// Windows whose tokens lie outside the vocabulary: the model's embedding raises a c10::Error in the first forward.
class OutOfVocabularyWindows : public WindowSource {
 public:
  int64_t length() const override { return 33; }
  int64_t WindowsPerEpoch() const override { return 16; }
  void Fill(int64_t, int64_t, int64_t count, int32_t* out) const override {
    std::fill(out, out + count * length(), int32_t(Vocabulary::Get().size() + 5));
  }
};

// Train() is the boundary of LibTorch's exceptions: a c10::Error inside it comes back as a Status with its message
// (before, it escaped Train and, in the agent, ended the rank).
TEST(TrainBoundaryTest, ALibTorchErrorInsideTrainingIsReturnedAsAStatus) {
  testing::TempDir dir;
  const ExperimentConfig c = TinyExperiment("", dir / "run", 4, 2);
  OutOfVocabularyWindows windows;
  TrainOptions o;
  o.progress = false;
  StatusOr<TrainSummary> r = InternalError("not run");
  EXPECT_NO_THROW(r = Train(c, windows, windows, o));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("tiny: training failed: "), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("out of range"), std::string::npos) << r.status().message();
}

// A synthetic corpus ingested once; each test trains a tiny Transformer on it in a run folder of its own.
class AgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    for (int i = 0; i < 24; ++i) {
      Score s = testing::MakeTune(i, 8 + i % 5);
      ASSERT_EQ(testing::WriteTune(s, *dir_ / ("midi/tune" + std::to_string(i) + ".mid")), "");
    }
    IngestOptions o;
    o.input_dir = *dir_ / "midi";
    o.out_dir = *dir_ / "ds";
    o.shards = 1;
    o.val_fraction = 0.2;
    o.test_fraction = 0.1;
    o.jobs = 1;
    o.progress = false;
    IngestReport report;
    Status st = Ingest(o, &report);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  static void TearDownTestSuite() { delete dir_; }

  // A train task of `steps` steps (validation and a checkpoint every `eval_every`) into <tmp>/<run>.
  static v1::Task TrainTask(int64_t id, const std::string& run, int64_t steps, int64_t eval_every) {
    const ExperimentConfig c = TinyExperiment(*dir_ / "ds", *dir_ / run, steps, eval_every);
    v1::Task t;
    t.set_task_id(id);
    t.set_attempt(1);
    t.set_job_id(id);
    t.set_kind(v1::TASK_KIND_TRAIN);
    t.set_experiment_name(c.name);
    t.set_experiment_yaml(c.ToYaml());
    t.set_output_dir(c.out);
    t.set_dataset(c.dataset);
    return t;
  }
  // A task that every rank may lease and that the worker refuses before touching a file: its run folder is relative.
  static v1::Task RefusedTask(int64_t id) {
    v1::Task t;
    t.set_task_id(id);
    t.set_attempt(1);
    t.set_job_id(id);
    t.set_kind(v1::TASK_KIND_EVALUATE);
    t.set_output_dir("relative/run");
    return t;
  }

  // An evaluate task of one sample (a tune of the corpus) without a reference: any rank completes it in moments.
  static v1::Task EvaluateTask(int64_t id, const std::string& run) {
    const fs::path out = *dir_ / run;
    fs::create_directories(out / "samples");
    fs::copy_file(*dir_ / "midi/tune0.mid", out / "samples/s0.mid", fs::copy_options::overwrite_existing);
    v1::Task t;
    t.set_task_id(id);
    t.set_attempt(1);
    t.set_job_id(id);
    t.set_kind(v1::TASK_KIND_EVALUATE);
    t.set_output_dir(out.string());
    t.set_samples_dir((out / "samples").string());
    t.set_report_path((out / "evaluation.json").string());
    return t;
  }

  struct Group {
    std::vector<int> exit_codes;
  };
  // Runs the agent on `ranks` thread ranks until each returns; `during` runs on the test's thread meanwhile.
  static Group RunGroup(int ranks, FakeCoordinator& fake, double max_idle_seconds, std::atomic<bool>& stop,
                        std::atomic<int>& signo, const std::function<void()>& during = nullptr,
                        bool throwing_communicator = false) {
    AgentOptions o;
    o.threads = 1;
    o.max_idle_seconds = max_idle_seconds;
    o.quiet = false;
    std::vector<std::unique_ptr<Communicator>> world = MakeThreadWorld(ranks);
    if (throwing_communicator) {
      for (auto& c : world) c = std::make_unique<ThrowingCommunicator>(std::move(c));
    }
    Group g;
    g.exit_codes.assign(ranks, -1);
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r) {
      threads.emplace_back([&, r] { g.exit_codes[r] = RunAgent(o, *world[r], fake, &stop, &signo); });
    }
    if (during) during();
    for (auto& t : threads) t.join();
    return g;
  }
  // Waits (up to a minute) until `done` holds.
  static bool WaitFor(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + 60s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  static testing::TempDir* dir_;
};
testing::TempDir* AgentTest::dir_ = nullptr;

TEST_F(AgentTest, GroupTrainsTogetherReportsTheTrainersProgressAndCompletes) {
  FakeCoordinator fake;
  fake.Add(TrainTask(1, "run-complete", 30, 10));
  fake.Add(RefusedTask(2));
  std::atomic<bool> stop{false};
  std::atomic<int> signo{0};
  Group g = RunGroup(2, fake, 0.5, stop, signo);
  EXPECT_EQ(g.exit_codes, std::vector<int>({0, 0})) << "both ranks exit 0 once idle for --max-idle";

  // Rank 0 registered the group once, for both ranks; both ranks sent heartbeats.
  ASSERT_EQ(fake.registrations().size(), 1u);
  EXPECT_EQ(fake.registrations()[0].group().ranks(), 2);
  EXPECT_GT(fake.heartbeats(FakeCoordinator::kGroupId, 0), 0);
  EXPECT_GT(fake.heartbeats(FakeCoordinator::kGroupId, 1), 0);
  EXPECT_EQ(fake.leased_by().at(1), 0) << "only rank 0 leases training";

  // Progress: the trainer's steps (1..30, never backwards), with each new checkpoint reported.
  const std::string run = *dir_ / "run-complete";
  const auto progress = fake.progress();
  ASSERT_FALSE(progress.empty());
  int64_t previous = 0;
  bool checkpoint_reported = false;
  for (const auto& p : progress) {
    EXPECT_EQ(p.task().task_id(), 1);
    EXPECT_EQ(p.worker().group_id(), FakeCoordinator::kGroupId);
    EXPECT_GE(p.step(), std::max<int64_t>(1, previous));
    EXPECT_LE(p.step(), 30);
    EXPECT_EQ(p.message(), "step " + std::to_string(p.step()) + " of 30");
    EXPECT_NEAR(p.fraction(), p.step() / 30.0, 1e-9);
    previous = p.step();
    if (!p.checkpoint().empty()) {
      EXPECT_EQ(p.checkpoint(), run_layout::LatestCheckpoint(run));
      checkpoint_reported = true;
    }
  }
  EXPECT_TRUE(checkpoint_reported) << "checkpoints at steps 10 and 20 are reported while training goes on";

  // The completion: the summary's metrics, the best checkpoint, the run folder's files.
  ASSERT_EQ(fake.completed().size(), 1u);
  const v1::CompleteTaskRequest done = fake.completed()[0];
  EXPECT_EQ(done.task().task_id(), 1);
  EXPECT_EQ(done.result().checkpoint(), run_layout::BestCheckpoint(run));
  EXPECT_EQ(done.result().metrics().at("steps"), 30);
  EXPECT_EQ(done.result().metrics().at("ranks"), 2);
  EXPECT_GT(done.result().metrics().at("data/train_pieces"), 0);
  EXPECT_TRUE(fs::exists(run_layout::MetricsCsv(run)));
  EXPECT_NE(std::find(done.result().artifacts().begin(), done.result().artifacts().end(), run_layout::MetricsCsv(run)),
            done.result().artifacts().end());

  // The second task was refused before any file was written, by whichever rank leased it, for good.
  ASSERT_EQ(fake.failed().size(), 1u);
  EXPECT_EQ(fake.failed()[0].task().task_id(), 2);
  EXPECT_FALSE(fake.failed()[0].retryable());
  EXPECT_NE(fake.failed()[0].error().find("relative/run"), std::string::npos) << fake.failed()[0].error();
}

TEST_F(AgentTest, AStopNoticeStopsTheGroupsTrainingWithACheckpointAndNoReport) {
  FakeCoordinator fake;
  fake.Add(TrainTask(1, "run-stopped", 100000, 2));
  fake.StopTaskAfterStep(1, 3);  // e.g. the job was cancelled
  std::atomic<bool> stop{false};
  std::atomic<int> signo{0};
  Group g = RunGroup(2, fake, 0.5, stop, signo);
  EXPECT_EQ(g.exit_codes, std::vector<int>({0, 0}));
  EXPECT_TRUE(fake.completed().empty()) << "a stopped task is neither completed";
  EXPECT_TRUE(fake.failed().empty()) << "nor failed: the coordinator already took it back";
  EXPECT_GE(fake.last_step(), 3);
  EXPECT_LT(fake.last_step(), 100000);
  EXPECT_TRUE(fs::exists(run_layout::LatestCheckpoint(*dir_ / "run-stopped"))) << "stopped with a checkpoint";
}

TEST_F(AgentTest, ASignalHandsTheTaskBackWithItsCheckpointAndEveryRankExitsFour) {
  FakeCoordinator fake;
  fake.Add(TrainTask(1, "run-signalled", 100000, 2));
  std::atomic<bool> stop{false};
  std::atomic<int> signo{0};
  Group g = RunGroup(2, fake, 0, stop, signo, [&] {
    const bool trained = WaitFor([&] { return fake.last_step() >= 2; });
    signo = SIGTERM;  // what the worker's handler does
    stop = true;
    EXPECT_TRUE(trained) << "training never reported step 2";
  });
  EXPECT_EQ(g.exit_codes, std::vector<int>({kExitStoppedBySignal, kExitStoppedBySignal}));
  ASSERT_EQ(fake.failed().size(), 1u);
  const v1::FailTaskRequest back = fake.failed()[0];
  EXPECT_EQ(back.task().task_id(), 1);
  EXPECT_TRUE(back.retryable());
  EXPECT_TRUE(back.preempted()) << "a hand-back does not spend the task's retries";
  EXPECT_EQ(back.checkpoint(), run_layout::LatestCheckpoint(*dir_ / "run-signalled"));
  EXPECT_TRUE(fs::exists(back.checkpoint()));
  EXPECT_NE(back.error().find("stopped by signal " + std::to_string(SIGTERM)), std::string::npos) << back.error();
  EXPECT_TRUE(fake.completed().empty());
}

// A coordinator that no longer knows the group (NOT_FOUND) gets it registered again by rank 0, and every rank
// switches to the new group id, carried by the round header, before its next call.
TEST_F(AgentTest, AForgottenGroupRegistersAgainAndEveryRankTakesTheNewId) {
  FakeCoordinator fake;
  fake.ForgetGroupAfterHeartbeats(3);
  std::atomic<bool> stop{false};
  std::atomic<int> signo{0};
  Group g = RunGroup(2, fake, 0, stop, signo, [&] {
    const bool again = WaitFor([&] { return fake.registrations().size() == 2; });
    if (again) fake.Add(RefusedTask(7));
    const bool served = again && WaitFor([&] {
      return !fake.failed().empty() && fake.heartbeats(FakeCoordinator::kGroupId + 1, 0) > 0 &&
             fake.heartbeats(FakeCoordinator::kGroupId + 1, 1) > 0;
    });
    signo = SIGTERM;
    stop = true;
    EXPECT_TRUE(again) << "rank 0 never registered again";
    EXPECT_TRUE(served) << "the new group never leased the task or did not send heartbeats from both ranks";
  });
  EXPECT_EQ(g.exit_codes, std::vector<int>({kExitStoppedBySignal, kExitStoppedBySignal}));
  ASSERT_EQ(fake.registrations().size(), 2u);
  ASSERT_EQ(fake.failed().size(), 1u);
  EXPECT_EQ(fake.failed()[0].task().task_id(), 7);
  EXPECT_EQ(fake.failed()[0].worker().group_id(), FakeCoordinator::kGroupId + 1);
}

// A LibTorch exception inside Train() used to pass through the agent and end the rank (std::terminate); now the
// trainer's boundary turns it into a Status: the task fails with the message and the ranks go on serving.
TEST_F(AgentTest, AnExceptionInsideTrainingFailsTheTaskAndTheRanksServeOn) {
  FakeCoordinator fake;
  fake.Add(TrainTask(1, "run-throws", 30, 10));
  fake.Add(RefusedTask(2));
  std::atomic<bool> stop{false};
  std::atomic<int> signo{0};
  Group g = RunGroup(2, fake, 0.5, stop, signo, nullptr, /*throwing_communicator=*/true);
  EXPECT_EQ(g.exit_codes, std::vector<int>({0, 0}));
  ASSERT_EQ(fake.failed().size(), 2u);
  std::map<int64_t, v1::FailTaskRequest> failed;
  for (const auto& f : fake.failed()) failed[f.task().task_id()] = f;
  ASSERT_TRUE(failed.count(1));
  EXPECT_NE(failed[1].error().find("injected: the gradient allreduce failed"), std::string::npos) << failed[1].error();
  EXPECT_NE(failed[1].error().find("training failed"), std::string::npos) << failed[1].error();
  EXPECT_TRUE(failed[1].retryable()) << "an internal error may pass on another attempt";
  ASSERT_TRUE(failed.count(2)) << "the ranks leased the next task after the failure";
  EXPECT_TRUE(fake.completed().empty());
}

// A rank that got its next task with a completion cannot run it when rank 0 starts training: it hands the task back
// (retryable, preempted: no retry spent) before joining, and the coordinator leases it again afterwards.
TEST_F(AgentTest, APiggybackedTaskIsHandedBackWhenTheGroupTrains) {
  FakeCoordinator fake;
  fake.HoldTrainingForAPiggyback();
  fake.RequeueHandBacks();
  fake.Add(TrainTask(1, "run-handback", 4, 2));
  for (int id = 2; id <= 5; ++id) fake.Add(EvaluateTask(id, "run-handback-eval" + std::to_string(id)), /*only_rank=*/1);
  std::atomic<bool> stop{false};
  std::atomic<int> signo{0};
  Group g = RunGroup(2, fake, 0.5, stop, signo);
  EXPECT_EQ(g.exit_codes, std::vector<int>({0, 0}));

  ASSERT_EQ(fake.failed().size(), 1u) << "one hand-back, nothing else failed";
  const v1::FailTaskRequest back = fake.failed()[0];
  EXPECT_EQ(back.worker().rank(), 1);
  EXPECT_EQ(back.task().attempt(), 1);
  EXPECT_TRUE(back.retryable());
  EXPECT_TRUE(back.preempted()) << "a hand-back does not spend the task's retries";
  EXPECT_TRUE(back.checkpoint().empty());
  EXPECT_NE(back.error().find("joins its group's training"), std::string::npos) << back.error();
  const std::vector<int64_t> piggybacked = fake.piggybacked();
  EXPECT_NE(std::find(piggybacked.begin(), piggybacked.end(), back.task().task_id()), piggybacked.end())
      << "the task handed back is one leased with a completion";

  // Training completed; every evaluate task completed once, the handed-back one on its second attempt only.
  std::map<int64_t, std::vector<int>> attempts;  // task id -> attempts completed
  for (const auto& c : fake.completed()) attempts[c.task().task_id()].push_back(c.task().attempt());
  EXPECT_EQ(attempts[1], std::vector<int>({1})) << "the training task";
  for (int64_t id = 2; id <= 5; ++id) {
    EXPECT_EQ(attempts[id], std::vector<int>({id == back.task().task_id() ? 2 : 1})) << "task " << id;
  }
}

// The coordinator may answer a progress report with "stop" (the job was cancelled, the lease is lost) rather than
// with a heartbeat notice: training stops at its next step with a checkpoint, nothing is reported for the task (the
// coordinator took it back already) and the ranks go on serving.
TEST_F(AgentTest, AStopAnswerToAProgressReportStopsTrainingAndTheRanksServeOn) {
  FakeCoordinator fake;
  fake.Add(TrainTask(1, "run-stop-answer", 2000, 2));
  fake.AnswerProgressWithStopAfterStep(1, 3);
  std::atomic<bool> stop{false};
  std::atomic<int> signo{0};
  Group g = RunGroup(2, fake, 0.5, stop, signo, [&] {
    const bool answered = WaitFor([&] { return fake.stop_answers() > 0; });
    EXPECT_TRUE(answered) << "no progress report reached step 3";
    fake.Add(RefusedTask(2));  // queued while the group still trains: leased once training has stopped
  });
  EXPECT_EQ(g.exit_codes, std::vector<int>({0, 0}));
  EXPECT_GE(fake.last_step(), 3);
  EXPECT_LT(fake.last_step(), 100) << "training went on after the stop answer";
  EXPECT_TRUE(fs::exists(run_layout::LatestCheckpoint(*dir_ / "run-stop-answer"))) << "stopped with a checkpoint";
  EXPECT_TRUE(fake.completed().empty()) << "a stopped task is neither completed";
  ASSERT_EQ(fake.failed().size(), 1u) << "nor failed; only the next task is";
  EXPECT_EQ(fake.failed()[0].task().task_id(), 2) << "the ranks served on after the stop";
}

// A completion while the coordinator is away (UNAVAILABLE, e.g. restarting) is retried until it answers, and it
// arrives exactly once: the rank neither drops the result nor reports it twice, nor fails the task.
TEST_F(AgentTest, ACompletionIsRetriedWhileTheCoordinatorIsAwayAndArrivesOnce) {
  FakeCoordinator fake;
  fake.UnavailableCompletions(3);
  fake.Add(EvaluateTask(1, "run-retried-eval"));
  std::atomic<bool> stop{false};
  std::atomic<int> signo{0};
  Group g = RunGroup(2, fake, 0.5, stop, signo);
  EXPECT_EQ(g.exit_codes, std::vector<int>({0, 0}));
  EXPECT_EQ(fake.complete_calls(), 4) << "three refused, the fourth taken";
  ASSERT_EQ(fake.completed().size(), 1u);
  EXPECT_EQ(fake.completed()[0].task().task_id(), 1);
  EXPECT_GT(fake.completed()[0].result().metrics().size(), 0u) << "the evaluation's metrics arrive with it";
  EXPECT_TRUE(fake.failed().empty());
}

}  // namespace
}  // namespace cadenza
