// How glibc's malloc keeps freed memory (PLATFORM.md, "glibc malloc"). By default it hands large freed blocks back
// to the kernel (munmap, heap trim) and the next allocation of that size page-faults fresh zeroed pages in again:
// on this VM that made a Transformer step 5x slower and a coordinator result page 2x slower. Call once, early in
// main() or in the command that does the work.
#pragma once

#include <cstddef>

namespace cadenza {

// Batch work (training, generation, ingest, their benches): the heap never shrinks while the process lives.
void KeepFreedMemory();

// A long-lived server: blocks under `bytes` come from the heap (larger ones are still mmap'd and given back), and
// up to about `bytes` of free heap stays mapped, so its steady work reuses pages; its idle size stays bounded.
// `bytes` is capped at glibc's 32 MB limit for the mmap threshold.
void KeepFreedMemoryUpTo(size_t bytes);

}  // namespace cadenza
