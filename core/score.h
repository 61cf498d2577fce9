// Score: the notes, tempo map, meters and keys of one MIDI file, in ticks, independent of byte layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cadenza {

struct Note {
  int64_t start = 0;  // ticks
  int64_t end = 0;    // ticks, >= start
  uint8_t pitch = 0;
  uint8_t velocity = 0;  // 1..127
  uint8_t channel = 0;   // 0..15; 9 is General MIDI drums
  uint8_t program = 0;   // 0..127, the channel's program at note-on
  bool drum = false;     // channel 9
  int track = 0;         // index into Score::tracks
};

struct TempoChange {
  int64_t tick = 0;
  uint32_t us_per_quarter = 500000;  // 120 bpm
  double bpm() const { return 60e6 / us_per_quarter; }
};

struct TimeSignature {
  int64_t tick = 0;
  int numerator = 4;
  int denominator = 4;  // a power of two
};

struct KeySignature {
  int64_t tick = 0;
  int fifths = 0;  // -7 (7 flats) .. +7 (7 sharps)
  bool minor = false;
  std::string name() const;  // "C major", "F# minor", ...
};

// A sustain pedal (control change 64) press or release on one channel: value >= 64 is down.
struct PedalEvent {
  int64_t tick = 0;
  uint8_t channel = 0;
  bool down = false;
};

struct Track {
  std::string name;
};

struct Score {
  int ticks_per_quarter = 480;
  int format = 1;
  std::vector<Track> tracks;
  std::vector<Note> notes;  // sorted by (start, track, channel, pitch)
  std::vector<TempoChange> tempos;            // sorted by tick; empty means 120 bpm
  std::vector<TimeSignature> time_signatures;  // sorted by tick; empty means 4/4
  std::vector<KeySignature> key_signatures;    // sorted by tick
  std::vector<PedalEvent> sustain;             // sorted by tick (file order at one tick); not applied to notes
  int64_t end_tick = 0;  // latest event (end of track) in ticks

  // Seconds from the start to `tick`, following the tempo map.
  double SecondsAt(int64_t tick) const;
  // Duration of the whole piece in seconds (to the last note end or end of track).
  double Seconds() const;
  // Puts notes and maps in canonical order; call after building a Score by hand.
  void Sort();
};

}  // namespace cadenza
