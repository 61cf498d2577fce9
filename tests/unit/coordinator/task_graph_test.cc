// The task graph as pure functions: no store, no scheduler, no lock. Tasks are built by hand, given ids as the
// scheduler would, and fed back as siblings.
#include "coordinator/task_graph.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace cadenza::coord {
namespace {

Experiment MakeExperiment(int samples, int per_task = 0, bool probe = false) {
  Experiment e;
  e.name = "unit";
  e.output_dir = "/runs/unit";
  e.seed = 7;
  e.samples = samples;
  e.samples_per_task = per_task;
  e.probe = probe;
  return e;
}

// Gives the inserts ids from `next` and resolves their parent ids, as Scheduler::CommitLocked does.
void GiveIds(std::vector<TaskRecord>* inserts, int64_t next) {
  for (TaskRecord& t : *inserts) t.id = next++;
  for (TaskRecord& t : *inserts) {
    if (t.parent_id < 0) t.parent_id = (*inserts)[static_cast<size_t>(-t.parent_id - 1)].id;
  }
}

std::vector<const TaskRecord*> Ptrs(const std::vector<TaskRecord>& v) {
  std::vector<const TaskRecord*> out;
  for (const TaskRecord& t : v) out.push_back(&t);
  return out;
}

int CountKind(const std::vector<TaskRecord>& v, TaskKind k) {
  int n = 0;
  for (const TaskRecord& t : v) n += t.kind == k;
  return n;
}

TEST(TaskGraphTest, FirstTaskTrainsIntoTheRunFolderAndResumeCountsAnAttemptMade) {
  const Experiment e = MakeExperiment(4);
  const TaskRecord t = FirstTask(e, 3, 4);
  EXPECT_EQ(t.job_id, 3);
  EXPECT_EQ(t.kind, TaskKind::kTrain);
  EXPECT_EQ(t.state, TaskState::kPending);
  EXPECT_EQ(t.attempt, 0);
  EXPECT_EQ(t.max_attempts, 4);
  EXPECT_EQ(t.checkpoint, "/runs/unit/checkpoints/latest.pt");
  const TaskRecord r = FirstTask(e, 3, 4, /*resume=*/true);
  EXPECT_EQ(r.attempt, 1);
  EXPECT_EQ(r.max_attempts, 5);
  EXPECT_EQ(r.message, "continues the run in /runs/unit");
  // Its first lease is attempt 2: a resumption.
  TaskRecord leased = r;
  leased.attempt += 1;
  leased.state = TaskState::kLeased;
  JobRecord job;
  job.experiment = e;
  EXPECT_TRUE(AssignmentFor(job, leased).resume);
}

TEST(TaskGraphTest, TrainingFansOutOverRanksWithContiguousSampleRanges) {
  const Experiment e = MakeExperiment(5);
  TaskRecord train = FirstTask(e, 1, 3);
  train.id = 1;
  FollowUps f = NextTasks(e, train, "", {&train}, /*ranks=*/2, 3);
  EXPECT_TRUE(f.updates.empty());
  ASSERT_EQ(f.inserts.size(), 6u);  // 2 generate, 2 evaluate, aggregate, score
  EXPECT_EQ(CountKind(f.inserts, TaskKind::kGenerate), 2);
  EXPECT_EQ(CountKind(f.inserts, TaskKind::kEvaluate), 2);
  EXPECT_EQ(CountKind(f.inserts, TaskKind::kAggregate), 1);
  EXPECT_EQ(CountKind(f.inserts, TaskKind::kScore), 1);
  EXPECT_EQ(CountKind(f.inserts, TaskKind::kProbe), 0);
  const TaskRecord& g0 = f.inserts[0];
  const TaskRecord& g1 = f.inserts[1];
  EXPECT_EQ(g0.state, TaskState::kPending);
  EXPECT_EQ(g0.sample_begin, 0);
  EXPECT_EQ(g0.sample_count, 3);
  EXPECT_EQ(g1.sample_begin, 3);
  EXPECT_EQ(g1.sample_count, 2);
  EXPECT_EQ(g0.checkpoint, "/runs/unit/checkpoints/best.pt");  // no checkpoint reported: the best one
  EXPECT_EQ(f.inserts[2].parent_id, -1);                        // evaluate[0] waits for inserts[0]
  EXPECT_EQ(f.inserts[3].parent_id, -2);
  EXPECT_EQ(f.inserts[2].state, TaskState::kBlocked);
  EXPECT_EQ(f.inserts[4].state, TaskState::kBlocked);  // the aggregate
  EXPECT_EQ(f.inserts[4].shard_count, 2);
  EXPECT_EQ(f.inserts[5].state, TaskState::kPending);  // score runs at once
  for (const TaskRecord& t : f.inserts) EXPECT_EQ(t.job_id, 1);
  EXPECT_FALSE(JobComplete(train, {&train}, f));
}

TEST(TaskGraphTest, FanOutFollowsSamplesPerTaskAndNeverExceedsTheSamples) {
  TaskRecord train;
  train.id = 1;
  auto generates = [&](const Experiment& e, int ranks) { return CountKind(NextTasks(e, train, "/ck.pt", {&train}, ranks, 1).inserts, TaskKind::kGenerate); };
  EXPECT_EQ(generates(MakeExperiment(10, 3), 64), 4);  // ceil(10 / 3), whatever the ranks
  EXPECT_EQ(generates(MakeExperiment(3), 8), 3);       // no more shards than samples
  EXPECT_EQ(generates(MakeExperiment(3), 0), 1);       // at least one
  const FollowUps f = NextTasks(MakeExperiment(2, 0, /*probe=*/true), train, "/runs/unit/checkpoints/step9.pt", {&train}, 1, 1);
  EXPECT_EQ(CountKind(f.inserts, TaskKind::kProbe), 1);
  for (const TaskRecord& t : f.inserts) {
    if (t.kind != TaskKind::kEvaluate && t.kind != TaskKind::kAggregate) {
      EXPECT_EQ(t.checkpoint, "/runs/unit/checkpoints/step9.pt") << TaskKindName(t.kind);
    }
  }
}

TEST(TaskGraphTest, EvaluationWaitsForItsGenerationAndAggregateForEveryEvaluation) {
  const Experiment e = MakeExperiment(4);
  TaskRecord train = FirstTask(e, 1, 3);
  train.id = 1;
  FollowUps f = NextTasks(e, train, "/runs/unit/ck.pt", {&train}, 2, 3);
  GiveIds(&f.inserts, 2);
  train.state = TaskState::kSucceeded;
  std::vector<TaskRecord> all = {train};
  all.insert(all.end(), f.inserts.begin(), f.inserts.end());
  auto find = [&](TaskKind k, int shard) -> TaskRecord& {
    for (TaskRecord& t : all) {
      if (t.kind == k && t.shard_index == shard) return t;
    }
    ADD_FAILURE() << "no task";
    return all[0];
  };
  // generate[1] done: evaluate[1] (only) becomes pending.
  FollowUps g = NextTasks(e, find(TaskKind::kGenerate, 1), "", Ptrs(all), 2, 3);
  EXPECT_TRUE(g.inserts.empty());
  ASSERT_EQ(g.updates.size(), 1u);
  EXPECT_EQ(g.updates[0].id, find(TaskKind::kEvaluate, 1).id);
  EXPECT_EQ(g.updates[0].state, TaskState::kPending);
  for (TaskRecord& t : all) {
    if (t.kind != TaskKind::kAggregate) t.state = TaskState::kSucceeded;
  }
  // The last evaluation unblocks the aggregate; the job is not complete until the aggregate is.
  find(TaskKind::kEvaluate, 0).state = TaskState::kLeased;
  FollowUps a = NextTasks(e, find(TaskKind::kEvaluate, 0), "", Ptrs(all), 2, 3);
  ASSERT_EQ(a.updates.size(), 1u);
  EXPECT_EQ(a.updates[0].kind, TaskKind::kAggregate);
  EXPECT_EQ(a.updates[0].state, TaskState::kPending);
  EXPECT_FALSE(JobComplete(find(TaskKind::kEvaluate, 0), Ptrs(all), a));
  // With evaluate[1] not yet done, evaluate[0] unblocks nothing.
  find(TaskKind::kEvaluate, 1).state = TaskState::kPending;
  EXPECT_TRUE(NextTasks(e, find(TaskKind::kEvaluate, 0), "", Ptrs(all), 2, 3).updates.empty());
  // Everything else succeeded: the aggregate's completion completes the job.
  find(TaskKind::kEvaluate, 1).state = TaskState::kSucceeded;
  find(TaskKind::kEvaluate, 0).state = TaskState::kSucceeded;
  TaskRecord& agg = find(TaskKind::kAggregate, 0);
  agg.state = TaskState::kLeased;
  FollowUps last = NextTasks(e, agg, "", Ptrs(all), 2, 3);
  EXPECT_TRUE(last.inserts.empty() && last.updates.empty());
  EXPECT_TRUE(JobComplete(agg, Ptrs(all), last));
  find(TaskKind::kScore, 0).state = TaskState::kLeased;  // one task unfinished: not complete
  EXPECT_FALSE(JobComplete(agg, Ptrs(all), last));
}

TEST(TaskGraphTest, AssignmentsNameTheRunFoldersFilesAndOneSeedPerSample) {
  JobRecord job;
  job.user = "alice";
  job.experiment = MakeExperiment(5);
  TaskRecord g;
  g.kind = TaskKind::kGenerate;
  g.shard_index = 1;
  g.sample_begin = 3;
  g.sample_count = 2;
  g.checkpoint = "/runs/unit/checkpoints/best.pt";
  Assignment a = AssignmentFor(job, g);
  EXPECT_EQ(a.user, "alice");
  EXPECT_EQ(a.samples_dir, "/runs/unit/samples/shard-1");
  EXPECT_EQ(a.seeds, (std::vector<uint64_t>{7u * 1000003u + 3, 7u * 1000003u + 4}));
  EXPECT_EQ(a.checkpoint, "/runs/unit/checkpoints/best.pt");
  TaskRecord ev = g;
  ev.kind = TaskKind::kEvaluate;
  a = AssignmentFor(job, ev);
  EXPECT_EQ(a.report_path, "/runs/unit/evaluation/shard-1.json");
  EXPECT_TRUE(a.seeds.empty());
  TaskRecord agg;
  agg.kind = TaskKind::kAggregate;
  agg.shard_count = 2;
  a = AssignmentFor(job, agg);
  EXPECT_EQ(a.report_path, "/runs/unit/result.json");
  EXPECT_EQ(a.inputs, (std::vector<std::string>{"/runs/unit/evaluation/shard-0.json", "/runs/unit/evaluation/shard-1.json"}));
  TaskRecord sc;
  sc.kind = TaskKind::kScore;
  EXPECT_EQ(AssignmentFor(job, sc).report_path, "/runs/unit/score.json");
  sc.kind = TaskKind::kProbe;
  EXPECT_EQ(AssignmentFor(job, sc).report_path, "/runs/unit/probe.csv");
  TaskRecord train = FirstTask(job.experiment, 1, 3);
  train.attempt = 1;
  EXPECT_FALSE(AssignmentFor(job, train).resume);
  train.attempt = 2;
  EXPECT_TRUE(AssignmentFor(job, train).resume);
}

TEST(TaskGraphTest, AFreshRunFolderSkipsEveryUsedOne) {
  std::set<std::string> used = {"/runs/a", "/runs/a-r2", "/runs/a-r3"};
  auto is_used = [&](const std::string& s) { return used.count(s) > 0; };
  EXPECT_EQ(FreshRunFolder("/runs/b", is_used), "/runs/b");
  EXPECT_EQ(FreshRunFolder("/runs/a", is_used), "/runs/a-r4");
  used.erase("/runs/a-r2");
  EXPECT_EQ(FreshRunFolder("/runs/a", is_used), "/runs/a-r2");
}

TEST(TaskGraphTest, CancellingTouchesOnlyUnfinishedTasksAndStopsTheirHolders) {
  std::vector<TaskRecord> tasks(5);
  const TaskState states[] = {TaskState::kSucceeded, TaskState::kLeased, TaskState::kPending, TaskState::kBlocked, TaskState::kFailed};
  for (int i = 0; i < 5; ++i) {
    tasks[static_cast<size_t>(i)].id = i + 1;
    tasks[static_cast<size_t>(i)].state = states[i];
    tasks[static_cast<size_t>(i)].message = "was";
  }
  tasks[1].worker = {4, 1};
  tasks[1].attempt = 2;
  Cancellation c = CancelUnfinished(Ptrs(tasks), 0, "");
  ASSERT_EQ(c.updates.size(), 3u);  // leased, pending, blocked
  for (const TaskRecord& u : c.updates) {
    EXPECT_EQ(u.state, TaskState::kCancelled);
    EXPECT_EQ(u.message, "was");  // kept without a message
  }
  ASSERT_EQ(c.stops.size(), 1u);
  EXPECT_EQ(c.stops[0].first, (WorkerKey{4, 1}));
  EXPECT_EQ(c.stops[0].second.task_id, 2);
  EXPECT_EQ(c.stops[0].second.attempt, 2);
  // The failed task itself is left out; the others get the message.
  Cancellation f = CancelUnfinished(Ptrs(tasks), 2, "job failed");
  ASSERT_EQ(f.updates.size(), 2u);
  EXPECT_TRUE(f.stops.empty());
  for (const TaskRecord& u : f.updates) EXPECT_EQ(u.message, "job failed");
}

TEST(TaskGraphTest, JobProgressIsHalfTrainingAndHalfTheRest) {
  JobRecord job;
  job.state = JobState::kRunning;
  std::vector<TaskRecord> tasks(3);
  tasks[0].kind = TaskKind::kTrain;
  tasks[0].state = TaskState::kSucceeded;
  tasks[1].kind = TaskKind::kGenerate;
  tasks[1].state = TaskState::kLeased;
  tasks[1].fraction = 0.5;
  tasks[2].kind = TaskKind::kGenerate;
  tasks[2].state = TaskState::kPending;
  tasks[2].fraction = 0.9;  // only a leased task's fraction counts
  JobView v = ViewOf(job, Ptrs(tasks), false);
  EXPECT_DOUBLE_EQ(v.progress, 0.5 + 0.5 * 0.25);
  EXPECT_EQ(v.counts.by_state[static_cast<int>(TaskState::kPending)], 1);
  EXPECT_EQ(v.counts.by_state[static_cast<int>(TaskState::kLeased)], 1);
  EXPECT_TRUE(v.tasks.empty());
  EXPECT_EQ(ViewOf(job, Ptrs(tasks), true).tasks.size(), 3u);
  job.state = JobState::kSucceeded;
  EXPECT_DOUBLE_EQ(ViewOf(job, Ptrs(tasks), false).progress, 1.0);
}

TEST(TaskGraphTest, OnlyAListOfProbeLengthsAsksForAProbe) {
  EXPECT_TRUE(WantsProbe("probe: {lengths: [64, 128]}\n"));
  EXPECT_FALSE(WantsProbe("probe: {lengths: []}\n"));
  EXPECT_FALSE(WantsProbe("train: {steps: 1}\n"));
  EXPECT_FALSE(WantsProbe("probe: [unclosed\n"));
}

TEST(TaskGraphTest, NamesOfKindsAndStatesAreThoseTheCliPrintsAndUnknownOutsideTheEnum) {
  EXPECT_STREQ(TaskKindName(TaskKind::kTrain), "train");
  EXPECT_STREQ(TaskKindName(TaskKind::kProbe), "probe");
  EXPECT_STREQ(TaskKindName(static_cast<TaskKind>(kNumTaskKinds)), "unknown");  // a newer peer's kind
  EXPECT_STREQ(TaskStateName(TaskState::kCancelled), "cancelled");
  EXPECT_STREQ(TaskStateName(static_cast<TaskState>(-1)), "unknown");
  EXPECT_STREQ(JobStateName(JobState::kSucceeded), "succeeded");
  EXPECT_STREQ(JobStateName(static_cast<JobState>(6)), "unknown");
}

}  // namespace
}  // namespace cadenza::coord
