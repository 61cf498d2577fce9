// Bahdanau (additive) attention scores over past states without materialising [B, T, T, A].
#pragma once

#include <torch/torch.h>

namespace cadenza {

// scores[b, i, j] = v . tanh(q[b, i] + k[b, j]) for j in the causal window of i (i - window < j <= i; window 0 =
// all j <= i), -inf elsewhere. q, k: [B, T, A] float32; v: [A]. One fused CPU kernel: each score is summed in
// registers, so no [B, rows, keys, A] temporary exists (memory: the [B, T, T] result), and only valid pairs are
// computed; backward recomputes the tanh instead of storing it. tanh comes from the kernels' vectorised exp
// (absolute error ~1e-7; torch::tanh's is ~1 ulp).
torch::Tensor AdditiveAttentionScores(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window);

}  // namespace cadenza
