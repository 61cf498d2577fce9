// PNG chunks with zlib's deflate and CRC-32; SSM heatmap rendering.
#include "core/eval/png.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>

#include "core/file_util.h"

namespace cadenza {
namespace {

void Put32(std::vector<uint8_t>* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<uint8_t>(v >> shift));
}

void Chunk(std::vector<uint8_t>* out, const char type[4], const std::vector<uint8_t>& data) {
  Put32(out, static_cast<uint32_t>(data.size()));
  const size_t type_at = out->size();
  out->insert(out->end(), type, type + 4);
  out->insert(out->end(), data.begin(), data.end());
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), out->data() + type_at, static_cast<uInt>(4 + data.size()));
  Put32(out, static_cast<uint32_t>(crc));
}

// Viridis-like ramp through five anchors, t in [0, 1].
void ColorOf(double t, uint8_t rgb[3]) {
  static const double kAnchors[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  for (int c = 0; c < 3; ++c) rgb[c] = static_cast<uint8_t>(std::lround(kAnchors[i][c] * (1 - f) + kAnchors[i + 1][c] * f));
}

}  // namespace

void RgbImage::Set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  uint8_t* p = &pixels[(static_cast<size_t>(y) * width + x) * 3];
  p[0] = r;
  p[1] = g;
  p[2] = b;
}

std::vector<uint8_t> EncodePng(const RgbImage& image) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  Put32(&ihdr, static_cast<uint32_t>(image.width));
  Put32(&ihdr, static_cast<uint32_t>(image.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  Chunk(&out, "IHDR", ihdr);
  const size_t row = static_cast<size_t>(image.width) * 3;
  std::vector<uint8_t> raw;
  raw.reserve((row + 1) * image.height);
  for (int y = 0; y < image.height; ++y) {
    raw.push_back(0);  // filter type None
    raw.insert(raw.end(), image.pixels.begin() + y * row, image.pixels.begin() + (y + 1) * row);
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> idat(size);
  compress2(idat.data(), &size, raw.data(), static_cast<uLong>(raw.size()), 6);
  idat.resize(size);
  Chunk(&out, "IDAT", idat);
  Chunk(&out, "IEND", {});
  return out;
}

Status WritePng(const std::string& path, const RgbImage& image) {
  const std::vector<uint8_t> bytes = EncodePng(image);
  return WriteFileAtomic(path, bytes.data(), bytes.size());
}

RgbImage RenderSsm(const Ssm& ssm, const std::vector<int>& bar_grid, int cell) {
  const int n = std::max(1, ssm.n);
  if (cell <= 0) cell = std::clamp(512 / n, 1, 16);
  RgbImage img;
  img.width = img.height = n * cell;
  img.pixels.assign(static_cast<size_t>(img.width) * img.height * 3, 0);
  uint8_t rgb[3];
  for (int i = 0; i < ssm.n; ++i) {
    for (int j = 0; j < ssm.n; ++j) {
      ColorOf(ssm.at(i, j), rgb);
      for (int y = i * cell; y < (i + 1) * cell; ++y) {
        for (int x = j * cell; x < (j + 1) * cell; ++x) img.Set(x, y, rgb[0], rgb[1], rgb[2]);
      }
    }
  }
  // Bar lines: thin grey where a cell is at least 4 px wide (or every bar for beat segments), white every 4 bars.
  const bool every_bar = cell >= 4 || (bar_grid.size() >= 2 && bar_grid[1] - bar_grid[0] > 1);
  for (size_t b = 1; b < bar_grid.size(); ++b) {
    const bool strong = b % 4 == 0;
    if (!strong && !every_bar) continue;
    const int at = bar_grid[b] * cell;
    const uint8_t v = strong ? 255 : 150;
    for (int k = 0; k < img.width; ++k) {
      img.Set(at, k, v, v, v);
      img.Set(k, at, v, v, v);
    }
  }
  return img;
}

}  // namespace cadenza
