// Communicators for tests: N ranks on threads of one process, a forwarding base for wrappers, and a wrapper that
// injects a rank fault.
// Production code creates neither except the fault wrapper, which cadenza-worker applies only when
// CADENZA_WORKER_FAULT is set (the distributed tests' way to kill, stall or signal one rank).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "worker/communicator.h"

namespace cadenza {

// A world of `ranks` communicators sharing memory, one per thread (rank i = element i). Collectives complete
// when every rank has started them, in the same order on every rank, as under MPI; sums are added in rank order,
// so results do not depend on thread timing. Starting a different collective (kind or size) than the other ranks
// at the same position is a bug in the caller and aborts with both descriptions.
std::vector<std::unique_ptr<Communicator>> MakeThreadWorld(int ranks);

// Forwards every call to `inner`; a wrapper derives from it and overrides only what it changes (the fault plan
// below, a test's failing allreduce).
class ForwardingCommunicator : public Communicator {
 public:
  explicit ForwardingCommunicator(std::unique_ptr<Communicator> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int world() const override { return inner_->world(); }
  std::string name() const override { return inner_->name(); }
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(float* data, size_t count) override {
    return inner_->StartAllreduceSum(data, count);
  }
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(double* data, size_t count) override {
    return inner_->StartAllreduceSum(data, count);
  }
  std::unique_ptr<CollectiveRequest> StartBroadcast(void* data, size_t bytes, int root) override {
    return inner_->StartBroadcast(data, bytes, root);
  }
  std::unique_ptr<CollectiveRequest> StartBarrier() override { return inner_->StartBarrier(); }
  void Heartbeat(int64_t step) override { inner_->Heartbeat(step); }
  std::string DescribePeers() override { return inner_->DescribePeers(); }

 private:
  std::unique_ptr<Communicator> inner_;
};

// At the start of step `step` (when the reducer's heartbeat says so), rank `rank` exits with code 3 ("exit"),
// sleeps for an hour ("stall") or sends itself SIGTERM ("term", as Slurm does before a time limit).
struct FaultPlan {
  int rank = -1;
  int64_t step = -1;
  std::string mode;
};
// "rank:step:mode", e.g. "1:5:stall".
StatusOr<FaultPlan> ParseFaultPlan(const std::string& text);
std::unique_ptr<Communicator> WithFault(std::unique_ptr<Communicator> inner, FaultPlan plan);

}  // namespace cadenza
