// FastDropout: the distribution of torch::dropout, reproducible by seed and thread count, same mask backward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model/dropout.h"

namespace cadenza {
namespace {

TEST(FastDropout, KeepsOneMinusPScaledAndZeroesTheRest) {
  torch::manual_seed(3);
  auto x = torch::rand({1000, 1000}) + 0.5;  // no zeros of its own
  const double p = 0.1;
  auto y = FastDropout(x, p, /*training=*/true);
  auto kept = y.ne(0);
  const double kept_share = kept.to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(kept_share, 1 - p, 0.002);  // 1e6 draws: sd 3e-4
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), x.masked_select(kept) / (1 - p)));
  // Rows and columns look alike (no stripes from the counter): every row keeps 90 +- 3 sd of 1000.
  auto per_row = kept.sum(1).to(torch::kFloat64);
  EXPECT_GT(per_row.min().item<double>(), 900 - 30 * 3);
  EXPECT_LT(per_row.max().item<double>(), 900 + 30 * 3);
}

TEST(FastDropout, IdentityWhenEvaluatingOrPZero) {
  auto x = torch::randn({64, 64});
  EXPECT_TRUE(FastDropout(x, 0.3, /*training=*/false).equal(x));
  EXPECT_TRUE(FastDropout(x, 0.0, /*training=*/true).equal(x));
  EXPECT_THROW(FastDropout(x, 1.0, true), c10::Error);
}

TEST(FastDropout, SameSeedSameMaskWhateverTheThreadCount) {
  auto x = torch::ones({300, 700});
  const int threads = torch::get_num_threads();
  torch::manual_seed(11);
  torch::set_num_threads(1);
  auto a = FastDropout(x, 0.25, true);
  auto a_next = FastDropout(x, 0.25, true);
  torch::manual_seed(11);
  torch::set_num_threads(2);
  auto b = FastDropout(x, 0.25, true);
  torch::set_num_threads(threads);
  EXPECT_TRUE(a.equal(b));
  EXPECT_FALSE(a.equal(a_next));  // each call draws a new seed from the generator
}

TEST(FastDropout, BackwardUsesTheForwardMask) {
  torch::manual_seed(5);
  auto x = (torch::rand({50, 80}) + 1).requires_grad_(true);
  auto y = FastDropout(x, 0.5, true);
  auto upstream = torch::randn({50, 80});
  (y * upstream).sum().backward();
  auto expected = upstream * y.ne(0).to(torch::kFloat32) * 2.0;
  EXPECT_TRUE(torch::allclose(x.grad(), expected));
}

TEST(FastDropout, NonContiguousInput) {
  torch::manual_seed(2);
  auto x = torch::rand({40, 60}).t() + 1;  // a transposed view
  auto y = FastDropout(x, 0.2, true);
  EXPECT_EQ(y.sizes(), x.sizes());
  auto kept = y.ne(0);
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), x.masked_select(kept) / 0.8));
}

}  // namespace
}  // namespace cadenza
