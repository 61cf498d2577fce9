// Beat-level REMI-style encoding and strict grammar-checked decoding (spec: docs/tokenizer.md).
#include "core/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
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

// Same onset/instrument/pitch keeps the longest (then the loudest); a note still sounding at the next onset of its
// pitch is cut there. Returns the duplicates dropped; adds the notes cut to *cut (when given).
int64_t NormalizeNotes(std::vector<GridNote>* notes, int64_t* cut = nullptr) {
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
  int64_t duplicates = 0, cuts = 0;
  for (const GridNote& n : *notes) {
    int32_t& last = last_of[static_cast<size_t>(n.inst) * kPitches + static_cast<size_t>(n.pitch)];
    if (last >= 0) {
      GridNote& previous = kept[static_cast<size_t>(last)];
      if (previous.on == n.on) {
        ++duplicates;
        continue;
      }
      if (previous.off > n.on) {
        previous.off = n.on;
        ++cuts;
      }
    }
    last = static_cast<int32_t>(kept.size());
    kept.push_back(n);
  }
  for (const GridNote& n : kept) last_of[static_cast<size_t>(n.inst) * kPitches + static_cast<size_t>(n.pitch)] = -1;
  *notes = std::move(kept);
  if (cut) *cut += cuts;
  return duplicates;
}

// The meter of a bar cut short to `length` steps: keep the denominator if it divides, else a finer one.
bool ShortBarMeter(const Vocabulary& v, int64_t length, int denominator, int* n_out, int* d_out) {
  for (int d = denominator; d <= kMeterDenominators[kNumMeterDenominators - 1]; d *= 2) {
    const int unit = v.StepsOf(d);
    if (unit > 0 && length % unit == 0 && length / unit <= kMaxMeterNumerator) {
      *n_out = static_cast<int>(length / unit);
      *d_out = d;
      return true;
    }
  }
  return false;
}

// Seconds at a (fractional) tick of a file's tempo map: the map's events with the seconds at each.
class TempoClock {
 public:
  TempoClock(const Score& score, double tpq) : tpq_(tpq) {
    double seconds = 0, last_tick = 0, us = 500000;
    ticks_.push_back(0);
    us_.push_back(us);
    seconds_.push_back(0);
    for (const TempoChange& t : score.tempos) {
      const double tick = static_cast<double>(std::max<int64_t>(t.tick, 0));
      seconds += (tick - last_tick) * us / (1e6 * tpq_);
      last_tick = tick;
      us = t.us_per_quarter;
      if (ticks_.back() == tick) {
        us_.back() = us;
      } else {
        ticks_.push_back(tick);
        us_.push_back(us);
        seconds_.push_back(seconds);
      }
    }
  }
  double SecondsAt(double tick) const {
    const size_t i = static_cast<size_t>(std::upper_bound(ticks_.begin(), ticks_.end(), tick) - ticks_.begin()) - 1;
    return seconds_[i] + (tick - ticks_[i]) * us_[i] / (1e6 * tpq_);
  }
  double BpmAt(double tick) const {
    const size_t i = static_cast<size_t>(std::upper_bound(ticks_.begin(), ticks_.end(), tick) - ticks_.begin()) - 1;
    return 60e6 / us_[i];
  }

 private:
  double tpq_;
  std::vector<double> ticks_, us_, seconds_;
};

// Tempo on the grid that keeps the playing time: each span between tempo changes (moved to grid steps) gets the
// bin of its mean tempo (its quarters over its real seconds); spans whose nearest bins agree are merged first, and
// between the two bins around a span's mean the one that keeps the running time closer to the file's is taken, so
// errors do not add up. Returns (step, bin) from step 0, without repeats of the bin in force.
std::vector<std::pair<int64_t, int>> GridTempos(const Score& score, const TempoClock& clock, int64_t tpq, int grid,
                                                int64_t end_step, QuantizationStats* st) {
  auto to_step = [tpq, grid](int64_t tick) { return (2 * grid * tick + tpq) / (2 * tpq); };
  auto tick_of = [tpq, grid](int64_t step) { return static_cast<double>(step) * tpq / grid; };
  std::vector<int64_t> steps = {0};
  for (const TempoChange& t : score.tempos) {
    const int64_t s = to_step(t.tick);
    if (s > steps.back()) steps.push_back(s);
  }
  struct Span {
    int64_t a, b;  // steps
    double seconds;
    double bpm;
  };
  std::vector<Span> spans;
  for (size_t i = 0; i < steps.size(); ++i) {
    const int64_t a = steps[i], b = i + 1 < steps.size() ? steps[i + 1] : std::max(end_step, a);
    Span sp{a, b, 0, 0};
    if (b > a) {
      sp.seconds = clock.SecondsAt(tick_of(b)) - clock.SecondsAt(tick_of(a));
      sp.bpm = 60.0 * static_cast<double>(b - a) / grid / sp.seconds;
    } else {
      sp.bpm = clock.BpmAt(tick_of(a));
    }
    if (!spans.empty() && Vocabulary::TempoBin(spans.back().bpm) == Vocabulary::TempoBin(sp.bpm)) {
      Span& prev = spans.back();
      if (b > a) {
        prev.b = b;
        prev.seconds += sp.seconds;
        prev.bpm = 60.0 * static_cast<double>(prev.b - prev.a) / grid / prev.seconds;
      }
      continue;
    }
    spans.push_back(sp);
  }
  std::vector<std::pair<int64_t, int>> out;
  double real = 0, rebuilt = 0;
  for (const Span& sp : spans) {
    double x = kTempoBinsPerOctave * std::log2(sp.bpm / 120.0) + kTempoBinOfOneTwenty;
    if (!(x >= -0.5 && x <= kTempoBins - 0.5)) ++st->clamped_tempos;
    if (!std::isfinite(x)) x = x > 0 ? kTempoBins - 1 : 0;  // a span of no real time (hand-built scores only)
    int bin = Vocabulary::TempoBin(sp.bpm);
    // A span already at a bin's tempo (up to a MIDI file's whole-microsecond rounding, as in a decoded file) keeps
    // that bin: re-encoding what Decode wrote gives the same tokens.
    const bool on_bin = std::abs(x - std::round(x)) < 1e-3;
    if (sp.b > sp.a && on_bin) {
      real += sp.seconds;
      rebuilt += static_cast<double>(sp.b - sp.a) / grid * 60.0 / Vocabulary::TempoOfBin(bin);
    } else if (sp.b > sp.a) {
      const double quarters = static_cast<double>(sp.b - sp.a) / grid;
      real += sp.seconds;
      const int lo = std::clamp(static_cast<int>(std::floor(x)), 0, kTempoBins - 1);
      const int hi = std::min(lo + 1, kTempoBins - 1);
      const double with_lo = rebuilt + quarters * 60.0 / Vocabulary::TempoOfBin(lo);
      const double with_hi = rebuilt + quarters * 60.0 / Vocabulary::TempoOfBin(hi);
      bin = std::abs(with_lo - real) <= std::abs(with_hi - real) ? lo : hi;
      rebuilt = bin == lo ? with_lo : with_hi;
    }
    if (out.empty() || out.back().second != bin) out.emplace_back(sp.a, bin);
  }
  return out;
}

// Seconds from the start to `step` under grid tempos (step, bin).
double GridSecondsAt(const std::vector<std::pair<int64_t, int>>& tempos, int grid, int64_t step) {
  double seconds = 0;
  for (size_t i = 0; i < tempos.size() && tempos[i].first < step; ++i) {
    const int64_t next = i + 1 < tempos.size() ? std::min(tempos[i + 1].first, step) : step;
    seconds += static_cast<double>(next - tempos[i].first) / grid * 60.0 / Vocabulary::TempoOfBin(tempos[i].second);
  }
  return seconds;
}

struct GridPedal {
  int64_t step;
  bool down;
};

// The sustain pedal on the grid, as one pedal for the piece (SustainPedal::kTokens): each channel's presses
// (a press while down and a release while up change nothing), moved to grid steps; a press whose down and up land on
// one step is dropped, presses that overlap on the grid (other channels') are joined, presses on the same steps on
// several channels are one. Both losses go to *lost. A press never released has no up. Returns the presses and
// releases in time order, a release before a press at the same step (a pedal change).
std::vector<GridPedal> GridPedalEvents(const Score& score, int64_t tpq, int grid, int64_t* lost) {
  constexpr int64_t kOpen = INT64_MAX;  // never released
  auto to_step = [tpq, grid](int64_t tick) { return (2 * grid * std::max<int64_t>(tick, 0) + tpq) / (2 * tpq); };
  struct Span {
    int64_t down, up;  // steps
  };
  std::vector<Span> spans;
  int64_t down_at[16];
  for (int64_t& d : down_at) d = -1;
  auto add = [&](int64_t down_tick, int64_t up_tick) {
    const int64_t a = to_step(down_tick), b = up_tick == kOpen ? kOpen : to_step(up_tick);
    if (b <= a) {
      ++*lost;
    } else {
      spans.push_back({a, b});
    }
  };
  for (const PedalEvent& p : score.sustain) {
    const int c = p.channel & 15;
    if (p.down && down_at[c] < 0) {
      down_at[c] = p.tick;
    } else if (!p.down && down_at[c] >= 0) {
      add(down_at[c], p.tick);
      down_at[c] = -1;
    }
  }
  for (int64_t d : down_at) {
    if (d >= 0) add(d, kOpen);
  }
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) {
    return std::make_pair(x.down, x.up) < std::make_pair(y.down, y.up);
  });
  std::vector<Span> joined;
  for (const Span& sp : spans) {
    if (!joined.empty() && sp.down < joined.back().up) {
      Span& last = joined.back();
      if (sp.down != last.down || sp.up != last.up) ++*lost;  // the same press on another channel is no loss
      last.up = std::max(last.up, sp.up);
      continue;
    }
    joined.push_back(sp);
  }
  std::vector<GridPedal> out;
  out.reserve(2 * joined.size());
  for (const Span& sp : joined) {
    out.push_back({sp.down, true});
    if (sp.up != kOpen) out.push_back({sp.up, false});
  }
  return out;
}

}  // namespace

const char* SustainPedalName(SustainPedal mode) {
  switch (mode) {
    case SustainPedal::kApply: return "apply";
    case SustainPedal::kTokens: return "tokens";
    case SustainPedal::kIgnore: return "ignore";
  }
  return "?";
}

bool ParseSustainPedal(const std::string& name, SustainPedal* mode) {
  for (SustainPedal m : {SustainPedal::kApply, SustainPedal::kTokens, SustainPedal::kIgnore}) {
    if (name == SustainPedalName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

TokenizerOptions TokenizerOptions::For(const Vocabulary& vocabulary) {
  TokenizerOptions o;
  o.grid = vocabulary.grid();
  o.pedal = vocabulary.pedal_tokens() ? SustainPedal::kTokens : SustainPedal::kApply;
  return o;
}

std::vector<int64_t> SustainedNoteEnds(const Score& score, int64_t* presses_used, int64_t* notes_lengthened) {
  std::vector<int64_t> ends(score.notes.size());
  for (size_t i = 0; i < ends.size(); ++i) ends[i] = score.notes[i].end;
  if (presses_used) *presses_used = 0;
  if (notes_lengthened) *notes_lengthened = 0;
  if (score.sustain.empty()) return ends;
  int64_t last = score.end_tick;
  for (const Note& n : score.notes) last = std::max(last, n.end);
  // Pedal-down spans [down, up) per channel; a pedal never released is released at the end of the piece.
  struct Span {
    int64_t down, up;
    bool used = false;
  };
  std::vector<Span> spans[16];
  int64_t down_at[16];
  for (int64_t& d : down_at) d = -1;
  for (const PedalEvent& p : score.sustain) {
    const int c = p.channel & 15;
    if (p.down && down_at[c] < 0) {
      down_at[c] = p.tick;
    } else if (!p.down && down_at[c] >= 0) {
      if (p.tick > down_at[c]) spans[c].push_back({down_at[c], p.tick});
      down_at[c] = -1;
    }
  }
  for (int c = 0; c < 16; ++c) {
    if (down_at[c] >= 0 && last > down_at[c]) spans[c].push_back({down_at[c], last});
  }
  // The next onset of each note's (channel, pitch): a re-struck key ends the sustained note.
  std::vector<int64_t> next_onset(score.notes.size(), INT64_MAX);
  {
    std::vector<int64_t> seen(16 * 128, INT64_MAX);
    for (size_t i = score.notes.size(); i-- > 0;) {
      const Note& n = score.notes[i];
      int64_t& s = seen[(n.channel & 15) * 128 + (n.pitch & 127)];
      if (s != INT64_MAX && s > n.start) next_onset[i] = s;
      if (s == INT64_MAX || n.start < s) s = n.start;
    }
  }
  for (size_t i = 0; i < score.notes.size(); ++i) {
    const Note& n = score.notes[i];
    std::vector<Span>& sp = spans[n.channel & 15];
    if (sp.empty()) continue;
    // The span whose press is the last one before the release: the release must fall strictly inside it.
    auto it = std::lower_bound(sp.begin(), sp.end(), n.end, [](const Span& s, int64_t t) { return s.down < t; });
    if (it == sp.begin()) continue;
    --it;
    if (!(n.end > it->down && n.end < it->up)) continue;
    const int64_t end = std::max(n.end, std::min(it->up, next_onset[i]));
    if (end > n.end) {
      ends[i] = end;
      if (notes_lengthened) ++*notes_lengthened;
      if (!it->used && presses_used) ++*presses_used;
      it->used = true;
    }
  }
  return ends;
}

Tokenizer::Tokenizer(const TokenizerOptions& options)
    : options_(options),
      vocab_(Vocabulary::ForGrid(options.grid, options.pedal == SustainPedal::kTokens)),
      grid_ok_(vocab_ != nullptr) {
  if (!vocab_) vocab_ = &Vocabulary::Get();
}

StatusOr<EncodedPiece> Tokenizer::Encode(const Score& score) const {
  if (!grid_ok_) {
    return InvalidArgument("grid of " + std::to_string(options_.grid) + " steps per quarter is not supported (12, 24 or 48)");
  }
  const Vocabulary& v = *vocab_;
  const int grid = v.grid();
  const int max_duration = v.max_duration_steps();
  EncodedPiece out;
  QuantizationStats& st = out.stats;
  const int64_t tpq = score.ticks_per_quarter > 0 ? score.ticks_per_quarter : 480;
  auto to_step = [tpq, grid](int64_t tick) { return (2 * grid * tick + tpq) / (2 * tpq); };

  // Meters on the grid; one that cannot be represented is skipped (the meter before it stays), with its reason.
  std::vector<GridMeter> meters;
  for (const TimeSignature& ts : score.time_signatures) {
    if (!v.IsRepresentableMeter(ts.numerator, ts.denominator)) {
      ++st.skipped_meters;
      if (st.skipped_meter_reasons.size() < 20) {
        st.skipped_meter_reasons.push_back("tick " + std::to_string(ts.tick) + ": " + v.MeterProblem(ts.numerator, ts.denominator));
      }
      continue;
    }
    GridMeter m{to_step(ts.tick), ts.numerator, ts.denominator};
    if (!meters.empty() && meters.back().step == m.step) meters.pop_back();
    meters.push_back(m);
  }
  if (meters.empty() || meters.front().step > 0) meters.insert(meters.begin(), GridMeter{0, 4, 4});

  // Note ends with the sustain pedal applied, or the pedal as events of its own.
  std::vector<int64_t> sustained_ends;
  if (options_.pedal == SustainPedal::kApply && !score.sustain.empty()) {
    sustained_ends = SustainedNoteEnds(score, &st.sustain_presses, &st.sustained_notes);
  }
  std::vector<GridPedal> pedals;
  if (options_.pedal == SustainPedal::kTokens && !score.sustain.empty()) {
    pedals = GridPedalEvents(score, tpq, grid, &st.lost_pedal_presses);
  }

  // Notes on the grid, with the quantisation error measured against the local tempo.
  std::vector<GridNote> notes;
  notes.reserve(score.notes.size());
  size_t tempo_i = 0;
  uint32_t us = 500000;
  double error_ms_sum = 0, error_steps_sum = 0;
  for (size_t i = 0; i < score.notes.size(); ++i) {
    const Note& n = score.notes[i];
    const int64_t end_tick = sustained_ends.empty() ? n.end : sustained_ends[i];
    while (tempo_i < score.tempos.size() && score.tempos[tempo_i].tick <= n.start) us = score.tempos[tempo_i++].us_per_quarter;
    GridNote g;
    g.on = to_step(n.start);
    g.off = std::max(to_step(end_tick), g.on + 1);
    g.inst = n.drum ? kDrumProgram : n.program;
    g.pitch = n.pitch;
    g.velocity = n.velocity;
    notes.push_back(g);
    const double err_ticks = std::abs(static_cast<double>(n.start * grid - g.on * tpq)) / grid;
    if (err_ticks > 1.0) ++st.off_grid_onsets;  // files store triplets rounded to whole ticks: 1 tick is on grid
    const double err_ms = err_ticks * us / tpq / 1000.0;
    error_ms_sum += err_ms;
    error_steps_sum += err_ticks * grid / tpq;
    st.max_onset_error_ms = std::max(st.max_onset_error_ms, err_ms);
  }
  st.notes_in = static_cast<int64_t>(score.notes.size());
  if (!notes.empty()) {
    st.mean_onset_error_ms = error_ms_sum / notes.size();
    st.mean_onset_error_steps = error_steps_sum / notes.size();
  }
  st.duplicate_notes = NormalizeNotes(&notes, &st.cut_overlaps);
  st.notes_out = static_cast<int64_t>(notes.size());
  int64_t last_end_step = 0;  // the last note's end on the grid, before clipping (clipping is counted apart)
  for (const GridNote& n : notes) last_end_step = std::max(last_end_step, n.off);

  // Tempo changes on the grid, keeping the playing time (GridTempos).
  const TempoClock clock(score, static_cast<double>(tpq));
  st.tempo_changes = static_cast<int64_t>(score.tempos.size());
  const std::vector<std::pair<int64_t, int>> tempos = GridTempos(score, clock, tpq, grid, last_end_step, &st);
  // The file's time at the moment the tokens end (the last note's end on the grid, before clipping): a note cut,
  // merged or clipped at the end is counted as such, not as a change of tempo.
  st.seconds_in = clock.SecondsAt(static_cast<double>(last_end_step) * tpq / grid);

  // Bars from the meter map; a meter change inside a bar cuts it short, or moves to the next bar line. Bars run to
  // the one holding the last onset, or the last tempo change while a (clipped) note still sounds, if later.
  int64_t last_onset = notes.empty() ? 0 : notes.back().on;
  {
    int64_t sounding_end = 0;
    for (const GridNote& n : notes) sounding_end = std::max(sounding_end, n.on + std::min<int64_t>(n.off - n.on, max_duration));
    for (const auto& t : tempos) {
      if (t.first < sounding_end) last_onset = std::max(last_onset, t.first);
    }
    // Every pedal press and release is kept: a release after the last key release still ends the sound.
    if (!pedals.empty()) last_onset = std::max(last_onset, pedals.back().step);
  }
  std::vector<BarLayout> bars;
  size_t mi = 0;
  for (int64_t start = 0; start <= last_onset;) {
    while (mi + 1 < meters.size() && meters[mi + 1].step <= start) ++mi;
    BarLayout bar{start, v.BarSteps(meters[mi].numerator, meters[mi].denominator), meters[mi].numerator,
                  meters[mi].denominator};
    if (mi + 1 < meters.size() && meters[mi + 1].step < start + bar.length) {
      const int64_t cut = meters[mi + 1].step - start;
      int n = 0, d = 0;
      if (ShortBarMeter(v, cut, bar.denominator, &n, &d)) {
        bar = {start, cut, n, d};
      } else {
        meters[mi + 1].step = start + bar.length;
        ++st.moved_meters;
      }
    }
    bars.push_back(bar);
    if (static_cast<int>(bars.size()) > kMaxBars) {
      return InvalidArgument("piece has more than " + std::to_string(kMaxBars) + " bars (" +
                             std::to_string(last_onset / grid) + " quarter notes long); refusing to encode");
    }
    start += bar.length;
  }

  // Playing time from the tokens to the same moment: the tempo changes the tokens hold (those inside the bars).
  {
    const int64_t bars_end = bars.empty() ? 0 : bars.back().start + bars.back().length;
    std::vector<std::pair<int64_t, int>> in_bars;
    for (const auto& t : tempos) {
      if (t.first < bars_end) in_bars.push_back(t);
    }
    st.seconds_out = GridSecondsAt(in_bars, grid, last_end_step);
  }

  std::vector<int32_t>& tok = out.tokens;
  tok.reserve(notes.size() * 4 + bars.size() * 3 + 8);
  tok.push_back(v.Bos());
  size_t ni = 0, ti = 0, pi = 0;
  int current_tempo = -1;
  for (const BarLayout& bar : bars) {
    tok.push_back(v.Bar());
    tok.push_back(v.TimeSig(bar.numerator, bar.denominator));
    const int beat_steps = v.BeatSteps(bar.numerator, bar.denominator);
    const int64_t end = bar.start + bar.length;
    int last_beat = -1, current_inst = -1;
    while (ti < tempos.size() && tempos[ti].first < bar.start) ++ti;  // moved past by a cut bar: fold into the next step
    while ((ni < notes.size() && notes[ni].on < end) || (ti < tempos.size() && tempos[ti].first < end) ||
           (pi < pedals.size() && pedals[pi].step < end)) {
      int64_t step = end;
      if (ni < notes.size()) step = std::min(step, notes[ni].on);
      if (ti < tempos.size()) step = std::min(step, tempos[ti].first);
      if (pi < pedals.size()) step = std::min(step, pedals[pi].step);
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
      for (; pi < pedals.size() && pedals[pi].step == step; ++pi) {  // a release, then a press
        tok.push_back(pedals[pi].down ? v.PedalDown() : v.PedalUp());
        ++st.pedal_tokens;
      }
      for (; ni < notes.size() && notes[ni].on == step; ++ni) {
        const GridNote& n = notes[ni];
        if (n.inst != current_inst) {
          tok.push_back(v.Program(n.inst));
          current_inst = n.inst;
        }
        const int64_t steps = n.off - n.on;
        if (steps > max_duration) ++st.clipped_durations;
        tok.push_back(v.Pitch(n.pitch));
        tok.push_back(v.Velocity(Vocabulary::VelocityBin(n.velocity)));
        tok.push_back(v.Duration(static_cast<int>(std::min<int64_t>(steps, max_duration))));
      }
    }
  }
  tok.push_back(v.Eos());
  out.num_bars = static_cast<int>(bars.size());
  auto seg = Segment(tok.data(), tok.size(), v);
  if (!seg.ok()) return Status(StatusCode::kInternal, "encoder produced tokens its own segmenter refuses: " + seg.status().message());
  out.segmentation = std::move(seg).value();
  return out;
}

StatusOr<Score> Tokenizer::Decode(const int32_t* tokens, size_t count) const {
  const Vocabulary& v = *vocab_;
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
  // The sustain pedal (pedal vocabularies): its state, its presses and releases in time order, and whether a pedal
  // token may still come at this position (before its notes) and a press came at it. Tokens that start with BOS
  // start with the pedal up; a window that starts on a bar may start inside a press (its first Pedal_Up says so).
  enum class Pedal { kUnknown, kUp, kDown };
  Pedal pedal = Pedal::kUnknown;
  std::vector<GridPedal> pedals;
  bool pedal_open = false, down_here = false;
  size_t i = 0;
  if (count > 0 && tokens[0] == v.Bos()) {
    i = 1;
    pedal = Pedal::kUp;
  }
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
        if (!v.IsRepresentableMeter(info.value, info.value2)) {
          return fail(i, "a meter whose bar is a whole number of steps on a " + std::to_string(v.grid()) + "-per-quarter grid");
        }
        bar_length = v.BarSteps(info.value, info.value2);
        beat_steps = v.BeatSteps(info.value, info.value2);
        beats = v.BeatsPerBar(info.value, info.value2);
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
        pedal_open = true;
        down_here = false;
        expect = Expect::kEvent;
        break;
      }
      case TokenType::kTempo:
        if (step < 0 || tempo_here || v.Type(tokens[i - 1]) != TokenType::kPosition) return fail(i, "Tempo right after a Pos");
        tempos.emplace_back(step, info.value);
        tempo_here = true;
        break;
      case TokenType::kPedal:
        if (step < 0 || !pedal_open) return fail(i, "a pedal token right after a Pos (or its Tempo), before its notes");
        if (info.value == 0) {
          if (pedal == Pedal::kUp) return fail(i, "Pedal_Up only while the pedal is down");
          if (down_here) return fail(i, "no Pedal_Up after a Pedal_Down at the same position (a press of no length)");
          if (pedal == Pedal::kDown) {
            pedals.push_back({step, false});
          } else if (step > 0) {  // a window that starts inside a press: pressed from its start
            pedals.push_back({0, true});
            pedals.push_back({step, false});
          }
          pedal = Pedal::kUp;
        } else {
          if (pedal == Pedal::kDown) return fail(i, "Pedal_Down only while the pedal is up");
          pedals.push_back({step, true});
          pedal = Pedal::kDown;
          down_here = true;
        }
        break;
      case TokenType::kProgram:
        if (step < 0) return fail(i, "a Beat and Pos before the first note of a bar");
        inst = info.value;
        pedal_open = false;
        expect = Expect::kPitch;
        break;
      case TokenType::kPitch:
        if (step < 0) return fail(i, "a Beat and Pos before the first note of a bar");
        if (inst < 0) return fail(i, "a Program before the first note of a bar");
        pending = GridNote{step, step + 1, inst, info.value, 0};
        pedal_open = false;
        expect = Expect::kVelocity;
        break;
      default:
        return fail(i, v.pedal_tokens() ? "Bar, Beat, Pos, Tempo, Pedal, Program or Pitch" : "Bar, Beat, Pos, Tempo, Program or Pitch");
    }
  }
  if (expect == Expect::kTimeSig || expect == Expect::kPitch || expect == Expect::kVelocity || expect == Expect::kDuration ||
      expect == Expect::kPosition) {
    return InvalidArgument("tokens end inside a bar header, a position or a note (after token " + std::to_string(count) + ")");
  }
  NormalizeNotes(&notes);

  Score score;
  const int64_t ticks_per_step = kDecodeTicksPerQuarter / v.grid();
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
  // The pedal as CC 64 on every channel that plays a pitched instrument (the first channel when none does).
  if (!pedals.empty()) {
    std::vector<uint8_t> channels;
    for (const auto& entry : channel_of) channels.push_back(static_cast<uint8_t>(entry.second));
    std::sort(channels.begin(), channels.end());
    channels.erase(std::unique(channels.begin(), channels.end()), channels.end());
    if (channels.empty()) channels.push_back(0);
    for (const GridPedal& p : pedals) {
      for (uint8_t c : channels) score.sustain.push_back({p.step * ticks_per_step, c, p.down});
      end = std::max(end, p.step * ticks_per_step);
    }
  }
  score.end_tick = std::max(end, (bar_start + bar_length) * ticks_per_step);
  score.Sort();
  return score;
}

}  // namespace cadenza
