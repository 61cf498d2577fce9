// Causal attention kernel: per head, blocks of 4 query rows against the keys up to the block's last row.
#include "core/model/causal_attention.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <vector>

#include "core/model/dropout.h"
#include "core/model/mixed_precision.h"
#include "core/model/precision.h"
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
// bf16: K or V panels and rows as bf16 pairs (uint32 each), the block's rows and weights as pairs.
struct Scratch {
  std::vector<float> transposed, block_a, block_b, drop, row;
  std::vector<uint32_t> panels16, rows16, block16, weights16;
  void Size(int64_t dh, int64_t tp, bool bf16 = false) {
    if (!bf16) transposed.assign(dh * tp, 0.0f);
    block_a.resize(kRows * tp);
    block_b.resize(kRows * tp);
    drop.resize(tp);
    row.resize(tp);
    if (bf16) {
      panels16.assign(dh / 2 * tp, 0u);
      rows16.assign(tp / 2 * dh, 0u);
      block16.assign(kRows * dh / 2, 0u);
      weights16.assign(kRows / 2 * tp, 0u);
    }
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

// Scores of query rows i0.. (kRows of them, `rows` real) -> probabilities (kept in `probs` when given) and the
// dropped-out weights the product with V takes; rows past T get zero weights.
__attribute__((always_inline)) inline void SoftmaxRows(const Head& h, int64_t bh, int64_t i0, int rows, int64_t chunks,
                                                       float* scores, float* weights, float* probs, Scratch& s) {
  const int64_t Tp = h.Tp, keys = i0 + rows;
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
    SoftmaxRows(h, bh, i0, rows, chunks, scores, weights, probs, s);
    WeightsTimesRows<NV>(weights, Tp, keys, v, h.ld_in, rows, out + i0 * h.ld_out, h.ld_out, 1.0f);
  }
}

// dP of query rows i0.. (in `grads`) -> dS, the scores' gradient (in place), and the dropped-out probabilities (in
// `weights`) the dV product takes; rows past T get zeros.
__attribute__((always_inline)) inline void SoftmaxBackwardRows(const Head& h, int64_t bh, int64_t i0, int rows, int64_t chunks,
                                                               const float* probs, float* grads, float* weights, Scratch& s) {
  const int64_t Tp = h.Tp, keys = i0 + rows;
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
    SoftmaxBackwardRows(h, bh, i0, rows, chunks, probs, grads, weights, s);
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


// ------------------------------------------------------------------------------------------------------------------
// bf16 products (train.precision: bf16, on CPUs with AVX512_BF16): the same blocks, the same softmax and dropout in
// fp32, but the six products take bf16 inputs through vdpbf16ps (two bf16 products per fp32 lane and instruction,
// accumulated in fp32). vdpbf16ps pairs neighbouring elements, so each operand is laid out as pairs along the
// summed index: K or V panels pair dimensions d, 2d+1 of a key; V or K rows pair keys 2j, 2j+1; the block's
// rows pair query rows 2r, 2r+1 for the transposed products.

#define CADENZA_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,avx2")))

// Round to nearest even (finite inputs; scores, probabilities and activations are).
__attribute__((always_inline)) inline uint32_t Bf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
// Two values as one 32-bit lane of bf16 pairs: `lo` is the even element.
__attribute__((always_inline)) inline uint32_t Pair(float lo, float hi) { return Bf16Bits(lo) | (Bf16Bits(hi) << 16); }

// dst: panel c (keys 16c..16c+15) is [Dh/2][16] lanes, lane (d2, j) = key 16c+j's dimensions 2 d2, 2 d2 + 1;
// keys past T are zero.
template <int NV>
__attribute__((always_inline)) inline void PackPanelsBf16(const float* src, int64_t ld, int64_t T, int64_t Tp, uint32_t* dst) {
  constexpr int Dh = 16 * NV;
  for (int64_t j = 0; j < Tp; ++j) {
    uint32_t* panel = dst + (j / 16) * (Dh / 2) * 16 + (j % 16);
    const float* row = src + j * ld;
    for (int d2 = 0; d2 < Dh / 2; ++d2) panel[d2 * 16] = j < T ? Pair(row[2 * d2], row[2 * d2 + 1]) : 0u;
  }
}

// dst [Tp/2][Dh] lanes: lane (j2, d) = dimension d of keys 2 j2 and 2 j2 + 1 (zero past T).
template <int NV>
__attribute__((always_inline)) inline void PackRowPairsBf16(const float* src, int64_t ld, int64_t T, int64_t Tp, uint32_t* dst) {
  constexpr int Dh = 16 * NV;
  for (int64_t j2 = 0; j2 < Tp / 2; ++j2) {
    const float* a = src + 2 * j2 * ld;
    const float* b = a + ld;
    const bool has_a = 2 * j2 < T, has_b = 2 * j2 + 1 < T;
    for (int d = 0; d < Dh; ++d) dst[j2 * Dh + d] = Pair(has_a ? a[d] : 0.0f, has_b ? b[d] : 0.0f);
  }
}

// out [kRows, 16 * chunks] = a rows i0.. x the panels (as RowsTimesPanels).
template <int NV>
CADENZA_BF16_TARGET __attribute__((always_inline)) inline void RowsTimesPanelsBf16(const float* a, int64_t lda, int64_t i0,
                                                                                  int64_t T, const uint32_t* panels,
                                                                                  int64_t Tp, int64_t chunks, float* out,
                                                                                  uint32_t* pairs) {
  constexpr int Dh = 16 * NV;
  for (int r = 0; r < kRows; ++r) {
    const float* row = a + std::min<int64_t>(i0 + r, T - 1) * lda;
    for (int d2 = 0; d2 < Dh / 2; ++d2) pairs[r * (Dh / 2) + d2] = Pair(row[2 * d2], row[2 * d2 + 1]);
  }
  for (int64_t c = 0; c < chunks; ++c) {
    const uint32_t* panel = panels + c * (Dh / 2) * 16;
    __m512 acc[kRows];
    for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
    for (int d2 = 0; d2 < Dh / 2; ++d2) {
      const __m512bh b = (__m512bh)_mm512_loadu_si512(panel + d2 * 16);
      for (int r = 0; r < kRows; ++r)
        acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_set1_epi32(static_cast<int>(pairs[r * (Dh / 2) + d2])), b);
    }
    for (int r = 0; r < kRows; ++r) _mm512_storeu_ps(out + r * Tp + c * 16, acc[r]);
  }
}

// out rows [rows, Dh] = w [kRows, Tp] (first n columns) x row pairs (as WeightsTimesRows).
template <int NV>
CADENZA_BF16_TARGET __attribute__((always_inline)) inline void WeightsTimesRowsBf16(const float* w, int64_t Tp, int64_t n,
                                                                                   const uint32_t* row_pairs, int rows,
                                                                                   float* out, int64_t ldo, float out_scale,
                                                                                   uint32_t* pairs) {
  constexpr int Dh = 16 * NV;
  const int64_t n2 = (n + 1) / 2, half = Tp / 2;
  for (int r = 0; r < kRows; ++r) {
    const float* wr = w + r * Tp;
    for (int64_t j2 = 0; j2 < n2; ++j2) pairs[r * half + j2] = Pair(wr[2 * j2], 2 * j2 + 1 < n ? wr[2 * j2 + 1] : 0.0f);
  }
  __m512 acc[kRows][NV];
  for (int r = 0; r < kRows; ++r)
    for (int u = 0; u < NV; ++u) acc[r][u] = _mm512_setzero_ps();
  for (int64_t j2 = 0; j2 < n2; ++j2) {
    __m512bh b[NV];
    for (int u = 0; u < NV; ++u) b[u] = (__m512bh)_mm512_loadu_si512(row_pairs + j2 * Dh + 16 * u);
    for (int r = 0; r < kRows; ++r) {
      const __m512bh wr = (__m512bh)_mm512_set1_epi32(static_cast<int>(pairs[r * half + j2]));
      for (int u = 0; u < NV; ++u) acc[r][u] = _mm512_dpbf16_ps(acc[r][u], wr, b[u]);
    }
  }
  const __m512 scale = _mm512_set1_ps(out_scale);
  for (int r = 0; r < rows; ++r)
    for (int u = 0; u < NV; ++u) _mm512_storeu_ps(out + r * ldo + 16 * u, _mm512_mul_ps(acc[r][u], scale));
}

// acc rows j < n of [n, Dh] += sum over the block's rows r of w[r, j] * acc_scale * a row (i0 + r) (as
// AccumulateTransposed): the rows paired (2 r2, 2 r2 + 1), the weights paired alike per key.
template <int NV>
CADENZA_BF16_TARGET __attribute__((always_inline)) inline void AccumulateTransposedBf16(
    const float* w, int64_t Tp, int64_t n, const float* a, int64_t lda, int64_t i0, int rows, float* acc, int64_t ldacc,
    float acc_scale, uint32_t* row_pairs, uint32_t* weight_pairs) {
  constexpr int Dh = 16 * NV, R2 = kRows / 2;
  for (int r2 = 0; r2 < R2; ++r2) {
    const int r = 2 * r2;
    for (int d = 0; d < Dh; ++d) {
      const float lo = r < rows ? a[(i0 + r) * lda + d] * acc_scale : 0.0f;
      const float hi = r + 1 < rows ? a[(i0 + r + 1) * lda + d] * acc_scale : 0.0f;
      row_pairs[r2 * Dh + d] = Pair(lo, hi);
    }
  }
  for (int64_t j = 0; j < n; ++j)
    for (int r2 = 0; r2 < R2; ++r2) weight_pairs[j * R2 + r2] = Pair(w[2 * r2 * Tp + j], w[(2 * r2 + 1) * Tp + j]);
  __m512bh ar[R2][NV];
  for (int r2 = 0; r2 < R2; ++r2)
    for (int u = 0; u < NV; ++u) ar[r2][u] = (__m512bh)_mm512_loadu_si512(row_pairs + r2 * Dh + 16 * u);
  for (int64_t j = 0; j < n; ++j) {
    __m512 sum[NV];
    for (int u = 0; u < NV; ++u) sum[u] = _mm512_loadu_ps(acc + j * ldacc + 16 * u);
    for (int r2 = 0; r2 < R2; ++r2) {
      const __m512bh wj = (__m512bh)_mm512_set1_epi32(static_cast<int>(weight_pairs[j * R2 + r2]));
      for (int u = 0; u < NV; ++u) sum[u] = _mm512_dpbf16_ps(sum[u], wj, ar[r2][u]);
    }
    for (int u = 0; u < NV; ++u) _mm512_storeu_ps(acc + j * ldacc + 16 * u, sum[u]);
  }
}

template <int NV>
CADENZA_BF16_TARGET __attribute__((always_inline)) inline void ForwardHeadBf16T(const Head& h, int64_t bh, const float* q,
                                                                               const float* k, const float* v, float* out,
                                                                               float* probs, Scratch& s) {
  const int64_t T = h.T, Tp = h.Tp;
  PackPanelsBf16<NV>(k, h.ld_in, T, Tp, s.panels16.data());
  PackRowPairsBf16<NV>(v, h.ld_in, T, Tp, s.rows16.data());
  float* scores = s.block_a.data();
  float* weights = s.block_b.data();
  for (int64_t i0 = 0; i0 < T; i0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, T - i0));
    const int64_t keys = i0 + rows, chunks = (keys + 15) / 16;
    RowsTimesPanelsBf16<NV>(q, h.ld_in, i0, T, s.panels16.data(), Tp, chunks, scores, s.block16.data());
    SoftmaxRows(h, bh, i0, rows, chunks, scores, weights, probs, s);
    WeightsTimesRowsBf16<NV>(weights, Tp, keys, s.rows16.data(), rows, out + i0 * h.ld_out, h.ld_out, 1.0f, s.weights16.data());
  }
}

template <int NV>
CADENZA_BF16_TARGET __attribute__((always_inline)) inline void BackwardHeadBf16T(const Head& h, int64_t bh, const float* q,
                                                                                const float* k, const float* v,
                                                                                const float* dout, const float* probs,
                                                                                float* dq, float* dk, float* dv, Scratch& s) {
  constexpr int Dh = 16 * NV;
  const int64_t T = h.T, Tp = h.Tp;
  PackPanelsBf16<NV>(v, h.ld_in, T, Tp, s.panels16.data());
  PackRowPairsBf16<NV>(k, h.ld_in, T, Tp, s.rows16.data());
  float* grads = s.block_a.data();
  float* weights = s.block_b.data();
  for (int64_t j = 0; j < T; ++j) {
    std::fill(dk + j * h.ld_in, dk + j * h.ld_in + Dh, 0.0f);
    std::fill(dv + j * h.ld_in, dv + j * h.ld_in + Dh, 0.0f);
  }
  for (int64_t i0 = 0; i0 < T; i0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, T - i0));
    const int64_t keys = i0 + rows, chunks = (keys + 15) / 16;
    RowsTimesPanelsBf16<NV>(dout, h.ld_out, i0, T, s.panels16.data(), Tp, chunks, grads, s.block16.data());
    SoftmaxBackwardRows(h, bh, i0, rows, chunks, probs, grads, weights, s);
    AccumulateTransposedBf16<NV>(weights, Tp, keys, dout, h.ld_out, i0, rows, dv, h.ld_in, 1.0f, s.block16.data(), s.weights16.data());
    WeightsTimesRowsBf16<NV>(grads, Tp, keys, s.rows16.data(), rows, dq + i0 * h.ld_in, h.ld_in, h.scale, s.weights16.data());
    AccumulateTransposedBf16<NV>(grads, Tp, keys, q, h.ld_in, i0, rows, dk, h.ld_in, h.scale, s.block16.data(), s.weights16.data());
  }
}

CADENZA_BF16_TARGET
void ForwardHeadBf16(int nv, const Head& h, int64_t bh, const float* q, const float* k, const float* v, float* out,
                     float* probs, Scratch& s) {
  switch (nv) {
    case 1: return ForwardHeadBf16T<1>(h, bh, q, k, v, out, probs, s);
    case 2: return ForwardHeadBf16T<2>(h, bh, q, k, v, out, probs, s);
    case 4: return ForwardHeadBf16T<4>(h, bh, q, k, v, out, probs, s);
    case 8: return ForwardHeadBf16T<8>(h, bh, q, k, v, out, probs, s);
  }
}

CADENZA_BF16_TARGET
void BackwardHeadBf16(int nv, const Head& h, int64_t bh, const float* q, const float* k, const float* v, const float* dout,
                      const float* probs, float* dq, float* dk, float* dv, Scratch& s) {
  switch (nv) {
    case 1: return BackwardHeadBf16T<1>(h, bh, q, k, v, dout, probs, dq, dk, dv, s);
    case 2: return BackwardHeadBf16T<2>(h, bh, q, k, v, dout, probs, dq, dk, dv, s);
    case 4: return BackwardHeadBf16T<4>(h, bh, q, k, v, dout, probs, dq, dk, dv, s);
    case 8: return BackwardHeadBf16T<8>(h, bh, q, k, v, dout, probs, dq, dk, dv, s);
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
                               bool keep, bool bf16) {
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
      s.Size(Dh, h.Tp, bf16);
      const auto head = bf16 ? ForwardHeadBf16 : ForwardHead;
      for (int64_t bh = begin; bh < end; ++bh) {
        const float* q = in + (bh / heads) * T * 3 * D + (bh % heads) * Dh;
        head(static_cast<int>(Dh / 16), h, bh, q, q + D, q + 2 * D, po + (bh / heads) * T * D + (bh % heads) * Dh,
             pp ? pp + bh * RowStart(T) : nullptr, s);
      }
    });
    ctx->save_for_backward({qkv});
    ctx->saved_data["probs"] = probs;
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["bf16"] = bf16;
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
    const bool bf16 = ctx->saved_data["bf16"].toBool();
    at::parallel_for(0, BH, 1, [&](int64_t begin, int64_t end) {
      Scratch s;
      s.Size(Dh, h.Tp, bf16);
      const auto head = bf16 ? BackwardHeadBf16 : BackwardHead;
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t o = (bh / heads) * T * 3 * D + (bh % heads) * Dh;
        head(static_cast<int>(Dh / 16), h, bh, in + o, in + o + D, in + o + 2 * D,
             pdo + (bh / heads) * T * D + (bh % heads) * Dh, pp + bh * RowStart(T), pd + o, pd + o + D, pd + o + 2 * D, s);
      }
    });
    return {dqkv, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
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
  // Inside a Bf16ComputeScope the products run in bf16 where the CPU has AVX512_BF16 (the trainer has checked
  // train.precision; elsewhere, e.g. AMX without AVX512_BF16, they stay fp32).
  static const bool has_avx512_bf16 = DetectCpuFeatures().avx512_bf16;
  const bool bf16 = Bf16Compute() && has_avx512_bf16;
  return CausalAttentionFunction::apply(qkv, heads, p, static_cast<int64_t>(seed), keep_probabilities, bf16);
}

torch::Tensor CausalSelfAttention(const torch::Tensor& qkv, int64_t heads, double p, bool training) {
  const bool drop = training && p > 0.0;
  return CausalSelfAttentionWithSeed(qkv, heads, drop ? p : 0.0, drop ? DrawDropoutSeed() : 0);
}

}  // namespace cadenza
