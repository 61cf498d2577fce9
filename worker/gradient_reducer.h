// Bucketed gradient averaging (after PyTorch DDP's reducer): buckets in reverse parameter order, each
// allreduced as soon as backward has produced all of its gradients, waited on before the optimizer step.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model/gradient_sync.h"
#include "worker/communicator.h"
#include "worker/timeline.h"

namespace cadenza {

struct ReducerOptions {
  // Bucket capacity. DDP uses 25 MB; these models have 3-5M parameters (13-20 MB of gradients), so 25 MB
  // would make one bucket that can only start after backward ends. 4 MB gives 4-5 buckets to overlap.
  size_t bucket_bytes = size_t(4) << 20;
  Timeline* timeline = nullptr;  // optional: phases and per-bucket allreduce spans
};

class GradientReducer : public GradientSync {
 public:
  GradientReducer(Communicator& comm, ReducerOptions options);
  ~GradientReducer() override;

  int rank() const override { return comm_.rank(); }
  int world() const override { return comm_.world(); }
  Status Attach(torch::nn::Module& model) override;
  Status BeginStep(int64_t step) override;
  Status FinishGradients() override;
  Status SumAcrossRanks(double* values, int n) override;
  void RecordPhase(const char* name, int64_t begin_us, int64_t end_us) override;

  // Copies every parameter's current .grad into the buckets, reduces them all and writes the averages back,
  // without backward: what the benchmark times against one raw allreduce of the same bytes.
  Status ReduceExistingGradients();
  // Only the collectives of a step: every bucket's allreduce launched back to back and waited for, without
  // copying gradients in or out (the benchmark's bucketed-allreduce bandwidth).
  // `serial`: each bucket waited for before the next starts (for comparison).
  Status ReduceBucketsOnly(bool serial = false);

  struct BucketInfo {
    size_t parameters = 0;
    size_t floats = 0;
  };
  std::vector<BucketInfo> buckets() const;
  size_t total_floats() const { return total_floats_; }

 private:
  struct Param {
    torch::Tensor tensor;
    size_t bucket = 0;
    size_t offset = 0;  // in floats, within the bucket
    bool seen = false;
  };
  struct Bucket {
    size_t floats = 0;
    torch::Tensor flat;  // on the parameters' device: host memory for MPI, device memory for NCCL
    std::vector<size_t> params;
    size_t pending = 0;  // parameters whose gradient has not arrived this step
    bool launched = false, done = false;
    std::unique_ptr<CollectiveRequest> request;
    int64_t launch_us = 0;
  };

  void OnGradient(size_t index, const torch::Tensor& grad);
  void LaunchReady();  // launches ready buckets strictly in order, so every rank issues the same sequence
  void Poll();         // drives progress of the buckets in flight (MPI progresses only inside MPI calls)
  void MarkDone(size_t b);
  Status WaitAndWriteBack();

  Communicator& comm_;
  ReducerOptions options_;
  std::vector<Param> params_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  size_t total_floats_ = 0;
  int64_t step_ = 0;
  bool attached_ = false;
  bool double_grad_ = false;  // a hook fired twice for a parameter after its bucket left: reported, not hidden
  std::vector<torch::autograd::Variable> hooked_;
  std::vector<unsigned> hook_ids_;
};

}  // namespace cadenza
