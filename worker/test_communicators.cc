#include "worker/test_communicators.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace cadenza {
namespace {

enum class Kind { kSumFloat, kSumDouble, kBroadcast, kBarrier };
const char* KindName(Kind k) {
  switch (k) {
    case Kind::kSumFloat: return "allreduce(float)";
    case Kind::kSumDouble: return "allreduce(double)";
    case Kind::kBroadcast: return "broadcast";
    case Kind::kBarrier: return "barrier";
  }
  return "?";
}

// One collective at one position of every rank's sequence.
struct Op {
  Kind kind;
  size_t bytes = 0;
  int root = 0;
  std::vector<std::vector<char>> inputs;  // per rank (sums), or the root's bytes at [root]
  std::vector<char> result;
  int arrived = 0, collected = 0;
  bool complete = false;
};

struct SharedWorld {
  explicit SharedWorld(int n) : ranks(n), steps(n, -1) {}
  std::mutex mu;
  const int ranks;
  std::map<uint64_t, Op> ops;  // by position in the ranks' sequences
  std::vector<int64_t> steps;  // last heartbeat per rank
};

template <typename T>
void SumInRankOrder(Op& op) {
  const size_t count = op.bytes / sizeof(T);
  op.result.assign(op.bytes, 0);
  T* out = reinterpret_cast<T*>(op.result.data());
  for (const auto& in : op.inputs) {
    const T* v = reinterpret_cast<const T*>(in.data());
    for (size_t i = 0; i < count; ++i) out[i] += v[i];
  }
}

class ThreadRequest : public CollectiveRequest {
 public:
  ThreadRequest(std::shared_ptr<SharedWorld> world, uint64_t position, void* data, bool writes_back)
      : world_(std::move(world)), position_(position), data_(data), writes_back_(writes_back) {}
  bool Test() override {
    if (done_) return true;
    std::lock_guard<std::mutex> lock(world_->mu);
    Op& op = world_->ops.at(position_);
    if (!op.complete) return false;
    if (writes_back_ && op.bytes > 0) std::memcpy(data_, op.result.data(), op.bytes);
    if (++op.collected == world_->ranks) world_->ops.erase(position_);
    done_ = true;
    return true;
  }

 private:
  std::shared_ptr<SharedWorld> world_;
  uint64_t position_;
  void* data_;
  bool writes_back_;
  bool done_ = false;
};

class ThreadCommunicator : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<SharedWorld> world, int rank) : world_(std::move(world)), rank_(rank) {}
  int rank() const override { return rank_; }
  int world() const override { return world_->ranks; }
  std::string name() const override { return "threads"; }
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(float* data, size_t count) override {
    return Start(Kind::kSumFloat, data, count * sizeof(float), 0);
  }
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(double* data, size_t count) override {
    return Start(Kind::kSumDouble, data, count * sizeof(double), 0);
  }
  std::unique_ptr<CollectiveRequest> StartBroadcast(void* data, size_t bytes, int root) override {
    return Start(Kind::kBroadcast, data, bytes, root);
  }
  std::unique_ptr<CollectiveRequest> StartBarrier() override { return Start(Kind::kBarrier, nullptr, 0, 0); }
  void Heartbeat(int64_t step) override {
    std::lock_guard<std::mutex> lock(world_->mu);
    world_->steps[rank_] = step;
  }
  std::string DescribePeers() override {
    std::lock_guard<std::mutex> lock(world_->mu);
    std::string out;
    for (int r = 0; r < world_->ranks; ++r) {
      out += (out.empty() ? "" : ", ") + ("rank " + std::to_string(r) + " at step " + std::to_string(world_->steps[r]));
    }
    return out;
  }

 private:
  std::unique_ptr<CollectiveRequest> Start(Kind kind, void* data, size_t bytes, int root) {
    const uint64_t position = next_++;
    std::lock_guard<std::mutex> lock(world_->mu);
    auto [it, fresh] = world_->ops.try_emplace(position);
    Op& op = it->second;
    if (fresh) {
      op.kind = kind;
      op.bytes = bytes;
      op.root = root;
      op.inputs.resize(world_->ranks);
    } else if (op.kind != kind || op.bytes != bytes || op.root != root) {
      std::fprintf(stderr, "thread world: rank %d started %s of %zu bytes (root %d) as collective %llu, another rank "
                   "%s of %zu bytes (root %d)\n", rank_, KindName(kind), bytes, root, (unsigned long long)position,
                   KindName(op.kind), op.bytes, op.root);
      std::abort();
    }
    const char* bytes_in = static_cast<const char*>(data);
    if (kind == Kind::kSumFloat || kind == Kind::kSumDouble || (kind == Kind::kBroadcast && rank_ == root)) {
      op.inputs[rank_].assign(bytes_in, bytes_in + bytes);
    }
    if (++op.arrived == world_->ranks) {
      if (kind == Kind::kSumFloat) SumInRankOrder<float>(op);
      if (kind == Kind::kSumDouble) SumInRankOrder<double>(op);
      if (kind == Kind::kBroadcast) op.result = op.inputs[root];
      op.inputs.clear();
      op.complete = true;
    }
    return std::make_unique<ThreadRequest>(world_, position, data, kind != Kind::kBarrier);
  }

  std::shared_ptr<SharedWorld> world_;
  const int rank_;
  uint64_t next_ = 0;  // this rank's position in the sequence of collectives
};

class FaultInjectingCommunicator : public ForwardingCommunicator {
 public:
  FaultInjectingCommunicator(std::unique_ptr<Communicator> inner, FaultPlan plan)
      : ForwardingCommunicator(std::move(inner)), plan_(std::move(plan)) {}
  void Heartbeat(int64_t step) override {
    if (rank() == plan_.rank && step == plan_.step) {
      std::fprintf(stderr, "rank %d: injected fault '%s' at step %lld\n", rank(), plan_.mode.c_str(), (long long)step);
      std::fflush(stderr);
      if (plan_.mode == "exit") _exit(3);
      if (plan_.mode == "stall") sleep(3600);
      if (plan_.mode == "term") std::raise(SIGTERM);
    }
    ForwardingCommunicator::Heartbeat(step);
  }

 private:
  FaultPlan plan_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> MakeThreadWorld(int ranks) {
  auto shared = std::make_shared<SharedWorld>(ranks);
  std::vector<std::unique_ptr<Communicator>> world;
  for (int r = 0; r < ranks; ++r) world.push_back(std::make_unique<ThreadCommunicator>(shared, r));
  return world;
}

StatusOr<FaultPlan> ParseFaultPlan(const std::string& text) {
  const size_t a = text.find(':'), b = a == std::string::npos ? a : text.find(':', a + 1);
  FaultPlan plan;
  if (b != std::string::npos) {
    plan.rank = std::atoi(text.substr(0, a).c_str());
    plan.step = std::atoll(text.substr(a + 1, b - a - 1).c_str());
    plan.mode = text.substr(b + 1);
  }
  if (plan.mode != "exit" && plan.mode != "stall" && plan.mode != "term") {
    return InvalidArgument("expected rank:step:exit|stall|term, got '" + text + "'");
  }
  return plan;
}

std::unique_ptr<Communicator> WithFault(std::unique_ptr<Communicator> inner, FaultPlan plan) {
  return std::make_unique<FaultInjectingCommunicator>(std::move(inner), std::move(plan));
}

}  // namespace cadenza
