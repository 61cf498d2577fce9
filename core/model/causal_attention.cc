// Causal attention kernel: per head, blocks of 4 query rows against the keys up to the block's last row.
#include "core/model/causal_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/model/dropout.h"
#include "core/model/vector_math.h"

namespace cadenza {
namespace {

using kernel::Load;
using kernel::Splat;
using kernel::Store;
using kernel::V16;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

constexpr int kRows = 8;  // query rows per block: 8 x (Dh / 16) accumulators stay in registers

// Row i of the packed lower-triangular probabilities starts here (row i holds keys 0..i).
inline int64_t RowStart(int64_t i) { return i * (i + 1) / 2; }

struct Head {
  int64_t T, Tp;           // sequence length, and rounded up to 16
  float scale;             // 1 / sqrt(Dh)
  bool dropout;            // training with p > 0
  uint32_t threshold;      // kernel::DropThreshold(p)
  float keep_scale;        // 1 / (1 - p)
  uint64_t seed;
  int64_t ld_in, ld_out;   // row strides of q, k, v (and their gradients) and of the output (and its gradient)
};

// Per-thread scratch: K or V in transposed panels, two [kRows, Tp] blocks and two rows.
struct Scratch {
  std::vector<float> transposed, block_a, block_b, drop, row;
  void Size(int64_t dh, int64_t tp) {
    transposed.assign(dh * tp, 0.0f);
    block_a.resize(kRows * tp);
    block_b.resize(kRows * tp);
    drop.resize(tp);
    row.resize(tp);
  }
};

// dst = src [T, Dh] transposed in 16-key panels: panel c is [Dh, 16] contiguous (keys 16c..16c+15), zero-padded
// past T. Panels keep the kernel's loads within 2 KB; a plain [Dh, T] transpose strides by T floats, and at
// T = 1024 those 4 KB strides all land in the same L1 set.
template <int NV>
__attribute__((always_inline)) inline void PackPanels(const float* src, int64_t ld, int64_t T, int64_t Tp, float* dst) {
  constexpr int Dh = 16 * NV;
  for (int64_t j = 0; j < Tp; ++j) {
    float* panel = dst + (j / 16) * Dh * 16 + (j % 16);
    if (j < T) {
      for (int d = 0; d < Dh; ++d) panel[d * 16] = src[j * ld + d];
    } else {
      for (int d = 0; d < Dh; ++d) panel[d * 16] = 0.0f;
    }
  }
}

// out [kRows, 16 * chunks] = a rows i0.. [kRows, Dh] x the first `chunks` panels of b. Rows past T repeat the
// last row; their results are not used.
template <int NV>
__attribute__((always_inline)) inline void RowsTimesPanels(const float* a, int64_t lda, int64_t i0, int64_t T,
                                                           const float* panels, int64_t Tp, int64_t chunks, float* out) {
  constexpr int Dh = 16 * NV;
  const float* row[kRows];
  for (int r = 0; r < kRows; ++r) row[r] = a + std::min<int64_t>(i0 + r, T - 1) * lda;
  for (int64_t c = 0; c < chunks; ++c) {
    const float* panel = panels + c * Dh * 16;
    V16 acc[kRows] = {};
    for (int d = 0; d < Dh; ++d) {
      const V16 b = Load(panel + d * 16);
      for (int r = 0; r < kRows; ++r) acc[r] += row[r][d] * b;
    }
    for (int r = 0; r < kRows; ++r) Store(out + r * Tp + c * 16, acc[r]);
  }
}

// out rows [rows, Dh] (=, not +=) = w [kRows, Tp] (first n columns) x b [n, Dh]; ldb, ldo: row strides.
template <int NV>
__attribute__((always_inline)) inline void WeightsTimesRows(const float* w, int64_t Tp, int64_t n, const float* b,
                                                            int64_t ldb, int rows, float* out, int64_t ldo,
                                                            float out_scale) {
  V16 acc[kRows][NV] = {};
  for (int64_t j = 0; j < n; ++j) {
    V16 bj[NV];
    for (int u = 0; u < NV; ++u) bj[u] = Load(b + j * ldb + 16 * u);
    for (int r = 0; r < kRows; ++r) {
      const float wr = w[r * Tp + j];
      for (int u = 0; u < NV; ++u) acc[r][u] += wr * bj[u];
    }
  }
  for (int r = 0; r < rows; ++r)
    for (int u = 0; u < NV; ++u) Store(out + r * ldo + 16 * u, acc[r][u] * out_scale);
}

// acc rows j < n of [n, Dh] += w[r, j] * a row (i0 + r), over the block's rows: the transposed products
// (dV += P^T dO, dK += dS^T Q).
template <int NV>
__attribute__((always_inline)) inline void AccumulateTransposed(const float* w, int64_t Tp, int64_t n, const float* a,
                                                                int64_t lda, int64_t i0, int rows, float* acc,
                                                                int64_t ldacc, float acc_scale) {
  V16 ar[kRows][NV] = {};
  for (int r = 0; r < rows; ++r)
    for (int u = 0; u < NV; ++u) ar[r][u] = Load(a + (i0 + r) * lda + 16 * u) * acc_scale;
  for (int64_t j = 0; j < n; ++j) {
    V16 sum[NV];
    for (int u = 0; u < NV; ++u) sum[u] = Load(acc + j * ldacc + 16 * u);
    for (int r = 0; r < kRows; ++r) {
      const float wr = w[r * Tp + j];
      for (int u = 0; u < NV; ++u) sum[u] += wr * ar[r][u];
    }
    for (int u = 0; u < NV; ++u) Store(acc + j * ldacc + 16 * u, sum[u]);
  }
}

// drop[j] = keep_scale or 0 for keys j < n of query row i of head bh (element (bh, i, j) of [BH, T, T]).
// Plain arguments and __restrict: with the Head fields read through a reference the loop would not vectorize.
__attribute__((always_inline)) inline void DropRowKernel(uint64_t seed, uint64_t base, uint32_t threshold,
                                                         float keep_scale, int64_t n, float* __restrict drop) {
  for (int64_t j = 0; j < n; ++j)
    drop[j] = kernel::Kept(seed, base + static_cast<uint64_t>(j), threshold) ? keep_scale : 0.0f;
}
__attribute__((always_inline)) inline void DropRow(const Head& h, int64_t bh, int64_t i, int64_t n, float* drop) {
  DropRowKernel(h.seed, static_cast<uint64_t>((bh * h.T + i) * h.T), h.threshold, h.keep_scale, n, drop);
}

template <int NV>
__attribute__((always_inline)) inline void ForwardHeadT(const Head& h, int64_t bh, const float* q, const float* k,
                                                        const float* v, float* out, float* probs, Scratch& s) {
  const int64_t T = h.T, Tp = h.Tp;
  PackPanels<NV>(k, h.ld_in, T, Tp, s.transposed.data());
  float* scores = s.block_a.data();
  float* weights = s.block_b.data();
  for (int64_t i0 = 0; i0 < T; i0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, T - i0));
    const int64_t keys = i0 + rows, chunks = (keys + 15) / 16;
    RowsTimesPanels<NV>(q, h.ld_in, i0, T, s.transposed.data(), Tp, chunks, scores);
    for (int r = 0; r < kRows; ++r) {
      float* w = weights + r * Tp;
      if (r >= rows) {
        std::fill(w, w + keys, 0.0f);
        continue;
      }
      const int64_t i = i0 + r, n = i + 1;
      float* srow = scores + r * Tp;
      for (int64_t j = n; j < chunks * 16; ++j) srow[j] = -std::numeric_limits<float>::infinity();
      V16 vmax = Splat(-std::numeric_limits<float>::infinity());
      for (int64_t c = 0; c < chunks; ++c) {
        const V16 x = Load(srow + c * 16);
        vmax = x > vmax ? x : vmax;
      }
      const float m = kernel::Max(vmax) * h.scale;
      V16 vsum = {};
      for (int64_t c = 0; c < chunks; ++c) {
        const V16 e = kernel::Exp(Load(srow + c * 16) * h.scale - m);
        Store(srow + c * 16, e);
        vsum += e;
      }
      const float inv = 1.0f / kernel::Sum(vsum);
      float* drop = s.drop.data();
      if (h.dropout) DropRow(h, bh, i, n, drop);
      for (int64_t c = 0; c < chunks; ++c) {  // past key i the exponentials are 0, so whole chunks are safe
        const V16 pc = Load(srow + 16 * c) * inv;
        Store(srow + 16 * c, pc);
        Store(w + 16 * c, h.dropout ? pc * Load(drop + 16 * c) : pc);
      }
      if (probs != nullptr) std::copy(srow, srow + n, probs + RowStart(i));
    }
    WeightsTimesRows<NV>(weights, Tp, keys, v, h.ld_in, rows, out + i0 * h.ld_out, h.ld_out, 1.0f);
  }
}

template <int NV>
__attribute__((always_inline)) inline void BackwardHeadT(const Head& h, int64_t bh, const float* q, const float* k,
                                                         const float* v, const float* dout, const float* probs,
                                                         float* dq, float* dk, float* dv, Scratch& s) {
  constexpr int Dh = 16 * NV;
  const int64_t T = h.T, Tp = h.Tp;
  PackPanels<NV>(v, h.ld_in, T, Tp, s.transposed.data());
  float* grads = s.block_a.data();    // dP after dropout, then dS (the scores' gradient)
  float* weights = s.block_b.data();  // the dropped-out probabilities
  for (int64_t j = 0; j < T; ++j) {
    std::fill(dk + j * h.ld_in, dk + j * h.ld_in + Dh, 0.0f);
    std::fill(dv + j * h.ld_in, dv + j * h.ld_in + Dh, 0.0f);
  }
  for (int64_t i0 = 0; i0 < T; i0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, T - i0));
    const int64_t keys = i0 + rows, chunks = (keys + 15) / 16;
    RowsTimesPanels<NV>(dout, h.ld_out, i0, T, s.transposed.data(), Tp, chunks, grads);
    for (int r = 0; r < kRows; ++r) {
      float* g = grads + r * Tp;
      float* w = weights + r * Tp;
      if (r >= rows) {
        std::fill(g, g + keys, 0.0f);
        std::fill(w, w + keys, 0.0f);
        continue;
      }
      const int64_t i = i0 + r, n = i + 1, span = chunks * 16;
      float* p = s.row.data();  // P_i, zero past key i so that whole 16-key chunks can be used below
      std::copy(probs + RowStart(i), probs + RowStart(i) + n, p);
      std::fill(p + n, p + span, 0.0f);
      float* drop = s.drop.data();
      if (h.dropout) DropRow(h, bh, i, n, drop);
      V16 dot = {};  // sum_j dP_ij P_ij: the softmax backward's row term
      for (int64_t c = 0; c < chunks; ++c) {
        const V16 pc = Load(p + 16 * c), dc = h.dropout ? Load(drop + 16 * c) : Splat(1.0f);
        const V16 gc = Load(g + 16 * c) * dc;  // dP: the gradient through the dropout mask
        Store(g + 16 * c, gc);
        Store(w + 16 * c, pc * dc);
        dot += gc * pc;
      }
      const float row_dot = kernel::Sum(dot);
      for (int64_t c = 0; c < chunks; ++c) Store(g + 16 * c, Load(p + 16 * c) * (Load(g + 16 * c) - row_dot));
    }
    AccumulateTransposed<NV>(weights, Tp, keys, dout, h.ld_out, i0, rows, dv, h.ld_in, 1.0f);
    WeightsTimesRows<NV>(grads, Tp, keys, k, h.ld_in, rows, dq + i0 * h.ld_in, h.ld_in, h.scale);
    AccumulateTransposed<NV>(grads, Tp, keys, q, h.ld_in, i0, rows, dk, h.ld_in, h.scale);
  }
}

CADENZA_VECTOR_CLONES
void ForwardHead(int nv, const Head& h, int64_t bh, const float* q, const float* k, const float* v, float* out,
                 float* probs, Scratch& s) {
  switch (nv) {
    case 1: return ForwardHeadT<1>(h, bh, q, k, v, out, probs, s);
    case 2: return ForwardHeadT<2>(h, bh, q, k, v, out, probs, s);
    case 4: return ForwardHeadT<4>(h, bh, q, k, v, out, probs, s);
    case 8: return ForwardHeadT<8>(h, bh, q, k, v, out, probs, s);
  }
}

CADENZA_VECTOR_CLONES
void BackwardHead(int nv, const Head& h, int64_t bh, const float* q, const float* k, const float* v, const float* dout,
                  const float* probs, float* dq, float* dk, float* dv, Scratch& s) {
  switch (nv) {
    case 1: return BackwardHeadT<1>(h, bh, q, k, v, dout, probs, dq, dk, dv, s);
    case 2: return BackwardHeadT<2>(h, bh, q, k, v, dout, probs, dq, dk, dv, s);
    case 4: return BackwardHeadT<4>(h, bh, q, k, v, dout, probs, dq, dk, dv, s);
    case 8: return BackwardHeadT<8>(h, bh, q, k, v, dout, probs, dq, dk, dv, s);
  }
}

Head MakeHead(int64_t T, int64_t dh, int64_t d_model, double p, uint64_t seed) {
  Head h;
  h.T = T;
  h.Tp = (T + 15) / 16 * 16;
  h.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh)));
  h.dropout = p > 0.0;
  h.threshold = kernel::DropThreshold(p);
  h.keep_scale = static_cast<float>(1.0 / (1.0 - p));
  h.seed = seed;
  h.ld_in = 3 * d_model;
  h.ld_out = d_model;
  return h;
}

// Head bh = b * heads + hh reads q, k, v at columns hh * Dh of the three D-wide thirds of qkv's rows and
// writes its output at columns hh * Dh of out's rows: no split, permute or merge copies around the kernel.
struct CausalAttentionFunction : public torch::autograd::Function<CausalAttentionFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& qkv_in, int64_t heads, double p, int64_t seed,
                               bool keep) {
    auto qkv = qkv_in.contiguous();
    const int64_t B = qkv.size(0), T = qkv.size(1), D = qkv.size(2) / 3, Dh = D / heads, BH = B * heads;
    const Head h = MakeHead(T, Dh, D, p, static_cast<uint64_t>(seed));
    auto out = torch::empty({B, T, D}, qkv.options());
    // Without a backward pass to come (inference, probes) the probabilities are not kept: memory O(T), not O(T^2).
    auto probs = keep ? torch::empty({BH, RowStart(T)}, qkv.options()) : torch::Tensor();
    const float* in = qkv.data_ptr<float>();
    float* po = out.data_ptr<float>();
    float* pp = keep ? probs.data_ptr<float>() : nullptr;
    at::parallel_for(0, BH, 1, [&](int64_t begin, int64_t end) {
      Scratch s;
      s.Size(Dh, h.Tp);
      for (int64_t bh = begin; bh < end; ++bh) {
        const float* q = in + (bh / heads) * T * 3 * D + (bh % heads) * Dh;
        ForwardHead(static_cast<int>(Dh / 16), h, bh, q, q + D, q + 2 * D,
                    po + (bh / heads) * T * D + (bh % heads) * Dh, pp ? pp + bh * RowStart(T) : nullptr, s);
      }
    });
    ctx->save_for_backward({qkv});
    ctx->saved_data["probs"] = probs;
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto qkv = ctx->get_saved_variables()[0];
    const auto probs = ctx->saved_data["probs"].toTensor();
    TORCH_CHECK(probs.defined(), "CausalSelfAttention: backward without saved probabilities (forward ran without grad)");
    const int64_t heads = ctx->saved_data["heads"].toInt();
    const auto dout = grad_outputs[0].contiguous();
    const int64_t B = qkv.size(0), T = qkv.size(1), D = qkv.size(2) / 3, Dh = D / heads, BH = B * heads;
    const Head h = MakeHead(T, Dh, D, ctx->saved_data["p"].toDouble(), static_cast<uint64_t>(ctx->saved_data["seed"].toInt()));
    auto dqkv = torch::empty_like(qkv);  // every element is written: dq by rows, dk and dv zeroed then summed
    const float *in = qkv.data_ptr<float>(), *pdo = dout.data_ptr<float>(), *pp = probs.data_ptr<float>();
    float* pd = dqkv.data_ptr<float>();
    at::parallel_for(0, BH, 1, [&](int64_t begin, int64_t end) {
      Scratch s;
      s.Size(Dh, h.Tp);
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t o = (bh / heads) * T * 3 * D + (bh % heads) * Dh;
        BackwardHead(static_cast<int>(Dh / 16), h, bh, in + o, in + o + D, in + o + 2 * D,
                     pdo + (bh / heads) * T * D + (bh % heads) * Dh, pp + bh * RowStart(T), pd + o, pd + o + D,
                     pd + o + 2 * D, s);
      }
    });
    return {dqkv, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool CausalAttentionSupports(const torch::Tensor& qkv, int64_t heads) {
  if (qkv.dim() != 3 || qkv.size(2) % (3 * heads) != 0) return false;
  const int64_t dh = qkv.size(2) / 3 / heads;
  return qkv.scalar_type() == torch::kFloat32 && qkv.device().is_cpu() && (dh == 16 || dh == 32 || dh == 64 || dh == 128);
}

torch::Tensor CausalSelfAttentionWithSeed(const torch::Tensor& qkv, int64_t heads, double p, uint64_t seed) {
  TORCH_CHECK(CausalAttentionSupports(qkv, heads), "CausalSelfAttention: needs float32 CPU qkv [B, T, 3 * heads * Dh] with Dh in "
              "{16, 32, 64, 128}, got ", qkv.sizes(), " ", qkv.scalar_type(), " for ", heads, " heads");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "attention dropout must be in [0, 1), got ", p);
  // Decided here: autograd runs forward() with gradients off.
  const bool keep_probabilities = torch::GradMode::is_enabled() && qkv.requires_grad();
  return CausalAttentionFunction::apply(qkv, heads, p, static_cast<int64_t>(seed), keep_probabilities);
}

torch::Tensor CausalSelfAttention(const torch::Tensor& qkv, int64_t heads, double p, bool training) {
  const bool drop = training && p > 0.0;
  return CausalSelfAttentionWithSeed(qkv, heads, drop ? p : 0.0, drop ? DrawDropoutSeed() : 0);
}

}  // namespace cadenza
