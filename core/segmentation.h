// Beat-level segmentation of a token sequence: where each bar and beat starts, and which bar/beat a token is in.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace cadenza {

struct BarInfo {
  int64_t token_offset = 0;  // index of the Bar token
  int64_t start_step = 0;    // grid steps from the start of the piece
  int numerator = 4;
  int denominator = 4;
  int64_t first_beat = 0;  // index into Segmentation::beat_token_offsets
  int num_beats = 4;
};

struct Segmentation {
  std::vector<BarInfo> bars;
  // One entry per beat of every bar, in order. An empty beat points at the next token of a later beat,
  // so [beat_token_offsets[i], beat_token_offsets[i+1]) is always the beat's tokens (possibly none).
  std::vector<int64_t> beat_token_offsets;
  int64_t num_tokens = 0;

  // Bar index of token i; tokens before the first bar (BOS) belong to bar 0, EOS to the last bar.
  int64_t BarOf(int64_t token) const;
  // Global beat index of token i (same clamping as BarOf).
  int64_t BeatOf(int64_t token) const;
  // Token range [begin, end) of bar b / global beat k.
  std::pair<int64_t, int64_t> BarRange(int64_t bar) const;
  std::pair<int64_t, int64_t> BeatRange(int64_t beat) const;
  std::vector<int64_t> BarTokenOffsets() const;
};

class Vocabulary;

// Recovers the segmentation from tokens alone (works for generated sequences too), in the default grid's
// vocabulary unless another is given.
StatusOr<Segmentation> Segment(const int32_t* tokens, size_t count);
StatusOr<Segmentation> Segment(const int32_t* tokens, size_t count, const Vocabulary& vocabulary);
inline StatusOr<Segmentation> Segment(const std::vector<int32_t>& tokens) {
  return Segment(tokens.data(), tokens.size());
}

}  // namespace cadenza
