// The trainer's hook for data-parallel training: parameter broadcast, gradient averaging, cross-rank sums.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "core/status.h"

namespace cadenza {

// Implemented by worker/ (bucketed allreduce over a Communicator). The trainer without one is the
// single-process path, unchanged. Every rank calls the methods in the same order.
class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // Once, after the model is built (and restored on resume): rank 0's parameters and buffers are copied to
  // every rank, and per-parameter gradient hooks are installed.
  virtual Status Attach(torch::nn::Module& model) = 0;
  // Before the forward pass of step `step` (0-based): resets the buckets.
  virtual Status BeginStep(int64_t step) = 0;
  // After backward: every bucket reduced, every parameter's .grad the average over ranks.
  virtual Status FinishGradients() = 0;
  // In-place sum of `n` doubles over ranks (token counts, losses, validation sums, stop flags).
  virtual Status SumAcrossRanks(double* values, int n) = 0;
  // A timed phase of this rank's step (steady-clock microseconds), for the optional timeline.
  virtual void RecordPhase(const char* /*name*/, int64_t /*begin_us*/, int64_t /*end_us*/) {}
};

}  // namespace cadenza
