// The gradient reducer and timeline in a world of one (no MPI): bucket layout, hooks, unchanged gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "worker/communicator.h"
#include "worker/gradient_reducer.h"
#include "worker/timeline.h"

namespace cadenza {
namespace {

struct Net : torch::nn::Module {
  Net() {
    a = register_module("a", torch::nn::Linear(8, 16));   // 128 + 16 floats
    b = register_module("b", torch::nn::Linear(16, 16));  // 256 + 16
    c = register_module("c", torch::nn::Linear(16, 4));   // 64 + 4
    unused = register_parameter("unused", torch::ones({3}));
  }
  torch::Tensor forward(torch::Tensor x) { return c(torch::relu(b(torch::relu(a(x))))); }
  torch::nn::Linear a{nullptr}, b{nullptr}, c{nullptr};
  torch::Tensor unused;
};

TEST(GradientReducerTest, BucketsFollowReverseParameterOrderAndCapacity) {
  torch::manual_seed(0);
  Net net;
  auto comm = MakeInProcessCommunicator();
  ReducerOptions o;
  o.bucket_bytes = 300 * sizeof(float);
  GradientReducer reducer(*comm, o);
  ASSERT_TRUE(reducer.Attach(net).ok());
  // Registration order is own parameters first (unused), then a, b, c; reversed: c.bias(4), c.weight(64),
  // b.bias(16) | b.weight(256), a.bias(16) | a.weight(128), unused(3).
  auto buckets = reducer.buckets();
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[0].floats, 4u + 64 + 16);  // adding b.weight (256) would overflow 300
  EXPECT_EQ(buckets[1].floats, 256u + 16);
  EXPECT_EQ(buckets[2].floats, 128u + 3);
  size_t total = 0;
  for (auto& b : buckets) {
    EXPECT_TRUE(b.floats <= 300 || b.parameters == 1) << "only a single large tensor may exceed the capacity";
    total += b.floats;
  }
  EXPECT_EQ(total, reducer.total_floats());
  EXPECT_EQ(total, size_t(3 + 4 + 64 + 16 + 256 + 16 + 128));
}

TEST(GradientReducerTest, WorldOfOneLeavesGradientsUnchanged) {
  torch::manual_seed(1);
  Net net;
  auto x = torch::randn({5, 8});
  net.forward(x).pow(2).sum().backward();
  std::vector<torch::Tensor> expected;
  for (auto& p : net.parameters()) expected.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  for (auto& p : net.parameters()) p.mutable_grad() = torch::Tensor();

  auto comm = MakeInProcessCommunicator();
  Timeline timeline(0);
  ReducerOptions o;
  o.bucket_bytes = 256;
  o.timeline = &timeline;
  GradientReducer reducer(*comm, o);
  ASSERT_TRUE(reducer.Attach(net).ok());
  for (int step = 0; step < 2; ++step) {
    ASSERT_TRUE(reducer.BeginStep(step).ok());
    for (auto& p : net.parameters()) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
    net.forward(x).pow(2).sum().backward();
    ASSERT_TRUE(reducer.FinishGradients().ok());
    auto params = net.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      ASSERT_TRUE(params[i].grad().defined()) << i;
      EXPECT_TRUE(torch::equal(params[i].grad(), expected[i])) << "parameter " << i << " step " << step;
    }
  }
  EXPECT_GE(timeline.size(), 2 * reducer.buckets().size());
}

TEST(TimelineTest, WritesChromeTraceEventsPerRank) {
  EXPECT_EQ(TimelinePathForRank("out/trace.json", 1), "out/trace.rank1.json");
  EXPECT_EQ(TimelinePathForRank("out.d/trace", 0), "out.d/trace.rank0");
  Timeline t(3);
  t.Add("forward", 1, 100, 250);
  t.Add("allreduce bucket 0 (1.00 MB)", 2, 200, 300);
  const auto path = std::filesystem::temp_directory_path() / ("cadenza_timeline_" + std::to_string(::getpid()) + ".json");
  ASSERT_TRUE(t.Write(path.string()).ok());
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in);
  std::filesystem::remove(path);
  ASSERT_TRUE(j.is_array());
  int spans = 0;
  for (auto& e : j) {
    if (e["ph"] != "X") continue;
    ++spans;
    EXPECT_EQ(e["pid"], 3);
    EXPECT_TRUE(e.contains("ts") && e.contains("dur") && e.contains("tid") && e.contains("name"));
  }
  EXPECT_EQ(spans, 2);
  EXPECT_EQ(j[1]["dur"], 150);
}

TEST(CommunicatorTest, InProcessCollectivesAreIdentity) {
  auto comm = MakeInProcessCommunicator();
  EXPECT_EQ(comm->world(), 1);
  float f[2] = {1.5f, -2};
  ASSERT_TRUE(comm->AllreduceAverage(f, 2).ok());
  EXPECT_EQ(f[0], 1.5f);
  double d[1] = {4};
  ASSERT_TRUE(comm->AllreduceSum(d, 1).ok());
  EXPECT_EQ(d[0], 4);
  EXPECT_TRUE(comm->Barrier().ok());
}

}  // namespace
}  // namespace cadenza
