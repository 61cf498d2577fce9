// Evaluating pieces and sets: per-piece metrics, set statistics, comparison with a dataset split, the JSON report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/eval/compare.h"
#include "core/eval/metrics.h"
#include "core/eval/piece.h"
#include "core/eval/ssm.h"
#include "core/status.h"

namespace cadenza {

struct EvalOptions {
  SegmentUnit unit = SegmentUnit::kBar;
  StructureOptions structure;
  // Above this many segments the SSM (n^2 memory) is not built: structure scores are NaN and PieceMetrics::note
  // says why; melody and rhythm are still measured.
  int max_segments = 2048;
};

struct PieceMetrics {
  std::string name;  // the input path, or the dataset piece's source path
  int bars = 0, segments = 0, notes = 0;
  StructureScores structure;
  MelodyMetrics melody;
  RhythmMetrics rhythm;
  std::vector<double> pitch_class_histogram;  // 12, sums to 1
  std::vector<double> note_length_histogram;  // 12, sums to 1
  std::string ssm_png;                        // written heatmap, if any
  std::string note;                           // why something was not measured (empty if all was)
};

// Metrics of one piece with the built-in segment embeddings. An empty piece (no notes or no bars) is an error.
StatusOr<PieceMetrics> EvaluatePiece(const EvalPiece& piece, const EvalOptions& options, Ssm* ssm_out = nullptr);
// Same, but the structure scores use `embeddings` (one row per segment of options.unit, e.g. a model's hidden
// states): the row count must equal the number of segments.
StatusOr<PieceMetrics> EvaluatePieceWithEmbeddings(const EvalPiece& piece, const Embeddings& embeddings,
                                                   const EvalOptions& options, Ssm* ssm_out = nullptr);

// The features that set statistics and set comparisons use, in report order, and one piece's values of them
// (aligned with FeatureNames; scalars have size 1, the two histograms size 12; NaN where undefined).
const std::vector<std::string>& FeatureNames();
std::vector<FeatureValue> FeatureValues(const PieceMetrics& metrics);

struct SkippedInput {
  std::string input;
  std::string reason;
};

struct EvaluationReport {
  EvalOptions options;
  std::string embeddings = "built-in";  // or what EvaluateRequest::embeddings_source said
  std::vector<std::string> inputs;
  std::vector<PieceMetrics> pieces;
  std::vector<SkippedInput> skipped;
  bool has_reference = false;
  std::string reference_dataset, reference_split;
  std::vector<PieceMetrics> reference;
  std::vector<SkippedInput> reference_skipped;
  std::vector<FeatureComparison> comparisons;  // one per FeatureNames() entry when has_reference
  double seconds = 0;
};

// Fills comparisons (and has_reference) from pieces and reference.
void CompareSets(EvaluationReport* report);
// The report as JSON text (schema: docs/evaluation.md); NaN values are written as null.
std::string ReportJson(const EvaluationReport& report);

// A plain-text side-by-side table: one row per scalar feature; per report the set mean ± std, then the reference
// set's mean (from the first report that has one), then per report the mgeval overlap of intra(reference) with
// inter(generated, reference) (1 = indistinguishable from the reference's own spread).
std::string SideBySideTable(const std::vector<std::string>& names, const std::vector<EvaluationReport>& reports);

// The reference set an evaluation compares against, as token pieces (a dataset split). An interface so that core
// never reads a dataset: storage implements it (storage/reference_pieces.h: OpenReferenceSplit), tests fake it.
class ReferencePieces {
 public:
  virtual ~ReferencePieces() = default;
  // The report's reference.dataset and reference.split (docs/evaluation.md).
  virtual std::string dataset() const = 0;
  virtual std::string split() const = 0;
  virtual size_t size() const = 0;
  // Piece i's name in the report (a dataset piece's source path).
  virtual std::string Name(size_t i) const = 0;
  // Piece i's beat-level tokens. Thread-safe: RunEvaluation calls it from `jobs` threads at once.
  virtual StatusOr<std::vector<int32_t>> Tokens(size_t i) const = 0;
};

struct EvaluateRequest {
  std::vector<std::string> inputs;  // MIDI files and folders (searched recursively for .mid/.midi)
  const ReferencePieces* reference = nullptr;  // null: no reference; not owned, must outlive RunEvaluation
  std::string ssm_png_dir;          // empty: no heatmaps
  EvalOptions options;
  // Optional: segment embeddings computed from a piece's tokens (e.g. a model's hidden states pooled per bar or
  // beat with PoolTokenEmbeddings) replace the built-in ones in the structure scores, for inputs and reference
  // alike. Called from `jobs` threads at once. `embeddings_source` names them in the report.
  std::function<StatusOr<Embeddings>(const std::vector<int32_t>& tokens)> segment_embeddings;
  std::string embeddings_source;
  int jobs = 1;
  bool progress = false;            // a progress line on stderr
};

// Runs everything but writing the report. Fatal errors (returned): an empty reference, an uncreatable --ssm-png
// folder, no MIDI file found in the inputs (an unknown split or a bad dataset fails OpenReferenceSplit before). A
// bad input file (unreadable MIDI, empty piece) or reference piece is listed in report.skipped (reference_skipped)
// with its reason and the rest goes on.
StatusOr<EvaluationReport> RunEvaluation(const EvaluateRequest& request);

}  // namespace cadenza
