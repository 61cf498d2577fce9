// Efficiency probes: forward latency, per-token generation latency and peak tensor memory against input length.
// Torch-free header: the CLI and the demo include it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/experiment_config.h"
#include "core/status.h"

namespace cadenza {

struct ProbeOptions {
  std::vector<int64_t> lengths{64, 128, 256, 512, 1024};  // context lengths in tokens
  int64_t batch = 1;
  int warmup = 2;    // untimed runs before the timed ones
  int repeats = 5;   // timed runs; the median is reported
  uint64_t seed = 0; // input tokens are drawn uniformly from the vocabulary with this seed
};

struct ProbeRow {
  std::string model;  // the checkpoint or model config it came from
  std::string family; // transformer | lstm | gru
  int64_t parameters = 0;
  int64_t length = 0;
  int64_t batch = 1;
  double forward_ms = 0;      // median of `repeats` full forwards of [batch, length] tokens, no gradients
  double forward_ms_min = 0;
  double forward_ms_max = 0;
  double forward_tokens_per_s = 0;
  double step_ms = 0;         // median per-token generation step with `length` tokens already in the state
  double step_ms_min = 0;
  double step_ms_max = 0;
  double forward_peak_mb = 0; // peak bytes of live tensors during one forward (above what was live before), MiB
  double state_mb = 0;        // tensors held by the generation state at context `length` (KV cache, RNN history)
  double step_peak_mb = 0;    // peak live tensor bytes during one step at that context, state included
  double train_peak_mb = 0;   // peak live tensor bytes of one training forward + backward of [batch, length]
                              // (train mode, next-token cross-entropy, gradients included; no optimizer state)
  bool forward_measured = false;  // false when length exceeds the model's context (the forward fields are 0)
  bool step_measured = false;     // false when length + repeats exceeds it (the step fields are 0)
  std::string note;           // why a row is empty (e.g. longer than the model's context)
};

// Called after each row with its index in the whole probe (for progress output).
using ProbeProgress = std::function<void(const ProbeRow& row, size_t done, size_t total)>;

// Probes one model: `source` is a checkpoint (.pt, trained weights) or a model config (.yaml, initial weights;
// latency and memory do not depend on the weights). One row per length, in the order given.
StatusOr<std::vector<ProbeRow>> ProbeModel(const std::string& source, const ProbeOptions& options,
                                           const ProbeProgress& progress = {});

// The rows as CSV with a header line (the column names are the ProbeRow fields).
std::string ProbeCsv(const std::vector<ProbeRow>& rows);

}  // namespace cadenza
