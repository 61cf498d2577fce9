// Skyline melody, MusPy-style pitch statistics, LHL syncopation, WNBD, beat alignment, empty beats and groove.
#include "core/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>

#include "core/vocabulary.h"

namespace cadenza {
// The levels of a bar's hierarchy from the bar down to its beat (defined below).
std::vector<int> BarLevels(int numerator, int denominator);
namespace {

std::vector<int64_t> DistinctOnsets(const EvalPiece& piece) {
  std::vector<int64_t> on;
  on.reserve(piece.notes.size());
  for (const EvalNote& n : piece.notes) {
    if (on.empty() || on.back() != n.on) on.push_back(n.on);
  }
  std::sort(on.begin(), on.end());
  on.erase(std::unique(on.begin(), on.end()), on.end());
  return on;
}

// Bar index of a step (bars are contiguous from bars[0].start).
size_t BarOf(const EvalPiece& piece, int64_t step) {
  size_t lo = 0, hi = piece.bars.size();
  while (hi - lo > 1) {
    const size_t mid = (lo + hi) / 2;
    if (piece.bars[mid].start <= step) lo = mid; else hi = mid;
  }
  return lo;
}

// The sub-beat levels of a beat of `beat` steps first split in `first` (2 or 3) parts, then in halves, down to
// spans of 2 steps (a 12-per-quarter grid's sixteenth triplet; its sixteenth is 3 steps).
std::vector<int> BeatLevels(int beat, int first) {
  std::vector<int> out;
  int span = beat, f = first;
  while (span % f == 0 && span / f >= 2) {
    span /= f;
    out.push_back(span);
    f = 2;
  }
  return out;
}

// Depth of an offset inside a beat under sub-beat levels: 0 on the beat, k on level k, levels + 1 below them.
int Depth(int64_t offset, const std::vector<int>& levels) {
  if (offset == 0) return 0;
  for (size_t k = 0; k < levels.size(); ++k) {
    if (offset % levels[k] == 0) return static_cast<int>(k) + 1;
  }
  return static_cast<int>(levels.size()) + 1;
}

// Metrical weights of one bar whose beats are each divided the way that fits their onsets (docs/evaluation.md,
// "Syncopation and tuplets"): w[s] for every step s of the bar, and whether s is on the chosen hierarchy's finest
// level (or above).
void BarWeights(const EvalBar& bar, const int64_t* onsets_begin, const int64_t* onsets_end, std::vector<int>* w,
                std::vector<char>* on_grid) {
  const std::vector<int> upper = BarLevels(bar.numerator, bar.denominator);
  const int beat = bar.beat_steps;
  const int beat_level = static_cast<int>(upper.size()) - 1;
  const bool compound = Vocabulary::IsCompound(bar.numerator, bar.denominator) && beat % 3 == 0;
  const std::vector<int> native = BeatLevels(beat, compound ? 3 : 2), other = BeatLevels(beat, compound ? 2 : 3);
  w->assign(bar.length, 0);
  on_grid->assign(bar.length, 1);
  const int64_t* on = onsets_begin;
  for (int64_t b0 = 0; b0 < bar.length; b0 += beat) {
    const int64_t b1 = std::min<int64_t>(b0 + beat, bar.length);
    // The beat's onsets choose its division: the one that puts them highest in the hierarchy (ties: the meter's).
    int64_t cost_native = 0, cost_other = 0;
    for (; on != onsets_end && *on < bar.start + b1; ++on) {
      cost_native += Depth(*on - bar.start - b0, native);
      cost_other += Depth(*on - bar.start - b0, other);
    }
    const std::vector<int>& levels = cost_other < cost_native ? other : native;
    for (int64_t s = b0; s < b1; ++s) {
      if (s == b0) {
        int k = 0;
        while (k < beat_level && s % upper[k] != 0) ++k;
        (*w)[s] = -k;
        continue;
      }
      const int depth = Depth(s - b0, levels);
      (*w)[s] = -(beat_level + depth);
      (*on_grid)[s] = depth <= static_cast<int>(levels.size());
    }
  }
}
}  // namespace

std::vector<int> BarLevels(int numerator, int denominator) {
  const Vocabulary& v = Vocabulary::Get();
  if (!v.IsRepresentableMeter(numerator, denominator)) return {1};
  const int bar = v.BarSteps(numerator, denominator), beat = v.BeatSteps(numerator, denominator);
  std::vector<int> levels = {bar};
  // bar -> beats: split by 2 while even, then by the remaining odd factor (3/4: 3; 6/4: 2 then 3; 5/8: 5).
  int groups = bar / beat, span = bar;
  while (groups > 1) {
    const int f = groups % 2 == 0 ? 2 : groups;
    groups /= f;
    span /= f;
    levels.push_back(span);
  }
  if (levels.back() != beat) levels.push_back(beat);  // defensive: span == beat here
  return levels;
}

std::vector<int> MetricalLevels(int numerator, int denominator) {
  std::vector<int> levels = BarLevels(numerator, denominator);
  const int beat = levels.back();
  const bool compound = Vocabulary::IsCompound(numerator, denominator) && beat % 3 == 0;
  for (int span : BeatLevels(beat, compound ? 3 : 2)) levels.push_back(span);  // dotted beat -> 3 units, then halves
  return levels;
}

std::vector<int> MetricalWeights(int numerator, int denominator) {
  const std::vector<int> levels = MetricalLevels(numerator, denominator);
  const int bar = levels.front();
  std::vector<int> w(bar, -static_cast<int>(levels.size()));
  for (int p = 0; p < bar; ++p) {
    for (size_t k = 0; k < levels.size(); ++k) {
      if (p % levels[k] == 0) {
        w[p] = -static_cast<int>(k);
        break;
      }
    }
  }
  return w;
}

std::vector<EvalNote> SkylineMelody(const EvalPiece& piece) {
  std::vector<EvalNote> melody;
  for (const EvalNote& n : piece.notes) {
    if (n.drum) continue;
    if (!melody.empty() && melody.back().on == n.on) {
      if (n.pitch > melody.back().pitch) melody.back() = n;
    } else {
      melody.push_back(n);
    }
  }
  return melody;
}

MelodyMetrics ComputeMelody(const EvalPiece& piece) {
  MelodyMetrics m;
  const std::vector<EvalNote> melody = SkylineMelody(piece);
  m.melody_notes = static_cast<int>(melody.size());
  if (melody.size() >= 2) {
    double sum = 0;
    for (size_t i = 1; i < melody.size(); ++i) sum += std::abs(melody[i].pitch - melody[i - 1].pitch);
    m.avg_pitch_deviation = sum / (melody.size() - 1);
  } else {
    m.avg_pitch_deviation = kNaN;
  }
  int lo = 128, hi = -1;
  bool used[128] = {};
  double pc[12] = {};
  int64_t pitched = 0;
  for (const EvalNote& n : piece.notes) {
    if (n.drum) continue;
    lo = std::min(lo, n.pitch);
    hi = std::max(hi, n.pitch);
    used[n.pitch & 127] = true;
    pc[n.pitch % 12] += 1;
    ++pitched;
  }
  if (pitched == 0) {
    m.pitch_range = m.n_pitches_used = m.pitch_class_entropy = m.scale_consistency = kNaN;
    return m;
  }
  m.pitch_range = hi - lo;
  m.n_pitches_used = static_cast<double>(std::count(std::begin(used), std::end(used), true));
  double h = 0;
  for (double c : pc) {
    if (c > 0) h -= (c / pitched) * std::log2(c / pitched);
  }
  m.pitch_class_entropy = h;
  static const int kMajor[7] = {0, 2, 4, 5, 7, 9, 11}, kMinor[7] = {0, 2, 3, 5, 7, 8, 10};
  double best = 0;
  for (const int* scale : {kMajor, kMinor}) {
    for (int root = 0; root < 12; ++root) {
      double in = 0;
      for (int k = 0; k < 7; ++k) in += pc[(root + scale[k]) % 12];
      best = std::max(best, in / pitched);
    }
  }
  m.scale_consistency = best;
  return m;
}

RhythmMetrics ComputeRhythm(const EvalPiece& piece) {
  RhythmMetrics r;
  const std::vector<int64_t> onsets = DistinctOnsets(piece);
  r.onsets = static_cast<int>(onsets.size());
  const int64_t end = piece.end_step();
  std::vector<int> w;
  std::vector<char> on_grid_step;
  size_t weights_of = SIZE_MAX;  // the bar whose weights w holds

  // Beat starts of the whole piece, plus the piece end as a closing beat.
  std::vector<int64_t> beats;
  for (const EvalBar& bar : piece.bars) {
    for (int b = 0; b < bar.num_beats; ++b) beats.push_back(bar.start + int64_t{b} * bar.beat_steps);
  }
  const size_t num_beats = beats.size();
  beats.push_back(end);

  if (onsets.empty() || piece.bars.empty()) {
    r.syncopation = r.syncopation_total = r.syncopation_per_onset = r.wnbd = r.on_beat_rate = r.on_grid_rate = kNaN;
  } else {
    double sync = 0, wnbd = 0;
    int64_t on_beat = 0, on_grid = 0;
    for (size_t i = 0; i < onsets.size(); ++i) {
      const int64_t p = onsets[i];
      const int64_t q = i + 1 < onsets.size() ? onsets[i + 1] : end;  // the note lasts until the next onset
      const size_t bi = BarOf(piece, p);
      const EvalBar& bar = piece.bars[bi];
      if (weights_of != bi) {
        const int64_t* first = onsets.data() + (std::lower_bound(onsets.begin(), onsets.end(), bar.start) - onsets.begin());
        const int64_t* last = onsets.data() + (std::lower_bound(onsets.begin(), onsets.end(), bar.end()) - onsets.begin());
        BarWeights(bar, first, last, &w, &on_grid_step);
        weights_of = bi;
      }
      const int wp = p - bar.start < bar.length ? w[p - bar.start] : -1000;
      if (p - bar.start < bar.length && on_grid_step[p - bar.start]) ++on_grid;
      // LHL: the strongest silent (or tied-over) position strictly between this onset and the next.
      int strongest = std::numeric_limits<int>::min();
      if (q > bar.end() && bar.end() < end) {
        strongest = 0;  // a downbeat inside the gap
      } else {
        for (int64_t s = p + 1; s < q && s < bar.end(); ++s) strongest = std::max(strongest, w[s - bar.start]);
      }
      if (strongest > wp) sync += strongest - wp;
      // WNBD: distance to the nearest beat in beats, weighted by how the note crosses the following beats.
      const size_t k = std::upper_bound(beats.begin(), beats.begin() + num_beats, p) - beats.begin() - 1;
      if (beats[k] == p) {
        ++on_beat;
        continue;
      }
      const int64_t e1 = beats[k], e2 = beats[k + 1];
      const double t = static_cast<double>(std::min(p - e1, e2 - p)) / static_cast<double>(e2 - e1);
      const int64_t e3 = k + 2 < beats.size() ? beats[k + 2] : e2;
      wnbd += (q <= e2 || q > e3) ? 1.0 / t : 2.0 / t;
    }
    r.syncopation_total = sync;
    r.syncopation = sync / piece.bars.size();
    r.syncopation_per_onset = sync / onsets.size();
    r.wnbd = wnbd / onsets.size();
    r.on_beat_rate = static_cast<double>(on_beat) / onsets.size();
    r.on_grid_rate = static_cast<double>(on_grid) / onsets.size();
  }

  // Empty beats: no note sounds anywhere in [beat, next beat).
  if (num_beats == 0) {
    r.empty_beat_rate = kNaN;
  } else {
    std::vector<char> sounding(num_beats, 0);
    for (const EvalNote& n : piece.notes) {
      size_t k = std::upper_bound(beats.begin(), beats.begin() + num_beats, n.on) - beats.begin();
      k = k == 0 ? 0 : k - 1;
      for (; k < num_beats && beats[k] < n.off; ++k) {
        if (beats[k + 1] > n.on) sounding[k] = 1;
      }
    }
    r.empty_beat_rate = static_cast<double>(std::count(sounding.begin(), sounding.end(), 0)) / num_beats;
  }

  // Groove consistency over adjacent bars of equal length (MusPy compares measures of one time signature).
  std::vector<std::vector<char>> patterns(piece.bars.size());
  for (size_t b = 0; b < piece.bars.size(); ++b) patterns[b].assign(piece.bars[b].length, 0);
  for (int64_t p : onsets) {
    const size_t b = BarOf(piece, p);
    if (p >= piece.bars[b].start && p < piece.bars[b].end()) patterns[b][p - piece.bars[b].start] = 1;
  }
  double distance = 0;
  int pairs = 0;
  for (size_t b = 1; b < patterns.size(); ++b) {
    if (patterns[b].size() != patterns[b - 1].size()) continue;
    int diff = 0;
    for (size_t s = 0; s < patterns[b].size(); ++s) diff += patterns[b][s] != patterns[b - 1][s];
    distance += static_cast<double>(diff) / patterns[b].size();
    ++pairs;
  }
  r.groove_consistency = pairs > 0 ? 1.0 - distance / pairs : kNaN;
  return r;
}

std::vector<double> PitchClassHistogram(const EvalPiece& piece) {
  std::vector<double> h(12, 0.0);
  double total = 0;
  for (const EvalNote& n : piece.notes) {
    if (n.drum) continue;
    h[n.pitch % 12] += 1;
    total += 1;
  }
  if (total > 0) {
    for (double& x : h) x /= total;
  }
  return h;
}

std::vector<double> NoteLengthHistogram(const EvalPiece& piece) {
  // Lengths in grid steps (12 per quarter), in mgeval's bin order.
  static const double kLengths[12] = {48, 24, 12, 6, 3, 36, 18, 9, 4.5, 8, 4, 2};
  std::vector<double> h(12, 0.0);
  double total = 0;
  for (const EvalNote& n : piece.notes) {
    if (n.drum) continue;
    const double len = static_cast<double>(n.off - n.on);
    int best = 0;
    for (int k = 1; k < 12; ++k) {
      if (std::abs(len - kLengths[k]) < std::abs(len - kLengths[best])) best = k;
    }
    h[best] += 1;
    total += 1;
  }
  if (total > 0) {
    for (double& x : h) x /= total;
  }
  return h;
}

}  // namespace cadenza
