// One interface for both model families: full-sequence forward for training, incremental step for generation.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "core/experiment_config.h"

namespace cadenza {

// Per-sequence generation state (key/value cache, RNN state and history); owned by the caller.
struct DecodeState {
  virtual ~DecodeState() = default;
  int64_t position = 0;  // tokens consumed so far
};

class SequenceModelImpl : public torch::nn::Module {
 public:
  explicit SequenceModelImpl(ModelConfig config) : config_(std::move(config)) {}
  ~SequenceModelImpl() override = default;

  // tokens [B, T] int64 -> logits [B, T, V]; position t sees tokens 0..t only.
  virtual torch::Tensor forward(const torch::Tensor& tokens) = 0;
  // tokens [B, T] -> the final hidden states [B, T, d_model] that forward() projects to logits (segment
  // embeddings for the self-similarity matrix). Causal like forward().
  virtual torch::Tensor Hidden(const torch::Tensor& tokens) = 0;
  // A fresh state for a batch of B sequences that will hold at most max_len tokens.
  virtual std::unique_ptr<DecodeState> NewState(int64_t batch, int64_t max_len) = 0;
  // tokens [B] int64 -> logits [B, V] for the next token; advances the state by one.
  virtual torch::Tensor Step(const torch::Tensor& tokens, DecodeState& state) = 0;
  // Longest context the model can attend to in one state (Transformer: max_len; RNN: unbounded).
  virtual int64_t MaxContext() const = 0;

  const ModelConfig& config() const { return config_; }
  int64_t NumParameters() const;

 protected:
  ModelConfig config_;
};

using SequenceModel = std::shared_ptr<SequenceModelImpl>;

// Builds the model the config names; the config must have passed ValidateModelConfig.
SequenceModel MakeModel(const ModelConfig& config);

// Embedding init shared by both families: N(0, d^-1/2), so tied output logits start near unit scale.
void InitEmbedding(torch::nn::Embedding& embedding, int64_t d_model);

}  // namespace cadenza
