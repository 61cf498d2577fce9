// Segment embeddings, cosine SSM, repetition/variation shares and the diagonal-path fitness scape.
#include "core/eval/ssm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace cadenza {
namespace {
constexpr double kPenalty = -2.0;  // cost of an SSM cell below the scape threshold (as in Mueller's SM Toolbox)

void NormalizePart(float* v, int dims, float scale) {
  double norm = 0;
  for (int i = 0; i < dims; ++i) norm += static_cast<double>(v[i]) * v[i];
  if (norm <= 0) return;
  const float f = static_cast<float>(scale / std::sqrt(norm));
  for (int i = 0; i < dims; ++i) v[i] *= f;
}
}  // namespace

std::vector<std::pair<int64_t, int64_t>> SegmentSpans(const EvalPiece& piece, SegmentUnit unit) {
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (const EvalBar& bar : piece.bars) {
    if (unit == SegmentUnit::kBar) {
      spans.emplace_back(bar.start, bar.end());
      continue;
    }
    for (int b = 0; b < bar.num_beats; ++b) {
      const int64_t s = bar.start + int64_t{b} * bar.beat_steps;
      spans.emplace_back(s, std::min(bar.end(), s + bar.beat_steps));
    }
  }
  return spans;
}

std::vector<int> BarGridOfSegments(const EvalPiece& piece, SegmentUnit unit) {
  std::vector<int> grid;
  int index = 0;
  for (const EvalBar& bar : piece.bars) {
    grid.push_back(index);
    index += unit == SegmentUnit::kBar ? 1 : bar.num_beats;
  }
  return grid;
}

Embeddings SegmentEmbeddings(const EvalPiece& piece, SegmentUnit unit) {
  const auto spans = SegmentSpans(piece, unit);
  Embeddings out(spans.size(), std::vector<float>(kEmbeddingDims, 0.0f));
  if (spans.empty()) return out;
  std::vector<int64_t> starts(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) starts[i] = spans[i].first;
  for (const EvalNote& n : piece.notes) {
    // First segment that ends after the onset.
    size_t k = std::upper_bound(starts.begin(), starts.end(), n.on) - starts.begin();
    k = k == 0 ? 0 : k - 1;
    if (n.on < spans[k].second && n.on >= spans[k].first) {
      const int64_t len = spans[k].second - spans[k].first;
      const int bin = static_cast<int>((n.on - spans[k].first) * kRhythmDims / len);
      out[k][kPitchClassDims + bin] = 1.0f;
    }
    if (n.drum) continue;
    for (; k < spans.size() && spans[k].first < n.off; ++k) {
      const int64_t overlap = std::min(n.off, spans[k].second) - std::max(n.on, spans[k].first);
      if (overlap > 0) out[k][n.pitch % 12] += static_cast<float>(overlap);
    }
  }
  const float half = static_cast<float>(1.0 / std::sqrt(2.0));
  for (auto& row : out) {
    NormalizePart(row.data(), kPitchClassDims, half);
    NormalizePart(row.data() + kPitchClassDims, kRhythmDims, half);
  }
  return out;
}

StatusOr<Embeddings> PoolTokenEmbeddings(const Embeddings& per_token, const Segmentation& segmentation, SegmentUnit unit) {
  if (static_cast<int64_t>(per_token.size()) != segmentation.num_tokens) {
    return InvalidArgument("token embeddings have " + std::to_string(per_token.size()) + " rows, the sequence has " +
                           std::to_string(segmentation.num_tokens) + " tokens");
  }
  const size_t dims = per_token.empty() ? 0 : per_token[0].size();
  for (size_t i = 0; i < per_token.size(); ++i) {
    if (per_token[i].size() != dims) {
      return InvalidArgument("token embeddings row " + std::to_string(i) + " has " + std::to_string(per_token[i].size()) +
                             " values, row 0 has " + std::to_string(dims));
    }
  }
  const int64_t segments = unit == SegmentUnit::kBar ? static_cast<int64_t>(segmentation.bars.size())
                                                     : static_cast<int64_t>(segmentation.beat_token_offsets.size());
  Embeddings out(segments, std::vector<float>(dims, 0.0f));
  for (int64_t k = 0; k < segments; ++k) {
    const auto [begin, end] = unit == SegmentUnit::kBar ? segmentation.BarRange(k) : segmentation.BeatRange(k);
    if (end <= begin) continue;
    std::vector<double> sum(dims, 0.0);
    for (int64_t t = begin; t < end; ++t) {
      for (size_t d = 0; d < dims; ++d) sum[d] += per_token[t][d];
    }
    for (size_t d = 0; d < dims; ++d) out[k][d] = static_cast<float>(sum[d] / (end - begin));
  }
  return out;
}

double Cosine(const float* a, const float* b, size_t dims) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < dims; ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na <= 0 && nb <= 0) return 1.0;
  if (na <= 0 || nb <= 0) return 0.0;
  return std::clamp(dot / std::sqrt(na * nb), -1.0, 1.0);
}

StatusOr<Ssm> SelfSimilarity(const Embeddings& embeddings) {
  Ssm ssm;
  ssm.n = static_cast<int>(embeddings.size());
  if (embeddings.empty()) return ssm;
  const size_t dims = embeddings[0].size();
  for (size_t i = 0; i < embeddings.size(); ++i) {
    if (embeddings[i].size() != dims) {
      return InvalidArgument("embeddings row " + std::to_string(i) + " has " + std::to_string(embeddings[i].size()) +
                             " values, row 0 has " + std::to_string(dims));
    }
    for (float x : embeddings[i]) {
      if (!std::isfinite(x)) return InvalidArgument("embeddings row " + std::to_string(i) + " holds a non-finite value");
    }
  }
  // Unit rows once (zero rows stay zero), then dot products: the same values as Cosine, a third of the work.
  std::vector<double> unit(static_cast<size_t>(ssm.n) * dims, 0.0);
  std::vector<char> zero(ssm.n, 0);
  for (int i = 0; i < ssm.n; ++i) {
    double norm = 0;
    for (float x : embeddings[i]) norm += static_cast<double>(x) * x;
    zero[i] = norm <= 0;
    if (zero[i]) continue;
    const double inv = 1.0 / std::sqrt(norm);
    for (size_t d = 0; d < dims; ++d) unit[i * dims + d] = embeddings[i][d] * inv;
  }
  ssm.values.assign(static_cast<size_t>(ssm.n) * ssm.n, 0.0f);
  for (int i = 0; i < ssm.n; ++i) {
    const double* a = &unit[i * dims];
    for (int j = i; j < ssm.n; ++j) {
      double s;
      if (zero[i] || zero[j]) {
        s = zero[i] && zero[j] ? 1.0 : 0.0;
      } else {
        const double* b = &unit[j * dims];
        s = 0;
        for (size_t d = 0; d < dims; ++d) s += a[d] * b[d];
        s = std::clamp(s, -1.0, 1.0);
      }
      ssm.values[static_cast<size_t>(i) * ssm.n + j] = static_cast<float>(s);
      ssm.values[static_cast<size_t>(j) * ssm.n + i] = static_cast<float>(s);
    }
  }
  return ssm;
}

namespace {

// Prefix sums of the thresholded SSM along every diagonal: P(i,j) = T(i,j) + P(i-1,j-1).
class DiagonalSums {
 public:
  DiagonalSums(const Ssm& ssm, double threshold) : n_(ssm.n), p_(static_cast<size_t>(n_) * n_) {
    for (int i = 0; i < n_; ++i) {
      for (int j = 0; j < n_; ++j) {
        const double s = ssm.at(i, j);
        const double t = s >= threshold ? s : kPenalty;
        p_[Index(i, j)] = t + (i > 0 && j > 0 ? p_[Index(i - 1, j - 1)] : 0.0);
      }
    }
  }
  // Sum of T(start + k, column + k) for k < length.
  double Path(int start, int column, int length) const {
    const double end = p_[Index(start + length - 1, column + length - 1)];
    return start > 0 && column > 0 ? end - p_[Index(start - 1, column - 1)] : end;
  }

 private:
  size_t Index(int i, int j) const { return static_cast<size_t>(i) * n_ + j; }
  int n_;
  std::vector<double> p_;
};

struct Best {
  double score = 0;
  int copies = 0;
  bool operator<(const Best& o) const { return score < o.score || (score == o.score && copies > o.copies); }
};

struct Copy {
  int column;
  double score;
};

// Workspace reused across segments.
struct ScapeScratch {
  std::vector<Copy> copies;
  std::vector<Best> best;
};

SegmentFitness FitnessFromSums(const DiagonalSums& sums, int n, int start, int length, ScapeScratch* scratch) {
  SegmentFitness f;
  // Candidate copies: positive-score diagonal paths that do not overlap the segment itself, by column.
  std::vector<Copy>& cands = scratch->copies;
  cands.clear();
  for (int c = 0; c + length <= n; ++c) {
    if (c > start - length && c < start + length) {
      c = start + length - 1;  // skip the columns that overlap the segment
      continue;
    }
    const double g = sums.Path(start, c, length);
    if (g > 0) cands.push_back({c, g});
  }
  Best family;
  if (!cands.empty()) {
    // Weighted interval scheduling over fixed-length intervals: best[i] = best family among the first i candidates.
    std::vector<Best>& best = scratch->best;
    best.assign(cands.size() + 1, Best{});
    size_t p = 0;  // candidates [0, p) end at or before the current one starts
    for (size_t i = 0; i < cands.size(); ++i) {
      while (p < i && cands[p].column + length <= cands[i].column) ++p;
      Best with = best[p];
      with.score += cands[i].score;
      with.copies += 1;
      best[i + 1] = best[i] < with ? with : best[i];
    }
    family = best[cands.size()];
  }
  // The self-copy (score |alpha|: the diagonal is 1) is removed from score and coverage, as in Mueller's normalisation.
  f.copies = 1 + family.copies;
  if (f.copies > 1) {
    f.score = std::clamp(family.score / (static_cast<double>(f.copies) * length - length), 0.0, 1.0);
    f.coverage = static_cast<double>(f.copies - 1) * length / n;
  }
  if (f.score + f.coverage > 0) f.fitness = 2 * f.score * f.coverage / (f.score + f.coverage);
  return f;
}

}  // namespace

SegmentFitness ComputeSegmentFitness(const Ssm& ssm, int start, int length, double scape_threshold) {
  if (length < 1 || start < 0 || start + length > ssm.n) return {};
  DiagonalSums sums(ssm, scape_threshold);
  ScapeScratch scratch;
  return FitnessFromSums(sums, ssm.n, start, length, &scratch);
}

std::vector<std::vector<double>> FitnessScape(const Ssm& ssm, int max_length, double scape_threshold) {
  std::vector<std::vector<double>> scape;
  if (ssm.n == 0) return scape;
  DiagonalSums sums(ssm, scape_threshold);
  ScapeScratch scratch;
  for (int len = 1; len <= std::min(max_length, ssm.n); ++len) {
    std::vector<double> row;
    for (int s = 0; s + len <= ssm.n; ++s) row.push_back(FitnessFromSums(sums, ssm.n, s, len, &scratch).fitness);
    scape.push_back(std::move(row));
  }
  return scape;
}

StructureScores ScoreStructure(const Ssm& ssm, const StructureOptions& options) {
  StructureScores r;
  const int n = ssm.n;
  r.segments = n;
  if (n < 2) {
    r.mean_similarity = r.repetition = r.variation = kNaN;
  } else {
    double sum = 0;
    int64_t pairs = 0, repeats = 0, variations = 0;
    for (int i = 0; i < n; ++i) {
      for (int j = i + 1; j < n; ++j) {
        const double s = ssm.at(i, j);
        sum += s;
        ++pairs;
        if (s >= options.repetition_threshold) {
          ++repeats;
        } else if (s >= options.variation_low) {
          ++variations;
        }
      }
    }
    r.mean_similarity = sum / pairs;
    r.repetition = static_cast<double>(repeats) / pairs;
    r.variation = static_cast<double>(variations) / pairs;
  }
  double best = -1;
  for (int k = 1; k <= std::min(options.max_lag, n - 1); ++k) {
    int hits = 0;
    for (int i = 0; i + k < n; ++i) hits += ssm.at(i, i + k) >= options.repetition_threshold;
    const double share = static_cast<double>(hits) / (n - k);
    r.repetition_by_lag.push_back(share);
    if (share > best) {
      best = share;
      r.best_lag = k;
    }
  }
  r.structureness = kNaN;
  if (n == 0) {
    r.si.assign(options.si_ranges.size(), kNaN);
    return r;
  }
  DiagonalSums sums(ssm, options.scape_threshold);
  ScapeScratch scratch;
  std::vector<double> by_length(n + 1, kNaN);  // max fitness over starts, per length, computed on demand
  for (const auto& [lo, hi] : options.si_ranges) {
    double m = kNaN;
    for (int len = std::max(1, lo); len <= std::min(hi, n); len += std::max(1, options.si_length_step)) {
      if (std::isnan(by_length[len])) {
        double f = 0;
        for (int s = 0; s + len <= n; ++s) f = std::max(f, FitnessFromSums(sums, n, s, len, &scratch).fitness);
        by_length[len] = f;
      }
      m = std::isnan(m) ? by_length[len] : std::max(m, by_length[len]);
    }
    r.si.push_back(m);
    if (!std::isnan(m)) r.structureness = std::isnan(r.structureness) ? m : std::max(r.structureness, m);
  }
  return r;
}

}  // namespace cadenza
