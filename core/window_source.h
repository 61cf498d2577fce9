// What training reads: fixed-length token windows by (epoch, index), deterministic for a seed. Torch-free.
#pragma once

#include <cstdint>

namespace cadenza {

class WindowSource {
 public:
  virtual ~WindowSource() = default;
  // Tokens per window (the trainer uses length-1 inputs and their next-token targets).
  virtual int64_t length() const = 0;
  // Windows in one epoch for this rank (the same count every epoch).
  virtual int64_t WindowsPerEpoch() const = 0;
  // Writes windows [first, first + count) of `epoch` into out[count][length()], padded with PAD (0).
  virtual void Fill(int64_t epoch, int64_t first, int64_t count, int32_t* out) const = 0;
};

}  // namespace cadenza
