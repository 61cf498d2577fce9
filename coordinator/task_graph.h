// The task graph of one experiment, as pure functions (no I/O, no locks): which tasks a job starts with, which
// tasks follow a completed one, where each task's files go, and when the job is done.
//
//   train --> generate x G --> evaluate x G --> aggregate
//         \-> score (NLL on the fixed val/test splits and `score.on` datasets)
//          \-> probe (latency and memory at `probe.lengths`; only when the experiment lists lengths: Experiment::probe)
// The job succeeds when every task has succeeded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/types.h"

namespace cadenza::coord {

// The job's first task: training (pending), its checkpoint at run_layout::LatestCheckpoint (core/run_layout.h).
TaskRecord FirstTask(const Experiment& e, int64_t job_id, int max_attempts);

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

// True when an experiment's YAML asks for a probe task (a non-empty `probe.lengths`): Experiment::probe for a job
// loaded from the database. It parses the YAML, so the scheduler calls it before taking its lock.
bool WantsProbe(const std::string& experiment_yaml);

}  // namespace cadenza::coord
