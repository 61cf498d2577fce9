// Training metrics as CSV, JSON lines and TensorBoard event files (scalars), all from one call. Torch-free.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "core/status.h"

namespace cadenza {

// Writes <run>/metrics.csv (step,tag,value), <run>/metrics.jsonl and
// <run>/tensorboard/events.out.tfevents.<time>.<host> (open with `tensorboard --logdir <run>/tensorboard`).
// Appends when the files exist, so a resumed run continues the same curves.
class MetricsLog {
 public:
  static StatusOr<std::unique_ptr<MetricsLog>> Open(const std::string& run_dir);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  Status Scalar(const std::string& tag, int64_t step, double value);
  Status Flush();

  const std::string& event_file() const { return event_path_; }

 private:
  MetricsLog() = default;
  Status WriteEvent(const std::string& event_proto);
  std::FILE* csv_ = nullptr;
  std::FILE* jsonl_ = nullptr;
  std::FILE* events_ = nullptr;
  std::string event_path_;
};

// TFRecord's masked CRC-32C (Castagnoli), exposed for tests.
uint32_t MaskedCrc32c(const void* data, size_t size);

}  // namespace cadenza
