// LSTM/GRU language model with causal attention over its own previous hidden states (dot, general, additive).
#pragma once

#include "core/model/dropout.h"
#include "core/model/sequence_model.h"

namespace cadenza {

class AttentionRnnModel : public SequenceModelImpl {
 public:
  explicit AttentionRnnModel(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& tokens) override;
  torch::Tensor Hidden(const torch::Tensor& tokens) override;
  std::unique_ptr<DecodeState> NewState(int64_t batch, int64_t max_len) override;
  torch::Tensor Step(const torch::Tensor& tokens, DecodeState& state) override;
  int64_t MaxContext() const override { return std::numeric_limits<int64_t>::max(); }

 private:
  // hs [B, T, H] -> attention scores [B, T, T] (causal window applied, -inf outside).
  torch::Tensor Scores(const torch::Tensor& hs);
  // Combines context and state into the output and projects it to logits.
  torch::Tensor Output(const torch::Tensor& context, const torch::Tensor& hs);
  torch::Tensor Combined(const torch::Tensor& context, const torch::Tensor& hs);  // the output before projection
  torch::Tensor Project(const torch::Tensor& out);

  bool lstm_;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::LSTM lstm_rnn_{nullptr};
  torch::nn::GRU gru_rnn_{nullptr};
  torch::nn::Linear attn_general_{nullptr};                       // general: W_a
  torch::nn::Linear attn_query_{nullptr}, attn_key_{nullptr};     // additive: W_q (with bias), W_k
  torch::Tensor attn_v_;                                          // additive: v
  torch::nn::Linear combine_{nullptr};                            // [context; state] -> d_model
  torch::nn::Linear output_{nullptr};                             // untied output projection
  FastDropoutLayer dropout_{nullptr};
};

}  // namespace cadenza
