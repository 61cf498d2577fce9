// SHA-256 checksums (OpenSSL EVP) of files and byte strings, as lowercase hex.
#include "storage/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace cadenza {
namespace {

struct CtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<EVP_MD_CTX, CtxDeleter>;

std::string ToHex(const unsigned char* digest, unsigned int size) {
  static const char kHex[] = "0123456789abcdef";
  std::string hex(size * 2, '0');
  for (unsigned int i = 0; i < size; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 15];
  }
  return hex;
}

CtxPtr NewSha256() {
  CtxPtr ctx(EVP_MD_CTX_new());
  if (ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) ctx.reset();
  return ctx;
}

std::string Finish(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx, digest, &size) != 1) return std::string();
  return ToHex(digest, size);
}

}  // namespace

StatusOr<std::string> Sha256File(const std::string& path) {
  CtxPtr ctx = NewSha256();
  if (!ctx) return Status(StatusCode::kInternal, "OpenSSL: cannot initialise SHA-256");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return IoError(path + ": cannot open: " + std::strerror(errno));
  std::vector<unsigned char> buf(1 << 20);
  size_t n;
  bool digest_ok = true;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    if (EVP_DigestUpdate(ctx.get(), buf.data(), n) != 1) {
      digest_ok = false;
      break;
    }
  }
  const bool read_failed = std::ferror(f);
  std::fclose(f);
  if (read_failed) return IoError(path + ": read error while computing sha256");
  std::string hex = digest_ok ? Finish(ctx.get()) : std::string();
  if (hex.empty()) return Status(StatusCode::kInternal, path + ": OpenSSL SHA-256 failed");
  return hex;
}

std::string Sha256Hex(const void* data, size_t size) {
  CtxPtr ctx = NewSha256();
  if (!ctx || EVP_DigestUpdate(ctx.get(), data, size) != 1) return std::string();
  return Finish(ctx.get());
}

}  // namespace cadenza
