// The task runners: one training run (`cadenza train`, `cadenza-worker train` and the agent's train task), the
// sample writer (`cadenza generate` and the generate task), and the agent's per-rank generate, evaluate,
// aggregate, score and probe tasks (torch-free API; run folder paths from core/run_layout.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/experiment_config.h"
#include "core/model/trainer.h"
#include "core/status.h"

namespace cadenza {

// One training run as all three ways of training start it.
struct TrainingRun {
  ExperimentConfig config;   // as trained: train.steps resolved from train.epochs
  int64_t train_pieces = 0;  // pieces of the train.data_fraction subset, all ranks together (AddTrainDataMetrics)
  int64_t train_tokens = 0;  // their tokens
  TrainSummary summary;
};

// Opens this rank's train and val windows of config.dataset (the rank and world of `sync`; null: one process),
// resolves train.epochs into train.steps and trains (Train in core/model/trainer.h) with `options`, whose sync,
// on_progress and dataset hash are set here from the arguments and the dataset. Every error is a Status, LibTorch's
// included. `source` (the experiment file; "" for none) is added to the errors of a config without a dataset and
// of train.epochs, as the commands show them.
StatusOr<TrainingRun> RunTraining(const ExperimentConfig& config, GradientSync* sync,
                                  std::function<void(const TrainStepProgress&)> on_progress, TrainOptions options,
                                  const std::string& source = "");

// One generated sample as `cadenza generate` and the generate task write it.
struct SampleRecord {
  std::string checkpoint;
  std::vector<int32_t> tokens;  // as generated: the primer (BOS alone when unprimed) and what the model added
  size_t primer_tokens = 0;     // tokens[0, primer_tokens) are the primer
  // A primer from a dataset piece (the generate task): named in the JSON, and with keep_primer false the MIDI holds
  // the continuation alone (from the first Bar the model began). primer_split empty: the MIDI holds every token.
  std::string primer_split, primer_piece;
  int64_t primer_bars = 0;
  bool keep_primer = false;
  uint64_t seed = 0;
  double temperature = 1;
  int64_t top_k = 0;
  double top_p = 1;
  int64_t bars = -1, max_tokens = -1;  // the sampling limits, recorded when >= 0
};
struct WrittenSample {
  std::vector<std::string> files;  // <base>.mid, <base>.json and, with WAV, <base>.wav
  size_t bars = 0;                 // of the written tokens (0 when they do not segment)
  size_t notes = 0;
  double seconds = 0;              // of music
};
// Writes <base>.mid (the decoded tokens), <base>.json (tokens, token names, primer, bar offsets of the written
// tokens, sampling settings; atomically) and, with `wav`, <base>.wav through `soundfont` ("" = the default).
StatusOr<WrittenSample> WriteSample(const std::string& base, const SampleRecord& sample, bool wav,
                                    const std::string& soundfont = "");

// What a finished task reports to the coordinator (mirrors cadenza.v1.TaskResult).
struct TaskOutcome {
  std::map<std::string, double> metrics;
  std::vector<std::string> artifacts;
  std::string checkpoint;
  std::string summary;
};

// How samples are drawn (the same defaults as `cadenza demo`; the task carries only the seeds).
struct SampleOptions {
  int64_t bars = 8;            // stop after this many new bars
  int64_t max_tokens = 1500;   // hard cap per sample
  double temperature = 1.0;
  double top_p = 0.95;
  int64_t top_k = 0;
  bool wav = false;            // also render WAV with the default soundfont (when it exists)
  // Primed samples (GenerateConfig): "" = from BOS; else sample i continues the first primer_bars bars of a piece
  // of this split of `dataset`, chosen by its seed; keep_primer false writes the continuation alone.
  std::string primer_split;
  int64_t primer_bars = 2;
  bool keep_primer = false;
  std::string dataset;
};

// What a finished train task reports about its data: data/train_pieces and data/train_tokens (of the
// train.data_fraction subset, ExperimentWindows), data/fraction, train/steps (`steps`, the steps run) and
// train/tokens_seen = steps * train.batch_size * train.seq_len (batch_size is the global batch).
void AddTrainDataMetrics(int64_t train_pieces, int64_t train_tokens, const ExperimentConfig& config, int64_t steps,
                         std::map<std::string, double>* metrics);

// The experiment's `generate:` settings as SampleOptions (wav taken from `fallback`). When `experiment_yaml`
// does not parse, `fallback` (the worker's --bars/--temperature/... flags) and *note says why.
SampleOptions SampleOptionsFor(const std::string& experiment_yaml, const SampleOptions& fallback, std::string* note);

// Generate: one sample per seed from `checkpoint` into `samples_dir`: sample-NNN.{mid,json}[,.wav], NNN the
// job-wide index (first_index + i). Sample i depends only on its seed, never on how the job was sharded.
// With a primer split, the primer piece is chosen by the seed too; the JSON names it and holds every token.
StatusOr<TaskOutcome> RunGenerateTask(const std::string& checkpoint, const std::vector<uint64_t>& seeds, int first_index,
                                      const std::string& samples_dir, const SampleOptions& options);

// Evaluate: the MIDI files of `samples_dir` against `split` of `dataset` (without a reference when the split is
// empty or missing, as `cadenza demo` does) -> the report JSON at `report_path` (docs/evaluation.md).
StatusOr<TaskOutcome> RunEvaluateTask(const std::string& samples_dir, const std::string& dataset, const std::string& split,
                                      const std::string& report_path, int jobs);

// Aggregate: the job's whole sample set (every shard folder under `samples_root`) evaluated as one set against
// the reference -> `result_path`; the shard reports in `inputs` must exist (they are the evaluated shards).
StatusOr<TaskOutcome> RunAggregateTask(const std::vector<std::string>& inputs, const std::string& samples_root,
                                       const std::string& dataset, const std::string& split,
                                       const std::string& result_path, int jobs);

// Score: the checkpoint's NLL over the windows of config.score.windows (tiled: each token about once; every_bar:
// as validation reads them) of seq_len + 1 tokens of the checkpoint's config, bar-aligned, eval mode, deterministic, of each split in config.score.splits of config.dataset and of
// the test split of each dataset in config.score.on. Writes a JSON report to `report_path` (atomically; an
// empty path writes none) and
// returns metrics <split>/{nll_per_token,nll_per_bar,perplexity,tokens,bars,pieces,windows} and
// on/<dataset folder name>/{...the same}. A split without a window is skipped (its metrics absent, the reason in
// the report); none at all is an error.
StatusOr<TaskOutcome> RunScoreTask(const std::string& checkpoint, const ExperimentConfig& config,
                                   const std::string& report_path);

// Probe: ProbeModel on the checkpoint at config.probe.lengths for each of config.probe.batch_sizes (repeats
// config.probe.repeats). Writes the rows as CSV to `csv_path` (atomically) and returns metrics
// probe/L<length>/b<batch>/{forward_ms,forward_peak_mb,train_peak_mb,step_ms,state_mb,step_peak_mb}. A length
// beyond the model's context has no metrics (absent, never 0); its CSV row keeps the note.
StatusOr<TaskOutcome> RunProbeTask(const std::string& checkpoint, const ExperimentConfig& config, const std::string& csv_path);

}  // namespace cadenza
