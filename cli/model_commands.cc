// Model commands (in cadenza-model): train from an experiment file (RunTraining), sample MIDI/WAV from a checkpoint
// (WriteSample), count parameters, probe, score, evaluate with a model.
#include "cli/model_commands.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>

#include "cli/fail.h"
#include "core/eval/ssm.h"
#include "core/experiment_config.h"
#include "core/file_util.h"
#include "core/midi.h"
#include "core/model/model_api.h"
#include "core/threads.h"
#include "core/model/probe.h"
#include "core/config_overrides.h"
#include "core/model/trainer.h"
#include "core/run_layout.h"
#include "core/segmentation.h"
#include "core/tokenizer.h"
#include "worker/task_runners.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop.store(true); }

}  // namespace

int RunTrain(const TrainArgs& a) {
  auto config = LoadExperimentConfig(a.experiment);
  if (!config.ok()) return Fail(config.status());
  if (!a.overrides.empty()) {
    auto text = ApplyOverrides(config->ToYaml(), a.overrides);
    if (!text.ok()) return Fail(text.status());
    config = ParseExperimentConfig(*text, a.experiment + " (with overrides)");
    if (!config.ok()) return Fail(config.status());
  }
  if (a.threads >= 0) config->train.threads = a.threads;

  // Slurm sends SIGTERM before a time limit or preemption: checkpoint and stop so `--resume` continues exactly.
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  TrainOptions o;
  o.resume = a.resume;
  o.progress = !a.quiet;
  o.stop_after_steps = a.stop_after;
  o.stop_requested = &g_stop;
  auto run = RunTraining(*config, /*sync=*/nullptr, /*on_progress=*/nullptr, o, a.experiment);
  if (!run.ok()) return Fail(run.status());
  const TrainSummary& s = run->summary;
  std::printf("run            %s (%s, %lld parameters)\n", config->out.c_str(), config->model.family.c_str(),
              (long long)s.parameters);
  std::printf("steps          %lld of %lld%s\n", (long long)s.steps, (long long)run->config.train.steps,
              s.early_stopped ? " (early stop)" : s.interrupted ? " (stopped: resume with --resume)" : "");
  std::printf("train loss     %.4f\n", s.last_train_loss);
  std::printf("val            best NLL/token %.4f, perplexity %.2f, NLL/bar %.2f\n", s.best_val_nll,
              s.best_val_perplexity, s.best_val_nll_per_bar);
  if (!s.sample_metrics.empty()) {
    std::printf("samples        ");
    for (const auto& [name, value] : s.sample_metrics) std::printf("%s %.3f  ", name.substr(7).c_str(), value);
    std::printf("(at the last validation)\n");
  }
  std::printf("speed          %.0f tokens/s over %.1f s\n", s.tokens_per_second, s.seconds);
  std::printf("checkpoint     %s\n", s.checkpoint.c_str());
  std::printf("metrics        %s, metrics.jsonl, tensorboard/ (tensorboard --logdir %s)\n",
              run_layout::MetricsCsv(config->out).c_str(), run_layout::TensorboardDir(config->out).c_str());
  return 0;
}

namespace {

// The first `bars` bars of a MIDI file as tokens (BOS included, EOS not): a primer to continue.
StatusOr<std::vector<int32_t>> PrimerTokens(const std::string& path, int64_t bars) {
  auto score = ReadMidiFile(path);
  if (!score.ok()) return score.status();
  auto enc = Tokenizer().Encode(*score);
  if (!enc.ok()) return enc.status().WithContext(path);
  const auto& seg = enc->segmentation;
  const int64_t end = bars < static_cast<int64_t>(seg.bars.size()) ? seg.bars[bars].token_offset
                                                                     : static_cast<int64_t>(enc->tokens.size()) - 1;
  return std::vector<int32_t>(enc->tokens.begin(), enc->tokens.begin() + end);
}

}  // namespace

int RunGenerate(GenerateArgs a) {
  // A short burst of small parallel regions: a second thread on a core another process keeps busy slows every token.
  const int threads = a.threads > 0 ? a.threads : ThreadsBesideOthers();
  SetTorchThreads(threads);
  if (!a.primer.empty()) {
    auto primer = PrimerTokens(a.primer, a.primer_bars);
    if (!primer.ok()) return Fail(primer.status());
    a.o.primer = std::move(*primer);
  }
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) return Fail(IoError(a.out + ": cannot create: " + ec.message()));
  CheckpointInfo info;
  auto samples = GenerateFromCheckpoint(a.checkpoint, a.o, &info);
  if (!samples.ok()) return Fail(samples.status());
  std::printf("model          %s, %lld parameters, trained %lld steps\n", info.config.model.family.c_str(),
              (long long)info.parameters, (long long)info.step);
  int64_t total_new = 0;
  double seconds = 0;
  for (size_t i = 0; i < samples->size(); ++i) {
    const GeneratedSample& g = (*samples)[i];
    char stem[32];
    std::snprintf(stem, sizeof stem, "sample-%03zu", i);
    const fs::path base = fs::path(a.out) / stem;
    SampleRecord record;  // the generate task's writer; the primer (a MIDI file's bars) stays in the sample
    record.checkpoint = a.checkpoint;
    record.tokens = g.tokens;
    record.primer_tokens = a.o.primer.size();
    record.seed = a.o.seed;
    record.temperature = a.o.temperature;
    record.top_k = a.o.top_k;
    record.top_p = a.o.top_p;
    auto written = WriteSample(base.string(), record, a.wav, a.soundfont);
    if (!written.ok()) return Fail(written.status());
    std::printf("%s  %lld new tokens, %zu bars, %zu notes, %.1f s of music -> %s.mid%s\n", stem, (long long)g.new_tokens,
                written->bars, written->notes, written->seconds, base.string().c_str(), a.wav ? " (+ .wav)" : "");
    total_new += g.new_tokens;
    seconds = g.seconds;
  }
  std::printf("generated %lld tokens in %.2f s (%.0f tokens/s, batch of %zu, %d thread%s)\n", (long long)total_new, seconds,
              total_new / std::max(1e-9, seconds), samples->size(), threads, threads == 1 ? "" : "s");
  return 0;
}

int RunParams(const std::vector<std::string>& files) {
  for (const std::string& f : files) {
    auto m = LoadModelConfig(f);
    if (!m.ok()) return Fail(m.status());
    auto n = CountParameters(*m);
    if (!n.ok()) return Fail(n.status());
    const std::string shape = m->is_rnn() ? m->family + " " + std::to_string(m->layers) + "x" + std::to_string(m->hidden) +
                                                " attention=" + m->attention
                                          : "transformer " + std::to_string(m->layers) + " layers d_model=" +
                                                std::to_string(m->d_model) + " heads=" + std::to_string(m->heads);
    std::printf("%-40s %12lld parameters  (%s)\n", f.c_str(), (long long)*n, shape.c_str());
  }
  return 0;
}

int RunProbe(const ProbeArgs& a) {
  SetTorchThreads(a.threads);
  ProbeOptions o;
  o.lengths = a.lengths;
  o.batch = a.batch;
  o.warmup = a.warmup;
  o.repeats = a.repeats;
  o.seed = a.seed;
  std::vector<std::string> sources = a.checkpoints;
  sources.insert(sources.end(), a.models.begin(), a.models.end());
  std::vector<ProbeRow> rows;
  for (const std::string& source : sources) {
    auto probed = ProbeModel(source, o, [&](const ProbeRow& r, size_t done, size_t total) {
      if (a.quiet) return;
      std::fprintf(stderr, "probe: %s (%s) length %lld [%zu/%zu]: forward %.2f ms, step %.3f ms, peak %.1f MiB%s%s\n",
                   source.c_str(), r.family.c_str(), static_cast<long long>(r.length), done, total, r.forward_ms,
                   r.step_ms, r.forward_peak_mb, r.note.empty() ? "" : "; ", r.note.c_str());
    });
    if (!probed.ok()) return Fail(probed.status());
    rows.insert(rows.end(), probed->begin(), probed->end());
  }
  Status s = WriteFileAtomic(a.out, ProbeCsv(rows));
  if (!s.ok()) return Fail(s);
  std::printf("%-12s %7s %11s %11s %10s %12s %10s\n", "family", "length", "forward ms", "tokens/s", "step ms",
              "fwd peak MiB", "state MiB");
  for (const ProbeRow& r : rows) {
    std::printf("%-12s %7lld %11.2f %11.0f %10.3f %12.1f %10.2f%s%s\n", r.family.c_str(),
                static_cast<long long>(r.length), r.forward_ms, r.forward_tokens_per_s, r.step_ms, r.forward_peak_mb,
                r.state_mb, r.note.empty() ? "" : "  ", r.note.c_str());
  }
  std::printf("probe: %zu rows -> %s\n", rows.size(), a.out.c_str());
  return 0;
}

int RunScore(const ScoreArgs& a) {
  SetTorchThreads(a.threads);
  ExperimentConfig config;
  config.dataset = a.dataset;
  config.score.splits = a.splits;
  config.score.on.clear();
  config.score.windows = a.windows;
  auto scored = RunScoreTask(a.checkpoint, config, a.out);
  if (!scored.ok()) return Fail(scored.status());
  const auto& m = scored->metrics;
  std::printf("%-6s %7s %8s %10s %8s %10s %10s %9s\n", "split", "pieces", "windows", "tokens", "bars", "NLL/token",
              "perplexity", "NLL/bar");
  for (const std::string& split : a.splits) {
    if (!m.count(split + "/nll_per_token")) {
      std::printf("%-6s (no window of the checkpoint's seq_len + 1 tokens: not scored)\n", split.c_str());
      continue;
    }
    std::printf("%-6s %7.0f %8.0f %10.0f %8.0f %10.4f %10.2f %9.3f\n", split.c_str(), m.at(split + "/pieces"),
                m.at(split + "/windows"), m.at(split + "/tokens"), m.at(split + "/bars"), m.at(split + "/nll_per_token"),
                m.at(split + "/perplexity"), m.at(split + "/nll_per_bar"));
  }
  std::printf("score: %s on %s%s%s\n", a.checkpoint.c_str(), a.dataset.c_str(), a.out.empty() ? "" : " -> ",
              a.out.c_str());
  return 0;
}

int RunEvaluateWithModel(const EvaluateArgs& in) {
  EvaluateArgs a = in;
  if (a.checkpoint.empty()) return RunEvaluate(a);
  auto opened = HiddenStateReader::Open(a.checkpoint);
  if (!opened.ok()) return Fail(opened.status());
  std::shared_ptr<HiddenStateReader> reader(std::move(opened).value());
  auto model_lock = std::make_shared<std::mutex>();  // one forward at a time; LibTorch parallelises inside it
  const SegmentUnit unit = a.segment == "beat" ? SegmentUnit::kBeat : SegmentUnit::kBar;
  a.request.segment_embeddings = [reader, model_lock, unit](const std::vector<int32_t>& tokens) -> StatusOr<Embeddings> {
    auto segmentation = Segment(tokens);
    if (!segmentation.ok()) return segmentation.status();
    StatusOr<Embeddings> per_token = Embeddings();
    {
      std::lock_guard<std::mutex> hold(*model_lock);
      per_token = reader->PerToken(tokens);
    }
    if (!per_token.ok()) return per_token.status();
    return PoolTokenEmbeddings(*per_token, *segmentation, unit);
  };
  const CheckpointInfo& info = reader->info();
  a.request.embeddings_source = "hidden states of " + a.checkpoint + " (" + info.config.model.family + ", step " +
                                std::to_string(info.step) + ")";
  return RunEvaluate(a);
}

}  // namespace cadenza
