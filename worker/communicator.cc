// Deadline-bounded waits shared by every communicator, and the in-process world of one.
#include "worker/communicator.h"

#include <chrono>
#include <cstdio>
#include <thread>

namespace cadenza {

Status Communicator::Wait(CollectiveRequest& request, const std::string& what) {
  if (request.Test()) return Status::Ok();
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(timeout_seconds_));
  // Spin on Test(): MPI's non-blocking collectives progress only inside MPI calls, so polling keeps the
  // bandwidth; the clock is read every 256 polls. After 10 ms of waiting, back off to 50 us sleeps so a
  // stalled peer does not cost a whole core for the full timeout.
  for (uint64_t polls = 1;; ++polls) {
    if (request.Test()) return Status::Ok();
    if ((polls & 255) == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      if (now - start > std::chrono::milliseconds(10)) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  char head[160];
  std::snprintf(head, sizeof head, "rank %d of %d: %s did not complete within %.0f s", rank(), world(), what.c_str(),
                timeout_seconds_);
  std::string message = std::string(head) + ": a peer rank died or stalled";
  const std::string peers = DescribePeers();
  if (!peers.empty()) message += " (" + peers + ")";
  if (on_timeout_) on_timeout_(message);
  return Status(StatusCode::kInternal, message);
}

Status Communicator::AllreduceAverage(float* data, size_t count, const std::string& what) {
  auto r = StartAllreduceSum(data, count);
  Status s = Wait(*r, what);
  if (!s.ok()) return s;
  if (world() > 1) {
    const float scale = 1.0f / float(world());
    for (size_t i = 0; i < count; ++i) data[i] *= scale;
  }
  return s;
}

Status Communicator::AllreduceSum(double* data, size_t count, const std::string& what) {
  auto r = StartAllreduceSum(data, count);
  return Wait(*r, what);
}

Status Communicator::Broadcast(void* data, size_t bytes, int root, const std::string& what) {
  auto r = StartBroadcast(data, bytes, root);
  return Wait(*r, what);
}

Status Communicator::Barrier(const std::string& what) {
  auto r = StartBarrier();
  return Wait(*r, what);
}

namespace {

class Done : public CollectiveRequest {
 public:
  bool Test() override { return true; }
};

class InProcessCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  std::string name() const override { return "in-process"; }
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(float*, size_t) override { return std::make_unique<Done>(); }
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(double*, size_t) override { return std::make_unique<Done>(); }
  std::unique_ptr<CollectiveRequest> StartBroadcast(void*, size_t, int) override { return std::make_unique<Done>(); }
  std::unique_ptr<CollectiveRequest> StartBarrier() override { return std::make_unique<Done>(); }
};

}  // namespace

std::unique_ptr<Communicator> MakeInProcessCommunicator() { return std::make_unique<InProcessCommunicator>(); }

}  // namespace cadenza
