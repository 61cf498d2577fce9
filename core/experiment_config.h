// Experiment, model and training configuration: YAML in, validated structs out, effective YAML dumped with every run.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace cadenza {

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
  int threads = 0;  // intra-op threads; 0 = number of cores
};

struct ExperimentConfig {
  std::string name = "experiment";
  std::string dataset;  // dataset folder written by `cadenza ingest`
  std::string out;      // run folder: checkpoints, metrics, effective config
  ModelConfig model;
  TrainConfig train;

  // The effective configuration, every field, as YAML (written to <out>/config.yaml).
  std::string ToYaml() const;
};

// Parses an experiment YAML. `model:` may be a mapping or a path to a model YAML (relative to the file).
// Unknown keys and bad values are errors naming the file and the key path ("exp.yaml: train.lr: expected > 0").
StatusOr<ExperimentConfig> LoadExperimentConfig(const std::string& path);
StatusOr<ExperimentConfig> ParseExperimentConfig(const std::string& yaml_text, const std::string& path_for_errors,
                                                 const std::string& base_dir = ".");
StatusOr<ModelConfig> LoadModelConfig(const std::string& path);
// Checks ranges and cross-field rules (heads divide d_model, known family/attention ...).
Status ValidateModelConfig(const ModelConfig& m, const std::string& where);

}  // namespace cadenza
