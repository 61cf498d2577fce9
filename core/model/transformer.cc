// Decoder-only Transformer (pre-LN) with a key/value cache for O(T) generation per token.
#include "core/model/transformer.h"

#include <cmath>
#include <limits>

#include "core/model/causal_attention.h"
#include "core/model/linear_relu.h"
#include "core/model/row_affine.h"

namespace cadenza {
namespace {

// Sinusoidal encoding of Vaswani et al. (2017): PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(...).
torch::Tensor Sinusoids(int64_t max_len, int64_t d) {
  auto pos = torch::arange(max_len, torch::kFloat64).unsqueeze(1);
  auto i = torch::arange(0, d, 2, torch::kFloat64);
  auto freq = torch::exp(-std::log(10000.0) * i / static_cast<double>(d));
  auto pe = torch::zeros({max_len, d}, torch::kFloat64);
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)}, torch::sin(pos * freq));
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)},
                torch::cos(pos * freq).narrow(1, 0, d / 2));
  return pe.to(torch::kFloat32);
}


}  // namespace

TransformerBlockImpl::TransformerBlockImpl(int64_t d_model, int64_t heads, int64_t ff_dim, double dropout)
    : heads_(heads), head_dim_(d_model / heads) {
  ln1_ = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  qkv_ = register_module("qkv", torch::nn::Linear(d_model, 3 * d_model));
  proj_ = register_module("proj", torch::nn::Linear(d_model, d_model));
  ln2_ = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  ff1_ = register_module("ff1", torch::nn::Linear(d_model, ff_dim));
  ff2_ = register_module("ff2", torch::nn::Linear(ff_dim, d_model));
  dropout_ = register_module("dropout", FastDropoutLayer(dropout));
}

torch::Tensor TransformerBlockImpl::FeedForward(const torch::Tensor& x) {
  auto normed = ln2_(x);
  auto hidden = OneRow(normed) ? torch::relu(Affine(ff1_, normed)) : LinearRelu(normed, ff1_->weight, ff1_->bias);
  return dropout_(Affine(ff2_, hidden));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  auto qkv = Affine(qkv_, ln1_(x));  // [B, T, 3D]: q, k, v side by side, each [H, Dh]
  torch::Tensor out;
  if (CausalAttentionSupports(qkv, heads_)) {  // the fused kernel: causal half only, softmax and dropout inside
    out = CausalSelfAttention(qkv, heads_, dropout_->p(), is_training());
  } else {  // [B, T, 3, H, Dh] -> three [B*H, T, Dh]; one op for scale, QK^T and the mask; softmax, dropout, AV
    auto parts = qkv.view({B, T, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4});
    auto q = parts[0].reshape({B * heads_, T, head_dim_});
    auto k = parts[1].reshape({B * heads_, T, head_dim_});
    auto v = parts[2].reshape({B * heads_, T, head_dim_});
    auto mask = torch::full({T, T}, -std::numeric_limits<float>::infinity(), x.options()).triu(1);  // additive
    auto scores = torch::baddbmm(mask, q, k.transpose(1, 2), /*beta=*/1.0, /*alpha=*/1.0 / std::sqrt(double(head_dim_)));
    out = torch::bmm(dropout_(torch::softmax(scores, -1)), v).view({B, heads_, T, head_dim_}).transpose(1, 2).reshape({B, T, D});
  }
  auto h = x + dropout_(Affine(proj_, out));
  return h + FeedForward(h);
}

torch::Tensor TransformerBlockImpl::Step(const torch::Tensor& x, torch::Tensor& k_cache, torch::Tensor& v_cache, int64_t position) {
  const int64_t B = x.size(0), D = x.size(2);
  auto qkv = Affine(qkv_, ln1_(x)).view({B, 3, heads_, head_dim_});  // T = 1
  auto q = qkv.select(1, 0).unsqueeze(2);                     // [B, H, 1, Dh]
  k_cache.select(2, position).copy_(qkv.select(1, 1));
  v_cache.select(2, position).copy_(qkv.select(1, 2));
  auto keys = k_cache.narrow(2, 0, position + 1);  // [B, H, P+1, Dh]
  auto values = v_cache.narrow(2, 0, position + 1);
  auto scores = torch::matmul(q, keys.transpose(2, 3)) / std::sqrt(double(head_dim_));
  auto out = torch::matmul(torch::softmax(scores, -1), values).view({B, 1, D});
  auto h = x + Affine(proj_, out);
  return h + FeedForward(h);
}

TransformerModel::TransformerModel(const ModelConfig& c) : SequenceModelImpl(c), embed_scale_(std::sqrt(double(c.d_model))) {
  embedding_ = register_module("embedding", torch::nn::Embedding(c.vocab_size, c.d_model));
  InitEmbedding(embedding_, c.d_model);
  positions_ = register_buffer("positions", Sinusoids(c.max_len, c.d_model));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.layers; ++i) blocks_->push_back(TransformerBlock(c.d_model, c.heads, c.ff_dim, c.dropout));
  ln_final_ = register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
  if (!c.tie_embeddings) output_ = register_module("output", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.vocab_size).bias(false)));
  dropout_ = register_module("dropout", FastDropoutLayer(c.dropout));
}

torch::Tensor TransformerModel::Logits(const torch::Tensor& hidden) { return Project(ln_final_(hidden)); }

torch::Tensor TransformerModel::Project(const torch::Tensor& h) {
  // Tied and unscaled, as in the paper. The untrained model then favours repeating its input token (the
  // residual carries sqrt(d) * embedding), yet it learned fastest of three variants we measured (docs/models.md).
  if (OneRow(h)) return RowAffine(h, config_.tie_embeddings ? embedding_->weight : output_->weight, torch::Tensor());
  const auto& weight = config_.tie_embeddings ? embedding_->weight : output_->weight;
  if (Bf16Compute()) return Bf16Linear(h, weight, torch::Tensor());
  return config_.tie_embeddings ? torch::matmul(h, weight.t()) : output_(h);
}

torch::Tensor TransformerModel::Hidden(const torch::Tensor& tokens) {
  const int64_t T = tokens.size(1);
  TORCH_CHECK(T <= config_.max_len, "sequence of ", T, " tokens is longer than max_len ", config_.max_len);
  auto x = dropout_(embedding_(tokens) * embed_scale_ + positions_.narrow(0, 0, T));
  for (const auto& block : *blocks_) x = block->as<TransformerBlock>()->forward(x);
  return ln_final_(x);
}

torch::Tensor TransformerModel::forward(const torch::Tensor& tokens) { return Project(Hidden(tokens)); }

namespace {
struct KvCache : DecodeState {
  std::vector<torch::Tensor> keys, values;  // per layer [B, H, L, Dh]
};
}  // namespace

std::unique_ptr<DecodeState> TransformerModel::NewState(int64_t batch, int64_t max_len) {
  TORCH_CHECK(max_len <= config_.max_len, "a key/value cache of ", max_len, " exceeds max_len ", config_.max_len);
  auto state = std::make_unique<KvCache>();
  const int64_t heads = config_.heads, head_dim = config_.d_model / config_.heads;
  const auto options = positions_.options();
  for (int i = 0; i < config_.layers; ++i) {
    state->keys.push_back(torch::zeros({batch, heads, max_len, head_dim}, options));
    state->values.push_back(torch::zeros({batch, heads, max_len, head_dim}, options));
  }
  return state;
}

torch::Tensor TransformerModel::Step(const torch::Tensor& tokens, DecodeState& base) {
  auto& state = static_cast<KvCache&>(base);
  const OneThreadForOneRow one_thread(tokens.numel() == 1);
  const int64_t p = state.position;
  TORCH_CHECK(p < state.keys[0].size(2), "key/value cache is full (", p, " tokens)");
  auto x = (embedding_(tokens) * embed_scale_ + positions_[p]).unsqueeze(1);  // [B, 1, D]
  int layer = 0;
  for (const auto& block : *blocks_) {
    x = block->as<TransformerBlock>()->Step(x, state.keys[layer], state.values[layer], p);
    ++layer;
  }
  ++state.position;
  return Logits(x).squeeze(1);
}

}  // namespace cadenza
