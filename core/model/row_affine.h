// x W^T + b that stays fast for a single row: shared by both model families' generation steps.
#pragma once

#include <omp.h>
#include <torch/torch.h>

#include "core/model/mixed_precision.h"

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

// Runs one generation step of a single sequence on one thread, restoring the thread count after. Each
// matrix-vector product takes 5-50 us; with 2 OpenMP threads OpenBLAS wakes its second thread for every one of
// them (measured: addmv 768x256 50 us on 2 threads, 12 us on 1; OMP_WAIT_POLICY=passive), more than it saves.
// Debian's OpenBLAS is the OpenMP build and follows omp_set_num_threads at each call.
class OneThreadForOneRow {
 public:
  explicit OneThreadForOneRow(bool one_row) : saved_(one_row ? omp_get_max_threads() : 0) {
    if (saved_ > 1) omp_set_num_threads(1);
  }
  ~OneThreadForOneRow() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  OneThreadForOneRow(const OneThreadForOneRow&) = delete;
  OneThreadForOneRow& operator=(const OneThreadForOneRow&) = delete;

 private:
  int saved_;
};

// x W^T + b through at::linear, which runs [B, T, K] inputs as one addmm: the C++ frontend's nn::Linear runs
// them as matmul and then adds the bias in a second pass over the output (and its gradient in a third).
// Inside a Bf16ComputeScope the GEMM runs in bf16 (mixed_precision.h); one row stays fp32 (no bf16 gemv path).
inline torch::Tensor Affine(const torch::nn::Linear& layer, const torch::Tensor& x) {
  if (OneRow(x)) return RowAffine(x, layer->weight, layer->bias);
  return Bf16Compute() ? Bf16Linear(x, layer->weight, layer->bias) : at::linear(x, layer->weight, layer->bias);
}

}  // namespace cadenza
