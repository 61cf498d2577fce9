#include "storage/training_windows.h"

#include <algorithm>
#include <cstring>

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

}  // namespace cadenza
