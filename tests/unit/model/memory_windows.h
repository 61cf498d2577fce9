// Training windows held in memory for model tests: bar-aligned windows of a few synthetic tunes, shuffled per epoch.
#pragma once

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "core/synthetic.h"
#include "core/tokenizer.h"
#include "core/window_source.h"

namespace cadenza {

class MemoryWindows : public WindowSource {
 public:
  MemoryWindows(int tunes, int64_t length, uint64_t seed) : length_(length) {
    Tokenizer tok;
    for (int i = 0; i < tunes; ++i) {
      auto enc = tok.Encode(MakeSyntheticTune(seed, i).score);
      for (const BarInfo& bar : enc->segmentation.bars) {
        if (bar.token_offset + length_ > static_cast<int64_t>(enc->tokens.size())) break;
        windows_.emplace_back(enc->tokens.begin() + bar.token_offset, enc->tokens.begin() + bar.token_offset + length_);
      }
    }
  }
  int64_t length() const override { return length_; }
  int64_t WindowsPerEpoch() const override { return static_cast<int64_t>(windows_.size()); }
  void Fill(int64_t epoch, int64_t first, int64_t count, int32_t* out) const override {
    std::vector<size_t> order(windows_.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(epoch));
    for (int64_t i = 0; i < count; ++i) std::copy(windows_[order[first + i]].begin(), windows_[order[first + i]].end(), out + i * length_);
  }

 private:
  int64_t length_;
  std::vector<std::vector<int32_t>> windows_;
};

}  // namespace cadenza
