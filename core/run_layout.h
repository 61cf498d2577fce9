// Where a run's files live below its output folder: the one place these paths are spelled (coordinator, worker, trainer).
#pragma once

#include <filesystem>
#include <string>

namespace cadenza::run_layout {

inline std::string Join(const std::string& out, const std::string& rel) { return (std::filesystem::path(out) / rel).string(); }

inline std::string CheckpointsDir(const std::string& out) { return Join(out, "checkpoints"); }
inline std::string LatestCheckpoint(const std::string& out) { return Join(out, "checkpoints/latest.pt"); }
inline std::string BestCheckpoint(const std::string& out) { return Join(out, "checkpoints/best.pt"); }
inline std::string SamplesRoot(const std::string& out) { return Join(out, "samples"); }
inline std::string SamplesDir(const std::string& out, int shard) { return Join(out, "samples/shard-" + std::to_string(shard)); }
inline std::string ShardReport(const std::string& out, int shard) { return Join(out, "evaluation/shard-" + std::to_string(shard) + ".json"); }
inline std::string Result(const std::string& out) { return Join(out, "result.json"); }   // the aggregate task's report
inline std::string Score(const std::string& out) { return Join(out, "score.json"); }     // the score task's report
inline std::string Probe(const std::string& out) { return Join(out, "probe.csv"); }      // the probe task's table

}  // namespace cadenza::run_layout
