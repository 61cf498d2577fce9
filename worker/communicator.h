// Collectives behind one small interface (MPI, NCCL, in-process): plain buffers, deadlines, no torch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"

namespace cadenza {

// Exit code of a worker whose collective did not complete within the timeout (a peer rank died or stalled).
inline constexpr int kExitCollectiveTimeout = 75;

// One collective in flight. Test() drives progress and says whether it finished.
class CollectiveRequest {
 public:
  virtual ~CollectiveRequest() = default;
  virtual bool Test() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual std::string name() const = 0;  // "in-process", "mpi", "nccl"

  // Non-blocking collectives, in place; every rank must start the same ones in the same order.
  // Buffers are host memory for MPI and in-process, device memory for NCCL.
  virtual std::unique_ptr<CollectiveRequest> StartAllreduceSum(float* data, size_t count) = 0;
  virtual std::unique_ptr<CollectiveRequest> StartAllreduceSum(double* data, size_t count) = 0;
  virtual std::unique_ptr<CollectiveRequest> StartBroadcast(void* data, size_t bytes, int root) = 0;
  virtual std::unique_ptr<CollectiveRequest> StartBarrier() = 0;

  // Liveness: each rank tells the others which step it reached (cheap, non-blocking); a timeout report names
  // the peers that are behind.
  virtual void Heartbeat(int64_t /*step*/) {}
  virtual std::string DescribePeers() { return ""; }

  // Waits for `request` until the timeout; on expiry calls the timeout handler (the worker's prints and aborts
  // the job with kExitCollectiveTimeout) and, if that returns, gives an error naming `what`.
  Status Wait(CollectiveRequest& request, const std::string& what);

  // Blocking forms, each bounded by the timeout.
  Status AllreduceAverage(float* data, size_t count, const std::string& what = "allreduce");
  Status AllreduceSum(double* data, size_t count, const std::string& what = "allreduce");
  Status Broadcast(void* data, size_t bytes, int root, const std::string& what = "broadcast");
  Status Barrier(const std::string& what = "barrier");

  double timeout_seconds() const { return timeout_seconds_; }
  void set_timeout_seconds(double s) { timeout_seconds_ = s; }
  // Called with the error message when a wait times out.
  void set_timeout_handler(std::function<void(const std::string&)> h) { on_timeout_ = std::move(h); }

 private:
  double timeout_seconds_ = 60;
  std::function<void(const std::string&)> on_timeout_;
};

// A world of one: every collective is already complete.
std::unique_ptr<Communicator> MakeInProcessCommunicator();

}  // namespace cadenza
