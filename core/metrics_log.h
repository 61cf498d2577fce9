// Training metrics as CSV, JSON lines and TensorBoard event files (scalars), all from one call. Torch-free.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace cadenza {

// Writes <run>/metrics.csv (step,tag,value), <run>/metrics.jsonl and
// <run>/tensorboard/events.out.tfevents.<time>.<host>.<pid> (open with `tensorboard --logdir <run>/tensorboard`).
// Appends when the files exist, so a resumed run continues the same curves.
//
// Exact after a crash: rows are buffered in memory and reach the files only whole (one write(2) of whole rows), and
// a resumed run opens the log with its checkpoint's step, which first cuts every file back to the rows and events
// of steps <= that step (dropping what the stopped process wrote after its checkpoint and any torn last row or
// record). With Sync() before each checkpoint, every (step, tag) then appears once, in order.
class MetricsLog {
 public:
  // resume_step >= 0: cut the existing files back to steps <= resume_step first (rewritten atomically, only when
  // something is cut). -1: append to whatever is there.
  // Buffered rows are written out (whole) once they pass `flush_bytes`, so `tail -f metrics.csv` follows a long
  // run between checkpoints, and at every Flush/Sync.
  static StatusOr<std::unique_ptr<MetricsLog>> Open(const std::string& run_dir, int64_t resume_step = -1,
                                                    size_t flush_bytes = kDefaultFlushBytes);
  static constexpr size_t kDefaultFlushBytes = 4096;
  ~MetricsLog();  // flushes
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  Status Scalar(const std::string& tag, int64_t step, double value);
  // Writes the buffered rows (whole) to the three files.
  Status Flush();
  // Flush, then fdatasync the three files: call before writing a checkpoint, so that the rows of every step the
  // checkpoint covers survive a crash of the process or the machine.
  Status Sync();

  const std::string& event_file() const { return event_path_; }

  // The cut that Open applies, exposed for tests: keeps the header, the whole rows / records of steps <= step,
  // and nothing after the first torn one. Returns the kept bytes.
  static std::string CutCsv(const std::string& text, int64_t step);
  static std::string CutJsonl(const std::string& text, int64_t step);
  static std::string CutEvents(const std::string& bytes, int64_t step);

 private:
  MetricsLog() = default;
  void AppendEvent(const std::string& event_proto);
  struct Sink {
    int fd = -1;
    std::string path;
    std::string pending;  // whole rows not yet written
  };
  Status WriteOut(Sink& sink);
  Sink csv_, jsonl_, events_;
  std::string event_path_;
  size_t flush_bytes_ = kDefaultFlushBytes;
};

// TFRecord's masked CRC-32C (Castagnoli), exposed for tests.
uint32_t MaskedCrc32c(const void* data, size_t size);

}  // namespace cadenza
