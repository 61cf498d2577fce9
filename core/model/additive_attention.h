// Bahdanau (additive) attention scores over past states without materialising [B, T, T, A].
#pragma once

#include <torch/torch.h>

namespace cadenza {

// scores[b, i, j] = v . tanh(q[b, i] + k[b, j]) for j in the causal window of i (i - window < j <= i; window 0 =
// all j <= i), -inf elsewhere. q, k: [B, T, A]; v: [A]. Forward and backward work in blocks of query rows
// whose temporary [B, rows, keys, A] stays about the size of the [B, T, T] result, so peak memory is that of
// dot attention plus a constant factor; backward recomputes the tanh instead of storing it.
torch::Tensor AdditiveAttentionScores(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window);

}  // namespace cadenza
