// Encodes a Score into beat-level tokens and decodes tokens back into a Score (exact at grid resolution).
#pragma once

#include <cstdint>
#include <vector>

#include "core/score.h"
#include "core/segmentation.h"
#include "core/status.h"

namespace cadenza {

// What quantisation to the grid did to one piece: the error of unquantised input, measured.
struct QuantizationStats {
  int64_t notes_in = 0;            // notes in the Score
  int64_t notes_out = 0;           // notes in the tokens
  int64_t duplicate_notes = 0;     // same onset, instrument and pitch after quantisation: kept the longest
  int64_t clipped_durations = 0;   // longer than kMaxDurationSteps
  int64_t off_grid_onsets = 0;     // onsets not exactly on the grid before quantisation
  double mean_onset_error_ms = 0;  // |original onset - grid onset| in milliseconds, averaged over notes
  double max_onset_error_ms = 0;
  double mean_onset_error_steps = 0;  // same, in grid steps (1 step = 1/12 quarter)
  int64_t unsupported_meters = 0;  // time signatures outside the vocabulary, read as 4/4
};

struct EncodedPiece {
  std::vector<int32_t> tokens;  // starts with BOS, ends with EOS
  Segmentation segmentation;    // bar and beat boundaries of `tokens`
  QuantizationStats stats;
  int num_bars = 0;
};

// Grammar (see docs/tokenizer.md):
//   BOS { Bar TimeSig { [Beat] Position [Tempo] { [Program] Pitch Velocity Duration } } } EOS
// TimeSig follows every Bar, and the first note of every bar carries its Program, so a window that
// starts on a bar is self-describing.
class Tokenizer {
 public:
  // Fails only for pieces too long to encode (more than max_bars bars: a guard against absurd delta times).
  StatusOr<EncodedPiece> Encode(const Score& score) const;
  // Strict: a token that breaks the grammar is an error naming its index. Output is at 480 ticks per quarter.
  StatusOr<Score> Decode(const int32_t* tokens, size_t count) const;
  StatusOr<Score> Decode(const std::vector<int32_t>& tokens) const { return Decode(tokens.data(), tokens.size()); }

  static constexpr int kMaxBars = 20000;
  static constexpr int kDecodeTicksPerQuarter = 480;
};

}  // namespace cadenza
