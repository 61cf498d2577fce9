// The model library as seen from code that must not include torch (CLI, workers): counts, checkpoints, sampling.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/experiment_config.h"
#include "core/model/generation.h"
#include "core/status.h"
#include "core/window_source.h"

namespace cadenza {

// Trainable parameters of the model a config describes (builds it once on the CPU).
StatusOr<int64_t> CountParameters(const ModelConfig& config);

// Intra-op threads for LibTorch; 0 = DefaultThreads() (core/threads.h); at most kMaxThreads. LibTorch's own probe
// sees one core here (PLATFORM.md). Training and every command that runs a model set their threads here.
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

// Likelihood of held-out music under a checkpoint: the sums over every window of a split.
struct ScoreResult {
  double nll = 0;            // summed negative log-likelihood (nats) of every non-PAD target token
  double nll_per_token = 0;  // nll / tokens
  double perplexity = 0;     // exp(nll_per_token)
  double nll_per_bar = 0;    // nll / bars (targets that are Bar tokens)
  int64_t tokens = 0;        // non-PAD targets scored (a token in overlapping windows counts once per window)
  int64_t bars = 0;
  int64_t windows = 0;
};

// A checkpoint's model kept loaded to score window sets (`cadenza score`, the worker's score task).
class CheckpointScorer {
 public:
  static StatusOr<std::unique_ptr<CheckpointScorer>> Open(const std::string& checkpoint);
  ~CheckpointScorer();
  // Every window of `windows` (epoch 0, all of them, each `length()` = seq_len + 1 tokens: inputs and their
  // next-token targets), exactly as validation computes it: eval mode (no dropout), no gradients, PAD targets
  // ignored, in batches of `batch_size`. Deterministic: the same windows give the same sums.
  StatusOr<ScoreResult> Score(const WindowSource& windows, int64_t batch_size) const;
  const CheckpointInfo& info() const { return info_; }

 private:
  struct Impl;
  CheckpointScorer() = default;
  std::unique_ptr<Impl> impl_;
  CheckpointInfo info_;
};

// A checkpoint's model kept loaded to read its final hidden states: segment embeddings for the SSM.
class HiddenStateReader {
 public:
  static StatusOr<std::unique_ptr<HiddenStateReader>> Open(const std::string& checkpoint);
  ~HiddenStateReader();
  // One row of d_model floats per token. A Transformer reads sequences longer than its context in consecutive
  // windows of max_len tokens, each starting afresh; an RNN reads the whole sequence at once.
  StatusOr<std::vector<std::vector<float>>> PerToken(const std::vector<int32_t>& tokens) const;
  const CheckpointInfo& info() const { return info_; }

 private:
  struct Impl;
  HiddenStateReader() = default;
  std::unique_ptr<Impl> impl_;
  CheckpointInfo info_;
};

}  // namespace cadenza
