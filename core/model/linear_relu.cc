// Fused Linear + ReLU: forward GEMM + one elementwise pass, backward one elementwise pass + GEMMs.
#include "core/model/linear_relu.h"

#include <ATen/Parallel.h>

#include "core/model/mixed_precision.h"
#include "core/model/vector_math.h"

namespace cadenza {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// y[r, :] = max(y[r, :] + b, 0) for rows [0, rows).
CADENZA_VECTOR_CLONES
void BiasRelu(float* __restrict y, const float* __restrict b, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict row = y + r * n;
    for (int64_t j = 0; j < n; ++j) {
      const float v = row[j] + b[j];
      row[j] = v > 0.0f ? v : 0.0f;
    }
  }
}

// out[i] = y[i] > 0 ? grad[i] : 0 (the ReLU's derivative at its output).
CADENZA_VECTOR_CLONES
void MaskByOutput(const float* __restrict grad, const float* __restrict y, float* __restrict out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = y[i] > 0.0f ? grad[i] : 0.0f;
}

struct LinearReluFunction : public torch::autograd::Function<LinearReluFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, bool bf16) {
    const int64_t K = x.size(-1), N = weight.size(0);
    // bf16: the GEMM's inputs in bf16 (fp32 accumulation in oneDNN), widened to fp32 for bias + ReLU; x and the
    // weight are kept in bf16 for the backward GEMMs.
    auto x2 = x.reshape({-1, K}).contiguous();
    if (bf16) x2 = ToBf16(x2);
    auto w = bf16 ? ToBf16(weight) : weight;
    auto y = bf16 ? torch::mm(x2, w.t()).to(torch::kFloat32) : torch::mm(x2, w.t());  // [M, N], contiguous
    auto b = bias.contiguous();
    float* py = y.data_ptr<float>();
    const float* pb = b.data_ptr<float>();
    at::parallel_for(0, y.size(0), 64, [&](int64_t begin, int64_t end) { BiasRelu(py + begin * N, pb, end - begin, N); });
    ctx->save_for_backward({x2, w, y});
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    auto sizes = x.sizes().vec();
    sizes.back() = N;
    return y.view(sizes);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x2 = saved[0], &weight = saved[1], &y = saved[2];
    const auto grad = grad_outputs[0].contiguous();
    auto masked = torch::empty_like(y);
    const float *pg = grad.data_ptr<float>(), *py = y.data_ptr<float>();
    float* pm = masked.data_ptr<float>();
    at::parallel_for(0, y.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
      MaskByOutput(pg + begin, py + begin, pm + begin, end - begin);
    });
    auto db = masked.sum(0);
    if (weight.scalar_type() == torch::kBFloat16) {  // the forward ran in bf16: so do the GEMMs here
      auto mb = ToBf16(masked);
      auto dx = torch::mm(mb, weight).to(torch::kFloat32).view(ctx->saved_data["x_sizes"].toIntVector());
      auto dw = torch::mm(mb.t(), x2).to(torch::kFloat32);
      return {dx, dw, db, torch::Tensor()};
    }
    auto dx = torch::mm(masked, weight).view(ctx->saved_data["x_sizes"].toIntVector());
    auto dw = torch::mm(masked.t(), x2);
    return {dx, dw, db, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor LinearRelu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool fused = x.scalar_type() == torch::kFloat32 && x.device().is_cpu() && bias.defined() && x.numel() > 0;
  if (!fused) return torch::relu(Bf16Compute() && x.numel() > 0 ? Bf16Linear(x, weight, bias) : at::linear(x, weight, bias));
  return LinearReluFunction::apply(x, weight, bias, Bf16Compute());
}

}  // namespace cadenza
