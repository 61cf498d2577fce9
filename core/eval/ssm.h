// Structure: segment embeddings, the self-similarity matrix (SSM), repetition/variation scores and a fitness-scape structureness.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/eval/piece.h"
#include "core/segmentation.h"
#include "core/status.h"

namespace cadenza {

enum class SegmentUnit { kBar, kBeat };

// One row per segment. Any producer works: SegmentEmbeddings below, or a model's hidden states (one row per bar/beat).
using Embeddings = std::vector<std::vector<float>>;

constexpr int kPitchClassDims = 12;
constexpr int kRhythmDims = 48;  // onset positions of a segment, resampled to 48 bins (1 bin = 1 grid step in a 4/4 bar)
constexpr int kEmbeddingDims = kPitchClassDims + kRhythmDims;

// [start, end) in grid steps of every segment: bars, or the beats of every bar in order.
std::vector<std::pair<int64_t, int64_t>> SegmentSpans(const EvalPiece& piece, SegmentUnit unit);
// Index of the first segment of every bar (0,1,2,.. for bars; cumulative beat counts for beats): the SSM's bar grid.
std::vector<int> BarGridOfSegments(const EvalPiece& piece, SegmentUnit unit);

// Row i = [pitch-class histogram weighted by sounding duration inside segment i (drums excluded), L2-normalised] / sqrt(2)
//       ++ [binary onset vector over kRhythmDims positions of the segment (all notes), L2-normalised] / sqrt(2).
// An empty segment gives the zero row. For non-zero parts, cos(e_i, e_j) = (cos_pitch + cos_rhythm) / 2.
Embeddings SegmentEmbeddings(const EvalPiece& piece, SegmentUnit unit);

// Segment embeddings from per-token vectors (e.g. a model's hidden states, one row per token of the sequence that
// `segmentation` was computed from): the mean of the rows in each bar's (BarRange) or beat's (BeatRange) token range.
// A segment without tokens (an empty beat) gets a zero row. Errors: row count != segmentation.num_tokens, ragged rows.
// The rows line up with the segments of PieceFromTokens(tokens), ready for EvaluatePieceWithEmbeddings.
StatusOr<Embeddings> PoolTokenEmbeddings(const Embeddings& per_token, const Segmentation& segmentation, SegmentUnit unit);

// Cosine similarity with a defined value for zero vectors: both zero -> 1 (two silent segments are the same),
// exactly one zero -> 0.
double Cosine(const float* a, const float* b, size_t dims);

// Symmetric n x n matrix, row-major.
struct Ssm {
  int n = 0;
  std::vector<float> values;
  float at(int i, int j) const { return values[static_cast<size_t>(i) * n + j]; }
};

// S(i,j) = Cosine(e_i, e_j). Error when rows differ in length or contain a non-finite value (names the row).
StatusOr<Ssm> SelfSimilarity(const Embeddings& embeddings);

struct StructureOptions {
  double repetition_threshold = 0.9;  // a pair (i,j) "repeats" when S(i,j) >= this
  double variation_low = 0.5;         // a pair is a "variation" when variation_low <= S(i,j) < repetition_threshold
  double scape_threshold = 0.8;       // SSM cells below it cost -2 in the fitness path family (Mueller-style)
  int max_lag = 32;                   // repetition_by_lag is reported for lags 1..max_lag
  // Segment-length ranges [lo, hi] (in segments) of the structureness indicators SI_lo^hi.
  std::vector<std::pair<int, int>> si_ranges = {{2, 4}, {4, 8}, {8, 16}};
  int si_length_step = 1;  // lengths lo, lo + step, ... <= hi (cadenza evaluate --segment beat: 4, whole bars of 4/4)
};

struct StructureScores {
  int segments = 0;
  double mean_similarity = 0;   // mean S(i,j) over pairs i < j (NaN if fewer than 2 segments)
  double repetition = 0;        // share of pairs i < j with S >= repetition_threshold
  double variation = 0;         // share of pairs i < j with variation_low <= S < repetition_threshold
  std::vector<double> repetition_by_lag;  // [k-1] = share of i with S(i, i+k) >= threshold, k = 1..min(max_lag, n-1)
  int best_lag = 0;             // lag with the highest repetition_by_lag (0 if none)
  std::vector<double> si;       // per si_ranges: max fitness over segments with length in the range (NaN if none fits)
  double structureness = 0;     // max of si (NaN if none)
};

// Fitness of the segment [start, start + length) after Mueller's audio thumbnailing, restricted to diagonal paths
// (symbolic bars need no tempo warping): the best family of non-overlapping diagonal copies of the segment, score and
// coverage normalised without the trivial self-copy, fitness = their harmonic mean.
struct SegmentFitness {
  int copies = 0;         // paths in the family, the segment itself included
  double score = 0;       // normalised score in [0,1]
  double coverage = 0;    // normalised coverage in [0,1)
  double fitness = 0;
};
SegmentFitness ComputeSegmentFitness(const Ssm& ssm, int start, int length, double scape_threshold);
// Fitness scape: [length-1][start] for lengths 1..max_length (start + length <= n).
std::vector<std::vector<double>> FitnessScape(const Ssm& ssm, int max_length, double scape_threshold);

StructureScores ScoreStructure(const Ssm& ssm, const StructureOptions& options);

}  // namespace cadenza
