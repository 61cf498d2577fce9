// The token grammar as an incremental state machine: which tokens may come next (for constrained sampling).
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace cadenza {

// Mirrors Tokenizer::Decode's rules, so any sequence it accepts and finishes decodes to a valid MIDI file; and a
// finished sequence holds at least one note (EOS is refused before one), so no sample is an empty piece.
class Vocabulary;

class GrammarState {
 public:
  GrammarState();  // the default grid's vocabulary
  explicit GrammarState(const Vocabulary& vocabulary) : vocab_(&vocabulary) {}

  // Sets allowed[id] = 1 for every token that may come next (allowed is resized to the vocabulary).
  void Allowed(std::vector<uint8_t>* allowed) const;
  bool Accepts(int32_t token) const;
  // Fails (naming the token) if the token is not allowed here; the state is then unchanged.
  Status Advance(int32_t token);

  // Generation by bars: once `max_bars` bars have started, Bar is no longer allowed (0 = no limit).
  void set_max_bars(int64_t max_bars) { max_bars_ = max_bars; }
  bool finished() const { return phase_ == Phase::kDone; }
  // True where the sequence could end now (no bar header, position or note left half-written).
  bool at_boundary() const { return phase_ == Phase::kEvent || phase_ == Phase::kStart || phase_ == Phase::kAfterBos; }
  int64_t bars() const { return bars_; }

 private:
  enum class Phase { kStart, kAfterBos, kTimeSig, kEvent, kPosition, kPitch, kVelocity, kDuration, kDone };
  const Vocabulary* vocab_;
  Phase phase_ = Phase::kStart;
  int64_t bars_ = 0, max_bars_ = 0;
  int64_t notes_ = 0;         // finished notes (EOS needs one)
  int beats_ = 0, beat_steps_ = 0, bar_steps_ = 0;
  int beat_ = -1;             // current beat in the bar, -1 before the first
  int step_in_bar_ = -1;      // current onset, -1 before the first position
  int instrument_ = -1;       // reset at every bar
  bool tempo_allowed_ = false;  // only right after a Pos
  // Sustain pedal (pedal vocabularies only): up after BOS, unknown in a window that starts on a bar (it may start
  // inside a press); pedal tokens come right after a Pos (or its Tempo), before the position's notes, a release
  // before a press.
  enum class Pedal : uint8_t { kUnknown, kUp, kDown };
  Pedal pedal_ = Pedal::kUnknown;
  bool pedal_open_ = false;  // a pedal token may still come at this position
  bool down_here_ = false;   // a Pedal_Down came at this position (no Pedal_Up after it)
};

}  // namespace cadenza
