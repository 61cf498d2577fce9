// Experiment, model and training configuration: YAML in, validated structs out, effective YAML dumped with every run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza {

// The most intra-op threads any option (train.threads, --threads, --jobs) may ask for.
constexpr int kMaxThreads = 256;

struct ModelConfig {
  std::string family = "transformer";  // transformer | lstm | gru
  int vocab_size = 0;                  // filled from the tokenizer's vocabulary, not from YAML
  int d_model = 256;                   // token embedding width (the Transformer's model width)
  int layers = 4;
  int heads = 4;           // transformer: attention heads (d_model % heads == 0)
  int ff_dim = 1024;       // transformer: ReLU feed-forward width
  int max_len = 2048;      // transformer: longest context (sinusoid table, key/value cache)
  int hidden = 512;        // rnn: LSTM/GRU state width
  std::string attention = "general";  // rnn: dot | general | additive
  int attention_window = 0;           // rnn: attend to the last K states; 0 = the whole history
  double dropout = 0.1;
  bool tie_embeddings = true;  // output projection shares the embedding matrix

  bool is_rnn() const { return family == "lstm" || family == "gru"; }
};

struct TrainConfig {
  int seq_len = 256;      // tokens per window (windows start on bar lines)
  int batch_size = 16;    // per rank
  int64_t steps = 2000;   // optimizer steps
  double lr = 3e-4;       // peak learning rate (AdamW)
  int64_t warmup_steps = 100;
  double min_lr_ratio = 0.1;  // cosine decays to lr * min_lr_ratio at `steps`
  double weight_decay = 0.01;
  double beta1 = 0.9, beta2 = 0.98;
  double grad_clip = 1.0;       // max global L2 norm; 0 disables
  int64_t eval_every = 200;     // steps between validations (and checkpoints)
  int64_t eval_windows = 256;   // validation windows per evaluation (0 = all)
  int early_stopping_patience = 0;  // stop after this many validations without improvement; 0 = never
  uint64_t seed = 1;
  int threads = 0;  // intra-op threads; 0 = number of cores; at most kMaxThreads
  // Train on a nested subset of the dataset's train split, in (0, 1]: a piece is in it iff a hash of its id
  // (manifest piece id = content hash; never its index) maps below the fraction, so the 10% subset lies inside
  // the 25% one and a fraction always gives the same pieces. Val and test are never subset.
  double data_fraction = 1.0;
  // Training length in passes over the (subset) train split; 0 = use `steps`. When > 0, steps is resolved at
  // training start as ceil(epochs * train tokens / (batch_size * seq_len)) (ResolveTrainSteps), and the
  // resolved value is what the run's config.yaml records.
  double epochs = 0;
  // Structure during training: at every validation, rank 0 samples this many pieces of eval_sample_bars bars
  // (with the generate: settings) and logs their SSM structureness, repetition, pitch deviation and syncopation
  // as sample/<metric> beside the NLL. 0 = off. Sampling never touches the training's random stream.
  int eval_samples = 0;
  int64_t eval_sample_bars = 8;
  // "fp32" or "bf16": bf16 mixed precision for training and validation (GEMMs and attention products in bf16 with
  // fp32 accumulation; master weights, optimizer state, LayerNorm, softmax and loss in fp32; checkpoints fp32).
  // Refused at training start on a CPU without AVX512_BF16 or AMX-BF16 (core/model/precision.h).
  std::string precision = "fp32";
};

// How the experiment's generate tasks sample (the worker's --bars/--temperature/... flags are only a fallback).
struct GenerateConfig {
  double temperature = 1.0;  // softmax temperature, 0..10 (0 = greedy)
  int64_t top_k = 0;         // sample among the k most likely tokens (0 = all)
  double top_p = 0.95;       // nucleus mass, (0, 1] (1 = off)
  int64_t bars = 8;          // stop each sample after this many new bars (0 = only max_tokens)
  int64_t max_tokens = 1500; // hard cap on new tokens per sample
  // Primed generation: "" starts every sample from BOS; "val" or "test" makes sample i continue the first
  // primer_bars bars of a piece of that split of the experiment's dataset, chosen by the sample's seed.
  std::string primer_split;
  int64_t primer_bars = 2;
  // With a primer: false writes and evaluates the continuation alone (the primer's bars are the dataset's, not
  // the model's); true keeps the primer in front. The sample's JSON always holds every token.
  bool keep_primer = false;
};

// What the score task measures: NLL per token and per bar of the trained checkpoint over every window.
struct ScoreConfig {
  std::vector<std::string> splits{"val", "test"};  // splits of the experiment's dataset (train | val | test)
  std::vector<std::string> on;  // other dataset folders, scored on their test split (cross-corpus generalisation)
  // tiled: per piece, bar-aligned windows that each start at the last bar line within the previous window, so
  // every token is scored about once (overlaps are under one bar); every_bar: a window at every bar line, as
  // training validation reads them (each token scored about seq_len / bar-length times: slower, same mean).
  std::string windows = "tiled";
};

// The probe task: latency and memory of the trained model against context length (core/model/probe.h).
struct ProbeConfig {
  std::vector<int64_t> lengths;            // context lengths in tokens; empty = no probe task
  std::vector<int64_t> batch_sizes{1};     // one probe per batch size
  int repeats = 3;                         // timed runs per measurement (the median is reported)
};

struct ExperimentConfig {
  std::string name = "experiment";
  std::string dataset;  // dataset folder written by `cadenza ingest`
  std::string out;      // run folder: checkpoints, metrics, effective config
  ModelConfig model;
  TrainConfig train;
  GenerateConfig generate;
  ScoreConfig score;
  ProbeConfig probe;

  // The effective configuration, every field, as YAML (written to <out>/config.yaml).
  std::string ToYaml() const;
};

// Where a run came from, appended to its config.yaml as `provenance:` (a record: read back, it sets nothing).
struct RunProvenance {
  std::string git_commit;               // GitCommit() of the build that trained
  std::string command_line;             // CommandLine() of the process that trained
  std::string dataset_manifest_sha256;  // of <dataset>/manifest.json: which dataset, shards and splits exactly
};
// config.ToYaml() followed by the provenance section: what the trainer writes to <out>/config.yaml.
std::string RunConfigYaml(const ExperimentConfig& config, const RunProvenance& provenance);

// Parses an experiment YAML. `model:` may be a mapping or a path to a model YAML (relative to the file).
// Unknown keys and bad values are errors naming the file and the key path ("exp.yaml: train.lr: expected > 0").
StatusOr<ExperimentConfig> LoadExperimentConfig(const std::string& path);
StatusOr<ExperimentConfig> ParseExperimentConfig(const std::string& yaml_text, const std::string& path_for_errors,
                                                 const std::string& base_dir = ".");
StatusOr<ModelConfig> LoadModelConfig(const std::string& path);
// train.epochs > 0: sets train.steps to ceil(epochs * train_tokens / (batch_size * seq_len)) (at least 1), the
// tokens those of the (subset) train split. epochs == 0: leaves steps. An error names train.epochs.
Status ResolveTrainSteps(ExperimentConfig* config, int64_t train_tokens);
// Checks ranges and cross-field rules (heads divide d_model, known family/attention ...).
Status ValidateModelConfig(const ModelConfig& m, const std::string& where);

}  // namespace cadenza
