// NCCL implementation of Communicator: one CUDA stream, one event per request (UNTESTED: no GPU here).
#include "worker/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

namespace cadenza {
namespace {

class NcclRequest : public CollectiveRequest {
 public:
  explicit NcclRequest(cudaStream_t stream) {
    cudaEventCreateWithFlags(&event_, cudaEventDisableTiming);
    cudaEventRecord(event_, stream);
  }
  ~NcclRequest() override { cudaEventDestroy(event_); }
  bool Test() override {
    if (!done_) done_ = cudaEventQuery(event_) == cudaSuccess;
    return done_;
  }

 private:
  cudaEvent_t event_{};
  bool done_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, cudaStream_t stream, int rank, int world)
      : comm_(comm), stream_(stream), rank_(rank), world_(world) {}
  ~NcclCommunicator() override {
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string name() const override { return "nccl"; }
  // The stream is a blocking stream, so it orders after work on the legacy default stream that LibTorch uses
  // unless told otherwise (the gradient copies into the buckets).
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(float* data, size_t count) override {
    ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_);
    return std::make_unique<NcclRequest>(stream_);
  }
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(double* data, size_t count) override {
    // The trainer's scalar sums live in host memory: stage them through the device.
    double* d = nullptr;
    cudaMalloc(&d, count * sizeof(double));
    cudaMemcpyAsync(d, data, count * sizeof(double), cudaMemcpyHostToDevice, stream_);
    ncclAllReduce(d, d, count, ncclFloat64, ncclSum, comm_, stream_);
    cudaMemcpyAsync(data, d, count * sizeof(double), cudaMemcpyDeviceToHost, stream_);
    cudaFreeAsync(d, stream_);
    return std::make_unique<NcclRequest>(stream_);
  }
  std::unique_ptr<CollectiveRequest> StartBroadcast(void* data, size_t bytes, int root) override {
    ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_);
    return std::make_unique<NcclRequest>(stream_);
  }
  std::unique_ptr<CollectiveRequest> StartBarrier() override {
    if (!barrier_) cudaMalloc(&barrier_, sizeof(float));
    ncclAllReduce(barrier_, barrier_, 1, ncclFloat32, ncclSum, comm_, stream_);
    return std::make_unique<NcclRequest>(stream_);
  }

 private:
  ncclComm_t comm_;
  cudaStream_t stream_;
  int rank_, world_;
  float* barrier_ = nullptr;
};

}  // namespace

StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(Communicator& bootstrap, int device) {
  if (cudaSetDevice(device) != cudaSuccess) return FailedPrecondition("NCCL: cannot select CUDA device " + std::to_string(device));
  ncclUniqueId id;
  if (bootstrap.rank() == 0 && ncclGetUniqueId(&id) != ncclSuccess) return Status(StatusCode::kInternal, "ncclGetUniqueId failed");
  Status s = bootstrap.Broadcast(&id, sizeof id, 0, "broadcast of the NCCL unique id");
  if (!s.ok()) return s;
  ncclComm_t comm;
  ncclResult_t r = ncclCommInitRank(&comm, bootstrap.world(), id, bootstrap.rank());
  if (r != ncclSuccess) return Status(StatusCode::kInternal, std::string("ncclCommInitRank: ") + ncclGetErrorString(r));
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  return std::unique_ptr<Communicator>(new NcclCommunicator(comm, stream, bootstrap.rank(), bootstrap.world()));
}

}  // namespace cadenza
