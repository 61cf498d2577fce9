// CRC-32C in hardware (x86-64 SSE4.2, chosen at run time) or by table.
#include "core/checksum.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace cadenza {
namespace {

const uint32_t* Table() {
  static const auto* table = [] {
    static uint32_t t[256];
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

uint32_t TableCrc(const uint8_t* p, size_t n, uint32_t crc) {
  const uint32_t* t = Table();
  for (size_t i = 0; i < n; ++i) crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t HardwareCrc(const uint8_t* p, size_t n, uint32_t crc) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
bool HaveHardwareCrc() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}
#endif

}  // namespace

uint32_t Crc32c(const void* data, size_t size, uint32_t crc) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  if (HaveHardwareCrc()) return ~HardwareCrc(p, size, crc);
#endif
  return ~TableCrc(p, size, crc);
}

StatusOr<uint32_t> Crc32cOfFile(const std::string& path, uint64_t length) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return IoError(path + ": cannot open: " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  uint32_t crc = 0;
  uint64_t left = length;
  while (left > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    const size_t got = std::fread(buf.data(), 1, want, f);
    if (got == 0) break;
    crc = Crc32c(buf.data(), got, crc);
    left -= got;
  }
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) return IoError(path + ": read error");
  if (left > 0) return DataLoss(path + ": shorter than expected (" + std::to_string(length - left) + " of " + std::to_string(length) + " bytes)");
  return crc;
}

}  // namespace cadenza
