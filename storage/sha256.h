// SHA-256 checksums (OpenSSL EVP) of files and byte strings, as lowercase hex.
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"

namespace cadenza {

// Streams the file through SHA-256; errors name the path.
StatusOr<std::string> Sha256File(const std::string& path);
std::string Sha256Hex(const void* data, size_t size);
inline std::string Sha256Hex(const std::string& text) { return Sha256Hex(text.data(), text.size()); }

}  // namespace cadenza
