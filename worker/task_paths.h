// The worker's second look at a leased task's paths, on its own filesystem, before it reads or writes anything
// (docs/coordinator.md "Security"): the coordinator checked them at submit, but a run folder can become a symlink
// out of the output root later, a job can predate the roots, and the worker's mounts are not the coordinator's.
#pragma once

#include <string>
#include <vector>

#include "cadenza/v1/common.pb.h"
#include "coordinator/path_policy.h"
#include "core/status.h"

namespace cadenza {

// OK, or PERMISSION_DENIED naming the task, the field and the path:
//   - the run folder (`output_dir`) is an absolute path, inside `policy.output_root` when it names one;
//   - every file of the run the task reads or writes (`samples_dir`, `report_path`, `checkpoint`, `inputs`) lies
//     inside the run folder;
//   - the dataset and the experiment's `score.on` datasets lie inside one of `policy.data_roots` when it names any.
// Paths are compared after normalising `..` and resolving the symlinks that exist (coord::PathWithin). `policy` is
// what the coordinator announced at registration (empty: only the run-folder rules apply).
Status CheckTaskPaths(const v1::Task& task, const coord::PathPolicy& policy);

}  // namespace cadenza
