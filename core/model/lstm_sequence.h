// One LSTM layer over a whole sequence as a single autograd node: fused cells, weight gradients in one GEMM.
#pragma once

#include <torch/torch.h>

namespace cadenza {

// x [T, B, In] from a zero state -> hidden states [T, B, H]; the weights of one torch::nn::LSTM layer
// (w_ih [4H, In], w_hh [4H, H], b_ih and b_hh [4H], gates in ATen's order i, f, g, o), same function.
// Why not torch::nn::LSTM: its backward runs two small GEMMs per time step (one of them a rank-B update of the
// whole W_hh gradient) plus a dozen elementwise nodes. Here each step runs one GEMM forward and one backward
// and a fused cell; the gradients of W_ih, W_hh and the biases are taken once over all steps (docs/models.md).
torch::Tensor LstmSequence(const torch::Tensor& x, const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                           const torch::Tensor& b_ih, const torch::Tensor& b_hh);

}  // namespace cadenza
