// The experiment task graph: first task, follow-ups of a completed task, completion rule, assignments, run folders,
// cancellation and job views.
#include "coordinator/task_graph.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "core/run_layout.h"

namespace cadenza::coord {

bool WantsProbe(const std::string& experiment_yaml) {
  try {
    const YAML::Node probe = YAML::Load(experiment_yaml)["probe"];
    return probe && probe["lengths"] && probe["lengths"].IsSequence() && probe["lengths"].size() > 0;
  } catch (const YAML::Exception&) {
    return false;  // validated at submission; an unreadable YAML asks for nothing extra
  }
}

TaskRecord FirstTask(const Experiment& e, int64_t job_id, int max_attempts, bool resume) {
  TaskRecord t;
  t.job_id = job_id;
  t.kind = TaskKind::kTrain;
  t.state = TaskState::kPending;
  t.max_attempts = max_attempts;
  t.checkpoint = run_layout::LatestCheckpoint(e.output_dir);
  if (resume) {
    t.attempt = 1;
    t.max_attempts += 1;
    t.message = "continues the run in " + e.output_dir;
  }
  return t;
}

FollowUps NextTasks(const Experiment& e, const TaskRecord& done, const std::string& checkpoint_in,
                    const std::vector<const TaskRecord*>& siblings, int ranks, int max_attempts) {
  FollowUps f;
  auto task = [&](TaskKind kind, TaskState state) {
    TaskRecord t;
    t.job_id = done.job_id;
    t.kind = kind;
    t.state = state;
    t.max_attempts = max_attempts;
    return t;
  };
  if (done.kind == TaskKind::kTrain) {
    const std::string checkpoint = checkpoint_in.empty() ? run_layout::BestCheckpoint(e.output_dir) : checkpoint_in;
    const int n = e.samples;
    int g = e.samples_per_task > 0 ? (n + e.samples_per_task - 1) / e.samples_per_task : std::min(n, std::max(1, ranks));
    g = std::max(1, std::min(g, n));
    int begin = 0;
    for (int i = 0; i < g; ++i) {
      TaskRecord t = task(TaskKind::kGenerate, TaskState::kPending);
      t.shard_index = i;
      t.shard_count = g;
      t.sample_begin = begin;
      t.sample_count = n / g + (i < n % g ? 1 : 0);
      t.checkpoint = checkpoint;
      begin += t.sample_count;
      f.inserts.push_back(t);
    }
    for (int i = 0; i < g; ++i) {
      TaskRecord t = f.inserts[static_cast<size_t>(i)];
      t.kind = TaskKind::kEvaluate;
      t.state = TaskState::kBlocked;
      t.parent_id = -(i + 1);
      f.inserts.push_back(t);
    }
    TaskRecord agg = task(TaskKind::kAggregate, TaskState::kBlocked);
    agg.shard_count = g;
    f.inserts.push_back(agg);
    TaskRecord score = task(TaskKind::kScore, TaskState::kPending);
    score.checkpoint = checkpoint;
    f.inserts.push_back(score);
    if (e.probe) {
      TaskRecord probe = task(TaskKind::kProbe, TaskState::kPending);
      probe.checkpoint = checkpoint;
      f.inserts.push_back(probe);
    }
  } else if (done.kind == TaskKind::kGenerate) {
    for (const TaskRecord* t : siblings) {
      if (t->kind == TaskKind::kEvaluate && t->parent_id == done.id && t->state == TaskState::kBlocked) {
        TaskRecord u = *t;
        u.state = TaskState::kPending;
        f.updates.push_back(u);
      }
    }
  } else if (done.kind == TaskKind::kEvaluate) {
    bool all = true;
    const TaskRecord* agg = nullptr;
    for (const TaskRecord* t : siblings) {
      if (t->kind == TaskKind::kEvaluate && t->id != done.id && t->state != TaskState::kSucceeded) all = false;
      if (t->kind == TaskKind::kAggregate) agg = t;
    }
    if (all && agg && agg->state == TaskState::kBlocked) {
      TaskRecord u = *agg;
      u.state = TaskState::kPending;
      f.updates.push_back(u);
    }
  }
  return f;
}

bool JobComplete(const TaskRecord& done, const std::vector<const TaskRecord*>& siblings, const FollowUps& follow) {
  if (!follow.inserts.empty()) return false;
  for (const TaskRecord* t : siblings) {
    if (t->id != done.id && t->state != TaskState::kSucceeded) return false;
  }
  return true;
}

Assignment AssignmentFor(const JobRecord& job, const TaskRecord& t) {
  Assignment a;
  a.task = t;
  a.user = job.user;
  a.experiment = job.experiment;
  a.checkpoint = t.checkpoint;
  const Experiment& e = job.experiment;
  switch (t.kind) {
    case TaskKind::kTrain:
      a.resume = t.attempt > 1;
      break;
    case TaskKind::kGenerate:
      a.samples_dir = run_layout::SamplesDir(e.output_dir, t.shard_index);
      for (int i = 0; i < t.sample_count; ++i) a.seeds.push_back(e.seed * 1000003ull + static_cast<uint64_t>(t.sample_begin + i));
      break;
    case TaskKind::kEvaluate:
      a.samples_dir = run_layout::SamplesDir(e.output_dir, t.shard_index);
      a.report_path = run_layout::ShardReport(e.output_dir, t.shard_index);
      break;
    case TaskKind::kAggregate:
      a.report_path = run_layout::Result(e.output_dir);
      for (int i = 0; i < t.shard_count; ++i) a.inputs.push_back(run_layout::ShardReport(e.output_dir, i));
      break;
    case TaskKind::kScore:
      a.report_path = run_layout::Score(e.output_dir);
      break;
    case TaskKind::kProbe:
      a.report_path = run_layout::Probe(e.output_dir);
      break;
    default:
      break;
  }
  return a;
}

std::string FreshRunFolder(const std::string& out, const std::function<bool(const std::string&)>& used) {
  if (!used(out)) return out;
  std::string fresh;
  for (int k = 2; fresh.empty() || used(fresh); ++k) fresh = out + "-r" + std::to_string(k);
  return fresh;
}

Cancellation CancelUnfinished(const std::vector<const TaskRecord*>& tasks, int64_t except, const std::string& message) {
  Cancellation c;
  for (const TaskRecord* t : tasks) {
    if (t->id == except || IsTerminal(t->state)) continue;
    TaskRecord u = *t;
    u.state = TaskState::kCancelled;
    if (!message.empty()) u.message = message;
    if (t->state == TaskState::kLeased) c.stops.push_back({t->worker, {t->id, t->attempt}});
    c.updates.push_back(std::move(u));
  }
  return c;
}

JobView ViewOf(const JobRecord& job, const std::vector<const TaskRecord*>& tasks, bool with_tasks) {
  JobView v;
  v.job = job;
  double train = 0, rest = 0;
  int rest_n = 0;
  for (const TaskRecord* t : tasks) {
    v.counts.by_state[static_cast<int>(t->state)]++;
    const double f = t->state == TaskState::kSucceeded ? 1.0 : t->state == TaskState::kLeased ? t->fraction : 0.0;
    if (t->kind == TaskKind::kTrain) {
      train = f;
    } else {
      rest += f;
      ++rest_n;
    }
    if (with_tasks) v.tasks.push_back(*t);
  }
  v.progress = job.state == JobState::kSucceeded ? 1.0 : 0.5 * train + (rest_n ? 0.5 * rest / rest_n : 0.0);
  return v;
}

}  // namespace cadenza::coord
