// EvalPiece: one piece on the tokenizer's grid (bars with their meters, notes in grid steps), the input of every metric.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/score.h"
#include "core/status.h"

namespace cadenza {

// A metric with no value (too few notes or bars for it): skipped by every summary and comparison.
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One bar of the beat-level segmentation. All times are grid steps (kGridPerQuarter = 12 per quarter note).
struct EvalBar {
  int64_t start = 0;
  int length = 48;      // steps (Vocabulary::BarSteps of the bar's meter)
  int numerator = 4;
  int denominator = 4;
  int beat_steps = 12;  // Vocabulary::BeatSteps: a quarter in x/4, a dotted quarter in 6/8, 9/8, 12/8
  int num_beats = 4;    // the last beat may be cut short by the bar end (e.g. 5/8 has five eighth beats)
  int64_t end() const { return start + length; }
};

struct EvalNote {
  int64_t on = 0;   // steps
  int64_t off = 1;  // steps, > on
  int pitch = 60;
  bool drum = false;
};

struct EvalPiece {
  std::vector<EvalBar> bars;    // contiguous: bars[i+1].start == bars[i].end()
  std::vector<EvalNote> notes;  // sorted by (on, pitch)
  int64_t end_step() const { return bars.empty() ? 0 : bars.back().end(); }
  int64_t num_beats() const;
};

// From beat-level tokens (a dataset piece or a model's output): strict, errors name the token index.
StatusOr<EvalPiece> PieceFromTokens(const int32_t* tokens, size_t count);
inline StatusOr<EvalPiece> PieceFromTokens(const std::vector<int32_t>& tokens) {
  return PieceFromTokens(tokens.data(), tokens.size());
}
// Quantises a Score to the grid through the tokenizer, so MIDI files and tokens are measured alike.
StatusOr<EvalPiece> PieceFromScore(const Score& score);
// Reads a MIDI file; an unreadable file or one without notes is an error naming the path.
StatusOr<EvalPiece> ReadEvalPiece(const std::string& path);
// The beat-level tokens of a MIDI file (what a model reads); an empty file is an error naming it.
StatusOr<std::vector<int32_t>> ReadPieceTokens(const std::string& path);

// Builds a piece by hand (tests, synthetic input): `bars` bars of one meter starting at step 0.
EvalPiece MakeUniformPiece(int bars, int numerator, int denominator, std::vector<EvalNote> notes);

}  // namespace cadenza
