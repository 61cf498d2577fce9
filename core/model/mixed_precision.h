// bf16 mixed precision (train.precision: bf16), autocast-style: inside a Bf16ComputeScope the models' GEMMs and
// attention products take bf16 inputs (oneDNN accumulates in fp32) and hand fp32 results on; weights, their
// gradients, the optimizer state, LayerNorm, softmax, dropout, the recurrent cells and the loss stay fp32.
#pragma once

#include <torch/torch.h>

namespace cadenza {

namespace mixed_precision_detail {
inline bool& Flag() {
  thread_local bool bf16 = false;
  return bf16;
}
}  // namespace mixed_precision_detail

// True inside a Bf16ComputeScope(true) on this thread. Like at::autocast, a per-thread switch read when a forward
// pass runs; the custom autograd functions record it for their backward.
inline bool Bf16Compute() { return mixed_precision_detail::Flag(); }

class Bf16ComputeScope {
 public:
  explicit Bf16ComputeScope(bool on) : saved_(Bf16Compute()) { mixed_precision_detail::Flag() = on; }
  ~Bf16ComputeScope() { mixed_precision_detail::Flag() = saved_; }
  Bf16ComputeScope(const Bf16ComputeScope&) = delete;
  Bf16ComputeScope& operator=(const Bf16ComputeScope&) = delete;

 private:
  bool saved_;
};

inline torch::Tensor ToBf16(const torch::Tensor& t) { return t.to(torch::kBFloat16); }

// fp32 [..., K] x W[N, K]^T + b -> fp32 [..., N] through a bf16 GEMM. The bias is added in fp32 in the same pass
// that widens the product (a bf16 addmm with a bias ran 1.6-2.7x slower than the plain bf16 mm here). Recorded by
// autograd as the casts and ops they are: the backward GEMMs run in bf16 too, and the weight's gradient reaches
// the fp32 master weight through the cast's backward.
inline torch::Tensor Bf16Linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  auto y = torch::matmul(ToBf16(x), ToBf16(weight).t());
  return bias.defined() ? torch::add(bias, y) : y.to(torch::kFloat32);
}

// fp32 a [.., M, K] x b [.., K, N] -> fp32 through a bf16 matmul/bmm.
inline torch::Tensor Bf16Matmul(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::matmul(ToBf16(a), ToBf16(b)).to(torch::kFloat32);
}

}  // namespace cadenza
