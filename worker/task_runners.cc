// The task runners: one training run for every way of training, the sample writer, and the agent's generate,
// evaluate, aggregate, score and probe tasks (samples, reports, CSV).
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
#include "core/model/probe.h"
#include "core/run_layout.h"
#include "core/segmentation.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"
#include "storage/dataset.h"
#include "storage/reference_pieces.h"
#include "storage/training_windows.h"
#include "core/hash.h"

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
                                    const std::string& split, int jobs, std::string* note, const std::string& ssm_png_dir = "") {
  EvaluateRequest request;
  request.inputs = inputs;
  request.ssm_png_dir = ssm_png_dir;
  request.jobs = std::max(1, jobs);
  const std::string split_name = split.empty() ? "test" : split;
  auto parsed = ParseSplit(split_name);  // a bad split fails the task, with or without a dataset
  if (!parsed.ok()) return InvalidArgument("--split: " + parsed.status().message());
  std::unique_ptr<ReferencePieces> reference;
  if (!dataset.empty()) {
    auto opened = OpenReferenceSplit(dataset, split_name);
    if (opened.ok()) {
      reference = std::move(opened).value();
      request.reference = reference.get();
    } else {  // e.g. a corpus too small for a test split (as `cadenza demo` does)
      *note = opened.status().message() + " (evaluated without a reference)";
    }
  }
  return RunEvaluation(request);
}

}  // namespace

StatusOr<TrainingRun> RunTraining(const ExperimentConfig& config, GradientSync* sync,
                                  std::function<void(const TrainStepProgress&)> on_progress, TrainOptions options,
                                  const std::string& source) {
  TrainingRun run;
  run.config = config;
  auto windows = OpenExperimentWindows(run.config, SyncRank(sync), SyncWorld(sync));
  if (!windows.ok()) {
    return !source.empty() && config.dataset.empty() ? windows.status().WithContext(source) : windows.status();
  }
  if (Status resolved = ResolveTrainSteps(&run.config, windows->train_tokens); !resolved.ok()) {  // train.epochs
    return source.empty() ? resolved : resolved.WithContext(source);
  }
  run.train_pieces = windows->train_pieces;
  run.train_tokens = windows->train_tokens;
  options.sync = sync;
  options.on_progress = std::move(on_progress);
  options.dataset_manifest_sha256 = windows->manifest_sha256;
  auto summary = Train(run.config, *windows->train, *windows->val, options);  // LibTorch's exceptions are Statuses
  if (!summary.ok()) return summary.status();
  run.summary = std::move(summary).value();
  return run;
}

void AddTrainDataMetrics(int64_t train_pieces, int64_t train_tokens, const ExperimentConfig& config, int64_t steps,
                         std::map<std::string, double>* metrics) {
  (*metrics)["data/train_pieces"] = double(train_pieces);
  (*metrics)["data/train_tokens"] = double(train_tokens);
  (*metrics)["data/fraction"] = config.train.data_fraction;
  (*metrics)["train/steps"] = double(steps);
  (*metrics)["train/tokens_seen"] = double(steps) * double(config.train.batch_size) * double(config.train.seq_len);
}

SampleOptions SampleOptionsFor(const std::string& experiment_yaml, const SampleOptions& fallback, std::string* note) {
  auto config = ParseExperimentConfig(experiment_yaml, "experiment_yaml");
  if (!config.ok()) {
    if (note) *note = config.status().message() + " (sampling with the worker's flags)";
    return fallback;
  }
  SampleOptions o = fallback;
  o.temperature = config->generate.temperature;
  o.top_k = config->generate.top_k;
  o.top_p = config->generate.top_p;
  o.bars = config->generate.bars;
  o.max_tokens = config->generate.max_tokens;
  o.primer_split = config->generate.primer_split;
  o.primer_bars = config->generate.primer_bars;
  o.keep_primer = config->generate.keep_primer;
  o.dataset = config->dataset;
  return o;
}

namespace {

// Where primers come from: the pieces of one split with more than `bars` bars, in manifest order.
struct PrimerSource {
  std::unique_ptr<Dataset> dataset;
  std::vector<int64_t> pieces;
};

StatusOr<PrimerSource> OpenPrimers(const SampleOptions& o) {
  if (o.dataset.empty()) return InvalidArgument("generate.primer_split: the experiment names no dataset to take primers from");
  auto split = ParseSplit(o.primer_split);
  if (!split.ok()) return InvalidArgument("generate.primer_split: " + split.status().message());
  PrimerSource p;
  auto opened = Dataset::Open(o.dataset);
  if (!opened.ok()) return opened.status().WithContext("generate.primer_split");
  p.dataset = std::move(opened).value();
  for (int64_t i : p.dataset->PiecesInSplit(*split)) {
    if (p.dataset->manifest().pieces[i].bars > o.primer_bars) p.pieces.push_back(i);
  }
  if (p.pieces.empty()) {
    return FailedPrecondition(o.dataset + ": no piece of the " + o.primer_split + " split has more than " +
                              std::to_string(o.primer_bars) + " bars (generate.primer_bars)");
  }
  return p;
}

// A seed's primer: BOS and the first primer_bars bars of the piece the seed picks (splitmix64 of the seed).
StatusOr<std::vector<int32_t>> PrimerOf(const PrimerSource& p, int64_t bars, uint64_t seed, std::string* source) {
  const int64_t index = p.pieces[SplitMix64At(seed, 0) % p.pieces.size()];
  auto piece = p.dataset->ReadPiece(index);
  if (!piece.ok()) return piece.status();
  *source = p.dataset->manifest().pieces[index].source;
  if (static_cast<int64_t>(piece->bar_offsets.size()) <= bars) {
    return DataLoss(*source + ": fewer bars than its manifest entry says");
  }
  const int64_t end = piece->bar_offsets[bars];
  return std::vector<int32_t>(piece->tokens.begin(), piece->tokens.begin() + end);
}

// The continuation alone, as a piece of its own: BOS, then everything from the first Bar the model began (events
// it added to the primer's last bar belong to that bar and are left out with it).
std::vector<int32_t> ContinuationOnly(const std::vector<int32_t>& tokens, size_t primer_size) {
  const Vocabulary& v = Vocabulary::Get();
  size_t first = primer_size;
  while (first < tokens.size() && tokens[first] != v.Bar() && tokens[first] != v.Eos()) ++first;
  std::vector<int32_t> out{v.Bos()};
  out.insert(out.end(), tokens.begin() + std::min(first, tokens.size()), tokens.end());
  return out;
}

}  // namespace

StatusOr<WrittenSample> WriteSample(const std::string& base, const SampleRecord& sample, bool wav,
                                    const std::string& soundfont) {
  const std::string stem = fs::path(base).filename().string();
  const size_t primer_size = sample.primer_tokens;
  // What is written as MIDI and evaluated: the whole sample, or the continuation without the dataset's bars.
  const bool continuation = !sample.primer_split.empty() && primer_size > 0 && !sample.keep_primer;
  const std::vector<int32_t> music = continuation ? ContinuationOnly(sample.tokens, primer_size) : sample.tokens;
  auto score = Tokenizer().Decode(music);
  if (!score.ok()) return InternalError(stem + ": generated tokens do not decode: " + score.status().message());
  WrittenSample out;
  CADENZA_RETURN_IF_ERROR(WriteMidiFile(*score, base + ".mid"));
  out.files.push_back(base + ".mid");
  auto seg = Segment(music);
  const Vocabulary& v = Vocabulary::Get();
  nlohmann::json j;
  j["checkpoint"] = sample.checkpoint;
  j["tokens"] = sample.tokens;
  std::vector<std::string> names;
  for (int32_t t : sample.tokens) names.push_back(v.Name(t));
  j["token_names"] = names;
  j["primer_tokens"] = primer_size;  // tokens[0, primer_tokens) are the primer (BOS alone when unprimed)
  if (!sample.primer_split.empty() && primer_size > 0) {
    j["primer_split"] = sample.primer_split;
    j["primer_bars"] = sample.primer_bars;
    j["primer_piece"] = sample.primer_piece;
    j["keep_primer"] = sample.keep_primer;
    j["written_tokens"] = music;  // what the .mid holds and evaluation reads
  }
  j["bar_offsets"] = seg.ok() ? seg->BarTokenOffsets() : std::vector<int64_t>{};  // of the written tokens
  j["seed"] = sample.seed;
  j["temperature"] = sample.temperature;
  j["top_k"] = sample.top_k;
  j["top_p"] = sample.top_p;
  if (sample.bars >= 0) j["bars"] = sample.bars;
  if (sample.max_tokens >= 0) j["max_tokens"] = sample.max_tokens;
  CADENZA_RETURN_IF_ERROR(WriteFileAtomic(base + ".json", j.dump(1) + "\n"));
  out.files.push_back(base + ".json");
  if (wav) {
    AudioOptions ao;
    ao.soundfont = soundfont;
    CADENZA_RETURN_IF_ERROR(RenderWav(*score, base + ".wav", ao));
    out.files.push_back(base + ".wav");
  }
  out.bars = seg.ok() ? seg->bars.size() : 0;
  out.notes = score->notes.size();
  out.seconds = score->Seconds();
  return out;
}

StatusOr<TaskOutcome> RunGenerateTask(const std::string& checkpoint, const std::vector<uint64_t>& seeds, int first_index,
                                      const std::string& samples_dir, const SampleOptions& options) {
  if (seeds.empty()) return InvalidArgument("task.seeds: a generate task needs at least one seed");
  std::error_code ec;
  fs::create_directories(samples_dir, ec);
  if (ec) return IoError(samples_dir + ": cannot create: " + ec.message());
  const bool wav = options.wav && fs::exists(DefaultSoundfont());
  TaskOutcome out;
  int64_t new_tokens = 0;
  double seconds = 0;
  PrimerSource primers;
  if (!options.primer_split.empty()) {
    auto opened = OpenPrimers(options);
    if (!opened.ok()) return opened.status();
    primers = std::move(opened).value();
  }
  for (size_t i = 0; i < seeds.size(); ++i) {
    GenerateOptions g;
    std::string primer_source;
    if (primers.dataset) {
      auto primer = PrimerOf(primers, options.primer_bars, seeds[i], &primer_source);
      if (!primer.ok()) return primer.status();
      g.primer = std::move(*primer);
    }
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
    SampleRecord record;
    record.checkpoint = checkpoint;
    record.tokens = s.tokens;
    record.primer_tokens = g.primer.size();
    if (!g.primer.empty()) {
      record.primer_split = options.primer_split;
      record.primer_piece = primer_source;
      record.primer_bars = options.primer_bars;
      record.keep_primer = options.keep_primer;
    }
    record.seed = seeds[i];
    record.temperature = options.temperature;
    record.top_k = options.top_k;
    record.top_p = options.top_p;
    record.bars = options.bars;
    record.max_tokens = options.max_tokens;
    auto written = WriteSample((fs::path(samples_dir) / stem).string(), record, wav);
    if (!written.ok()) return written.status();
    out.artifacts.insert(out.artifacts.end(), written->files.begin(), written->files.end());
    new_tokens += s.new_tokens;
    seconds += s.seconds;
  }
  out.metrics["samples"] = double(seeds.size());
  out.metrics["new_tokens"] = double(new_tokens);
  out.metrics["generate_seconds"] = seconds;
  out.metrics["tokens_per_second"] = new_tokens / std::max(1e-9, seconds);
  out.metrics["ms_per_token"] = 1000.0 * seconds / std::max<int64_t>(1, new_tokens);
  out.metrics["generate/temperature"] = options.temperature;
  out.metrics["generate/top_k"] = double(options.top_k);
  out.metrics["generate/top_p"] = options.top_p;
  out.metrics["generate/bars"] = double(options.bars);
  out.metrics["generate/max_tokens"] = double(options.max_tokens);
  out.metrics["generate/primer_bars"] = primers.dataset ? double(options.primer_bars) : 0.0;  // 0: from BOS
  out.metrics["generate/keep_primer"] = options.keep_primer ? 1.0 : 0.0;
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
  // The samples' SSM heatmaps beside the result: `cadenza report` shows them next to the reference's.
  const std::string ssm_dir = run_layout::SsmDir(fs::path(result_path).parent_path().string());
  auto report = Evaluate({samples_root}, dataset, split, jobs, &note, ssm_dir);
  if (!report.ok()) return report.status();
  std::error_code ec;
  fs::create_directories(fs::path(result_path).parent_path(), ec);
  Status s = WriteFileAtomic(result_path, ReportJson(*report));
  if (!s.ok()) return s;
  TaskOutcome out;
  AddReportMetrics(*report, &out);
  out.metrics["shards"] = double(inputs.size());
  out.artifacts.push_back(result_path);
  for (size_t i = 0, listed = 0; i < report->pieces.size() && listed < 4; ++i) {  // a few, to keep result rows small
    if (!report->pieces[i].ssm_png.empty()) {
      out.artifacts.push_back(report->pieces[i].ssm_png);
      ++listed;
    }
  }
  out.summary = std::to_string(report->pieces.size()) + " pieces from " + std::to_string(inputs.size()) + " shard(s)" +
                (note.empty() ? "" : "; " + note);
  return out;
}

namespace {

// "corpora/jsb/" -> "jsb": the name of a dataset folder in metric names.
std::string FolderName(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

nlohmann::json ScoreJson(const std::string& name, const std::string& dataset, const std::string& split, int64_t pieces,
                         const ScoreResult& r) {
  return {{"name", name},       {"dataset", dataset},   {"split", split},
          {"pieces", pieces},   {"windows", r.windows}, {"tokens", r.tokens},
          {"bars", r.bars},     {"nll", r.nll},         {"nll_per_token", r.nll_per_token},
          {"perplexity", r.perplexity}, {"nll_per_bar", r.nll_per_bar}};
}

}  // namespace

StatusOr<TaskOutcome> RunScoreTask(const std::string& checkpoint, const ExperimentConfig& config,
                                   const std::string& report_path) {
  if (config.score.splits.empty() && config.score.on.empty()) {
    return InvalidArgument("score: score.splits and score.on are both empty: nothing to score");
  }
  auto scorer = CheckpointScorer::Open(checkpoint);
  if (!scorer.ok()) return scorer.status();
  const CheckpointInfo& info = (*scorer)->info();
  const int seq_len = info.config.train.seq_len;  // the windows the model was trained and validated on
  const int64_t batch = std::max(1, info.config.train.batch_size);
  const auto t0 = std::chrono::steady_clock::now();

  struct Target {
    std::string name, dataset;  // metric prefix; dataset folder
    Split split;
  };
  std::vector<Target> targets;
  for (const std::string& s : config.score.splits) {
    auto split = ParseSplit(s);
    if (!split.ok()) return InvalidArgument("score.splits: " + split.status().message());
    targets.push_back({s, config.dataset, *split});
  }
  for (const std::string& dir : config.score.on) targets.push_back({"on/" + FolderName(dir), dir, Split::kTest});

  TaskOutcome out;
  nlohmann::json results = nlohmann::json::array(), skipped = nlohmann::json::array();
  std::map<std::string, std::unique_ptr<Dataset>> open;
  std::string line;
  for (const Target& target : targets) {
    if (target.dataset.empty()) return InvalidArgument("dataset: missing (the folder written by `cadenza ingest`)");
    auto& dataset = open[target.dataset];
    if (!dataset) {
      auto opened = Dataset::Open(target.dataset, /*verify_checksums=*/true);  // scores only what ingest wrote
      if (!opened.ok()) return opened.status().WithContext(target.name.rfind("on/", 0) == 0 ? "score.on" : "dataset");
      dataset = std::move(*opened);
    }
    auto windows = OpenSplitWindows(*dataset, target.split, seq_len, config.score.windows == "tiled");
    if (!windows.ok() && windows.status().code() != StatusCode::kFailedPrecondition) return windows.status();
    if (!windows.ok()) {  // e.g. a corpus too small for a test split: say so, score the rest
      skipped.push_back({{"name", target.name}, {"dataset", target.dataset}, {"split", SplitName(target.split)},
                         {"reason", windows.status().message()}});
      continue;
    }
    auto scored = (*scorer)->Score(**windows, batch);
    if (!scored.ok()) return scored.status();
    const ScoreResult& r = *scored;
    const int64_t pieces = static_cast<int64_t>(dataset->PiecesInSplit(target.split).size());
    results.push_back(ScoreJson(target.name, target.dataset, SplitName(target.split), pieces, r));
    const std::string& p = target.name;
    out.metrics[p + "/nll_per_token"] = r.nll_per_token;
    out.metrics[p + "/nll_per_bar"] = r.nll_per_bar;
    out.metrics[p + "/perplexity"] = r.perplexity;
    out.metrics[p + "/tokens"] = double(r.tokens);
    out.metrics[p + "/bars"] = double(r.bars);
    out.metrics[p + "/pieces"] = double(pieces);
    out.metrics[p + "/windows"] = double(r.windows);
    char cell[160];
    std::snprintf(cell, sizeof cell, "%s%s NLL/token %.4f, NLL/bar %.2f", line.empty() ? "" : "; ", p.c_str(),
                  r.nll_per_token, r.nll_per_bar);
    line += cell;
  }
  if (results.empty()) {
    std::string why;
    for (const auto& s : skipped) why += (why.empty() ? "" : "; ") + s["reason"].get<std::string>();
    return FailedPrecondition("score: no split had a window of " + std::to_string(seq_len + 1) + " tokens to score: " + why);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json report = {{"checkpoint", checkpoint},
                           {"family", info.config.model.family},
                           {"parameters", info.parameters},
                           {"step", info.step},
                           {"seq_len", seq_len},
                           {"windows", config.score.windows},
                           {"seconds", seconds},
                           {"results", results},
                           {"skipped", skipped}};
  if (!report_path.empty()) {
    std::error_code ec;
    if (fs::path(report_path).has_parent_path()) fs::create_directories(fs::path(report_path).parent_path(), ec);
    Status st = WriteFileAtomic(report_path, report.dump(1) + "\n");
    if (!st.ok()) return st;
    out.artifacts.push_back(report_path);
  }
  out.metrics["score_seconds"] = seconds;
  out.summary = line + (skipped.empty() ? "" : " (" + std::to_string(skipped.size()) + " skipped: see the report)");
  return out;
}

StatusOr<TaskOutcome> RunProbeTask(const std::string& checkpoint, const ExperimentConfig& config, const std::string& csv_path) {
  if (config.probe.lengths.empty()) return InvalidArgument("probe.lengths: empty: the experiment asks for no probe");
  if (config.probe.batch_sizes.empty()) return InvalidArgument("probe.batch_sizes: empty");
  TaskOutcome out;
  std::vector<ProbeRow> rows;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t batch : config.probe.batch_sizes) {
    ProbeOptions o;
    o.lengths = config.probe.lengths;
    o.batch = batch;
    o.repeats = config.probe.repeats;
    auto probed = ProbeModel(checkpoint, o);
    if (!probed.ok()) return probed.status();
    for (const ProbeRow& r : *probed) {
      const std::string p = "probe/L" + std::to_string(r.length) + "/b" + std::to_string(r.batch) + "/";
      if (r.forward_measured) {  // a length beyond the context leaves its metrics absent
        out.metrics[p + "forward_ms"] = r.forward_ms;
        out.metrics[p + "forward_peak_mb"] = r.forward_peak_mb;
        if (r.length >= 2) out.metrics[p + "train_peak_mb"] = r.train_peak_mb;
      }
      if (r.step_measured) {
        out.metrics[p + "step_ms"] = r.step_ms;
        out.metrics[p + "state_mb"] = r.state_mb;
        out.metrics[p + "step_peak_mb"] = r.step_peak_mb;
      }
      rows.push_back(r);
    }
  }
  std::error_code ec;
  if (fs::path(csv_path).has_parent_path()) fs::create_directories(fs::path(csv_path).parent_path(), ec);
  Status st = WriteFileAtomic(csv_path, ProbeCsv(rows));
  if (!st.ok()) return st;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.metrics["probe_seconds"] = seconds;
  out.artifacts.push_back(csv_path);
  size_t measured = 0;
  for (const ProbeRow& r : rows) measured += r.forward_measured ? 1 : 0;
  char line[200];
  std::snprintf(line, sizeof line, "%zu of %zu (length, batch) points measured in %.1f s%s", measured, rows.size(), seconds,
                measured < rows.size() ? " (the rest exceed the model's context)" : "");
  out.summary = line;
  return out;
}

}  // namespace cadenza
