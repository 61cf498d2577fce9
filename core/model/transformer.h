// Decoder-only Transformer: sinusoidal positions, pre-LN blocks, causal multi-head attention, ReLU FFN, KV cache.
#pragma once

#include "core/model/dropout.h"
#include "core/model/sequence_model.h"

namespace cadenza {

class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(int64_t d_model, int64_t heads, int64_t ff_dim, double dropout);
  // x [B, T, D]; causal.
  torch::Tensor forward(const torch::Tensor& x);
  // x [B, 1, D] at `position`; k_cache/v_cache [B, H, L, Dh] are filled at that position.
  torch::Tensor Step(const torch::Tensor& x, torch::Tensor& k_cache, torch::Tensor& v_cache, int64_t position);

  int64_t heads() const { return heads_; }

 private:
  torch::Tensor FeedForward(const torch::Tensor& x);
  int64_t heads_, head_dim_;
  torch::nn::LayerNorm ln1_{nullptr}, ln2_{nullptr};
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr}, ff1_{nullptr}, ff2_{nullptr};
  FastDropoutLayer dropout_{nullptr};
};
TORCH_MODULE(TransformerBlock);

class TransformerModel : public SequenceModelImpl {
 public:
  explicit TransformerModel(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& tokens) override;
  torch::Tensor Hidden(const torch::Tensor& tokens) override;
  std::unique_ptr<DecodeState> NewState(int64_t batch, int64_t max_len) override;
  torch::Tensor Step(const torch::Tensor& tokens, DecodeState& state) override;
  int64_t MaxContext() const override { return config_.max_len; }

 private:
  torch::Tensor Logits(const torch::Tensor& hidden);     // final layer norm, then Project
  torch::Tensor Project(const torch::Tensor& normed);    // output projection (tied or not)
  torch::nn::Embedding embedding_{nullptr};
  torch::Tensor positions_;  // [max_len, D] sinusoids (a buffer: saved, not trained)
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm ln_final_{nullptr};
  torch::nn::Linear output_{nullptr};  // only when embeddings are not tied
  FastDropoutLayer dropout_{nullptr};
  double embed_scale_;
};

}  // namespace cadenza
