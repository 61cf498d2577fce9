// CausalSelfAttention is, per head, softmax(q k^T / sqrt(Dh) + causal mask), dropped out, times v: values and gradients
// against the composed ATen ops with the same dropout mask.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/model/causal_attention.h"
#include "core/model/dropout.h"
#include "core/model/mixed_precision.h"
#include "core/model/precision.h"

namespace cadenza {
namespace {

struct Shape {
  int64_t B, heads, T, Dh;
  double p;
};
void PrintTo(const Shape& s, std::ostream* os) {
  *os << "B " << s.B << " heads " << s.heads << " T " << s.T << " Dh " << s.Dh << " p " << s.p;
}

// The transformer's composed path: split qkv [B, T, 3D] into heads, masked softmax, dropout, AV, merge.
torch::Tensor Reference(const torch::Tensor& qkv, int64_t H, double p, uint64_t seed) {
  const int64_t B = qkv.size(0), T = qkv.size(1), D = qkv.size(2) / 3, Dh = D / H;
  auto parts = qkv.view({B, T, 3, H, Dh}).permute({2, 0, 3, 1, 4});
  auto q = parts[0].reshape({B * H, T, Dh}), k = parts[1].reshape({B * H, T, Dh}), v = parts[2].reshape({B * H, T, Dh});
  auto mask = torch::full({T, T}, -std::numeric_limits<float>::infinity()).triu(1);
  auto probs = torch::softmax(torch::baddbmm(mask, q, k.transpose(1, 2), 1.0, 1.0 / std::sqrt(double(Dh))), -1);
  if (p > 0) probs = probs * DropoutScales({B * H, T, T}, p, seed);
  return torch::bmm(probs, v).view({B, H, T, Dh}).transpose(1, 2).reshape({B, T, D});
}

class CausalAttentionTest : public ::testing::TestWithParam<Shape> {};

TEST_P(CausalAttentionTest, MatchesComposedOpsValuesAndGradients) {
  const Shape s = GetParam();
  torch::manual_seed(9);
  const int64_t D = s.heads * s.Dh;
  auto qkv = (torch::randn({s.B, s.T, 3 * D}) * 1.5).requires_grad_(true);
  auto upstream = torch::randn({s.B, s.T, D});
  const uint64_t seed = 0x1234567890ABCDEFULL;

  auto expected = Reference(qkv, s.heads, s.p, seed);
  auto expected_grad = torch::autograd::grad({(expected * upstream).sum()}, {qkv})[0];
  auto got = CausalSelfAttentionWithSeed(qkv, s.heads, s.p, seed);
  auto got_grad = torch::autograd::grad({(got * upstream).sum()}, {qkv})[0];

  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-5);
  const char* names[] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i)
    EXPECT_LT((got_grad.narrow(2, i * D, D) - expected_grad.narrow(2, i * D, D)).abs().max().item<double>(), 1e-4) << names[i];
}

// Inside a Bf16ComputeScope (train.precision: bf16) the kernel's six products take bf16 inputs (vdpbf16ps, fp32
// accumulation): the values and gradients stay within bf16's rounding of the fp32 ones, and are not the fp32 ones.
TEST_P(CausalAttentionTest, Bf16ProductsStayCloseToFp32) {
  if (!DetectCpuFeatures().avx512_bf16) GTEST_SKIP() << "no AVX512_BF16 on this CPU: the kernel stays fp32 there";
  const Shape s = GetParam();
  torch::manual_seed(9);
  const int64_t D = s.heads * s.Dh;
  auto qkv = (torch::randn({s.B, s.T, 3 * D}) * 1.5).requires_grad_(true);
  auto upstream = torch::randn({s.B, s.T, D});
  const uint64_t seed = 0x1234567890ABCDEFULL;
  auto expected = CausalSelfAttentionWithSeed(qkv, s.heads, s.p, seed);
  auto expected_grad = torch::autograd::grad({(expected * upstream).sum()}, {qkv})[0];
  torch::Tensor got, got_grad;
  {
    const Bf16ComputeScope bf16(true);
    got = CausalSelfAttentionWithSeed(qkv, s.heads, s.p, seed);
    got_grad = torch::autograd::grad({(got * upstream).sum()}, {qkv})[0];
  }
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  EXPECT_EQ(got_grad.scalar_type(), torch::kFloat32);
  const double scale = expected.abs().max().item<double>();
  const double diff = (got - expected).abs().max().item<double>();
  EXPECT_LT(diff, 0.03 * scale);
  EXPECT_GT(diff, 0.0);  // the products did run in bf16
  const char* names[] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) {
    auto e = expected_grad.narrow(2, i * D, D), g = got_grad.narrow(2, i * D, D);
    EXPECT_LT((g - e).abs().max().item<double>(), 0.03 * std::max(1e-6, e.abs().max().item<double>())) << names[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CausalAttentionTest,
                         ::testing::Values(Shape{1, 1, 1, 16, 0.0}, Shape{3, 1, 5, 32, 0.0}, Shape{1, 2, 37, 16, 0.0},
                                           Shape{2, 2, 64, 32, 0.0}, Shape{2, 1, 70, 64, 0.3}, Shape{1, 5, 33, 32, 0.1},
                                           Shape{1, 1, 19, 128, 0.5}, Shape{2, 8, 40, 32, 0.1}));

TEST(CausalAttention, FutureKeysDoNotChangeEarlierRows) {
  torch::manual_seed(1);
  auto qkv = torch::randn({2, 20, 3 * 64});  // 2 heads of 32
  auto a = CausalSelfAttention(qkv, 2, 0.0, false);
  auto later = qkv.clone();
  later.narrow(1, 12, 8).normal_();  // q, k and v of positions 12..19
  auto b = CausalSelfAttention(later, 2, 0.0, false);
  EXPECT_TRUE(a.narrow(1, 0, 12).equal(b.narrow(1, 0, 12)));
  EXPECT_FALSE(a.narrow(1, 12, 8).equal(b.narrow(1, 12, 8)));
}

TEST(CausalAttention, InferenceKeepsNoProbabilitiesAndGivesTheSameOutput) {
  torch::manual_seed(3);
  auto qkv = torch::randn({2, 50, 3 * 64}).requires_grad_(true);
  auto with_grad = CausalSelfAttention(qkv, 2, 0.0, false);
  torch::Tensor without;
  {
    torch::NoGradGuard no_grad;  // the path probes and generation take: no [B*H, T, T] buffer
    without = CausalSelfAttention(qkv, 2, 0.0, false);
  }
  EXPECT_TRUE(with_grad.detach().equal(without));
  EXPECT_FALSE(without.requires_grad());
}

TEST(CausalAttention, UnsupportedInputsAreRefusedByName) {
  EXPECT_FALSE(CausalAttentionSupports(torch::zeros({2, 8, 3 * 48}), 2));  // Dh 24: the composed path
  EXPECT_FALSE(CausalAttentionSupports(torch::zeros({2, 8, 3 * 64}, torch::kFloat64), 2));
  EXPECT_FALSE(CausalAttentionSupports(torch::zeros({2, 8, 100}), 2));  // not 3 x heads x Dh
  EXPECT_TRUE(CausalAttentionSupports(torch::zeros({2, 8, 3 * 64}), 2));
  EXPECT_THROW(CausalSelfAttentionWithSeed(torch::zeros({2, 8, 3 * 48}), 2, 0.0, 1), c10::Error);
}

}  // namespace
}  // namespace cadenza
