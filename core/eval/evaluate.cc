// Per-piece evaluation, parallel set evaluation (files and dataset splits), set comparison and the JSON report.
#include "core/eval/evaluate.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/eval/png.h"

namespace cadenza {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json Num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json NumArray(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(Num(x));
  return a;
}

const char* UnitName(SegmentUnit u) { return u == SegmentUnit::kBar ? "bar" : "beat"; }

StatusOr<PieceMetrics> Evaluate(const EvalPiece& piece, const Embeddings* external, const EvalOptions& options,
                                Ssm* ssm_out) {
  if (piece.notes.empty() || piece.bars.empty()) return InvalidArgument("empty piece: no notes");
  PieceMetrics m;
  m.bars = static_cast<int>(piece.bars.size());
  m.notes = static_cast<int>(piece.notes.size());
  const size_t segments = SegmentSpans(piece, options.unit).size();
  if (external && external->size() != segments) {
    return InvalidArgument("embeddings have " + std::to_string(external->size()) + " rows, the piece has " +
                           std::to_string(segments) + " " + UnitName(options.unit) + " segments");
  }
  m.segments = static_cast<int>(segments);
  m.melody = ComputeMelody(piece);
  m.rhythm = ComputeRhythm(piece);
  m.pitch_class_histogram = PitchClassHistogram(piece);
  m.note_length_histogram = NoteLengthHistogram(piece);
  if (static_cast<int64_t>(segments) > options.max_segments) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    m.structure.segments = m.segments;
    m.structure.mean_similarity = m.structure.repetition = m.structure.variation = m.structure.structureness = nan;
    m.structure.si.assign(options.structure.si_ranges.size(), nan);
    m.note = "structure not measured: " + std::to_string(segments) + " " + UnitName(options.unit) +
             " segments, more than the limit of " + std::to_string(options.max_segments);
    if (ssm_out) *ssm_out = Ssm{};
    return m;
  }
  Embeddings own;
  if (!external) own = SegmentEmbeddings(piece, options.unit);
  auto ssm = SelfSimilarity(external ? *external : own);
  if (!ssm.ok()) return ssm.status();
  m.structure = ScoreStructure(*ssm, options.structure);
  if (ssm_out) *ssm_out = std::move(ssm).value();
  return m;
}

// Feature table: name and how to read it from PieceMetrics.
struct FeatureDef {
  std::string name;
  std::function<FeatureValue(const PieceMetrics&)> get;
};

const std::vector<FeatureDef>& Features() {
  static const std::vector<FeatureDef> kFeatures = {
      {"avg_pitch_deviation", [](const PieceMetrics& m) { return FeatureValue{m.melody.avg_pitch_deviation}; }},
      {"pitch_range", [](const PieceMetrics& m) { return FeatureValue{m.melody.pitch_range}; }},
      {"n_pitches_used", [](const PieceMetrics& m) { return FeatureValue{m.melody.n_pitches_used}; }},
      {"pitch_class_entropy", [](const PieceMetrics& m) { return FeatureValue{m.melody.pitch_class_entropy}; }},
      {"scale_consistency", [](const PieceMetrics& m) { return FeatureValue{m.melody.scale_consistency}; }},
      {"syncopation", [](const PieceMetrics& m) { return FeatureValue{m.rhythm.syncopation}; }},
      {"wnbd", [](const PieceMetrics& m) { return FeatureValue{m.rhythm.wnbd}; }},
      {"on_beat_rate", [](const PieceMetrics& m) { return FeatureValue{m.rhythm.on_beat_rate}; }},
      {"on_grid_rate", [](const PieceMetrics& m) { return FeatureValue{m.rhythm.on_grid_rate}; }},
      {"empty_beat_rate", [](const PieceMetrics& m) { return FeatureValue{m.rhythm.empty_beat_rate}; }},
      {"groove_consistency", [](const PieceMetrics& m) { return FeatureValue{m.rhythm.groove_consistency}; }},
      {"mean_similarity", [](const PieceMetrics& m) { return FeatureValue{m.structure.mean_similarity}; }},
      {"repetition", [](const PieceMetrics& m) { return FeatureValue{m.structure.repetition}; }},
      {"variation", [](const PieceMetrics& m) { return FeatureValue{m.structure.variation}; }},
      {"structureness", [](const PieceMetrics& m) { return FeatureValue{m.structure.structureness}; }},
      {"pitch_class_histogram", [](const PieceMetrics& m) { return m.pitch_class_histogram; }},
      {"note_length_histogram", [](const PieceMetrics& m) { return m.note_length_histogram; }},
  };
  return kFeatures;
}

json SummaryJson(const Summary& s) {
  return {{"count", s.count}, {"mean", Num(s.mean)}, {"std", Num(s.std)}, {"min", Num(s.min)},
          {"max", Num(s.max)}, {"median", Num(s.median)}};
}

json ComparisonJson(const DistributionComparison& c) {
  return {{"overlap", Num(c.overlap)}, {"kl", Num(c.kl)}, {"overlap_tails", Num(c.overlap_tails)},
          {"kl_tails", Num(c.kl_tails)}, {"bandwidth_p", Num(c.bandwidth_p)},
          {"bandwidth_q", Num(c.bandwidth_q)}};
}

json PieceJson(const PieceMetrics& m) {
  const StructureScores& s = m.structure;
  json structure = {{"mean_similarity", Num(s.mean_similarity)}, {"repetition", Num(s.repetition)},
                    {"variation", Num(s.variation)}, {"repetition_by_lag", NumArray(s.repetition_by_lag)},
                    {"best_lag", s.best_lag}, {"si", NumArray(s.si)}, {"structureness", Num(s.structureness)}};
  const MelodyMetrics& me = m.melody;
  json melody = {{"melody_notes", me.melody_notes}, {"avg_pitch_deviation", Num(me.avg_pitch_deviation)},
                 {"pitch_range", Num(me.pitch_range)}, {"n_pitches_used", Num(me.n_pitches_used)},
                 {"pitch_class_entropy", Num(me.pitch_class_entropy)}, {"scale_consistency", Num(me.scale_consistency)}};
  const RhythmMetrics& r = m.rhythm;
  json rhythm = {{"onsets", r.onsets}, {"syncopation", Num(r.syncopation)}, {"syncopation_total", Num(r.syncopation_total)},
                 {"syncopation_per_onset", Num(r.syncopation_per_onset)}, {"wnbd", Num(r.wnbd)},
                 {"on_beat_rate", Num(r.on_beat_rate)}, {"on_grid_rate", Num(r.on_grid_rate)},
                 {"empty_beat_rate", Num(r.empty_beat_rate)}, {"groove_consistency", Num(r.groove_consistency)}};
  json j = {{"name", m.name}, {"bars", m.bars}, {"segments", m.segments}, {"notes", m.notes},
            {"structure", structure}, {"melody", melody}, {"rhythm", rhythm},
            {"pitch_class_histogram", NumArray(m.pitch_class_histogram)},
            {"note_length_histogram", NumArray(m.note_length_histogram)}};
  if (!m.ssm_png.empty()) j["ssm_png"] = m.ssm_png;
  if (!m.note.empty()) j["note"] = m.note;
  return j;
}

// Set statistics of every scalar feature (vector features: per-bin mean).
json SetJson(const std::vector<PieceMetrics>& pieces) {
  json set = json::object();
  for (const FeatureDef& f : Features()) {
    std::vector<std::vector<double>> columns;
    for (const PieceMetrics& m : pieces) {
      const FeatureValue v = f.get(m);
      if (columns.size() < v.size()) columns.resize(v.size());
      for (size_t i = 0; i < v.size(); ++i) columns[i].push_back(v[i]);
    }
    if (columns.size() == 1) {
      set[f.name] = SummaryJson(Summarize(columns[0]));
    } else {
      json means = json::array();
      for (const auto& c : columns) means.push_back(Num(Summarize(c).mean));
      set[f.name] = {{"mean", means}};
    }
  }
  return set;
}

// A 10-bin histogram of a scalar feature in both sets, on common edges.
json HistogramJson(const std::vector<double>& a, const std::vector<double>& b) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto* v : {&a, &b}) {
    for (double x : *v) {
      if (std::isfinite(x)) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    }
  }
  if (!std::isfinite(lo)) return nullptr;
  if (hi <= lo) hi = lo + 1;
  constexpr int kBins = 10;
  json edges = json::array();
  for (int k = 0; k <= kBins; ++k) edges.push_back(lo + (hi - lo) * k / kBins);
  auto count = [&](const std::vector<double>& v) {
    std::vector<int> c(kBins, 0);
    for (double x : v) {
      if (std::isfinite(x)) c[std::min(kBins - 1, static_cast<int>((x - lo) / (hi - lo) * kBins))]++;
    }
    return c;
  };
  return {{"edges", edges}, {"generated", count(a)}, {"reference", count(b)}};
}

std::string LowerExtension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

// Runs fn(i) for i in [0, n) on `jobs` threads; prints "label: done/n" on stderr at most twice a second if asked.
void ParallelFor(int64_t n, int jobs, bool progress, const std::string& label, const std::function<void(int64_t)>& fn) {
  std::atomic<int64_t> next{0}, done{0};
  auto worker = [&]() {
    for (int64_t i; (i = next.fetch_add(1)) < n;) {
      fn(i);
      done.fetch_add(1);
    }
  };
  std::vector<std::thread> threads;
  const int t = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(jobs, n)));
  for (int k = 0; k < t; ++k) threads.emplace_back(worker);
  if (progress) {
    while (done.load() < n) {
      std::fprintf(stderr, "\r%s: %lld/%lld", label.c_str(), static_cast<long long>(done.load()), static_cast<long long>(n));
      std::fflush(stderr);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    std::fprintf(stderr, "\r%s: %lld/%lld\n", label.c_str(), static_cast<long long>(n), static_cast<long long>(n));
  }
  for (auto& th : threads) th.join();
}

std::string PngName(size_t index, const std::string& input) {
  std::string stem = fs::path(input).stem().string();
  for (char& c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "%05zu-", index);
  return prefix + stem + ".png";
}

}  // namespace

StatusOr<PieceMetrics> EvaluatePiece(const EvalPiece& piece, const EvalOptions& options, Ssm* ssm_out) {
  return Evaluate(piece, nullptr, options, ssm_out);
}

StatusOr<PieceMetrics> EvaluatePieceWithEmbeddings(const EvalPiece& piece, const Embeddings& embeddings,
                                                   const EvalOptions& options, Ssm* ssm_out) {
  return Evaluate(piece, &embeddings, options, ssm_out);
}

const std::vector<std::string>& FeatureNames() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> n;
    for (const FeatureDef& f : Features()) n.push_back(f.name);
    return n;
  }();
  return kNames;
}

std::vector<FeatureValue> FeatureValues(const PieceMetrics& metrics) {
  std::vector<FeatureValue> v;
  for (const FeatureDef& f : Features()) v.push_back(f.get(metrics));
  return v;
}

void CompareSets(EvaluationReport* report) {
  report->has_reference = true;
  report->comparisons.clear();
  const auto& features = Features();
  std::vector<std::vector<FeatureValue>> gen(features.size()), ref(features.size());
  for (const PieceMetrics& m : report->pieces) {
    for (size_t f = 0; f < features.size(); ++f) gen[f].push_back(features[f].get(m));
  }
  for (const PieceMetrics& m : report->reference) {
    for (size_t f = 0; f < features.size(); ++f) ref[f].push_back(features[f].get(m));
  }
  for (size_t f = 0; f < features.size(); ++f) report->comparisons.push_back(CompareFeature(features[f].name, gen[f], ref[f]));
}

std::string ReportJson(const EvaluationReport& report) {
  const EvalOptions& o = report.options;
  json si_ranges = json::array();
  for (const auto& [lo, hi] : o.structure.si_ranges) si_ranges.push_back({lo, hi});
  json j;
  j["report"] = "cadenza evaluate";
  j["version"] = 1;
  j["options"] = {{"segment", UnitName(o.unit)},
                  {"repetition_threshold", o.structure.repetition_threshold},
                  {"variation_low", o.structure.variation_low},
                  {"scape_threshold", o.structure.scape_threshold},
                  {"max_lag", o.structure.max_lag},
                  {"max_segments", o.max_segments},
                  {"si_ranges", si_ranges},
                  {"si_length_step", o.structure.si_length_step},
                  {"embeddings", report.embeddings}};
  j["inputs"] = report.inputs;
  j["summary"] = {{"pieces", report.pieces.size()}, {"skipped", report.skipped.size()}, {"seconds", report.seconds}};
  json pieces = json::array();
  for (const PieceMetrics& m : report.pieces) pieces.push_back(PieceJson(m));
  j["pieces"] = pieces;
  json skipped = json::array();
  for (const SkippedInput& s : report.skipped) skipped.push_back({{"input", s.input}, {"reason", s.reason}});
  j["skipped"] = skipped;
  j["set"] = SetJson(report.pieces);
  if (report.has_reference) {
    json ref;
    ref["dataset"] = report.reference_dataset;
    ref["split"] = report.reference_split;
    ref["pieces"] = report.reference.size();
    json rs = json::array();
    for (const SkippedInput& s : report.reference_skipped) rs.push_back({{"input", s.input}, {"reason", s.reason}});
    ref["skipped"] = rs;
    ref["set"] = SetJson(report.reference);
    json comparison = json::object();
    const auto& features = Features();
    for (size_t f = 0; f < report.comparisons.size(); ++f) {
      const FeatureComparison& c = report.comparisons[f];
      json cj = {{"generated", c.generated},
                 {"reference", c.reference},
                 {"intra_generated", SummaryJson(c.intra_generated)},
                 {"intra_reference", SummaryJson(c.intra_reference)},
                 {"inter", SummaryJson(c.inter)},
                 {"reference_vs_inter", ComparisonJson(c.reference_vs_inter)},
                 {"generated_vs_inter", ComparisonJson(c.generated_vs_inter)},
                 {"generated_vs_reference", ComparisonJson(c.generated_vs_reference)}};
      if (f < features.size() && features[f].name == c.feature) {
        std::vector<double> a, b;
        for (const PieceMetrics& m : report.pieces) {
          const FeatureValue v = features[f].get(m);
          if (v.size() == 1) a.push_back(v[0]);
        }
        for (const PieceMetrics& m : report.reference) {
          const FeatureValue v = features[f].get(m);
          if (v.size() == 1) b.push_back(v[0]);
        }
        if (!a.empty() || !b.empty()) cj["histogram"] = HistogramJson(a, b);
      }
      comparison[c.feature] = cj;
    }
    ref["comparison"] = comparison;
    j["reference"] = ref;
  }
  return j.dump(2) + "\n";
}

std::string SideBySideTable(const std::vector<std::string>& names, const std::vector<EvaluationReport>& reports) {
  const EvaluationReport* with_ref = nullptr;
  for (const EvaluationReport& r : reports) {
    if (r.has_reference && !with_ref) with_ref = &r;
  }
  auto cell = [](double mean, double sd) {
    char buf[64];
    if (!std::isfinite(mean)) return std::string("-");
    std::snprintf(buf, sizeof buf, std::isfinite(sd) ? "%.3f ± %.3f" : "%.3f", mean, sd);
    return std::string(buf);
  };
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"metric"};
  for (size_t k = 0; k < reports.size(); ++k) header.push_back(k < names.size() ? names[k] : "set " + std::to_string(k));
  if (with_ref) {
    header.push_back("reference (" + with_ref->reference_split + ")");
    for (size_t k = 0; k < reports.size(); ++k) header.push_back("overlap " + header[k + 1]);
  }
  rows.push_back(header);
  const auto& features = Features();
  for (size_t f = 0; f < features.size(); ++f) {
    if (features[f].get(PieceMetrics{}).size() != 1) continue;  // scalar features only
    std::vector<std::string> row = {features[f].name};
    auto stats = [&](const std::vector<PieceMetrics>& pieces) {
      std::vector<double> v;
      for (const PieceMetrics& m : pieces) v.push_back(features[f].get(m)[0]);
      return Summarize(v);
    };
    for (const EvaluationReport& r : reports) {
      const Summary s = stats(r.pieces);
      row.push_back(cell(s.mean, s.std));
    }
    if (with_ref) {
      const Summary s = stats(with_ref->reference);
      row.push_back(cell(s.mean, s.std));
      for (const EvaluationReport& r : reports) {
        row.push_back(f < r.comparisons.size() ? cell(r.comparisons[f].reference_vs_inter.overlap, NAN) : "-");
      }
    }
    rows.push_back(row);
  }
  // Column widths in code points (the ± sign is two bytes, one column).
  auto width = [](const std::string& t) {
    size_t w = 0;
    for (unsigned char c : t) w += (c & 0xC0) != 0x80;
    return w;
  };
  std::vector<size_t> widths(header.size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], width(row[c]));
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      out += (c ? "  " : "") + row[c] + std::string(widths[c] - width(row[c]), ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
  }
  return out;
}

StatusOr<EvaluationReport> RunEvaluation(const EvaluateRequest& request) {
  const auto t0 = std::chrono::steady_clock::now();
  EvaluationReport report;
  report.options = request.options;
  report.inputs = request.inputs;
  if (request.segment_embeddings) {
    report.embeddings = request.embeddings_source.empty() ? "external" : request.embeddings_source;
  }
  // Metrics of one piece from its tokens, with the request's embeddings when it has them.
  auto measure_tokens = [&](const std::vector<int32_t>& tokens, Ssm* ssm, EvalPiece* piece_out) -> StatusOr<PieceMetrics> {
    auto piece = PieceFromTokens(tokens);
    if (!piece.ok()) return piece.status();
    if (piece_out) *piece_out = *piece;
    if (!request.segment_embeddings) return EvaluatePiece(*piece, request.options, ssm);
    auto embeddings = request.segment_embeddings(tokens);
    if (!embeddings.ok()) return embeddings.status().WithContext("segment embeddings");
    return EvaluatePieceWithEmbeddings(*piece, *embeddings, request.options, ssm);
  };

  // Check the reference before any work, so a bad one fails fast (OpenReferenceSplit refuses an empty split too).
  const ReferencePieces* reference = request.reference;
  if (reference) {
    if (reference->size() == 0) {
      return FailedPrecondition(reference->dataset() + ": the reference has no pieces in split \"" + reference->split() + "\"");
    }
    report.reference_dataset = reference->dataset();
    report.reference_split = reference->split();
  }
  if (!request.ssm_png_dir.empty()) {
    std::error_code ec;
    fs::create_directories(request.ssm_png_dir, ec);
    if (ec || !fs::is_directory(request.ssm_png_dir)) {
      return IoError(request.ssm_png_dir + ": cannot create the --ssm-png folder" + (ec ? ": " + ec.message() : ""));
    }
  }

  // Inputs: files as given, folders searched recursively; a missing path is skipped with its reason.
  std::vector<std::string> files;
  for (const std::string& input : request.inputs) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(input, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string ext = LowerExtension(it->path());
        if (it->is_regular_file(ec) && (ext == ".mid" || ext == ".midi")) found.push_back(it->path().string());
      }
      if (ec) report.skipped.push_back({input, "cannot list the folder: " + ec.message()});
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(input, ec)) {
      files.push_back(input);
    } else {
      report.skipped.push_back({input, "no such file or folder"});
    }
  }
  if (files.empty()) return NotFound("no MIDI files (.mid, .midi) found in the inputs");

  std::vector<StatusOr<PieceMetrics>> results(files.size(), StatusOr<PieceMetrics>(Status(StatusCode::kInternal, "not evaluated")));
  ParallelFor(static_cast<int64_t>(files.size()), request.jobs, request.progress, "evaluate", [&](int64_t i) {
    Ssm ssm;
    Ssm* ssm_out = request.ssm_png_dir.empty() ? nullptr : &ssm;
    StatusOr<EvalPiece> piece = EvalPiece();
    StatusOr<PieceMetrics> m = PieceMetrics();
    if (request.segment_embeddings) {  // the model reads tokens, so the piece comes from the same tokens
      auto tokens = ReadPieceTokens(files[i]);
      if (!tokens.ok()) {
        results[i] = tokens.status();
        return;
      }
      m = measure_tokens(*tokens, ssm_out, &*piece);
    } else {
      piece = ReadEvalPiece(files[i]);
      if (!piece.ok()) {
        results[i] = piece.status();
        return;
      }
      m = EvaluatePiece(*piece, request.options, ssm_out);
    }
    if (!m.ok()) {
      results[i] = m.status().WithContext(files[i]);
      return;
    }
    m->name = files[i];
    if (!request.ssm_png_dir.empty() && ssm.n > 0) {
      const std::string png = (fs::path(request.ssm_png_dir) / PngName(i, files[i])).string();
      Status s = WritePng(png, RenderSsm(ssm, BarGridOfSegments(*piece, request.options.unit)));
      if (s.ok()) m->ssm_png = png;
    }
    results[i] = std::move(m);
  });
  for (size_t i = 0; i < files.size(); ++i) {
    if (results[i].ok()) {
      report.pieces.push_back(std::move(results[i]).value());
    } else {
      report.skipped.push_back({files[i], results[i].status().message()});
    }
  }

  if (reference) {
    std::vector<StatusOr<PieceMetrics>> refs(reference->size(), StatusOr<PieceMetrics>(Status(StatusCode::kInternal, "not evaluated")));
    ParallelFor(static_cast<int64_t>(refs.size()), request.jobs, request.progress, "reference", [&](int64_t i) {
      const std::string source = reference->Name(i);
      auto tokens = reference->Tokens(i);
      if (!tokens.ok()) {
        refs[i] = tokens.status();
        return;
      }
      auto m = measure_tokens(*tokens, nullptr, nullptr);
      if (!m.ok()) {
        refs[i] = m.status().WithContext(source);
        return;
      }
      m->name = source;
      refs[i] = std::move(m);
    });
    for (size_t i = 0; i < refs.size(); ++i) {
      if (refs[i].ok()) {
        report.reference.push_back(std::move(refs[i]).value());
      } else {
        report.reference_skipped.push_back({reference->Name(i), refs[i].status().message()});
      }
    }
    CompareSets(&report);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace cadenza
