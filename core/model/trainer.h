// The training loop: AdamW, warm-up + cosine schedule, clipping, validation, early stopping, checkpoints, resume.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include "core/experiment_config.h"
#include "core/status.h"
#include "core/window_source.h"

namespace cadenza {

class GradientSync;  // core/model/gradient_sync.h

// Where training stands, as the trainer reports it to TrainOptions::on_progress (the worker agent's progress
// reports to the coordinator).
struct TrainStepProgress {
  int64_t step = 0;               // steps done (the run's, counting those before a resume)
  int64_t steps = 0;              // train.steps
  double loss = 0;                // training loss of the last step
  double tokens_per_second = 0;   // all ranks' training tokens per second in this process so far
  std::string checkpoint;         // set when this call follows a new <out>/checkpoints/latest.pt (a retry resumes from it)
};

struct TrainOptions {
  bool resume = false;            // continue from <out>/checkpoints/latest.pt
  bool progress = true;           // progress line on stderr
  int64_t stop_after_steps = 0;   // stop (with a checkpoint) after this many steps in this process; 0 = run to the end
  const std::atomic<bool>* stop_requested = nullptr;  // set by a signal handler: checkpoint and return
  // Data-parallel training (worker/): `train` and `val` are this rank's share (every world-th window), the
  // config's batch_size is the global batch (split evenly over ranks), gradients and validation sums are
  // reduced over ranks, and only rank 0 writes files. Null: one process, the path above unchanged.
  GradientSync* sync = nullptr;
  int threads = 0;  // intra-op threads for this process, overriding train.threads (not part of the config); 0 = config
  std::string dataset_manifest_sha256;  // recorded in config.yaml's provenance (ExperimentWindows has it)
  // Metrics rows are written out (whole) once this many bytes are buffered, and before every checkpoint. Tests
  // lower it to put rows of steps after a checkpoint on disk before a kill, as a long run does.
  size_t metrics_flush_bytes = 4096;
  // Called by the writer (rank 0) on the training thread after every step and after every checkpoint it wrote.
  std::function<void(const TrainStepProgress&)> on_progress;
};

struct TrainSummary {
  int64_t steps = 0;
  int64_t parameters = 0;
  double last_train_loss = 0;
  double last_val_nll = 0;   // per token
  double best_val_nll = 0;   // per token
  double best_val_perplexity = 0;
  double best_val_nll_per_bar = 0;
  double tokens_per_second = 0;
  double seconds = 0;
  bool early_stopped = false;
  bool interrupted = false;  // stopped by stop_after_steps or a signal, resumable
  std::string checkpoint;    // latest checkpoint written
  // sample/{structureness,repetition,avg_pitch_deviation,syncopation,pieces} of the last validation's samples
  // (train.eval_samples > 0; data-parallel: over every rank's share); also logged at every validation as a curve against the step.
  std::map<std::string, double> sample_metrics;
};

// The rank of this process and the world size of `sync` (0 and 1 without one), for code that does not include torch.
int SyncRank(const GradientSync* sync);
int SyncWorld(const GradientSync* sync);

// Learning rate at `step` (0-based): linear warm-up to lr, then cosine down to lr * min_lr_ratio at cfg.steps.
double LearningRateAt(const TrainConfig& cfg, int64_t step);

// Writes <out>/config.yaml (with provenance: commit, command line, dataset hash), metrics (CSV, JSONL, TensorBoard),
// checkpoints/{latest,best}.pt and model_state.pt (paths: core/run_layout.h). Never throws: an exception from
// LibTorch (or any other) inside training is returned as an Internal status with its message.
StatusOr<TrainSummary> Train(const ExperimentConfig& config, const WindowSource& train, const WindowSource& val,
                             const TrainOptions& options);

// Validation over the first `max_windows` windows of `val` (epoch 0; 0 = all).
struct EvalResult {
  double nll_per_token = 0;
  double perplexity = 0;
  double nll_per_bar = 0;
  int64_t tokens = 0;
  int64_t bars = 0;
};

}  // namespace cadenza
