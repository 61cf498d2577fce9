// cpu_matmul.cc: the sgemm_ that LibTorch's fp32 GEMMs reach is BLAS's column-major product (every transpose,
// leading dimensions larger than the matrix, beta 0 over garbage, nothing to multiply), and LibTorch does reach it.
#include "core/model/cpu_matmul.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace cadenza {
namespace {

// Element (i, j) of a column-major matrix with leading dimension ld, read as op(X) with op = N or T.
float At(const std::vector<float>& x, int ld, char op, int i, int j) { return op == 'N' ? x[i + j * ld] : x[j + i * ld]; }

std::vector<float> Random(size_t n, std::mt19937* rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(*rng);
  return v;
}

TEST(CpuMatmulTest, SgemmIsBlassColumnMajorProductForEveryTransposeAndStride) {
  ASSERT_STREQ(CpuMatmulLibrary(), std::getenv("CADENZA_MATMUL") && std::strcmp(std::getenv("CADENZA_MATMUL"), "openblas") == 0
                                       ? "OpenBLAS" : "oneDNN");
  std::mt19937 rng(7);
  const int m = 13, n = 9, k = 21;
  for (char ta : {'N', 'T', 'n', 't', 'C'}) {
    for (char tb : {'N', 'T'}) {
      // Leading dimensions 3 larger than the stored rows: the padding must be neither read into C nor written.
      const int rows_a = (ta == 'N' || ta == 'n') ? m : k, cols_a = (ta == 'N' || ta == 'n') ? k : m;
      const int rows_b = tb == 'N' ? k : n, cols_b = tb == 'N' ? n : k;
      const int lda = rows_a + 3, ldb = rows_b + 3, ldc = m + 3;
      const std::vector<float> a = Random(size_t(lda) * cols_a, &rng), b = Random(size_t(ldb) * cols_b, &rng);
      std::vector<float> c = Random(size_t(ldc) * n, &rng);
      const std::vector<float> c0 = c;
      const float alpha = 0.75f, beta = -0.5f;
      sgemm_(&ta, &tb, &m, &n, &k, &alpha, a.data(), &lda, b.data(), &ldb, &beta, c.data(), &ldc);
      const char op_a = (ta == 'N' || ta == 'n') ? 'N' : 'T';
      for (int j = 0; j < n; ++j) {
        for (int i = 0; i < ldc; ++i) {
          if (i >= m) {
            EXPECT_EQ(c[i + j * ldc], c0[i + j * ldc]) << "padding row " << i << " written";
            continue;
          }
          double want = beta * c0[i + j * ldc];
          for (int p = 0; p < k; ++p) want += alpha * double(At(a, lda, op_a, i, p)) * At(b, ldb, tb, p, j);
          EXPECT_NEAR(c[i + j * ldc], want, 1e-4) << ta << tb << " at (" << i << ", " << j << ")";
        }
      }
    }
  }
}

TEST(CpuMatmulTest, BetaZeroOverwritesGarbageAndAnEmptyProductOnlyScales) {
  const int m = 4, n = 3, k = 5, one = 1;
  const std::vector<float> a(m * k, 1.0f), b(k * n, 2.0f);
  std::vector<float> c(m * n, std::numeric_limits<float>::quiet_NaN());
  const float alpha = 1.0f, zero = 0.0f, half = 0.5f;
  sgemm_("N", "N", &m, &n, &k, &alpha, a.data(), &m, b.data(), &k, &zero, c.data(), &m);
  for (float x : c) EXPECT_EQ(x, 10.0f) << "beta 0: C is not read (BLAS)";
  const int no_k = 0;
  sgemm_("N", "N", &m, &n, &no_k, &alpha, a.data(), &m, b.data(), &one, &half, c.data(), &m);
  for (float x : c) EXPECT_EQ(x, 5.0f) << "k = 0: C = beta * C";
  std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
  sgemm_("N", "N", &m, &n, &no_k, &alpha, a.data(), &m, b.data(), &one, &zero, c.data(), &m);
  for (float x : c) EXPECT_EQ(x, 0.0f) << "k = 0, beta 0: zeros, whatever C held";
}

// torch::mm of fp32 CPU tensors goes through this sgemm_: its result is bit for bit the one a direct call gives
// (another BLAS would sum the 300 products in another order).
TEST(CpuMatmulTest, LibTorchMatrixProductsReachThisSgemm) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({37, 300}), w = torch::randn({300, 53});
  const torch::Tensor y = torch::mm(x, w);
  // Row-major y = x w is column-major y^T = w^T x^T: sgemm_ with A = w (53 x 300 column-major), B = x.
  const int m = 53, n = 37, k = 300;
  const float alpha = 1.0f, beta = 0.0f;
  std::vector<float> c(size_t(m) * n);
  sgemm_("N", "N", &m, &n, &k, &alpha, w.data_ptr<float>(), &m, x.data_ptr<float>(), &k, &beta, c.data(), &m);
  const torch::Tensor direct = torch::from_blob(c.data(), {37, 53}).clone();
  EXPECT_TRUE(torch::equal(y, direct)) << "max difference " << (y - direct).abs().max().item<float>();
  EXPECT_LT((y - torch::matmul(x.to(torch::kDouble), w.to(torch::kDouble)).to(torch::kFloat)).abs().max().item<float>(), 1e-3);
}

}  // namespace
}  // namespace cadenza
