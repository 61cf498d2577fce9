// Causal multi-head attention as one CPU kernel: only the unmasked half is computed, softmax and dropout fused.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace cadenza {

// True when CausalSelfAttention has a kernel for qkv [B, T, 3 * heads * Dh]: float32 on the CPU, Dh in
// {16, 32, 64, 128}. Otherwise the caller keeps the composed ATen path (baddbmm, softmax, dropout, bmm).
bool CausalAttentionSupports(const torch::Tensor& qkv, int64_t heads);

// qkv [B, T, 3D] as one Linear makes it (q, k, v side by side, each D = heads * Dh wide, head h at columns
// h * Dh) -> [B, T, D]: per head dropout(softmax(q k^T / sqrt(Dh) + causal mask)) v, heads side by side again.
// Dropout p on the attention probabilities when training uses FastDropout's counter-based mask over element
// (b * heads + h, i, j) of a [B * heads, T, T] tensor. Why not baddbmm + softmax + dropout + bmm: those compute
// and store the masked upper half too, walk the [B * heads, T, T] scores five times and need q, k, v split into
// contiguous heads and merged back (four copies each way); here each head's rows are computed in cache from
// qkv in place and only the lower-triangular probabilities are kept for the backward pass.
torch::Tensor CausalSelfAttention(const torch::Tensor& qkv, int64_t heads, double p, bool training);

// The same with the dropout seed given (tests rebuild the mask with DropoutScales).
torch::Tensor CausalSelfAttentionWithSeed(const torch::Tensor& qkv, int64_t heads, double p, uint64_t seed);

}  // namespace cadenza
