// The task graph of one experiment, as pure functions (no I/O, no locks): which task a job starts with, which tasks
// follow a completed one, what a worker is told to run for a task (its files and seeds), which run folder a new job
// gets, what cancelling a job does to its tasks, and when the job is done. The Scheduler applies them.
//
//   train --> generate x G --> evaluate x G --> aggregate
//         \-> score (NLL on the fixed val/test splits and `score.on` datasets)
//          \-> probe (latency and memory at `probe.lengths`; only when the experiment lists lengths: Experiment::probe)
// The job succeeds when every task has succeeded.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/types.h"

namespace cadenza::coord {

// The job's first task: training (pending), its checkpoint at run_layout::LatestCheckpoint (core/run_layout.h).
// `resume` (resubmit --resume): counted as a first attempt already made, so that the first lease resumes from the
// folder's checkpoint, with one attempt extra.
TaskRecord FirstTask(const Experiment& e, int64_t job_id, int max_attempts, bool resume = false);

// Tasks that follow `done` (just succeeded) among `siblings` (every task of the job, `done` in its old state):
// `inserts` are new tasks (parent_id -(k+1) points at inserts[k]); `updates` unblock existing ones. `ranks` is the
// fan-out of generate tasks when samples_per_task is 0; `checkpoint` the trained checkpoint (train results).
struct FollowUps {
  std::vector<TaskRecord> inserts;
  std::vector<TaskRecord> updates;
};
FollowUps NextTasks(const Experiment& e, const TaskRecord& done, const std::string& checkpoint,
                    const std::vector<const TaskRecord*>& siblings, int ranks, int max_attempts);

// True when every task of the job has succeeded once `done` has (siblings as above, plus `follow` just made).
bool JobComplete(const TaskRecord& done, const std::vector<const TaskRecord*>& siblings, const FollowUps& follow);

// What the worker leasing `t` (already leased: its attempt counted) of `job` runs: the run folder's paths for the
// task's kind (core/run_layout.h), one seed per sample (seed * 1000003 + sample index, the same whatever the
// fan-out), and `resume` for a training attempt after the first.
Assignment AssignmentFor(const JobRecord& job, const TaskRecord& t);

// The run folder a new job writing to `out` gets: `out` itself unless `used`, else the first `out`-r2, -r3, ... not
// `used` (a folder is never shared between jobs).
std::string FreshRunFolder(const std::string& out, const std::function<bool(const std::string&)>& used);

// The unfinished tasks among `tasks` (all but `except`) as cancelled, with `message` when it is not empty, and a stop
// notice for the holder of each leased one.
struct Cancellation {
  std::vector<TaskRecord> updates;
  std::vector<std::pair<WorkerKey, StopNotice>> stops;
};
Cancellation CancelUnfinished(const std::vector<const TaskRecord*>& tasks, int64_t except, const std::string& message);

// A job as GetJob and ListJobs show it: its tasks counted by state (listed with `with_tasks`), and its progress, half
// the training fraction plus half the mean fraction of the other tasks (1 once the job succeeded).
JobView ViewOf(const JobRecord& job, const std::vector<const TaskRecord*>& tasks, bool with_tasks);

// True when an experiment's YAML asks for a probe task (a non-empty `probe.lengths`): Experiment::probe for a job
// loaded from the database. It parses the YAML, so the scheduler calls it before taking its lock.
bool WantsProbe(const std::string& experiment_yaml);

}  // namespace cadenza::coord
