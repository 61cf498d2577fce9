// Attention RNN: the recurrent state attends causally over past states, as in Magenta's attention_rnn.
#include "core/model/attention_rnn.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/model/additive_attention.h"
#include "core/model/gru_sequence.h"
#include "core/model/lstm_sequence.h"
#include "core/model/mixed_precision.h"
#include "core/model/row_affine.h"

namespace cadenza {
namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// x [B, K] W^T + b, as at::linear computes it for a matrix (addmm), or RowAffine for one row.
// Inside a Bf16ComputeScope the GEMM runs in bf16 (mixed_precision.h); one row stays fp32.
torch::Tensor Affine(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (OneRow(x)) return RowAffine(x, weight, bias);
  return Bf16Compute() ? Bf16Linear(x, weight, bias) : torch::addmm(bias, x, weight.t());
}

}  // namespace

AttentionRnnModel::AttentionRnnModel(const ModelConfig& c) : SequenceModelImpl(c), lstm_(c.family == "lstm") {
  embedding_ = register_module("embedding", torch::nn::Embedding(c.vocab_size, c.d_model));
  InitEmbedding(embedding_, c.d_model);
  const double between_layers = c.layers > 1 ? c.dropout : 0.0;
  if (lstm_) {
    lstm_rnn_ = register_module("rnn", torch::nn::LSTM(torch::nn::LSTMOptions(c.d_model, c.hidden).num_layers(c.layers).dropout(between_layers)));
  } else {
    gru_rnn_ = register_module("rnn", torch::nn::GRU(torch::nn::GRUOptions(c.d_model, c.hidden).num_layers(c.layers).dropout(between_layers)));
  }
  if (c.attention == "general") {
    attn_general_ = register_module("attn_general", torch::nn::Linear(torch::nn::LinearOptions(c.hidden, c.hidden).bias(false)));
  } else if (c.attention == "additive") {
    attn_query_ = register_module("attn_query", torch::nn::Linear(c.hidden, c.hidden));
    attn_key_ = register_module("attn_key", torch::nn::Linear(torch::nn::LinearOptions(c.hidden, c.hidden).bias(false)));
    attn_v_ = register_parameter("attn_v", torch::randn({c.hidden}) / std::sqrt(double(c.hidden)));
  }
  combine_ = register_module("combine", torch::nn::Linear(2 * c.hidden, c.d_model));
  if (!c.tie_embeddings) output_ = register_module("output", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.vocab_size).bias(false)));
  dropout_ = register_module("dropout", FastDropoutLayer(c.dropout));
}

torch::Tensor AttentionRnnModel::Scores(const torch::Tensor& hs) {
  const int64_t T = hs.size(1);
  const int64_t window = config_.attention_window;
  if (config_.attention == "additive") return AdditiveAttentionScores(Affine(attn_query_, hs), Affine(attn_key_, hs), attn_v_, window);
  // Dot and general scores are scaled by 1/sqrt(H), as in scaled dot-product attention, for stable softmax.
  const double scale = 1.0 / std::sqrt(double(config_.hidden));
  auto query = config_.attention == "general" ? Affine(attn_general_, hs) : hs;
  auto mask = torch::full({T, T}, kNegInf).triu(1);
  if (window > 0) mask = mask + torch::full({T, T}, kNegInf).tril(-window);
  if (Bf16Compute()) return torch::add(mask, torch::bmm(ToBf16(query), ToBf16(hs).transpose(1, 2)), scale);  // fp32 scores
  return torch::baddbmm(mask, query, hs.transpose(1, 2), 1.0, scale);
}

torch::Tensor AttentionRnnModel::Output(const torch::Tensor& context, const torch::Tensor& hs) {
  return Project(Combined(context, hs));
}

torch::Tensor AttentionRnnModel::Combined(const torch::Tensor& context, const torch::Tensor& hs) {
  return dropout_(torch::tanh(Affine(combine_, torch::cat({context, hs}, -1))));
}

torch::Tensor AttentionRnnModel::Project(const torch::Tensor& out) {
  if (OneRow(out)) return RowAffine(out, config_.tie_embeddings ? embedding_->weight : output_->weight, torch::Tensor());
  const auto& weight = config_.tie_embeddings ? embedding_->weight : output_->weight;
  if (Bf16Compute()) return Bf16Linear(out, weight, torch::Tensor());
  return config_.tie_embeddings ? torch::matmul(out, weight.t()) : output_(out);
}

torch::Tensor AttentionRnnModel::forward(const torch::Tensor& tokens) { return Project(Hidden(tokens)); }

torch::Tensor AttentionRnnModel::Hidden(const torch::Tensor& tokens) {
  auto x = dropout_(embedding_(tokens)).transpose(0, 1);  // [T, B, D]: LibTorch 1.13 RNNs are time-major
  torch::Tensor hs;
  {  // the module's own weights through the fused layers (lstm_sequence.h, gru_sequence.h), dropout between layers
    const auto params = lstm_ ? lstm_rnn_->named_parameters(false) : gru_rnn_->named_parameters(false);
    const auto layer = lstm_ ? LstmSequence : GruSequence;
    const double between = config_.layers > 1 ? config_.dropout : 0.0;
    for (int64_t l = 0; l < config_.layers; ++l) {
      const std::string n = std::to_string(l);
      if (l > 0) x = FastDropout(x, between, is_training());
      x = layer(x, params["weight_ih_l" + n], params["weight_hh_l" + n], params["bias_ih_l" + n], params["bias_hh_l" + n]);
    }
    hs = x.transpose(0, 1).contiguous();  // [B, T, H]
  }
  auto attn = torch::softmax(Scores(hs), -1);  // fp32 softmax (bf16 scores are widened first)
  auto context = Bf16Compute() ? Bf16Matmul(attn, hs) : torch::bmm(attn, hs);
  return Combined(context, hs);
}

namespace {
struct RnnState : DecodeState {
  torch::Tensor h, c;        // [layers, B, H] (c only for LSTM)
  torch::Tensor history;     // [B, L, H] past outputs (the last `window` when windowed)
  torch::Tensor key_history; // additive: W_k applied to history
  int64_t filled = 0;        // valid rows of history
};
}  // namespace

std::unique_ptr<DecodeState> AttentionRnnModel::NewState(int64_t batch, int64_t max_len) {
  auto s = std::make_unique<RnnState>();
  const auto options = embedding_->weight.options();
  s->h = torch::zeros({config_.layers, batch, config_.hidden}, options);
  if (lstm_) s->c = torch::zeros({config_.layers, batch, config_.hidden}, options);
  const int64_t rows = config_.attention_window > 0 ? config_.attention_window : std::max<int64_t>(max_len, 1);
  s->history = torch::zeros({batch, rows, config_.hidden}, options);
  if (config_.attention == "additive") s->key_history = torch::zeros({batch, rows, config_.hidden}, options);
  return s;
}

torch::Tensor AttentionRnnModel::Step(const torch::Tensor& tokens, DecodeState& base) {
  auto& s = static_cast<RnnState&>(base);
  const OneThreadForOneRow one_thread(tokens.numel() == 1);
  torch::Tensor h_t;  // [B, H]
  if (is_training()) {  // the module applies dropout between layers
    auto x = embedding_(tokens).unsqueeze(0);  // [1, B, D]
    torch::Tensor out;
    if (lstm_) {
      auto [y, hc] = lstm_rnn_(x, std::make_tuple(s.h, s.c));
      out = y;
      s.h = std::get<0>(hc);
      s.c = std::get<1>(hc);
    } else {
      auto [y, h] = gru_rnn_(x, s.h);
      out = y;
      s.h = h;
    }
    h_t = out.squeeze(0);
  } else {
    // The module's cells written out with its own weights (ATen's LSTMCell/GRUCell: gates i, f, g, o and r, z, n),
    // so one sequence's step can use RowAffine: nn::LSTM/GRU run [1, K] GEMMs, 3x slower for batch 1.
    const auto params = lstm_ ? lstm_rnn_->named_parameters(false) : gru_rnn_->named_parameters(false);
    auto input = embedding_(tokens);  // [B, D]
    std::vector<torch::Tensor> hs, cs;
    for (int64_t l = 0; l < config_.layers; ++l) {
      const std::string n = std::to_string(l);
      auto gi = Affine(input, params["weight_ih_l" + n], params["bias_ih_l" + n]);
      auto gh = Affine(s.h[l], params["weight_hh_l" + n], params["bias_hh_l" + n]);
      if (lstm_) {
        auto g = (gh + gi).chunk(4, 1);
        auto c = torch::sigmoid(g[1]) * s.c[l] + torch::sigmoid(g[0]) * torch::tanh(g[2]);
        input = torch::sigmoid(g[3]) * torch::tanh(c);
        cs.push_back(c);
      } else {
        auto i = gi.chunk(3, 1), h = gh.chunk(3, 1);
        auto reset = torch::sigmoid(h[0] + i[0]), update = torch::sigmoid(h[1] + i[1]);
        auto fresh = torch::tanh(i[2] + h[2] * reset);
        input = (s.h[l] - fresh) * update + fresh;
      }
      hs.push_back(input);
    }
    s.h = torch::stack(hs);
    if (lstm_) s.c = torch::stack(cs);
    h_t = input;
  }
  const int64_t rows = s.history.size(1);
  if (s.filled == rows) {  // windowed (or a full buffer): drop the oldest state
    TORCH_CHECK(config_.attention_window > 0, "RNN history is full (", rows, " tokens): raise max_len");
    s.history = torch::roll(s.history, -1, 1);
    if (s.key_history.defined()) s.key_history = torch::roll(s.key_history, -1, 1);
    --s.filled;
  }
  s.history.select(1, s.filled).copy_(h_t);
  if (s.key_history.defined()) s.key_history.select(1, s.filled).copy_(Affine(attn_key_, h_t));
  ++s.filled;
  auto past = s.history.narrow(1, 0, s.filled);  // [B, P, H]
  torch::Tensor scores;
  if (config_.attention == "additive") {
    scores = torch::matmul(torch::tanh(Affine(attn_query_, h_t).unsqueeze(1) + s.key_history.narrow(1, 0, s.filled)), attn_v_);
  } else {
    auto query = config_.attention == "general" ? Affine(attn_general_, h_t) : h_t;
    scores = torch::bmm(past, query.unsqueeze(2)).squeeze(2) / std::sqrt(double(config_.hidden));
  }
  auto context = torch::bmm(torch::softmax(scores, -1).unsqueeze(1), past).squeeze(1);
  ++s.position;
  return Output(context, h_t);
}

}  // namespace cadenza
