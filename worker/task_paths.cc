// The worker's check of a task's paths before it runs (see task_paths.h).
#include "worker/task_paths.h"

#include <filesystem>

#include "coordinator/types.h"

namespace cadenza {

Status CheckTaskPaths(const v1::Task& t, const coord::PathPolicy& policy) {
  const std::string who = "task " + std::to_string(t.task_id()) + " (job " + std::to_string(t.job_id()) + "): ";
  const std::string& run = t.output_dir();
  if (run.empty() || run[0] != '/') {
    return PermissionDenied(who + "task.output_dir: '" + run + "' is not an absolute run folder; refused before writing");
  }
  if (std::filesystem::path(run).lexically_normal() == "/") {
    return PermissionDenied(who + "task.output_dir: " + run + " is the filesystem root; refused before writing");
  }
  // The run folder against the roots (and the datasets), by the coordinator's own rules, on this machine.
  coord::Experiment e;
  e.dataset = t.dataset();
  e.output_dir = run;
  e.experiment_yaml = t.experiment_yaml();
  if (Status s = coord::CheckExperimentPaths(e, policy, who + "task", "the coordinator's"); !s.ok()) {
    return PermissionDenied(s.message() + " (checked again by the worker; refused before writing)");
  }
  auto inside_run = [&](const std::string& field, const std::string& path) -> Status {
    if (path.empty() || coord::PathWithin(path, run, /*allow_equal=*/false)) return Status::Ok();
    return PermissionDenied(who + field + ": " + path + " is outside the task's run folder " + run + "; refused before writing");
  };
  CADENZA_RETURN_IF_ERROR(inside_run("task.samples_dir", t.samples_dir()));
  CADENZA_RETURN_IF_ERROR(inside_run("task.report_path", t.report_path()));
  CADENZA_RETURN_IF_ERROR(inside_run("task.checkpoint", t.checkpoint()));
  for (int i = 0; i < t.inputs_size(); ++i) CADENZA_RETURN_IF_ERROR(inside_run("task.inputs[" + std::to_string(i) + "]", t.inputs(i)));
  return Status::Ok();
}

}  // namespace cadenza
