#include "core/process_memory.h"

#include <malloc.h>

#include <algorithm>

namespace cadenza {

void KeepFreedMemory() {
  mallopt(M_MMAP_MAX, 0);         // no block is mmap'd, so none is unmapped at free
  mallopt(M_TRIM_THRESHOLD, -1);  // the heap's free top is never given back
}

void KeepFreedMemoryUpTo(size_t bytes) {
  const int threshold = static_cast<int>(std::min<size_t>(bytes, size_t{32} << 20));
  mallopt(M_MMAP_THRESHOLD, threshold);  // setting it also stops glibc's own adjustment of it
  mallopt(M_TRIM_THRESHOLD, 2 * threshold);
}

}  // namespace cadenza
