// One GRU layer over a whole sequence as a single autograd node: fused cells, weight gradients in one GEMM.
#pragma once

#include <torch/torch.h>

namespace cadenza {

// x [T, B, In] from a zero state -> hidden states [T, B, H]; the weights of one torch::nn::GRU layer
// (w_ih [3H, In], w_hh [3H, H], b_ih and b_hh [3H], gates in ATen's order r, z, n), same function:
//   r = s(x W_ir + b_ir + h W_hr + b_hr), z = s(... z ...), n = tanh(x W_in + b_in + r * (h W_hn + b_hn)),
//   h' = (1 - z) n + z h.
// Why not torch::nn::GRU: its backward runs two small GEMMs per time step plus a dozen elementwise nodes. Here
// each step runs one GEMM forward and one backward and a fused cell; the gradients of W_ih, W_hh and the biases
// are taken once over all steps (as LstmSequence does; docs/models.md).
torch::Tensor GruSequence(const torch::Tensor& x, const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                          const torch::Tensor& b_ih, const torch::Tensor& b_hh);

}  // namespace cadenza
