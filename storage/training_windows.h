// The trainer's WindowSource over a dataset split: bar-aligned windows, shuffled per epoch by seed, per rank.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "core/experiment_config.h"
#include "core/window_source.h"
#include "storage/dataset.h"

namespace cadenza {

class DatasetWindows : public WindowSource {
 public:
  // Fails if the split has no window of options.length tokens (the error names the dataset and split).
  static StatusOr<std::unique_ptr<DatasetWindows>> Create(const Dataset& dataset, const WindowSamplerOptions& options);

  int64_t length() const override { return sampler_->length(); }
  int64_t WindowsPerEpoch() const override { return per_epoch_; }
  void Fill(int64_t epoch, int64_t first, int64_t count, int32_t* out) const override;

 private:
  DatasetWindows() = default;
  std::unique_ptr<WindowSampler> sampler_;
  int64_t per_epoch_ = 0;
  mutable std::mutex mu_;  // guards the cached epoch
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<Window> windows_;
};

// What an experiment trains on: its dataset, and this rank's train and validation windows of seq_len + 1 tokens
// (inputs and their next-token targets), bar-aligned, shuffled by the experiment's seed. The train windows come
// from the train.data_fraction subset of the train split (Dataset::PiecesInSubset); val is never subset.
// A fraction that selects no piece is an error naming train.data_fraction.
struct ExperimentWindows {
  std::unique_ptr<Dataset> dataset;
  std::unique_ptr<DatasetWindows> train, val;
  int64_t train_pieces = 0;  // pieces of the (subset) train split, all ranks together
  int64_t train_tokens = 0;  // their tokens (manifest counts): what train.epochs counts passes over
  std::string manifest_sha256;  // of <dataset>/manifest.json, for the run's provenance (TrainOptions)
};
// The windows of one whole split that the score task and `cadenza score` sum over (seq_len + 1 tokens starting
// on bar lines, rank 0 of 1, never subset): tiled (WindowSamplerOptions::tile) or, with tile false, every bar
// line as validation reads them. FailedPrecondition when it has none.
StatusOr<std::unique_ptr<DatasetWindows>> OpenSplitWindows(const Dataset& dataset, Split split, int seq_len, bool tile);

StatusOr<ExperimentWindows> OpenExperimentWindows(const ExperimentConfig& config, int rank = 0, int world = 1);

}  // namespace cadenza
