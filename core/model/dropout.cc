// Counter-based dropout: the mask is a pure function of (seed, element index), so it is made in parallel and
// remade in the backward pass.
#include "core/model/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <mutex>

#include "core/model/vector_math.h"

namespace cadenza {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// y[i] = x[i] * scale where the hash of element (offset + i) clears the threshold, else 0. Cloned per ISA so
// the hash runs 8 lanes wide where AVX-512 is there (64-bit multiplies), and still runs everywhere.
CADENZA_VECTOR_CLONES
void MaskedScale(const float* __restrict x, float* __restrict y, int64_t n, int64_t offset, uint64_t seed,
                 uint32_t threshold, float scale) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] * (kernel::Kept(seed, static_cast<uint64_t>(offset + i), threshold) ? scale : 0.0f);  // a select: vectorizes
}

}  // namespace

uint64_t DrawDropoutSeed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

namespace {

torch::Tensor Apply(const torch::Tensor& x, uint64_t seed, double p) {
  auto in = x.contiguous();
  auto out = torch::empty_like(in, at::MemoryFormat::Contiguous);
  const float* src = in.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const uint32_t threshold = kernel::DropThreshold(p);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  at::parallel_for(0, in.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
    MaskedScale(src + begin, dst + begin, end - begin, begin, seed, threshold, scale);
  });
  return out;
}

struct CounterDropout : public torch::autograd::Function<CounterDropout> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, double p) {
    const uint64_t seed = DrawDropoutSeed();
    ctx->saved_data["seed"] = static_cast<int64_t>(seed);
    ctx->saved_data["p"] = p;
    return Apply(x, seed, p);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    return {Apply(grad_outputs[0], seed, ctx->saved_data["p"].toDouble()), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor FastDropout(const torch::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
  if (!training || p == 0.0 || x.numel() == 0) return x;
  if (x.scalar_type() != torch::kFloat32 || !x.device().is_cpu()) return torch::dropout(x, p, true);  // GPU, other dtypes
  return CounterDropout::apply(x, p);
}

torch::Tensor DropoutScales(at::IntArrayRef sizes, double p, uint64_t seed) {
  auto ones = torch::ones(sizes);
  return Apply(ones, seed, p);
}

FastDropoutLayerImpl::FastDropoutLayerImpl(double p) : p_(p) {}

}  // namespace cadenza
