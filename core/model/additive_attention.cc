// Blocked additive-attention scores with a recomputing backward pass (custom autograd function).
#include "core/model/additive_attention.h"

#include <algorithm>
#include <limits>

namespace cadenza {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using torch::indexing::Slice;

// Query rows per block: keep B * rows * T * A near max(B * T * T, 1M) elements (4 MB per temporary, a few of
// which are alive at once in the backward pass).
int64_t RowsPerBlock(int64_t B, int64_t T, int64_t A) {
  const int64_t budget = std::max<int64_t>(B * T * T, int64_t{1} << 20);
  return std::clamp<int64_t>(budget / std::max<int64_t>(1, B * T * A), 1, T);
}

// Mask of valid (i, j) pairs for rows [i0, i1) and keys [j0, j1): j <= i and j > i - window.
torch::Tensor BlockMask(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t window) {
  auto i = torch::arange(i0, i1).unsqueeze(1);
  auto j = torch::arange(j0, j1).unsqueeze(0);
  auto valid = j <= i;
  if (window > 0) valid = valid & (j > i - window);
  return valid;
}

int64_t FirstKey(int64_t i0, int64_t window) { return window > 0 ? std::max<int64_t>(0, i0 - window + 1) : 0; }

struct AdditiveScores : public torch::autograd::Function<AdditiveScores> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               int64_t window) {
    ctx->save_for_backward({q, k, v});
    ctx->saved_data["window"] = window;
    const int64_t B = q.size(0), T = q.size(1), A = q.size(2);
    auto scores = torch::full({B, T, T}, -std::numeric_limits<float>::infinity(), q.options());
    const int64_t rows = RowsPerBlock(B, T, A);
    torch::NoGradGuard no_grad;
    for (int64_t i0 = 0; i0 < T; i0 += rows) {
      const int64_t i1 = std::min(T, i0 + rows), j0 = FirstKey(i0, window), j1 = i1;
      auto a = torch::tanh(q.index({Slice(), Slice(i0, i1)}).unsqueeze(2) + k.index({Slice(), Slice(j0, j1)}).unsqueeze(1));
      auto s = torch::matmul(a, v);  // [B, rows, keys]
      s.masked_fill_(BlockMask(i0, i1, j0, j1, window).logical_not(), -std::numeric_limits<float>::infinity());
      scores.index_put_({Slice(), Slice(i0, i1), Slice(j0, j1)}, s);
    }
    return scores;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2];
    const int64_t window = ctx->saved_data["window"].toInt();
    const int64_t B = q.size(0), T = q.size(1), A = q.size(2);
    const auto& grad = grad_outputs[0];
    auto dq = torch::zeros_like(q), dk = torch::zeros_like(k), dv = torch::zeros_like(v);
    const int64_t rows = RowsPerBlock(B, T, A);
    for (int64_t i0 = 0; i0 < T; i0 += rows) {
      const int64_t i1 = std::min(T, i0 + rows), j0 = FirstKey(i0, window), j1 = i1;
      auto a = torch::tanh(q.index({Slice(), Slice(i0, i1)}).unsqueeze(2) + k.index({Slice(), Slice(j0, j1)}).unsqueeze(1));
      auto g = grad.index({Slice(), Slice(i0, i1), Slice(j0, j1)}) * BlockMask(i0, i1, j0, j1, window);  // [B, rows, keys]
      dv += torch::matmul(g.reshape({1, -1}), a.reshape({-1, A})).squeeze(0);
      auto pre = g.unsqueeze(-1) * v * (1 - a * a);  // d score / d (q_i + k_j)
      dq.index({Slice(), Slice(i0, i1)}) += pre.sum(2);
      dk.index({Slice(), Slice(j0, j1)}) += pre.sum(1);
    }
    return {dq, dk, dv, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor AdditiveAttentionScores(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window) {
  return AdditiveScores::apply(q, k, v, window);
}

}  // namespace cadenza
