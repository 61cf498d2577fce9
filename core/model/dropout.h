// Dropout with a counter-based mask: one pass, both cores, and no mask kept for the backward pass.
#pragma once

#include <torch/torch.h>

namespace cadenza {

// Inverted dropout (kept values scaled by 1/(1-p)), the same distribution as torch::dropout.
// Why not torch::dropout: Debian's LibTorch (no MKL) fills the mask with bernoulli_ element by element on one
// thread, a quarter of a Transformer training step (docs/PERFORMANCE.md). Here element i is kept when a
// SplitMix64 hash of (seed, i) clears p; the seed is drawn from LibTorch's default CPU generator, so
// torch::manual_seed and the checkpointed generator state make runs and resumes reproducible, and the backward
// pass regenerates the mask from the seed instead of storing it. Identity when !training or p == 0.
torch::Tensor FastDropout(const torch::Tensor& x, double p, bool training);

// A seed for a counter-based mask, from LibTorch's default CPU generator (one 64-bit draw).
uint64_t DrawDropoutSeed();

// The multipliers (0 or 1/(1-p)) that a mask from `seed` applies to a tensor of these sizes, element i in
// row-major order; for tests and for kernels that fuse the same dropout (causal_attention.h).
torch::Tensor DropoutScales(at::IntArrayRef sizes, double p, uint64_t seed);

// The nn::Dropout module's role, calling FastDropout; holds no state (checkpoints are unchanged).
class FastDropoutLayerImpl : public torch::nn::Module {
 public:
  explicit FastDropoutLayerImpl(double p = 0.5);
  torch::Tensor forward(const torch::Tensor& x) { return FastDropout(x, p_, is_training()); }
  double p() const { return p_; }

 private:
  double p_;
};
TORCH_MODULE(FastDropoutLayer);

}  // namespace cadenza
