#include "storage/training_windows.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "storage/sha256.h"

namespace cadenza {

StatusOr<std::unique_ptr<DatasetWindows>> DatasetWindows::Create(const Dataset& dataset,
                                                                const WindowSamplerOptions& options) {
  auto sampler = WindowSampler::Create(dataset, options);
  if (!sampler.ok()) return sampler.status();
  std::unique_ptr<DatasetWindows> w(new DatasetWindows());
  w->sampler_ = std::move(*sampler);
  w->per_epoch_ = static_cast<int64_t>(w->sampler_->Epoch(0).size());
  if (w->per_epoch_ == 0) {
    return FailedPrecondition(dataset.dir() + ": the " + SplitName(options.split) + " split has no window of " +
                              std::to_string(options.length) + " tokens for rank " + std::to_string(options.rank) +
                              " of " + std::to_string(options.world) +
                              " (ingest more pieces, raise --val/--test, or shorten seq_len)");
  }
  return w;
}

void DatasetWindows::Fill(int64_t epoch, int64_t first, int64_t count, int32_t* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (epoch != cached_epoch_) {
    windows_ = sampler_->Epoch(epoch);
    cached_epoch_ = epoch;
  }
  const int64_t len = sampler_->length();
  for (int64_t i = 0; i < count; ++i) {
    int32_t* row = out + i * len;
    if (first + i < static_cast<int64_t>(windows_.size())) {
      sampler_->Read(windows_[first + i], row);
    } else {
      std::fill(row, row + len, 0);  // past the epoch's end: all padding, which the loss ignores
    }
  }
}

StatusOr<std::unique_ptr<DatasetWindows>> OpenSplitWindows(const Dataset& dataset, Split split, int seq_len, bool tile) {
  WindowSamplerOptions w;
  w.tile = tile;
  w.length = int64_t(seq_len) + 1;
  w.min_tokens = std::min<int64_t>(32, w.length);  // as OpenExperimentWindows
  w.split = split;
  return DatasetWindows::Create(dataset, w);
}

StatusOr<ExperimentWindows> OpenExperimentWindows(const ExperimentConfig& config, int rank, int world) {
  if (config.dataset.empty()) return InvalidArgument("dataset: missing (the folder written by `cadenza ingest`)");
  ExperimentWindows out;
  // Training reads every shard: their SHA-256 against the manifest first (streamed; docs/storage.md has the cost),
  // so a shard edited or damaged after ingest is refused by name instead of trained on.
  auto dataset = Dataset::Open(config.dataset, /*verify_checksums=*/true);
  if (!dataset.ok()) return dataset.status();
  out.dataset = std::move(dataset).value();
  auto digest = Sha256File((std::filesystem::path(config.dataset) / "manifest.json").string());
  if (!digest.ok()) return digest.status();
  out.manifest_sha256 = *digest;
  WindowSamplerOptions w;
  w.length = config.train.seq_len + 1;  // seq_len inputs, each with its next-token target
  w.min_tokens = std::min<int64_t>(32, w.length);
  w.seed = config.train.seed;
  w.rank = rank;
  w.world = world;
  w.split = Split::kTrain;
  w.fraction = config.train.data_fraction;
  const std::vector<int64_t> subset = out.dataset->PiecesInSubset(Split::kTrain, w.fraction);
  if (subset.empty()) {
    const int64_t all = static_cast<int64_t>(out.dataset->PiecesInSplit(Split::kTrain).size());
    return FailedPrecondition(config.dataset + ": train.data_fraction " + std::to_string(config.train.data_fraction) +
                              " selects none of the " + std::to_string(all) +
                              " pieces of the train split (raise train.data_fraction or ingest more pieces)");
  }
  out.train_pieces = static_cast<int64_t>(subset.size());
  for (int64_t i : subset) out.train_tokens += out.dataset->manifest().pieces[i].tokens;
  auto train = DatasetWindows::Create(*out.dataset, w);
  if (!train.ok()) return train.status();
  out.train = std::move(train).value();
  w.split = Split::kVal;
  w.fraction = 1.0;
  auto val = DatasetWindows::Create(*out.dataset, w);
  if (!val.ok()) return val.status();
  out.val = std::move(val).value();
  return out;
}

}  // namespace cadenza
