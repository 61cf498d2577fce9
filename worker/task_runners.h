// The per-rank task runners of the worker agent: generate samples, evaluate them, aggregate a job (torch-free API).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza {

// What a finished task reports to the coordinator (mirrors cadenza.v1.TaskResult).
struct TaskOutcome {
  std::map<std::string, double> metrics;
  std::vector<std::string> artifacts;
  std::string checkpoint;
  std::string summary;
};

// How samples are drawn (the same defaults as `cadenza demo`; the task carries only the seeds).
struct SampleOptions {
  int64_t bars = 8;            // stop after this many new bars
  int64_t max_tokens = 1500;   // hard cap per sample
  double temperature = 1.0;
  double top_p = 0.95;
  int64_t top_k = 0;
  bool wav = false;            // also render WAV with the default soundfont (when it exists)
};

// Generate: one sample per seed from `checkpoint` into `samples_dir`: sample-NNN.{mid,json}[,.wav], NNN the
// job-wide index (first_index + i). Sample i depends only on its seed, never on how the job was sharded.
StatusOr<TaskOutcome> RunGenerateTask(const std::string& checkpoint, const std::vector<uint64_t>& seeds, int first_index,
                                      const std::string& samples_dir, const SampleOptions& options);

// Evaluate: the MIDI files of `samples_dir` against `split` of `dataset` (without a reference when the split is
// empty or missing, as `cadenza demo` does) -> the report JSON at `report_path` (docs/evaluation.md).
StatusOr<TaskOutcome> RunEvaluateTask(const std::string& samples_dir, const std::string& dataset, const std::string& split,
                                      const std::string& report_path, int jobs);

// Aggregate: the job's whole sample set (every shard folder under `samples_root`) evaluated as one set against
// the reference -> `result_path`; the shard reports in `inputs` must exist (they are the evaluated shards).
StatusOr<TaskOutcome> RunAggregateTask(const std::vector<std::string>& inputs, const std::string& samples_root,
                                       const std::string& dataset, const std::string& split,
                                       const std::string& result_path, int jobs);

}  // namespace cadenza
