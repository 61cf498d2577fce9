// Encodes a Score into beat-level tokens and decodes tokens back into a Score (exact at grid resolution).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/score.h"
#include "core/segmentation.h"
#include "core/status.h"
#include "core/vocabulary.h"

namespace cadenza {

// What encoding did to one piece: every change to the file's music, counted (docs/tokenizer.md, "What is lost").
struct QuantizationStats {
  int64_t notes_in = 0;            // notes in the Score
  int64_t notes_out = 0;           // notes in the tokens
  int64_t duplicate_notes = 0;     // same onset, instrument and pitch after quantisation: kept the longest (merged)
  int64_t cut_overlaps = 0;        // notes still sounding at the next onset of their instrument and pitch: cut there
  int64_t clipped_durations = 0;   // longer than the vocabulary's longest duration (16 quarters)
  int64_t off_grid_onsets = 0;     // onsets more than 1 tick off the grid before quantisation
  double mean_onset_error_ms = 0;  // |original onset - grid onset| in milliseconds, averaged over notes
  double max_onset_error_ms = 0;
  double mean_onset_error_steps = 0;  // same, in grid steps
  int64_t tempo_changes = 0;       // tempo events of the file
  int64_t clamped_tempos = 0;      // tempo segments outside the bins' range (more than half a bin beyond 9.91..403.6 bpm)
  int64_t skipped_meters = 0;      // time signatures that cannot be represented: skipped (the meter before stays)
  std::vector<std::string> skipped_meter_reasons;  // "tick 1920: 11/32: ..." for each (the first 20)
  int64_t moved_meters = 0;        // meter changes inside a bar whose cut-short bar has no meter: moved to the bar line
  int64_t sustain_presses = 0;     // sustain-pedal presses (CC 64 down .. up) that lengthened at least one note
  int64_t sustained_notes = 0;     // notes lengthened to a pedal release
  // SustainPedal::kTokens only:
  int64_t pedal_tokens = 0;        // Pedal_Down and Pedal_Up tokens written
  int64_t lost_pedal_presses = 0;  // presses with no press of their own in the tokens: down and up on one grid step,
                                   // or overlapping another channel's press on the grid (joined into one)
  // Playing time to the tokens' last note end (on the grid, before clipping), in seconds: by the file's tempo map,
  // and by the tokens' tempo bins. Their ratio is what tempo quantisation did to the piece's time.
  double seconds_in = 0;
  double seconds_out = 0;
};

struct EncodedPiece {
  std::vector<int32_t> tokens;  // starts with BOS, ends with EOS
  Segmentation segmentation;    // bar and beat boundaries of `tokens`
  QuantizationStats stats;
  int num_bars = 0;
};

// What encoding does with the sustain pedal (CC 64; docs/tokenizer.md, "Sustain pedal").
enum class SustainPedal : uint8_t {
  // A note released while its channel's pedal is down ends at the pedal's release (or at the next onset of its
  // pitch on that channel, if sooner), as pretty_midi/MidiTok users do. The default.
  kApply,
  // Kept as Pedal_Down / Pedal_Up tokens at their grid positions (the "-pedal" vocabulary of the grid); note
  // durations end at the key release. Decoding writes the tokens back as CC 64.
  kTokens,
  // Dropped: note durations end at the key release.
  kIgnore,
};
const char* SustainPedalName(SustainPedal mode);  // "apply", "tokens", "ignore"
// Parses a SustainPedalName; false for anything else.
bool ParseSustainPedal(const std::string& name, SustainPedal* mode);

struct TokenizerOptions {
  int grid = kGridPerQuarter;  // steps per quarter note: one of kSupportedGrids (its own vocabulary)
  SustainPedal pedal = SustainPedal::kApply;  // kTokens selects the grid's vocabulary with pedal tokens
  // The options that encode to, and decode, the tokens of `vocabulary` (its grid; kTokens for a pedal variant).
  static TokenizerOptions For(const Vocabulary& vocabulary);
};

// Grammar (see docs/tokenizer.md):
//   BOS { Bar TimeSig { [Beat] Position [Tempo] [Pedal_Up] [Pedal_Down] { [Program] Pitch Velocity Duration } } } EOS
// (Pedal tokens only in the pedal vocabularies: Pedal_Up while the pedal is down, Pedal_Down while it is up.)
// TimeSig follows every Bar, and the first note of every bar carries its Program, so a window that
// starts on a bar is self-describing.
class Tokenizer {
 public:
  explicit Tokenizer(const TokenizerOptions& options = TokenizerOptions());
  // Fails for an unsupported grid, and for pieces too long to encode (more than kMaxBars bars: a guard against
  // absurd delta times).
  StatusOr<EncodedPiece> Encode(const Score& score) const;
  // Strict: a token that breaks the grammar is an error naming its index. Output is at 480 ticks per quarter.
  StatusOr<Score> Decode(const int32_t* tokens, size_t count) const;
  StatusOr<Score> Decode(const std::vector<int32_t>& tokens) const { return Decode(tokens.data(), tokens.size()); }

  const TokenizerOptions& options() const { return options_; }
  // The vocabulary of options().grid and options().pedal (the default grid's when the grid is unsupported; Encode
  // then fails).
  const Vocabulary& vocabulary() const { return *vocab_; }

  static constexpr int kMaxBars = 20000;
  static constexpr int kDecodeTicksPerQuarter = 480;

 private:
  TokenizerOptions options_;
  const Vocabulary* vocab_;
  bool grid_ok_;
};

// Note ends with the sustain pedal applied (see SustainPedal::kApply), in score.notes order; counts the
// presses that lengthened a note and the notes lengthened.
std::vector<int64_t> SustainedNoteEnds(const Score& score, int64_t* presses_used, int64_t* notes_lengthened);

}  // namespace cadenza
