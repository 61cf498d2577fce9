// Generate, evaluate and aggregate tasks of the worker agent: samples as MIDI/JSON(/WAV), evaluation reports.
#include "worker/task_runners.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/audio.h"
#include "core/eval/evaluate.h"
#include "core/file_util.h"
#include "core/midi.h"
#include "core/model/model_api.h"
#include "core/segmentation.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

// Scalar features: the set's mean and the mgeval overlap against the reference (when there is one).
void AddReportMetrics(const EvaluationReport& r, TaskOutcome* out) {
  out->metrics["pieces"] = double(r.pieces.size());
  out->metrics["skipped"] = double(r.skipped.size());
  out->metrics["seconds"] = r.seconds;
  const auto& names = FeatureNames();
  for (size_t f = 0; f < names.size(); ++f) {
    double sum = 0;
    int n = 0;
    bool scalar = true;
    for (const PieceMetrics& p : r.pieces) {
      const auto values = FeatureValues(p);
      if (f >= values.size() || values[f].size() != 1) {
        scalar = false;
        break;
      }
      if (std::isfinite(values[f][0])) {
        sum += values[f][0];
        ++n;
      }
    }
    if (!scalar || n == 0) continue;
    out->metrics[names[f] + "/mean"] = sum / n;
  }
  if (r.has_reference) {
    for (const FeatureComparison& c : r.comparisons) {
      if (std::isfinite(c.reference_vs_inter.overlap)) out->metrics[c.feature + "/overlap"] = c.reference_vs_inter.overlap;
    }
  }
}

StatusOr<EvaluationReport> Evaluate(const std::vector<std::string>& inputs, const std::string& dataset,
                                    const std::string& split, int jobs, std::string* note) {
  EvaluateRequest request;
  request.inputs = inputs;
  request.reference_dataset = dataset;
  request.split = split.empty() ? "test" : split;
  request.jobs = std::max(1, jobs);
  auto report = RunEvaluation(request);
  if (!report.ok() && !dataset.empty()) {  // e.g. a corpus too small for a test split (as `cadenza demo` does)
    *note = report.status().message() + " (evaluated without a reference)";
    request.reference_dataset.clear();
    report = RunEvaluation(request);
  }
  return report;
}

}  // namespace

StatusOr<TaskOutcome> RunGenerateTask(const std::string& checkpoint, const std::vector<uint64_t>& seeds, int first_index,
                                      const std::string& samples_dir, const SampleOptions& options) {
  if (seeds.empty()) return InvalidArgument("task.seeds: a generate task needs at least one seed");
  std::error_code ec;
  fs::create_directories(samples_dir, ec);
  if (ec) return IoError(samples_dir + ": cannot create: " + ec.message());
  const bool wav = options.wav && fs::exists(DefaultSoundfont());
  const Vocabulary& v = Vocabulary::Get();
  Tokenizer tok;
  TaskOutcome out;
  int64_t new_tokens = 0;
  double seconds = 0;
  for (size_t i = 0; i < seeds.size(); ++i) {
    GenerateOptions g;
    g.bars = options.bars;
    g.max_new_tokens = options.max_tokens;
    g.temperature = options.temperature;
    g.top_p = options.top_p;
    g.top_k = options.top_k;
    g.seed = seeds[i];
    g.count = 1;
    auto samples = GenerateFromCheckpoint(checkpoint, g);
    if (!samples.ok()) return samples.status();
    if (samples->empty()) return InternalError(checkpoint + ": generation returned no sample");
    const GeneratedSample& s = samples->front();
    char stem[32];
    std::snprintf(stem, sizeof stem, "sample-%03d", first_index + int(i));
    const std::string base = (fs::path(samples_dir) / stem).string();
    auto score = tok.Decode(s.tokens);
    if (!score.ok()) return InternalError(std::string(stem) + ": generated tokens do not decode: " + score.status().message());
    Status st = WriteMidiFile(*score, base + ".mid");
    if (!st.ok()) return st;
    auto seg = Segment(s.tokens);
    nlohmann::json j;
    j["checkpoint"] = checkpoint;
    j["tokens"] = s.tokens;
    std::vector<std::string> names;
    for (int32_t t : s.tokens) names.push_back(v.Name(t));
    j["token_names"] = names;
    j["primer_tokens"] = 0;
    j["bar_offsets"] = seg.ok() ? seg->BarTokenOffsets() : std::vector<int64_t>{};
    j["seed"] = seeds[i];
    j["temperature"] = options.temperature;
    j["top_k"] = options.top_k;
    j["top_p"] = options.top_p;
    if (!(st = WriteFileAtomic(base + ".json", j.dump(1) + "\n")).ok()) return st;
    out.artifacts.push_back(base + ".mid");
    out.artifacts.push_back(base + ".json");
    if (wav) {
      if (!(st = RenderWav(*score, base + ".wav")).ok()) return st;
      out.artifacts.push_back(base + ".wav");
    }
    new_tokens += s.new_tokens;
    seconds += s.seconds;
  }
  out.metrics["samples"] = double(seeds.size());
  out.metrics["new_tokens"] = double(new_tokens);
  out.metrics["generate_seconds"] = seconds;
  out.metrics["tokens_per_second"] = new_tokens / std::max(1e-9, seconds);
  out.metrics["ms_per_token"] = 1000.0 * seconds / std::max<int64_t>(1, new_tokens);
  char line[160];
  std::snprintf(line, sizeof line, "%zu samples, %lld tokens in %.2f s", seeds.size(), (long long)new_tokens, seconds);
  out.summary = line;
  return out;
}

StatusOr<TaskOutcome> RunEvaluateTask(const std::string& samples_dir, const std::string& dataset, const std::string& split,
                                      const std::string& report_path, int jobs) {
  std::string note;
  auto report = Evaluate({samples_dir}, dataset, split, jobs, &note);
  if (!report.ok()) return report.status();
  std::error_code ec;
  fs::create_directories(fs::path(report_path).parent_path(), ec);
  Status s = WriteFileAtomic(report_path, ReportJson(*report));
  if (!s.ok()) return s;
  TaskOutcome out;
  AddReportMetrics(*report, &out);
  out.artifacts.push_back(report_path);
  out.summary = std::to_string(report->pieces.size()) + " pieces evaluated" + (note.empty() ? "" : "; " + note);
  return out;
}

StatusOr<TaskOutcome> RunAggregateTask(const std::vector<std::string>& inputs, const std::string& samples_root,
                                       const std::string& dataset, const std::string& split,
                                       const std::string& result_path, int jobs) {
  for (const std::string& in : inputs) {
    if (!fs::exists(in)) return NotFound(in + ": the shard report is missing (inputs of the aggregate task)");
  }
  std::string note;
  auto report = Evaluate({samples_root}, dataset, split, jobs, &note);
  if (!report.ok()) return report.status();
  std::error_code ec;
  fs::create_directories(fs::path(result_path).parent_path(), ec);
  Status s = WriteFileAtomic(result_path, ReportJson(*report));
  if (!s.ok()) return s;
  TaskOutcome out;
  AddReportMetrics(*report, &out);
  out.metrics["shards"] = double(inputs.size());
  out.artifacts.push_back(result_path);
  out.summary = std::to_string(report->pieces.size()) + " pieces from " + std::to_string(inputs.size()) + " shard(s)" +
                (note.empty() ? "" : "; " + note);
  return out;
}

}  // namespace cadenza
