#include "core/synthetic.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "core/midi.h"
#include "core/hash.h"

namespace cadenza {
namespace {

constexpr int kTicksPerQuarter = 480;
constexpr int kTicksPerStep = kTicksPerQuarter / 12;  // the tokenizer's grid: 12 steps a quarter

// splitmix64: tiny, seedable, identical on every platform (std:: distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return SplitMix64Next(&state_); }
  int Uniform(int n) { return static_cast<int>(Next() % static_cast<uint64_t>(n)); }
  bool Chance(int percent) { return Uniform(100) < percent; }
  template <typename T, size_t N>
  const T& Pick(const std::array<T, N>& items) { return items[Uniform(static_cast<int>(N))]; }

 private:
  uint64_t state_;
};

struct Meter {
  int numerator;
  int denominator;
  int steps_per_bar;  // grid steps
  int steps_per_beat;  // the felt beat: a quarter in x/4, a dotted quarter in 6/8 and 12/8
};

constexpr std::array<Meter, 5> kMeters = {{
    {2, 4, 24, 12}, {3, 4, 36, 12}, {4, 4, 48, 12}, {6, 8, 36, 18}, {12, 8, 72, 18}}};

// Rhythms of one beat, in grid steps; duple beats hold eighths, sixteenths and triplets, compound beats eighths.
constexpr std::array<std::array<int, 4>, 6> kDupleBeats = {{
    {12, 0, 0, 0}, {6, 6, 0, 0}, {3, 3, 6, 0}, {4, 4, 4, 0}, {9, 3, 0, 0}, {3, 3, 3, 3}}};
constexpr std::array<std::array<int, 4>, 4> kCompoundBeats = {{
    {18, 0, 0, 0}, {6, 6, 6, 0}, {12, 6, 0, 0}, {9, 3, 6, 0}}};

// Chord roots as scale degrees (0 = tonic), one chord a bar; cadence on the tonic.
constexpr std::array<std::array<int, 4>, 6> kProgressions = {{
    {0, 3, 4, 0}, {0, 5, 3, 4}, {1, 4, 0, 0}, {0, 3, 0, 4}, {5, 3, 4, 0}, {0, 4, 5, 3}}};

constexpr std::array<int, 7> kMajorScale = {0, 2, 4, 5, 7, 9, 11};
constexpr std::array<int, 7> kMinorScale = {0, 2, 3, 5, 7, 8, 10};  // natural minor, raised leading tone below

constexpr std::array<const char*, 6> kForms = {"AABA", "ABAB", "AABB", "ABAC", "ABA'B", "AA'BA"};

struct Section {
  std::vector<Note> notes;  // times relative to the section start, in ticks
  int bars = 0;
};

struct TuneContext {
  Meter meter;
  int tonic;  // MIDI pitch class
  bool minor;
  int bars_per_section;
};

int ScalePitch(const TuneContext& c, int degree, int octave_base) {
  const auto& scale = c.minor ? kMinorScale : kMajorScale;
  const int oct = degree >= 0 ? degree / 7 : -((-degree + 6) / 7);
  const int d = degree - oct * 7;
  int pitch = octave_base + c.tonic + 12 * oct + scale[d];
  if (c.minor && d == 6) pitch += 1;  // harmonic minor's leading tone, for cadences
  return pitch;
}

// One section: melody (track 0) and chords (track 1), built bar by bar over a progression.
Section MakeSection(const TuneContext& c, Rng& rng) {
  Section s;
  s.bars = c.bars_per_section;
  const auto& prog = kProgressions[rng.Uniform(static_cast<int>(kProgressions.size()))];
  const bool compound = c.meter.steps_per_beat == 18;
  const int beats = c.meter.steps_per_bar / c.meter.steps_per_beat;
  const bool arpeggiate = rng.Chance(50);
  int degree = 7 + rng.Uniform(5);  // melody position in scale degrees above the tonic an octave below
  for (int bar = 0; bar < s.bars; ++bar) {
    const int root = prog[bar % prog.size()] + (bar == s.bars - 1 ? -prog[bar % prog.size()] : 0);
    const int64_t bar_tick = static_cast<int64_t>(bar) * c.meter.steps_per_bar * kTicksPerStep;
    // Chords: root position triad, held for the bar or arpeggiated on each beat.
    for (int k = 0; k < 3; ++k) {
      const int pitch = ScalePitch(c, root + 2 * k, 48);
      if (arpeggiate) {
        for (int b = 0; b < beats; ++b) {
          Note n;
          n.start = bar_tick + static_cast<int64_t>(b) * c.meter.steps_per_beat * kTicksPerStep +
                    k * (c.meter.steps_per_beat / 3) * kTicksPerStep;
          n.end = n.start + (c.meter.steps_per_beat / 3) * kTicksPerStep;
          n.pitch = static_cast<uint8_t>(pitch);
          n.velocity = 56;
          n.channel = 1;
          n.program = 0;  // acoustic grand
          n.track = 1;
          s.notes.push_back(n);
        }
      } else {
        Note n;
        n.start = bar_tick;
        n.end = bar_tick + static_cast<int64_t>(c.meter.steps_per_bar) * kTicksPerStep;
        n.pitch = static_cast<uint8_t>(pitch);
        n.velocity = 60;
        n.channel = 1;
        n.program = 0;
        n.track = 1;
        s.notes.push_back(n);
      }
    }
    // Melody: chord tones on beat starts, steps between them; the last bar lands on the tonic.
    int64_t step = 0;
    for (int b = 0; b < beats; ++b) {
      const bool last_beat = bar == s.bars - 1 && b == beats - 1;
      std::array<int, 4> rhythm{};
      if (last_beat) {
        rhythm = {c.meter.steps_per_beat, 0, 0, 0};
      } else if (compound) {
        rhythm = kCompoundBeats[rng.Uniform(static_cast<int>(kCompoundBeats.size()))];
      } else {
        rhythm = kDupleBeats[rng.Uniform(static_cast<int>(kDupleBeats.size()))];
      }
      for (size_t i = 0; i < rhythm.size() && rhythm[i] > 0; ++i) {
        if (i == 0) {
          // Nearest chord tone to the current position.
          int best = degree, best_dist = 100;
          for (int octave = 0; octave < 3; ++octave) {
            for (int k = 0; k < 3; ++k) {
              const int cand = root + 2 * k + 7 * octave;
              if (std::abs(cand - degree) < best_dist) best = cand, best_dist = std::abs(cand - degree);
            }
          }
          degree = last_beat ? 7 : best;
        } else {
          degree += rng.Chance(50) ? 1 : -1;
        }
        degree = std::clamp(degree, 4, 16);
        Note n;
        n.start = bar_tick + step * kTicksPerStep;
        n.end = n.start + static_cast<int64_t>(rhythm[i]) * kTicksPerStep;
        n.pitch = static_cast<uint8_t>(ScalePitch(c, degree, 48));
        n.velocity = static_cast<uint8_t>((b == 0 && i == 0) ? 96 : 72 + rng.Uniform(12));
        n.channel = 0;
        n.program = 73;  // flute
        n.track = 0;
        s.notes.push_back(n);
        step += rhythm[i];
      }
    }
  }
  return s;
}

// A varied repeat: same harmony and phrase shape, a few melody notes moved by a step, the last bar kept.
Section Vary(const Section& base, const TuneContext& c, Rng& rng) {
  Section s = base;
  const int64_t last_bar_tick = static_cast<int64_t>(base.bars - 1) * c.meter.steps_per_bar * kTicksPerStep;
  for (Note& n : s.notes) {
    if (n.track != 0 || n.start >= last_bar_tick || !rng.Chance(30)) continue;
    const int delta = rng.Chance(50) ? 2 : -2;
    n.pitch = static_cast<uint8_t>(std::clamp(n.pitch + delta, 40, 96));
  }
  return s;
}

}  // namespace

SyntheticTune MakeSyntheticTune(uint64_t seed, int index) {
  Rng rng(seed * 0x100000001B3ull + static_cast<uint64_t>(index) + 1);
  TuneContext c;
  c.meter = rng.Pick(kMeters);
  c.tonic = rng.Uniform(12);
  c.minor = rng.Chance(35);
  c.bars_per_section = rng.Chance(50) ? 4 : 8;
  const std::string form = rng.Pick(kForms);

  SyntheticTune tune;
  tune.form = form;
  Score& score = tune.score;
  score.ticks_per_quarter = kTicksPerQuarter;
  score.format = 1;
  score.tracks = {Track{"melody"}, Track{"chords"}};
  const int bpm = 80 + 4 * rng.Uniform(21);
  score.tempos.push_back(TempoChange{0, static_cast<uint32_t>(60000000 / bpm)});
  score.time_signatures.push_back(TimeSignature{0, c.meter.numerator, c.meter.denominator});
  // Sharps/flats of the key: position of the (relative) major tonic on the circle of fifths.
  const int major_tonic = c.minor ? (c.tonic + 3) % 12 : c.tonic;
  int fifths = (major_tonic * 7) % 12;
  if (fifths > 6) fifths -= 12;
  score.key_signatures.push_back(KeySignature{0, fifths, c.minor});

  // Section letters -> sections; "X'" is a variation of X. In a fifth of the tunes the non-A sections
  // move to another meter (and in a third to another tempo), so changes inside a piece are exercised.
  const bool change_meter = rng.Chance(20);
  const bool change_tempo = rng.Chance(33);
  Meter other = c.meter;
  for (size_t k = 0; k < kMeters.size(); ++k) {  // the next meter in the list: 4/4 -> 6/8, 12/8 -> 2/4
    if (kMeters[k].numerator == c.meter.numerator && kMeters[k].denominator == c.meter.denominator) {
      other = kMeters[(k + 1) % kMeters.size()];
    }
  }
  std::vector<std::pair<char, Section>> made;
  int64_t tick = 0;
  Meter meter = c.meter;
  int current_bpm = bpm;
  for (size_t i = 0; i < form.size(); ++i) {
    const char letter = form[i];
    if (letter == '\'') continue;
    const bool varied = i + 1 < form.size() && form[i + 1] == '\'';
    const Meter want = (change_meter && letter != 'A') ? other : c.meter;
    if (want.numerator != meter.numerator || want.denominator != meter.denominator) {
      meter = want;
      score.time_signatures.push_back(TimeSignature{tick, meter.numerator, meter.denominator});
    }
    const int want_bpm = (change_tempo && letter != 'A') ? bpm + 16 : bpm;
    if (want_bpm != current_bpm) {
      current_bpm = want_bpm;
      score.tempos.push_back(TempoChange{tick, static_cast<uint32_t>(60000000 / current_bpm)});
    }
    TuneContext section_context = c;
    section_context.meter = meter;
    const Section* earlier = nullptr;
    for (const auto& m : made) {
      if (m.first == letter && earlier == nullptr) earlier = &m.second;  // the original, not a variation
    }
    Section section;
    if (earlier != nullptr && !varied) {
      section = *earlier;
    } else if (earlier != nullptr) {
      section = Vary(*earlier, section_context, rng);
    } else {
      section = MakeSection(section_context, rng);
    }
    for (Note n : section.notes) {
      n.start += tick;
      n.end += tick;
      score.notes.push_back(n);
    }
    tick += static_cast<int64_t>(section.bars) * meter.steps_per_bar * kTicksPerStep;
    made.emplace_back(letter, std::move(section));
  }
  score.end_tick = tick;
  score.Sort();

  char name[64];
  std::string form_tag = form;
  std::replace(form_tag.begin(), form_tag.end(), '\'', 'v');
  std::snprintf(name, sizeof(name), "synth-%04d-%s-%d_%d", index, form_tag.c_str(), c.meter.numerator,
                c.meter.denominator);
  tune.name = name;
  return tune;
}

std::vector<SyntheticTune> MakeSyntheticCorpus(const SyntheticOptions& options) {
  std::vector<SyntheticTune> tunes;
  tunes.reserve(static_cast<size_t>(std::max(options.count, 0)));
  for (int i = 0; i < options.count; ++i) tunes.push_back(MakeSyntheticTune(options.seed, i));
  return tunes;
}

Status WriteSyntheticCorpus(const SyntheticOptions& options, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError(dir + ": cannot create folder: " + ec.message());
  for (int i = 0; i < options.count; ++i) {
    const SyntheticTune tune = MakeSyntheticTune(options.seed, i);
    Status s = WriteMidiFile(tune.score, (std::filesystem::path(dir) / (tune.name + ".mid")).string());
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace cadenza
