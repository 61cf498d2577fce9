// Fused additive-attention scores with a recomputing backward pass (custom autograd function).
#include "core/model/additive_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/model/vector_math.h"

namespace cadenza {
namespace {

using kernel::Load;
using kernel::Splat;
using kernel::Store;
using kernel::V16;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// tanh through the vectorised exp (vector_math.h): absolute error ~1e-7, saturating cleanly at +-1.
inline V16 TanhV(V16 x) { return 2.0f / (1.0f + kernel::Exp(-2.0f * x)) - 1.0f; }

// The first key of query row i: j > i - window (window 0: every j <= i).
inline int64_t FirstKeyOf(int64_t i, int64_t window) { return window > 0 ? std::max<int64_t>(0, i - window + 1) : 0; }

// out[j] = v . tanh(q + k_j) for j in [j0, j1); one query row, keys [T, A] row-major.
CADENZA_VECTOR_CLONES
void AdditiveRowScores(const float* q, const float* k, const float* v, int64_t A, int64_t j0, int64_t j1, float* out) {
  const int64_t A16 = A / 16 * 16;
  for (int64_t j = j0; j < j1; ++j) {
    const float* kj = k + j * A;
    V16 acc{};
    for (int64_t a = 0; a < A16; a += 16) acc += Load(v + a) * TanhV(Load(q + a) + Load(kj + a));
    float s = kernel::Sum(acc);
    for (int64_t a = A16; a < A; ++a) s += v[a] * kernel::Tanh(q[a] + kj[a]);
    out[j] = s;
  }
}

// The gradients of one query row's scores: with t = tanh(q + k_j) recomputed, dv += g_j t and
// dq, dk_j += g_j v (1 - t^2). dk and dv belong to the caller's batch element (no other thread writes them).
CADENZA_VECTOR_CLONES
void AdditiveRowBackward(const float* q, const float* k, const float* v, int64_t A, int64_t j0, int64_t j1, const float* g,
                         float* dq, float* dk, float* dv) {
  const int64_t A16 = A / 16 * 16;
  for (int64_t j = j0; j < j1; ++j) {
    const float gj = g[j];
    if (gj == 0.0f) continue;  // a key the softmax gave no gradient (nothing to add)
    const float* kj = k + j * A;
    float* dkj = dk + j * A;
    const V16 gv = Splat(gj);
    for (int64_t a = 0; a < A16; a += 16) {
      const V16 t = TanhV(Load(q + a) + Load(kj + a));
      Store(dv + a, Load(dv + a) + gv * t);
      const V16 pre = gv * Load(v + a) * (1.0f - t * t);
      Store(dq + a, Load(dq + a) + pre);
      Store(dkj + a, Load(dkj + a) + pre);
    }
    for (int64_t a = A16; a < A; ++a) {
      const float t = kernel::Tanh(q[a] + kj[a]);
      dv[a] += gj * t;
      const float pre = gj * v[a] * (1.0f - t * t);
      dq[a] += pre;
      dkj[a] += pre;
    }
  }
}

struct AdditiveScores : public torch::autograd::Function<AdditiveScores> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in, const torch::Tensor& k_in, const torch::Tensor& v_in,
                               int64_t window) {
    TORCH_CHECK(q_in.dim() == 3 && k_in.sizes() == q_in.sizes() && v_in.dim() == 1 && v_in.size(0) == q_in.size(2),
                "AdditiveAttentionScores: q and k must be [B, T, A] and v [A]");
    TORCH_CHECK(q_in.scalar_type() == torch::kFloat32 && q_in.is_cpu(), "AdditiveAttentionScores: float32 CPU tensors only");
    const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    ctx->save_for_backward({q, k, v});
    ctx->saved_data["window"] = window;
    const int64_t B = q.size(0), T = q.size(1), A = q.size(2);
    auto scores = torch::full({B, T, T}, -std::numeric_limits<float>::infinity(), q.options());
    const float *pq = q.data_ptr<float>(), *pk = k.data_ptr<float>(), *pv = v.data_ptr<float>();
    float* ps = scores.data_ptr<float>();
    // Rows are independent: split (b, i) pairs across threads; grain ~ a few rows of work each.
    at::parallel_for(0, B * T, 8, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / T, i = r % T;
        AdditiveRowScores(pq + r * A, pk + b * T * A, pv, A, FirstKeyOf(i, window), i + 1, ps + r * T);
      }
    });
    return scores;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2];
    const int64_t window = ctx->saved_data["window"].toInt();
    const int64_t B = q.size(0), T = q.size(1), A = q.size(2);
    const auto grad = grad_outputs[0].contiguous();
    auto dq = torch::zeros_like(q), dk = torch::zeros_like(k);
    auto dv_per_batch = torch::zeros({B, A}, v.options());  // summed below: threads never share an accumulator
    const float *pq = q.data_ptr<float>(), *pk = k.data_ptr<float>(), *pv = v.data_ptr<float>(), *pg = grad.data_ptr<float>();
    float *pdq = dq.data_ptr<float>(), *pdk = dk.data_ptr<float>(), *pdv = dv_per_batch.data_ptr<float>();
    // dk_j gathers from every later row of its batch element: one batch element per thread at a time.
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        for (int64_t i = 0; i < T; ++i) {
          const int64_t r = b * T + i;
          AdditiveRowBackward(pq + r * A, pk + b * T * A, pv, A, FirstKeyOf(i, window), i + 1, pg + r * T, pdq + r * A,
                              pdk + b * T * A, pdv + b * A);
        }
      }
    });
    return {dq, dk, dv_per_batch.sum(0), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor AdditiveAttentionScores(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window) {
  return AdditiveScores::apply(q, k, v, window);
}

}  // namespace cadenza
