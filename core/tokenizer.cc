// Beat-level REMI-style encoding and strict grammar-checked decoding (spec: docs/tokenizer.md).
#include "core/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <tuple>

#include "core/vocabulary.h"

namespace cadenza {
namespace {

struct GridNote {
  int64_t on;   // steps
  int64_t off;  // steps, > on
  int inst;     // program, or kDrumProgram
  int pitch;
  int velocity;
};

struct GridMeter {
  int64_t step;
  int numerator, denominator;
};

struct BarLayout {
  int64_t start;
  int64_t length;
  int numerator, denominator;
};

// Same onset/instrument/pitch keeps the longest (then the loudest); a note still sounding at the next onset of its pitch is cut there.
int64_t NormalizeNotes(std::vector<GridNote>* notes) {
  auto before = [](const GridNote& a, const GridNote& b) {
    // Among duplicates the longest wins, then the loudest: a total order, so the choice is never arbitrary.
    return std::make_tuple(a.on, a.inst, a.pitch, -a.off, -a.velocity) <
           std::make_tuple(b.on, b.inst, b.pitch, -b.off, -b.velocity);
  };
  // Notes arrive in onset order (Score keeps them sorted), so only each onset's few notes need sorting;
  // a full sort was 17% of an ingest.
  auto on_less = [](const GridNote& a, const GridNote& b) { return a.on < b.on; };
  if (!std::is_sorted(notes->begin(), notes->end(), on_less)) std::stable_sort(notes->begin(), notes->end(), on_less);
  for (auto group = notes->begin(); group != notes->end();) {
    auto group_end = group + 1;
    while (group_end != notes->end() && group_end->on == group->on) ++group_end;
    if (group_end - group > 1) std::sort(group, group_end, before);
    group = group_end;
  }
  // One pass in (on, inst, pitch) order: the previous note of the same instrument and pitch is the one to cut.
  constexpr int kPitches = 128;
  thread_local std::vector<int32_t> last_of((kDrumProgram + 1) * kPitches, -1);
  std::vector<GridNote> kept;
  kept.reserve(notes->size());
  int64_t duplicates = 0;
  for (const GridNote& n : *notes) {
    int32_t& last = last_of[static_cast<size_t>(n.inst) * kPitches + static_cast<size_t>(n.pitch)];
    if (last >= 0) {
      GridNote& previous = kept[static_cast<size_t>(last)];
      if (previous.on == n.on) {
        ++duplicates;
        continue;
      }
      previous.off = std::min(previous.off, n.on);
    }
    last = static_cast<int32_t>(kept.size());
    kept.push_back(n);
  }
  for (const GridNote& n : kept) last_of[static_cast<size_t>(n.inst) * kPitches + static_cast<size_t>(n.pitch)] = -1;
  *notes = std::move(kept);
  return duplicates;
}

// The meter of a bar cut short to `length` steps: keep the denominator if it divides, else a finer one.
bool ShortBarMeter(int64_t length, int denominator, int* n_out, int* d_out) {
  for (int d = denominator; d <= 16; d *= 2) {
    const int unit = 4 * kGridPerQuarter / d;
    if (length % unit == 0 && length / unit <= 16) {
      *n_out = static_cast<int>(length / unit);
      *d_out = d;
      return true;
    }
  }
  return false;
}

}  // namespace

StatusOr<EncodedPiece> Tokenizer::Encode(const Score& score) const {
  const Vocabulary& v = Vocabulary::Get();
  EncodedPiece out;
  QuantizationStats& st = out.stats;
  const int64_t tpq = score.ticks_per_quarter > 0 ? score.ticks_per_quarter : 480;
  auto to_step = [tpq](int64_t tick) { return (2 * kGridPerQuarter * tick + tpq) / (2 * tpq); };

  // Meters on the grid; unsupported ones read as 4/4.
  std::vector<GridMeter> meters;
  for (const TimeSignature& ts : score.time_signatures) {
    GridMeter m{to_step(ts.tick), ts.numerator, ts.denominator};
    if (!Vocabulary::IsSupportedMeter(m.numerator, m.denominator)) {
      ++st.unsupported_meters;
      m.numerator = m.denominator = 4;
    }
    if (!meters.empty() && meters.back().step == m.step) meters.pop_back();
    meters.push_back(m);
  }
  if (meters.empty() || meters.front().step > 0) meters.insert(meters.begin(), GridMeter{0, 4, 4});

  // Notes on the grid, with the quantisation error measured against the local tempo.
  std::vector<GridNote> notes;
  notes.reserve(score.notes.size());
  size_t tempo_i = 0;
  uint32_t us = 500000;
  double error_ms_sum = 0, error_steps_sum = 0;
  for (const Note& n : score.notes) {
    while (tempo_i < score.tempos.size() && score.tempos[tempo_i].tick <= n.start) us = score.tempos[tempo_i++].us_per_quarter;
    GridNote g;
    g.on = to_step(n.start);
    g.off = std::max(to_step(n.end), g.on + 1);
    g.inst = n.drum ? kDrumProgram : n.program;
    g.pitch = n.pitch;
    g.velocity = n.velocity;
    notes.push_back(g);
    const double err_ticks = std::abs(static_cast<double>(n.start * kGridPerQuarter - g.on * tpq)) / kGridPerQuarter;
    if (err_ticks > 1.0) ++st.off_grid_onsets;  // files store triplets rounded to whole ticks: 1 tick is on grid
    const double err_ms = err_ticks * us / tpq / 1000.0;
    error_ms_sum += err_ms;
    error_steps_sum += err_ticks * kGridPerQuarter / tpq;
    st.max_onset_error_ms = std::max(st.max_onset_error_ms, err_ms);
  }
  st.notes_in = static_cast<int64_t>(score.notes.size());
  if (!notes.empty()) {
    st.mean_onset_error_ms = error_ms_sum / notes.size();
    st.mean_onset_error_steps = error_steps_sum / notes.size();
  }
  st.duplicate_notes = NormalizeNotes(&notes);
  st.notes_out = static_cast<int64_t>(notes.size());

  // Tempo changes on the grid: the last one at a step wins; changes to the bin in force are dropped.
  std::vector<std::pair<int64_t, int>> tempos = {{0, kTempoBinOfOneTwenty}};
  for (const TempoChange& t : score.tempos) {
    const int64_t step = to_step(t.tick);
    const int bin = Vocabulary::TempoBin(t.bpm());
    if (tempos.back().first == step) tempos.pop_back();
    if (tempos.empty() || tempos.back().second != bin) tempos.emplace_back(step, bin);
  }

  // Bars from the meter map; a meter change inside a bar cuts it short, or moves to the next bar line.
  const int64_t last_onset = notes.empty() ? 0 : notes.back().on;
  std::vector<BarLayout> bars;
  size_t mi = 0;
  for (int64_t start = 0; start <= last_onset;) {
    while (mi + 1 < meters.size() && meters[mi + 1].step <= start) ++mi;
    BarLayout bar{start, Vocabulary::BarSteps(meters[mi].numerator, meters[mi].denominator), meters[mi].numerator,
                  meters[mi].denominator};
    if (mi + 1 < meters.size() && meters[mi + 1].step < start + bar.length) {
      const int64_t cut = meters[mi + 1].step - start;
      int n = 0, d = 0;
      if (ShortBarMeter(cut, bar.denominator, &n, &d)) {
        bar = {start, cut, n, d};
      } else {
        meters[mi + 1].step = start + bar.length;
      }
    }
    bars.push_back(bar);
    if (static_cast<int>(bars.size()) > kMaxBars) {
      return InvalidArgument("piece has more than " + std::to_string(kMaxBars) + " bars (" +
                             std::to_string(last_onset / kGridPerQuarter) + " quarter notes long); refusing to encode");
    }
    start += bar.length;
  }

  std::vector<int32_t>& tok = out.tokens;
  tok.reserve(notes.size() * 4 + bars.size() * 3 + 8);
  tok.push_back(v.Bos());
  size_t ni = 0, ti = 0;
  int current_tempo = -1;
  for (const BarLayout& bar : bars) {
    tok.push_back(v.Bar());
    tok.push_back(v.TimeSig(bar.numerator, bar.denominator));
    const int beat_steps = Vocabulary::BeatSteps(bar.numerator, bar.denominator);
    const int64_t end = bar.start + bar.length;
    int last_beat = -1, current_inst = -1;
    while (ti < tempos.size() && tempos[ti].first < bar.start) ++ti;  // moved past by a cut bar: fold into the next step
    while ((ni < notes.size() && notes[ni].on < end) || (ti < tempos.size() && tempos[ti].first < end)) {
      int64_t step = end;
      if (ni < notes.size()) step = std::min(step, notes[ni].on);
      if (ti < tempos.size()) step = std::min(step, tempos[ti].first);
      const int64_t rel = step - bar.start;
      const int beat = static_cast<int>(rel / beat_steps);
      if (beat != last_beat) {
        tok.push_back(v.Beat(beat));
        last_beat = beat;
      }
      tok.push_back(v.Position(static_cast<int>(rel % beat_steps)));
      if (ti < tempos.size() && tempos[ti].first == step) {
        if (tempos[ti].second != current_tempo) tok.push_back(v.Tempo(tempos[ti].second));
        current_tempo = tempos[ti].second;
        ++ti;
      }
      for (; ni < notes.size() && notes[ni].on == step; ++ni) {
        const GridNote& n = notes[ni];
        if (n.inst != current_inst) {
          tok.push_back(v.Program(n.inst));
          current_inst = n.inst;
        }
        const int64_t steps = n.off - n.on;
        if (steps > kMaxDurationSteps) ++st.clipped_durations;
        tok.push_back(v.Pitch(n.pitch));
        tok.push_back(v.Velocity(Vocabulary::VelocityBin(n.velocity)));
        tok.push_back(v.Duration(static_cast<int>(std::min<int64_t>(steps, kMaxDurationSteps))));
      }
    }
  }
  tok.push_back(v.Eos());
  out.num_bars = static_cast<int>(bars.size());
  auto seg = Segment(tok);
  if (!seg.ok()) return Status(StatusCode::kInternal, "encoder produced tokens its own segmenter refuses: " + seg.status().message());
  out.segmentation = std::move(seg).value();
  return out;
}

StatusOr<Score> Tokenizer::Decode(const int32_t* tokens, size_t count) const {
  const Vocabulary& v = Vocabulary::Get();
  auto fail = [&](size_t i, const std::string& expected) {
    const std::string found = (tokens[i] >= 0 && tokens[i] < v.size()) ? v.Name(tokens[i]) : "id " + std::to_string(tokens[i]);
    return InvalidArgument("token " + std::to_string(i) + " (" + found + "): expected " + expected);
  };
  // What may come next, as a small state machine over the grammar of docs/tokenizer.md.
  enum class Expect { kBar, kTimeSig, kEvent, kPosition, kPitch, kVelocity, kDuration };
  Expect expect = Expect::kBar;
  std::vector<GridNote> notes;
  std::vector<std::pair<int64_t, int>> tempos;
  std::vector<GridMeter> meters;
  int64_t bar_start = 0, bar_length = 0, step = -1;
  int beats = 0, beat_steps = 0, beat = -1, inst = -1;
  bool tempo_here = false, in_bar = false;
  GridNote pending{};
  size_t i = 0;
  if (count > 0 && tokens[0] == v.Bos()) i = 1;
  for (; i < count; ++i) {
    const int32_t t = tokens[i];
    if (t < 0 || t >= v.size()) return fail(i, "a token id in 0.." + std::to_string(v.size() - 1));
    const TokenInfo& info = v.Info(t);
    if (info.type == TokenType::kEos || info.type == TokenType::kPad) {
      if (expect == Expect::kTimeSig || expect == Expect::kPitch || expect == Expect::kVelocity || expect == Expect::kDuration ||
          expect == Expect::kPosition) {
        return fail(i, "the rest of the bar header, note or position before the end");
      }
      for (size_t j = i + 1; j < count; ++j) {
        if (tokens[j] != v.Pad()) return fail(j, "only PAD after EOS");
      }
      break;
    }
    switch (expect) {
      case Expect::kVelocity:
        if (info.type != TokenType::kVelocity) return fail(i, "Velocity after Pitch");
        pending.velocity = Vocabulary::VelocityOfBin(info.value);
        expect = Expect::kDuration;
        continue;
      case Expect::kDuration:
        if (info.type != TokenType::kDuration) return fail(i, "Duration after Velocity");
        pending.off = pending.on + info.value;
        notes.push_back(pending);
        expect = Expect::kEvent;
        continue;
      case Expect::kPitch:
        if (info.type != TokenType::kPitch) return fail(i, "Pitch after Program");
        break;
      case Expect::kTimeSig:
        if (info.type != TokenType::kTimeSig) return fail(i, "TimeSig after Bar");
        break;
      case Expect::kPosition:
        if (info.type != TokenType::kPosition) return fail(i, "Pos after Beat");
        break;
      case Expect::kBar:
        if (info.type != TokenType::kBar) return fail(i, "Bar");
        break;
      case Expect::kEvent:
        break;
    }
    switch (info.type) {
      case TokenType::kBar:
        if (in_bar) bar_start += bar_length;
        in_bar = true;
        expect = Expect::kTimeSig;
        break;
      case TokenType::kTimeSig:
        if (expect != Expect::kTimeSig) return fail(i, "TimeSig only right after Bar");
        bar_length = Vocabulary::BarSteps(info.value, info.value2);
        beat_steps = Vocabulary::BeatSteps(info.value, info.value2);
        beats = Vocabulary::BeatsPerBar(info.value, info.value2);
        if (meters.empty() || meters.back().numerator != info.value || meters.back().denominator != info.value2) {
          meters.push_back({bar_start, info.value, info.value2});
        }
        beat = -1;
        step = -1;
        inst = -1;
        expect = Expect::kEvent;
        break;
      case TokenType::kBeat:
        if (info.value >= beats) return fail(i, "a beat below " + std::to_string(beats) + " in this meter");
        if (info.value <= beat) return fail(i, "a beat after beat " + std::to_string(beat) + " (time only moves forward)");
        beat = info.value;
        expect = Expect::kPosition;
        break;
      case TokenType::kPosition: {
        if (beat < 0) return fail(i, "a Beat before the first Pos of a bar");
        if (info.value >= beat_steps) return fail(i, "a position below " + std::to_string(beat_steps) + " in this meter");
        const int64_t s = bar_start + int64_t{beat} * beat_steps + info.value;
        if (s >= bar_start + bar_length) return fail(i, "a position inside the bar");
        if (s <= step) return fail(i, "a position after the previous one");
        step = s;
        tempo_here = false;
        expect = Expect::kEvent;
        break;
      }
      case TokenType::kTempo:
        if (step < 0 || tempo_here || v.Type(tokens[i - 1]) != TokenType::kPosition) return fail(i, "Tempo right after a Pos");
        tempos.emplace_back(step, info.value);
        tempo_here = true;
        break;
      case TokenType::kProgram:
        if (step < 0) return fail(i, "a Beat and Pos before the first note of a bar");
        inst = info.value;
        expect = Expect::kPitch;
        break;
      case TokenType::kPitch:
        if (step < 0) return fail(i, "a Beat and Pos before the first note of a bar");
        if (inst < 0) return fail(i, "a Program before the first note of a bar");
        pending = GridNote{step, step + 1, inst, info.value, 0};
        expect = Expect::kVelocity;
        break;
      default:
        return fail(i, "Bar, Beat, Pos, Tempo, Program or Pitch");
    }
  }
  if (expect == Expect::kTimeSig || expect == Expect::kPitch || expect == Expect::kVelocity || expect == Expect::kDuration ||
      expect == Expect::kPosition) {
    return InvalidArgument("tokens end inside a bar header, a position or a note (after token " + std::to_string(count) + ")");
  }
  NormalizeNotes(&notes);

  Score score;
  const int64_t ticks_per_step = kDecodeTicksPerQuarter / kGridPerQuarter;
  score.ticks_per_quarter = kDecodeTicksPerQuarter;
  score.tracks.push_back({"cadenza"});
  for (const GridMeter& m : meters) score.time_signatures.push_back({m.step * ticks_per_step, m.numerator, m.denominator});
  for (const auto& [s, bin] : tempos) {
    score.tempos.push_back({s * ticks_per_step, static_cast<uint32_t>(std::lround(60e6 / Vocabulary::TempoOfBin(bin)))});
  }
  std::map<int, int> track_of;  // instrument -> track, in order of first appearance
  int next_channel = 0;
  std::map<int, int> channel_of;
  int64_t end = 0;
  for (const GridNote& g : notes) {
    auto [it, inserted] = track_of.emplace(g.inst, static_cast<int>(score.tracks.size()));
    if (inserted) {
      score.tracks.push_back({g.inst == kDrumProgram ? "Drums" : "Program " + std::to_string(g.inst)});
      if (g.inst != kDrumProgram) {
        channel_of[g.inst] = next_channel;
        next_channel = (next_channel + 1) % 16;
        if (next_channel == 9) next_channel = 10;
      }
    }
    Note n;
    n.start = g.on * ticks_per_step;
    n.end = g.off * ticks_per_step;
    n.pitch = static_cast<uint8_t>(g.pitch);
    n.velocity = static_cast<uint8_t>(g.velocity);
    n.drum = g.inst == kDrumProgram;
    n.channel = static_cast<uint8_t>(n.drum ? 9 : channel_of[g.inst]);
    n.program = static_cast<uint8_t>(n.drum ? 0 : g.inst);
    n.track = it->second;
    score.notes.push_back(n);
    end = std::max(end, n.end);
  }
  score.end_tick = std::max(end, (bar_start + bar_length) * ticks_per_step);
  score.Sort();
  return score;
}

}  // namespace cadenza
