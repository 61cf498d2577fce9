// CRC-32C (Castagnoli): checkpoint trailers and TensorBoard's record framing. SSE4.2's crc32 instruction when the
// CPU has it (~10 GB/s), else a table (~0.5 GB/s); both give the same value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace cadenza {

// Continues `crc` (0 to start) over `size` bytes: Crc32c(b, Crc32c(a)) == Crc32c(a + b).
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);

// CRC-32C of the first `length` bytes of a file, read in 1 MiB blocks; errors name the file.
StatusOr<uint32_t> Crc32cOfFile(const std::string& path, uint64_t length);

}  // namespace cadenza
