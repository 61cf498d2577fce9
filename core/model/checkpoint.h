// Training checkpoints (model, optimizer, schedule position, RNG, data cursor, config) and state_dict export.
#pragma once

#include <torch/torch.h>

#include <string>

#include "core/experiment_config.h"
#include "core/model/sequence_model.h"
#include "core/status.h"

namespace cadenza {

struct TrainingProgress {
  int64_t step = 0;           // optimizer steps done
  int64_t epoch = 0;          // data epoch in progress
  int64_t cursor = 0;         // next window of that epoch
  double best_val_nll = 1e30; // best validation NLL per token so far
  int64_t evals_without_improvement = 0;
  // What a resumed run reports even when it takes no further step or never beats its best again (0 in
  // checkpoints written before these were kept).
  double best_val_nll_per_bar = 0;  // at the best validation
  double last_train_loss = 0;       // of the last step taken
};

// Writes atomically (temporary name, fsync, rename): a crash leaves the previous checkpoint intact. The file is the
// torch archive followed by a 24-byte trailer holding the archive's CRC-32C (format cadenza-checkpoint/2).
Status SaveCheckpoint(const std::string& path, const ExperimentConfig& config, SequenceModelImpl& model,
                      torch::optim::Optimizer& optimizer, const TrainingProgress& progress);

struct LoadedCheckpoint {
  ExperimentConfig config;
  SequenceModel model;
  TrainingProgress progress;
};

// Rebuilds the model from the config stored inside; refuses files that are not cadenza checkpoints, that were
// made with another vocabulary, or whose checksum does not verify (DataLoss naming the file). If `optimizer` is given, its state is restored too, and the global CPU
// RNG is set to the saved state so a resumed run continues bit-exactly.
StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path);
Status RestoreTrainingState(const std::string& path, SequenceModelImpl& model, torch::optim::Optimizer& optimizer);

// Parameters and buffers as a name -> tensor dict in PyTorch's pickle format: `torch.load(path)` in Python.
Status ExportStateDict(const std::string& path, SequenceModelImpl& model);

}  // namespace cadenza
