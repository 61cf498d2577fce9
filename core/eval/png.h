// A minimal PNG writer (8-bit RGB, zlib deflate) and the SSM heatmap with its bar grid.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/eval/ssm.h"
#include "core/status.h"

namespace cadenza {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // row-major RGB, 3 bytes per pixel
  void Set(int x, int y, uint8_t r, uint8_t g, uint8_t b);
};

// Signature, IHDR (8-bit truecolour), one IDAT (zlib stream of filter-0 scanlines), IEND; CRC-32 per chunk.
std::vector<uint8_t> EncodePng(const RgbImage& image);
// Atomic write (temporary name, fsync, rename).
Status WritePng(const std::string& path, const RgbImage& image);

// Heatmap of S in [-1, 1] (values below 0 drawn as 0; colour map dark blue -> yellow), `cell` pixels per segment,
// with a line before the first segment of every bar (`bar_grid`, from BarGridOfSegments) and a stronger one every
// 4 bars. cell = 0 picks one so the image is about 512 pixels wide (at least 1, at most 16).
RgbImage RenderSsm(const Ssm& ssm, const std::vector<int>& bar_grid, int cell = 0);

}  // namespace cadenza
