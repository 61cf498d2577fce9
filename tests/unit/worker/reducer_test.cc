// The gradient reducer and timeline without MPI: bucket layout, hooks and unchanged gradients in a world of one,
// averaging across ranks on threads (worker/test_communicators.h), timeouts that name the peers, injected faults.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <filesystem>
#include <thread>
#include <fstream>
#include <nlohmann/json.hpp>

#include "worker/communicator.h"
#include "worker/gradient_reducer.h"
#include "worker/test_communicators.h"
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

TEST(CommunicatorTest, ThreadWorldCollectivesAgreeOnEveryRank) {
  auto world = MakeThreadWorld(3);
  std::vector<std::thread> threads;
  std::vector<std::vector<float>> sums(3);
  std::vector<double> totals(3);
  std::vector<int> broadcast(3);
  std::vector<Status> status(3);
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      Communicator& c = *world[r];
      sums[r] = {float(r), float(10 * r), 1};
      totals[r] = r + 0.5;
      broadcast[r] = r == 1 ? 42 : -1;
      Status s = c.AllreduceAverage(sums[r].data(), 3);
      if (s.ok()) s = c.AllreduceSum(&totals[r], 1);
      if (s.ok()) s = c.Broadcast(&broadcast[r], sizeof(int), 1);
      if (s.ok()) s = c.Barrier();
      status[r] = s;
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) {
    ASSERT_TRUE(status[r].ok()) << status[r].message();
    EXPECT_EQ(world[r]->rank(), r);
    EXPECT_EQ(world[r]->world(), 3);
    EXPECT_EQ(sums[r], (std::vector<float>{1, 10, 1})) << "rank " << r;  // averages of 0,1,2 / 0,10,20 / 1,1,1
    EXPECT_DOUBLE_EQ(totals[r], 4.5);
    EXPECT_EQ(broadcast[r], 42);
  }
}

TEST(GradientReducerTest, ThreeRanksOnThreadsAverageTheirGradients) {
  constexpr int kRanks = 3;
  // The same initial weights on every rank (as training broadcasts them), different data per rank.
  std::vector<std::unique_ptr<Net>> nets;
  std::vector<torch::Tensor> inputs;
  for (int r = 0; r < kRanks; ++r) {
    torch::manual_seed(7);
    nets.push_back(std::make_unique<Net>());
    inputs.push_back(torch::randn({4, 8}) + r);
  }
  // What averaging must give: each rank's own gradient, then the mean over ranks (the unused parameter: zeros).
  std::vector<torch::Tensor> expected;
  for (int r = 0; r < kRanks; ++r) {
    nets[r]->forward(inputs[r]).pow(2).sum().backward();
    auto params = nets[r]->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      auto g = params[i].grad().defined() ? params[i].grad().clone() : torch::zeros_like(params[i]);
      if (r == 0) expected.push_back(g / kRanks);
      else expected[i] += g / kRanks;
    }
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
  }
  auto world = MakeThreadWorld(kRanks);
  std::vector<Status> status(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      ReducerOptions o;
      o.bucket_bytes = 300 * sizeof(float);  // three buckets, launched while backward runs
      GradientReducer reducer(*world[r], o);
      Status s = reducer.Attach(*nets[r]);
      for (int step = 0; s.ok() && step < 2; ++step) {
        s = reducer.BeginStep(step);
        for (auto& p : nets[r]->parameters()) {
          if (p.grad().defined()) p.mutable_grad().zero_();
        }
        if (s.ok()) nets[r]->forward(inputs[r]).pow(2).sum().backward();
        if (s.ok()) s = reducer.FinishGradients();
      }
      status[r] = s;
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_TRUE(status[r].ok()) << "rank " << r << ": " << status[r].message();
    auto params = nets[r]->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      ASSERT_TRUE(params[i].grad().defined()) << "rank " << r << " parameter " << i;
      EXPECT_TRUE(torch::allclose(params[i].grad(), expected[i], 1e-5, 1e-6)) << "rank " << r << " parameter " << i;
    }
  }
}

TEST(GradientReducerTest, AMissingRankTimesOutNamingWhereEveryRankIs) {
  auto world = MakeThreadWorld(2);
  world[0]->set_timeout_seconds(0.2);
  world[0]->Heartbeat(5);
  torch::manual_seed(0);
  Net net;
  GradientReducer reducer(*world[0], ReducerOptions{});
  const Status s = reducer.Attach(net);  // rank 1 never starts: the first weight broadcast cannot complete
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("rank 0 of 2: broadcast of parameter/buffer 0 from rank 0 did not complete within 0 s", 0), 0u)
      << s.message();
  EXPECT_NE(s.message().find("rank 0 at step 5, rank 1 at step -1"), std::string::npos) << s.message();
}

volatile std::sig_atomic_t g_terms = 0;

TEST(CommunicatorTest, FaultPlanFiresOnItsRankAndStepOnly) {
  EXPECT_FALSE(ParseFaultPlan("1:5").ok());
  EXPECT_FALSE(ParseFaultPlan("1:5:explode").ok());
  auto plan = ParseFaultPlan("0:2:term");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->rank, 0);
  EXPECT_EQ(plan->step, 2);
  auto old = std::signal(SIGTERM, [](int) { g_terms = g_terms + 1; });
  auto world = MakeThreadWorld(2);
  auto rank1 = WithFault(std::move(world[1]), *plan);
  auto rank0 = WithFault(std::move(world[0]), *plan);
  rank1->Heartbeat(2);  // another rank: nothing
  rank0->Heartbeat(1);  // another step: nothing
  EXPECT_EQ(g_terms, 0);
  rank0->Heartbeat(2);
  EXPECT_EQ(g_terms, 1);
  EXPECT_NE(rank0->DescribePeers().find("rank 0 at step 2, rank 1 at step 2"), std::string::npos) << rank0->DescribePeers();
  std::signal(SIGTERM, old);
}

}  // namespace
}  // namespace cadenza
