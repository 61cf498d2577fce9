// The PNG writer: signature, chunk CRCs, IHDR size, inflated scanlines; the SSM heatmap's size and bar grid.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>

#include "core/eval/png.h"
#include "core/file_util.h"

namespace cadenza {
namespace {

uint32_t Be32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }

struct Parsed {
  uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  std::vector<uint8_t> idat;
  std::vector<std::string> chunks;
};

// Walks the chunks, checking every CRC.
Parsed Parse(const std::vector<uint8_t>& png) {
  Parsed out;
  const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  EXPECT_GE(png.size(), 8u);
  EXPECT_TRUE(std::equal(sig, sig + 8, png.begin()));
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t len = Be32(&png[at]);
    const std::string type(png.begin() + at + 4, png.begin() + at + 8);
    EXPECT_LE(at + 12 + len, png.size());
    const uint32_t crc = static_cast<uint32_t>(crc32(crc32(0, Z_NULL, 0), &png[at + 4], 4 + len));
    EXPECT_EQ(crc, Be32(&png[at + 8 + len])) << "CRC of " << type;
    const uint8_t* data = &png[at + 8];
    if (type == "IHDR") {
      out.width = Be32(data);
      out.height = Be32(data + 4);
      out.bit_depth = data[8];
      out.color_type = data[9];
    }
    if (type == "IDAT") out.idat.insert(out.idat.end(), data, data + len);
    out.chunks.push_back(type);
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size());
  return out;
}

TEST(PngTest, ValidSignatureChunksAndPixels) {
  RgbImage img;
  img.width = 3;
  img.height = 2;
  img.pixels.assign(3 * 2 * 3, 0);
  img.Set(0, 0, 255, 0, 0);
  img.Set(2, 1, 1, 2, 3);
  img.Set(7, 7, 9, 9, 9);  // outside: ignored
  const Parsed p = Parse(EncodePng(img));
  EXPECT_EQ(p.chunks, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  EXPECT_EQ(p.width, 3u);
  EXPECT_EQ(p.height, 2u);
  EXPECT_EQ(p.bit_depth, 8);
  EXPECT_EQ(p.color_type, 2);
  std::vector<uint8_t> raw(2 * (1 + 3 * 3));
  uLongf raw_size = raw.size();
  ASSERT_EQ(uncompress(raw.data(), &raw_size, p.idat.data(), p.idat.size()), Z_OK);
  ASSERT_EQ(raw_size, raw.size());
  EXPECT_EQ(raw[0], 0);   // filter byte of row 0
  EXPECT_EQ(raw[1], 255);
  EXPECT_EQ(raw[10], 0);  // filter byte of row 1
  EXPECT_EQ(raw[10 + 1 + 6], 1);
  EXPECT_EQ(raw[10 + 1 + 8], 3);
}

TEST(PngTest, SsmHeatmapSizeGridAndFile) {
  Ssm ssm;
  ssm.n = 10;
  ssm.values.assign(100, 0.0f);
  for (int i = 0; i < 10; ++i) ssm.values[i * 10 + i] = 1.0f;
  std::vector<int> bars(10);
  for (int i = 0; i < 10; ++i) bars[i] = i;
  const RgbImage img = RenderSsm(ssm, bars, 6);
  EXPECT_EQ(img.width, 60);
  EXPECT_EQ(img.height, 60);
  auto px = [&](int x, int y) { return &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3]; };
  EXPECT_EQ(px(24, 3)[0], 255);  // the line before bar 4 is white
  EXPECT_EQ(px(6, 3)[0], 150);   // a plain bar line is grey
  EXPECT_EQ(px(3, 3)[2], 37);    // S = 1 on the diagonal: the yellow end of the colour map
  EXPECT_EQ(px(15, 3)[0], 68);   // S = 0: the dark end
  EXPECT_EQ(RenderSsm(ssm, bars).width, 160);  // automatic cell size: 512 / 10 capped at 16 pixels

  const std::string path = (std::filesystem::temp_directory_path() / ("cadenza_ssm_" + std::to_string(::getpid()) + ".png")).string();
  ASSERT_TRUE(WritePng(path, img).ok());
  auto bytes = ReadFileBytes(path);
  ASSERT_TRUE(bytes.ok());
  const Parsed p = Parse(*bytes);
  EXPECT_EQ(p.width, 60u);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace cadenza
