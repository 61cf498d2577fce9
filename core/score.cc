// Score helpers: tempo map to seconds, canonical ordering, key names.
#include "core/score.h"

#include <algorithm>
#include <tuple>

namespace cadenza {

std::string KeySignature::name() const {
  static const char* kMajor[] = {"Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C",
                                 "G",  "D",  "A",  "E",  "B",  "F#", "C#"};
  static const char* kMinor[] = {"Ab", "Eb", "Bb", "F", "C",  "G",  "D", "A",
                                 "E",  "B",  "F#", "C#", "G#", "D#", "A#"};
  const int i = std::clamp(fifths, -7, 7) + 7;
  return std::string(minor ? kMinor[i] : kMajor[i]) + (minor ? " minor" : " major");
}

double Score::SecondsAt(int64_t tick) const {
  double seconds = 0;
  int64_t last_tick = 0;
  uint32_t us = 500000;
  for (const TempoChange& t : tempos) {
    if (t.tick >= tick) break;
    seconds += static_cast<double>(t.tick - last_tick) * us / (1e6 * ticks_per_quarter);
    last_tick = t.tick;
    us = t.us_per_quarter;
  }
  return seconds + static_cast<double>(tick - last_tick) * us / (1e6 * ticks_per_quarter);
}

double Score::Seconds() const {
  int64_t last = end_tick;
  for (const Note& n : notes) last = std::max(last, n.end);
  return SecondsAt(last);
}

void Score::Sort() {
  std::stable_sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) {
    return std::tie(a.start, a.track, a.channel, a.pitch, a.end) < std::tie(b.start, b.track, b.channel, b.pitch, b.end);
  });
  auto by_tick = [](const auto& a, const auto& b) { return a.tick < b.tick; };
  std::stable_sort(tempos.begin(), tempos.end(), by_tick);
  std::stable_sort(time_signatures.begin(), time_signatures.end(), by_tick);
  std::stable_sort(key_signatures.begin(), key_signatures.end(), by_tick);
  if (!std::is_sorted(sustain.begin(), sustain.end(), by_tick)) std::stable_sort(sustain.begin(), sustain.end(), by_tick);
}

}  // namespace cadenza
