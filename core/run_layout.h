// Where a run's files live below its output folder: the one place these paths are spelled (the coordinator's task
// graph, the trainer and its metrics log, the worker's agent and task runners, `cadenza train`).
#pragma once

#include <filesystem>
#include <string>

namespace cadenza::run_layout {

inline std::string Join(const std::string& out, const std::string& rel) { return (std::filesystem::path(out) / rel).string(); }

// Training (core/model/trainer.cc, core/metrics_log.cc): written by rank 0 alone.
inline std::string ConfigYaml(const std::string& out) { return Join(out, "config.yaml"); }  // effective config + provenance
inline std::string TrainLock(const std::string& out) { return Join(out, "train.lock"); }   // one trainer per run folder
inline constexpr const char* kMetricsCsvName = "metrics.csv";  // also how readers find it among a result's artifacts
inline std::string MetricsCsv(const std::string& out) { return Join(out, kMetricsCsvName); }
inline std::string MetricsJsonl(const std::string& out) { return Join(out, "metrics.jsonl"); }
inline std::string TensorboardDir(const std::string& out) { return Join(out, "tensorboard"); }
inline std::string ModelState(const std::string& out) { return Join(out, "model_state.pt"); }  // the final weights alone
inline std::string CheckpointsDir(const std::string& out) { return Join(out, "checkpoints"); }
inline std::string LatestCheckpoint(const std::string& out) { return Join(out, "checkpoints/latest.pt"); }
inline std::string BestCheckpoint(const std::string& out) { return Join(out, "checkpoints/best.pt"); }
// The tasks after training (coordinator/task_graph.cc assigns them, worker/task_runners.cc writes them).
inline std::string SamplesRoot(const std::string& out) { return Join(out, "samples"); }
inline std::string SamplesDir(const std::string& out, int shard) { return Join(out, "samples/shard-" + std::to_string(shard)); }
inline std::string ShardReport(const std::string& out, int shard) { return Join(out, "evaluation/shard-" + std::to_string(shard) + ".json"); }
inline std::string Result(const std::string& out) { return Join(out, "result.json"); }   // the aggregate task's report
inline std::string SsmDir(const std::string& out) { return Join(out, "ssm"); }            // its samples' SSM heatmaps
inline std::string Score(const std::string& out) { return Join(out, "score.json"); }     // the score task's report
inline std::string Probe(const std::string& out) { return Join(out, "probe.csv"); }      // the probe task's table

}  // namespace cadenza::run_layout
