// x W^T + b that stays fast for a single row: shared by both model families' generation steps.
#pragma once

#include <torch/torch.h>

namespace cadenza {

// Generation with one sequence multiplies a single row by each weight matrix. Done as a [1, K] x [K, N] GEMM,
// OpenBLAS 0.3.21 packs the whole weight matrix on every call (sgemm_incopy was a third of generation time);
// addmv/mv read it once and are 2-2.5x faster for these sizes. Same math; used only when x holds one row.
inline bool OneRow(const torch::Tensor& x) { return x.numel() > 0 && x.numel() == x.size(-1); }

// x [..., K] (one row) W^T + b -> [..., N].
inline torch::Tensor RowAffine(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  auto row = x.reshape({-1});
  auto y = bias.defined() ? torch::addmv(bias, weight, row) : torch::mv(weight, row);
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return y.view(sizes);
}

// x W^T + b through at::linear, which runs [B, T, K] inputs as one addmm: the C++ frontend's nn::Linear runs
// them as matmul and then adds the bias in a second pass over the output (and its gradient in a third).
inline torch::Tensor Affine(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return OneRow(x) ? RowAffine(x, layer->weight, layer->bias) : at::linear(x, layer->weight, layer->bias);
}

}  // namespace cadenza
