// The model library as seen from code that must not include torch (CLI, workers): counts, checkpoints, sampling.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/experiment_config.h"
#include "core/model/generation.h"
#include "core/status.h"

namespace cadenza {

// Trainable parameters of the model a config describes (builds it once on the CPU).
StatusOr<int64_t> CountParameters(const ModelConfig& config);

// Intra-op threads for LibTorch; 0 = every core. LibTorch's own probe sees one core here (PLATFORM.md).
void SetTorchThreads(int threads);

struct CheckpointInfo {
  ExperimentConfig config;  // the effective config stored in the checkpoint
  int64_t step = 0;
  int64_t parameters = 0;
  double best_val_nll = 0;
};

StatusOr<CheckpointInfo> InspectCheckpoint(const std::string& path);
// Loads the checkpoint's model and samples from it (see generator.h for the rules).
StatusOr<std::vector<GeneratedSample>> GenerateFromCheckpoint(const std::string& path, const GenerateOptions& options,
                                                              CheckpointInfo* info = nullptr);

}  // namespace cadenza
