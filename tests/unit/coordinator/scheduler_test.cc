// Scheduler: the task graph end to end, fan-out, leases and expiry, retries with resume, idempotent reports,
// cancellation, fair share, recovery after a restart. No network; time is passed explicitly.
#include "coordinator/scheduler.h"

#include "coordinator/result_query.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "tests/unit/coordinator/test_util.h"

namespace cadenza::coord {
namespace {

constexpr int64_t kLease = 1000;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    sched_.reset();
    store_.reset();
    auto s = Store::Open(dir_.File("c.db"));
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(s).value();
    SchedulerOptions o;
    o.lease_ms = kLease;
    o.retry_budget = retry_budget_;
    sched_ = std::make_unique<Scheduler>(store_.get(), o, [this] { return live_ranks_; });
  }
  int64_t Submit(const std::string& user, int samples = 4, int per_task = 0) {
    auto ids = sched_->Submit(user, {testing::MakeExperiment(samples, per_task)}, SubmitOptions{}, now_, nullptr);
    EXPECT_TRUE(ids.ok()) << ids.status().message();
    return ids.ok() ? (*ids)[0] : 0;
  }
  Assignment Lease(WorkerKey w, uint32_t mask = 0) {
    auto a = sched_->Lease(w, mask, now_);
    EXPECT_TRUE(a.ok()) << a.status().message();
    EXPECT_TRUE(a.ok() && a->has_value()) << "no task for " << w.ToString();
    return a.ok() && a->has_value() ? **a : Assignment();
  }
  bool NothingFor(WorkerKey w, uint32_t mask = 0) {
    auto a = sched_->Lease(w, mask, now_);
    return a.ok() && !a->has_value();
  }
  CompleteAck Complete(const Assignment& a, double metric = 1.0) {
    ResultRecord r;
    r.metrics["score"] = metric;
    auto ack = sched_->Complete(a.task.worker, a.task.id, a.task.attempt, r, now_);
    EXPECT_TRUE(ack.ok()) << ack.status().message();
    return ack.ok() ? *ack : CompleteAck();
  }
  JobState StateOf(int64_t job) { return sched_->GetJob(job)->job.state; }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> sched_;
  int live_ranks_ = 2;
  int retry_budget_ = 2;
  int64_t now_ = 1000000;
  const WorkerKey w0_{1, 0}, w1_{1, 1}, v0_{2, 0};
};

TEST_F(SchedulerTest, RunsTheGraphTrainGenerateEvaluateAggregate) {
  const int64_t job = Submit("alice", 5);
  EXPECT_EQ(StateOf(job), JobState::kQueued);
  EXPECT_TRUE(NothingFor(w1_));  // rank 1 never gets the training task
  Assignment train = Lease(w0_);
  EXPECT_EQ(train.task.kind, TaskKind::kTrain);
  EXPECT_FALSE(train.resume);
  EXPECT_EQ(train.checkpoint, "/runs/unit/checkpoints/latest.pt");
  EXPECT_NE(train.experiment.experiment_yaml.find("family: transformer"), std::string::npos);
  EXPECT_EQ(StateOf(job), JobState::kRunning);
  EXPECT_TRUE(NothingFor(w1_));
  Complete(train);
  // Fan-out over the 2 live ranks: 5 samples as 3 + 2, seeds derived from the experiment seed (7).
  Assignment g0 = Lease(w0_), g1 = Lease(w1_);
  ASSERT_EQ(g0.task.kind, TaskKind::kGenerate);
  ASSERT_EQ(g1.task.kind, TaskKind::kGenerate);
  EXPECT_EQ(g0.task.shard_count, 2);
  EXPECT_EQ(g0.task.sample_count + g1.task.sample_count, 5);
  EXPECT_EQ(g0.seeds.size(), 3u);
  EXPECT_EQ(g0.seeds[0], 7u * 1000003u);
  EXPECT_EQ(g1.seeds[0], 7u * 1000003u + 3);
  EXPECT_EQ(g0.checkpoint, "/runs/unit/checkpoints/best.pt");
  EXPECT_EQ(g0.samples_dir, "/runs/unit/samples/shard-0");
  // Scoring on the fixed splits runs beside generation, on any rank; no probe task (the YAML lists no lengths).
  Assignment score = Lease(v0_);
  ASSERT_EQ(score.task.kind, TaskKind::kScore);
  EXPECT_EQ(score.checkpoint, "/runs/unit/checkpoints/best.pt");
  EXPECT_EQ(score.report_path, "/runs/unit/score.json");
  Complete(score);
  EXPECT_TRUE(NothingFor(v0_));  // evaluations wait for their generation
  Complete(g1);
  Assignment e1 = Lease(v0_);
  EXPECT_EQ(e1.task.kind, TaskKind::kEvaluate);
  EXPECT_EQ(e1.task.shard_index, 1);
  EXPECT_EQ(e1.samples_dir, "/runs/unit/samples/shard-1");
  EXPECT_EQ(e1.report_path, "/runs/unit/evaluation/shard-1.json");
  Complete(g0);
  Assignment e0 = Lease(w0_);
  Complete(e0);
  EXPECT_TRUE(NothingFor(w0_));  // the aggregate waits for every evaluation
  Complete(e1);
  Assignment agg = Lease(w1_);
  ASSERT_EQ(agg.task.kind, TaskKind::kAggregate);
  EXPECT_EQ(agg.inputs, (std::vector<std::string>{"/runs/unit/evaluation/shard-0.json", "/runs/unit/evaluation/shard-1.json"}));
  EXPECT_EQ(agg.report_path, "/runs/unit/result.json");
  Complete(agg, 0.75);
  auto view = sched_->GetJob(job);
  EXPECT_EQ(view->job.state, JobState::kSucceeded);
  EXPECT_DOUBLE_EQ(view->progress, 1.0);
  EXPECT_EQ(view->counts.by_state[static_cast<int>(TaskState::kSucceeded)], 7);
  EXPECT_EQ(*store_->CountResults(), 7);
  auto query = ResultQuery::Open(store_->path());
  ASSERT_TRUE(query.ok()) << query.status().message();
  auto rows = (*query)->Query({});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);  // the aggregate result by default
  EXPECT_DOUBLE_EQ((*rows)[0].result.metrics.at("score"), 0.75);
}

TEST_F(SchedulerTest, SamplesPerTaskFixesTheFanOut) {
  Submit("alice", 10, 3);
  Complete(Lease(w0_));
  Assignment g = Lease(w0_);
  EXPECT_EQ(g.task.shard_count, 4);  // ceil(10 / 3)
}

TEST_F(SchedulerTest, CompletionIsIdempotentPerAttempt) {
  Submit("alice");
  Assignment train = Lease(w0_);
  EXPECT_FALSE(Complete(train).duplicate);
  const size_t tasks = sched_->NumTasks();
  EXPECT_TRUE(Complete(train).duplicate);
  EXPECT_EQ(sched_->NumTasks(), tasks);  // no second fan-out
  EXPECT_EQ(*store_->CountResults(), 1);
  auto fail = sched_->Fail(w0_, train.task.id, 1, "late", true, "", now_);
  EXPECT_EQ(fail.status().code(), StatusCode::kAborted);
  auto bad = sched_->Complete(w0_, train.task.id, 2, {}, now_);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("task.attempt"), std::string::npos);
}

TEST_F(SchedulerTest, ExpiredTrainingLeaseResumesFromTheLatestCheckpoint) {
  Submit("alice");
  Assignment a1 = Lease(w0_);
  auto p = sched_->Progress(w0_, a1.task.id, 1, 0.4, "step 40", "/runs/unit/checkpoints/step40.pt", now_);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->stop);
  now_ += kLease - 1;
  EXPECT_EQ(sched_->ExpireLeases(now_), 0);  // renewed by the progress report
  EXPECT_TRUE(sched_->Heartbeat(w0_, {{a1.task.id, 1}}, now_).empty());  // and by the heartbeat
  now_ += kLease - 1;
  EXPECT_EQ(sched_->ExpireLeases(now_), 0);
  now_ += 2;
  EXPECT_EQ(sched_->ExpireLeases(now_), 1);
  auto stops = sched_->Heartbeat(w0_, {}, now_);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].task_id, a1.task.id);
  Assignment a2 = Lease(v0_);
  EXPECT_EQ(a2.task.id, a1.task.id);
  EXPECT_EQ(a2.task.attempt, 2);
  EXPECT_TRUE(a2.resume);
  EXPECT_EQ(a2.checkpoint, "/runs/unit/checkpoints/step40.pt");
  // The old holder's reports are stale now.
  auto late = sched_->Complete(w0_, a1.task.id, 1, {}, now_);
  EXPECT_EQ(late.status().code(), StatusCode::kAborted);
  auto prog = sched_->Progress(w0_, a1.task.id, 1, 0.5, "", "", now_);
  ASSERT_TRUE(prog.ok());
  EXPECT_TRUE(prog->stop);
  EXPECT_FALSE(Complete(a2).duplicate);
}

TEST_F(SchedulerTest, AnUnmentionedLeaseIsNotRenewed) {
  Submit("alice");
  Assignment a = Lease(w0_);  // say the answer never reached the worker
  now_ += kLease / 2;
  EXPECT_TRUE(sched_->Heartbeat(w0_, {}, now_).empty());
  now_ += kLease / 2;
  EXPECT_EQ(sched_->ExpireLeases(now_), 1);
  EXPECT_EQ(Lease(w0_).task.attempt, 2);
}

TEST_F(SchedulerTest, DeadWorkerLosesItsLeasesAtOnce) {
  Submit("alice");
  Assignment a = Lease(w0_);
  EXPECT_EQ(sched_->ReleaseWorker(w0_, now_), 1);
  Assignment b = Lease(v0_);
  EXPECT_EQ(b.task.id, a.task.id);
  EXPECT_EQ(b.task.attempt, 2);
}

TEST_F(SchedulerTest, RetryBudgetThenTheJobFails) {
  retry_budget_ = 1;
  Open();
  const int64_t job = Submit("alice");
  Assignment a1 = Lease(w0_);
  auto f1 = sched_->Fail(w0_, a1.task.id, 1, "out of memory", true, "/runs/unit/ck1.pt", now_);
  ASSERT_TRUE(f1.ok());
  EXPECT_TRUE(f1->will_retry);
  auto dup = sched_->Fail(w0_, a1.task.id, 1, "out of memory", true, "", now_);
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  Assignment a2 = Lease(w0_);
  EXPECT_EQ(a2.checkpoint, "/runs/unit/ck1.pt");
  auto f2 = sched_->Fail(w0_, a2.task.id, 2, "out of memory again", true, "", now_);
  ASSERT_TRUE(f2.ok());
  EXPECT_FALSE(f2->will_retry);
  auto view = sched_->GetJob(job);
  EXPECT_EQ(view->job.state, JobState::kFailed);
  EXPECT_NE(view->job.error.find("out of memory again"), std::string::npos) << view->job.error;
  EXPECT_TRUE(NothingFor(w0_));
}

TEST_F(SchedulerTest, PreemptionsDoNotSpendTheRetryBudget) {
  retry_budget_ = 1;
  Open();
  const int64_t job = Submit("alice");
  // Five hand-backs after SIGUSR1 (a Slurm time limit each), each resuming from the last checkpoint.
  for (int attempt = 1; attempt <= 5; ++attempt) {
    Assignment a = Lease(w0_);
    EXPECT_EQ(a.task.attempt, attempt);
    auto f = sched_->Fail(w0_, a.task.id, attempt, "stopped by signal 10", true, "/runs/unit/ck" + std::to_string(attempt) + ".pt",
                          now_, /*preempted=*/true);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_TRUE(f->will_retry) << "attempt " << attempt;
    EXPECT_EQ(f->attempts_left, 1) << "attempt " << attempt;
  }
  // The budget is still whole: one real failure is retried, the second fails the job.
  Assignment a6 = Lease(w0_);
  EXPECT_EQ(a6.checkpoint, "/runs/unit/ck5.pt");
  auto f6 = sched_->Fail(w0_, a6.task.id, 6, "out of memory", true, "", now_);
  ASSERT_TRUE(f6.ok());
  EXPECT_TRUE(f6->will_retry);
  Assignment a7 = Lease(w0_);
  auto f7 = sched_->Fail(w0_, a7.task.id, 7, "out of memory again", true, "", now_);
  ASSERT_TRUE(f7.ok());
  EXPECT_FALSE(f7->will_retry);
  EXPECT_EQ(StateOf(job), JobState::kFailed);
}

TEST_F(SchedulerTest, NonRetryableFailureFailsAtOnce) {
  const int64_t job = Submit("alice");
  Assignment a = Lease(w0_);
  auto f = sched_->Fail(w0_, a.task.id, 1, "bad config", false, "", now_);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->will_retry);
  EXPECT_EQ(StateOf(job), JobState::kFailed);
}

TEST_F(SchedulerTest, OnlyTheSubmitterCancels) {
  const int64_t job = Submit("alice");
  Assignment a = Lease(w0_);
  EXPECT_EQ(sched_->Cancel("mallory", job, now_).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(sched_->Cancel("alice", job + 100, now_).status().code(), StatusCode::kNotFound);
  auto ack = sched_->Cancel("alice", job, now_);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->tasks_cancelled, 1);
  EXPECT_EQ(StateOf(job), JobState::kCancelled);
  auto stops = sched_->Heartbeat(w0_, {{a.task.id, a.task.attempt}}, now_);
  ASSERT_EQ(stops.size(), 1u);  // listed and noticed: reported once
  EXPECT_EQ(stops[0].task_id, a.task.id);
  EXPECT_FALSE(Complete(a).accepted);
  EXPECT_EQ(*store_->CountResults(), 0);
  EXPECT_TRUE(NothingFor(w0_));
  EXPECT_EQ(sched_->Cancel("alice", job, now_)->tasks_cancelled, 0);  // again: nothing changes
}

TEST_F(SchedulerTest, AnAdminCancelsAnyUsersJobOrSweep) {
  const int64_t job = Submit("alice");
  auto ack = sched_->Cancel("root", job, now_, /*admin=*/true);
  ASSERT_TRUE(ack.ok()) << ack.status().message();
  EXPECT_EQ(ack->jobs_cancelled, 1);
  EXPECT_EQ(StateOf(job), JobState::kCancelled);
  EXPECT_EQ(sched_->GetJob(job)->job.error, "cancelled by root");
  EXPECT_EQ(sched_->GetJob(job)->job.user, "alice") << "still alice's";
  int64_t sweep = 0;
  SubmitOptions how;
  how.sweep = true;
  ASSERT_TRUE(sched_->Submit("bob", {testing::MakeExperiment()}, how, now_, &sweep).ok());
  EXPECT_EQ(sched_->CancelSweep("root", sweep, now_).status().code(), StatusCode::kPermissionDenied) << "not without admin";
  EXPECT_EQ(sched_->CancelSweep("root", sweep, now_, /*admin=*/true)->jobs_cancelled, 1);
}

TEST_F(SchedulerTest, FairShareLeasesTheUserWithFewestRunningTasks) {
  const int64_t a1 = Submit("alice"), a2 = Submit("alice"), a3 = Submit("alice");
  const int64_t b1 = Submit("bob");
  const WorkerKey g1{1, 0}, g2{2, 0}, g3{3, 0}, g4{4, 0};
  EXPECT_EQ(Lease(g1).task.job_id, a1);  // tie at 0 running: the oldest task
  EXPECT_EQ(Lease(g2).task.job_id, b1);  // alice runs 1, bob 0
  EXPECT_EQ(Lease(g3).task.job_id, a2);
  EXPECT_EQ(Lease(g4).task.job_id, a3);
}

TEST_F(SchedulerTest, RankZeroOnlyTrains) {
  Submit("alice");
  auto bad = sched_->Lease(w1_, KindBit(TaskKind::kTrain), now_);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("kinds"), std::string::npos);
  EXPECT_TRUE(NothingFor(w0_, KindBit(TaskKind::kGenerate)));  // only asks for generation
}

TEST_F(SchedulerTest, RestartRecoversLeasesAndFinishesWithOneResultPerTask) {
  const int64_t job = Submit("alice", 2);
  Complete(Lease(w0_));
  Assignment g0 = Lease(w0_);
  Assignment g1 = Lease(w1_);
  Complete(g0);
  Open();  // the coordinator restarts: memory is gone, the database remains
  ASSERT_TRUE(sched_->Recover(now_).ok());
  auto view = sched_->GetJob(job);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->counts.by_state[static_cast<int>(TaskState::kLeased)], 1);  // g1 keeps its lease
  EXPECT_TRUE(Complete(g0).duplicate);  // a retried report after the restart changes nothing
  EXPECT_FALSE(Complete(g1).duplicate);
  Complete(Lease(w0_));
  Complete(Lease(w1_));
  Complete(Lease(w0_));
  EXPECT_EQ(StateOf(job), JobState::kRunning);  // the score task is left
  Complete(Lease(w1_));
  EXPECT_EQ(StateOf(job), JobState::kSucceeded);
  EXPECT_EQ(*store_->CountResults(), 7);
}

TEST_F(SchedulerTest, ProbeTaskWhenTheExperimentListsLengthsAndTheJobWaitsForAll) {
  ExperimentSpec spec;
  spec.experiment_yaml = testing::ExperimentYaml() + "probe: {lengths: [64, 128], batch_sizes: [1]}\n";
  spec.samples = 1;
  auto e = ValidateExperiment(spec);
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto ids = sched_->Submit("alice", {*e}, SubmitOptions{}, now_, nullptr);
  ASSERT_TRUE(ids.ok());
  const int64_t job = (*ids)[0];
  Complete(Lease(w0_));
  std::map<TaskKind, Assignment> leased;
  for (int i = 0; i < 3; ++i) {  // generate, score, probe are ready at once
    Assignment a = Lease(i % 2 ? w1_ : w0_);
    leased[a.task.kind] = a;
  }
  ASSERT_EQ(leased.count(TaskKind::kProbe), 1u);
  EXPECT_EQ(leased[TaskKind::kProbe].report_path, "/runs/unit/probe.csv");
  EXPECT_EQ(leased[TaskKind::kProbe].checkpoint, "/runs/unit/checkpoints/best.pt");
  Complete(leased[TaskKind::kGenerate]);
  Complete(Lease(w0_));  // evaluate
  Complete(Lease(w0_));  // aggregate
  Complete(leased[TaskKind::kScore]);
  EXPECT_EQ(StateOf(job), JobState::kRunning);  // the probe still runs
  Complete(leased[TaskKind::kProbe]);
  EXPECT_EQ(StateOf(job), JobState::kSucceeded);
}

TEST_F(SchedulerTest, ProbeTaskStillFollowsTrainingAfterARestart) {
  EXPECT_FALSE(testing::MakeExperiment().probe);
  ExperimentSpec spec;
  spec.experiment_yaml = testing::ExperimentYaml() + "probe: {lengths: [64], batch_sizes: [1]}\n";
  spec.samples = 1;
  auto e = ValidateExperiment(spec);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_TRUE(e->probe);
  ASSERT_TRUE(sched_->Submit("alice", {*e}, SubmitOptions{}, now_, nullptr).ok());
  Assignment train = Lease(w0_);
  Open();  // the flag is not stored: Recover derives it from the experiment's YAML
  ASSERT_TRUE(sched_->Recover(now_).ok());
  Complete(train);
  std::map<TaskKind, int> leased;
  for (int i = 0; i < 3; ++i) ++leased[Lease(i % 2 ? w1_ : w0_).task.kind];  // generate, score, probe
  EXPECT_EQ(leased[TaskKind::kProbe], 1);
}

TEST_F(SchedulerTest, RunFoldersAreNeverShared) {
  const int64_t first = Submit("alice");
  const int64_t second = Submit("alice");  // the same experiment again, while the first runs
  EXPECT_EQ(sched_->GetJob(first)->job.experiment.output_dir, "/runs/unit");
  EXPECT_EQ(sched_->GetJob(second)->job.experiment.output_dir, "/runs/unit-r2");
  EXPECT_EQ(Lease(w0_).checkpoint, "/runs/unit/checkpoints/latest.pt");
  EXPECT_EQ(Lease(v0_).checkpoint, "/runs/unit-r2/checkpoints/latest.pt");
  // Resuming a folder whose job still runs is refused; once cancelled it continues there, training resumes.
  SubmitOptions resume;
  resume.resume = true;
  auto busy = sched_->Submit("alice", {sched_->GetJob(first)->job.experiment}, resume, now_, nullptr);
  EXPECT_EQ(busy.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(busy.status().message().find("job " + std::to_string(first)), std::string::npos) << busy.status().message();
  ASSERT_TRUE(sched_->Cancel("alice", first, now_).ok());
  auto again = sched_->Submit("alice", {sched_->GetJob(first)->job.experiment}, resume, now_, nullptr);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(sched_->GetJob((*again)[0])->job.experiment.output_dir, "/runs/unit");
  Assignment r = Lease(WorkerKey{3, 0});
  EXPECT_EQ(r.task.job_id, (*again)[0]);
  EXPECT_TRUE(r.resume);
  EXPECT_EQ(r.checkpoint, "/runs/unit/checkpoints/latest.pt");
}

TEST_F(SchedulerTest, CancelASweep) {
  std::vector<Experiment> runs = {testing::MakeExperiment(), testing::MakeExperiment(), testing::MakeExperiment()};
  int64_t sweep = 0;
  SubmitOptions how;
  how.sweep = true;
  auto ids = sched_->Submit("alice", runs, how, now_, &sweep);
  ASSERT_TRUE(ids.ok());
  ASSERT_GT(sweep, 0);
  const int64_t other = Submit("alice");
  Assignment a = Lease(w0_);
  EXPECT_EQ(sched_->CancelSweep("mallory", sweep, now_).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(sched_->CancelSweep("alice", sweep + 7, now_).status().code(), StatusCode::kNotFound);
  auto ack = sched_->CancelSweep("alice", sweep, now_);
  ASSERT_TRUE(ack.ok()) << ack.status().message();
  EXPECT_EQ(ack->jobs_cancelled, 3);
  EXPECT_EQ(ack->tasks_cancelled, 3);
  for (int64_t id : *ids) EXPECT_EQ(StateOf(id), JobState::kCancelled);
  EXPECT_EQ(StateOf(other), JobState::kQueued);  // not in the sweep
  EXPECT_EQ(sched_->Heartbeat(w0_, {{a.task.id, a.task.attempt}}, now_).size(), 1u);  // the leased one is told to stop
  EXPECT_EQ(sched_->CancelSweep("alice", sweep, now_)->jobs_cancelled, 0);
}

TEST_F(SchedulerTest, RecoveredLeaseExpiresWhenItsHolderNeverReturns) {
  Submit("alice");
  Lease(w0_);
  Open();
  ASSERT_TRUE(sched_->Recover(now_).ok());
  EXPECT_EQ(sched_->ExpireLeases(now_ + kLease - 1), 0);
  EXPECT_EQ(sched_->ExpireLeases(now_ + kLease), 1);
  EXPECT_EQ(Lease(v0_).task.attempt, 2);
}

}  // namespace
}  // namespace cadenza::coord

namespace cadenza::coord {
namespace {

// Issue "trust boundaries": a result or failure comes from the group holding the lease, and names files of its
// own run only; a forged completion changes nothing.
TEST_F(SchedulerTest, OnlyTheHolderCompletesAndOnlyWithinItsRunFolder) {
  const int64_t job = Submit("alice");
  Assignment a = Lease(w0_);
  ResultRecord forged;
  forged.metrics["val_nll"] = 0.01;
  auto other = sched_->Complete(v0_, a.task.id, a.task.attempt, forged, now_);
  EXPECT_EQ(other.status().code(), StatusCode::kPermissionDenied) << "another group's completion";
  // Another group learns nothing of the task but its id: not its run folder, not its attempts.
  for (int attempt : {0, 1, 2, 9}) {
    auto probe = sched_->Complete(v0_, a.task.id, attempt, forged, now_);
    EXPECT_EQ(probe.status().message(), "task " + std::to_string(a.task.id) + " is not leased to worker group " +
                                            std::to_string(v0_.group_id)) << attempt;
    auto progress = sched_->Progress(v0_, a.task.id, attempt, 0.5, "", "/runs/unit/checkpoints/x.pt", now_);
    ASSERT_TRUE(progress.ok()) << attempt;
    EXPECT_TRUE(progress->stop);
    EXPECT_EQ(progress->job_id, 0) << "no job named";
    EXPECT_EQ(progress->lease_expires_ms, 0);
  }
  EXPECT_EQ(sched_->Fail(v0_, a.task.id, a.task.attempt, "x", false, "", now_).status().code(), StatusCode::kPermissionDenied);
  for (const std::string path : {"/etc/passwd", "/runs/unit/../../etc/passwd", "/runs/unit", "/runs/unitx/a", "relative/a"}) {
    ResultRecord r;
    r.artifacts = {"/runs/unit/metrics.csv", path};
    auto outside = sched_->Complete(w0_, a.task.id, a.task.attempt, r, now_);
    EXPECT_EQ(outside.status().code(), StatusCode::kInvalidArgument) << path;
    EXPECT_NE(outside.status().message().find("result.artifacts[1]: " + path + " is outside the job's run folder /runs/unit"),
              std::string::npos)
        << outside.status().message();
    ResultRecord c;
    c.checkpoint = path;
    EXPECT_EQ(sched_->Complete(w0_, a.task.id, a.task.attempt, c, now_).status().code(), StatusCode::kInvalidArgument) << path;
  }
  EXPECT_EQ(sched_->Fail(w0_, a.task.id, a.task.attempt, "x", true, "/tmp/ck.pt", now_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sched_->GetJob(job)->job.state, JobState::kRunning) << "nothing was accepted";
  ResultRecord ok;
  ok.artifacts = {"/runs/unit/metrics.csv", "/runs/unit/./checkpoints/latest.pt"};
  ok.checkpoint = "/runs/unit/checkpoints/latest.pt";
  auto done = sched_->Complete(w0_, a.task.id, a.task.attempt, ok, now_);
  ASSERT_TRUE(done.ok()) << done.status().message();
  EXPECT_TRUE(done->accepted);
}

// Memory is ahead of the database while a group commit is being written (commit_log.h): a repeated completion that
// finds the task succeeded in memory is answered only once the first completion is durable, so no worker is told
// "duplicate" for a result a crash could still lose. The test holds the database in a transaction of its own so that
// the first completion's write waits.
TEST_F(SchedulerTest, ARepeatedCompletionIsAnsweredOnlyOnceTheFirstIsDurable) {
  Submit("alice");
  Assignment train = Lease(w0_);
  const size_t tasks = sched_->NumTasks();
  std::mutex mu;
  std::condition_variable cv;
  bool holding = false, release = false;
  std::thread holder([&] {
    ASSERT_TRUE(store_->Transaction([&] {
                  std::unique_lock<std::mutex> l(mu);
                  holding = true;
                  cv.notify_all();
                  cv.wait(l, [&] { return release; });
                  return Status::Ok();
                }).ok());
  });
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return holding; });
  }
  std::atomic<bool> first_done{false}, repeat_done{false};
  std::thread first([&] {
    Complete(train);
    first_done = true;
  });
  while (sched_->NumTasks() == tasks) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // applied to memory
  std::thread repeat([&] {
    EXPECT_TRUE(Complete(train).duplicate);
    repeat_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(first_done.load()) << "the first completion waits for its write";
  EXPECT_FALSE(repeat_done.load()) << "a duplicate answered before the result it repeats is durable";
  {
    std::lock_guard<std::mutex> l(mu);
    release = true;
  }
  cv.notify_all();
  holder.join();
  first.join();
  repeat.join();
  EXPECT_TRUE(first_done && repeat_done);
  EXPECT_EQ(*store_->CountResults(), 1);
}

}  // namespace
}  // namespace cadenza::coord
