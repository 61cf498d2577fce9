// relu(x W^T + b) as one autograd node: the feed-forward's first layer with bias and ReLU fused.
#pragma once

#include <torch/torch.h>

namespace cadenza {

// x [..., K], weight [N, K], bias [N] -> [..., N]. The same function as torch::relu(at::linear(x, w, b)).
// Why: addmm first copies the bias into every output row and then accumulates the GEMM on top, relu makes a
// second output, and its backward a third pass; here one GEMM, then bias + ReLU in place in one pass, and the
// backward masks the incoming gradient in one pass before its two GEMMs (docs/models.md). Inside a
// Bf16ComputeScope (mixed_precision.h) the three GEMMs take bf16 inputs; bias, ReLU, mask and outputs stay fp32.
torch::Tensor LinearRelu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace cadenza
