// Metrics files (CSV, JSON lines, TensorBoard TFRecord) and FluidSynth WAV rendering.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/audio.h"
#include "core/metrics_log.h"
#include "core/synthetic.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class MediaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cadenza_media_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(Crc32c, KnownAnswer) {
  // CRC-32C("123456789") = 0xE3069283 (RFC 3720); TFRecord masks it as ((c >> 15) | (c << 17)) + 0xa282ead8.
  const uint32_t c = 0xE3069283u;
  EXPECT_EQ(MaskedCrc32c("123456789", 9), ((c >> 15) | (c << 17)) + 0xA282EAD8u);
}

TEST_F(MediaTest, MetricsGoToCsvJsonAndValidTfRecords) {
  std::string event_file;
  {
    auto log = MetricsLog::Open(dir_.string());
    ASSERT_TRUE(log.ok()) << log.status().message();
    ASSERT_TRUE((*log)->Scalar("val/nll_per_token", 200, 2.5).ok());
    ASSERT_TRUE((*log)->Scalar("train/loss", 201, std::nan("")).ok());
    ASSERT_TRUE((*log)->Flush().ok());
    event_file = (*log)->event_file();
  }
  EXPECT_EQ(ReadAll(dir_ / "metrics.csv"), "step,tag,value\n200,val/nll_per_token,2.5\n201,train/loss,nan\n");
  EXPECT_EQ(ReadAll(dir_ / "metrics.jsonl"),
            "{\"step\": 200, \"tag\": \"val/nll_per_token\", \"value\": 2.5}\n"
            "{\"step\": 201, \"tag\": \"train/loss\", \"value\": null}\n");
  // Walk the TFRecord framing: every record's length and data CRCs must verify; tags appear in order.
  const std::string data = ReadAll(event_file);
  size_t pos = 0;
  int records = 0;
  std::string payloads;
  while (pos < data.size()) {
    ASSERT_LE(pos + 12, data.size());
    uint64_t len;
    uint32_t len_crc, data_crc;
    std::memcpy(&len, data.data() + pos, 8);
    std::memcpy(&len_crc, data.data() + pos + 8, 4);
    ASSERT_EQ(len_crc, MaskedCrc32c(&len, 8)) << "record " << records;
    ASSERT_LE(pos + 16 + len, data.size());
    std::memcpy(&data_crc, data.data() + pos + 12 + len, 4);
    ASSERT_EQ(data_crc, MaskedCrc32c(data.data() + pos + 12, len)) << "record " << records;
    payloads += data.substr(pos + 12, len);
    pos += 16 + len;
    ++records;
  }
  EXPECT_EQ(records, 3);  // file_version + two scalars
  EXPECT_NE(payloads.find("brain.Event:2"), std::string::npos);
  EXPECT_LT(payloads.find("val/nll_per_token"), payloads.find("train/loss"));
}

TEST_F(MediaTest, RendersAScoreToWav) {
  if (!fs::exists(DefaultSoundfont())) GTEST_SKIP() << DefaultSoundfont() << " is absent (apt install fluid-soundfont-gm)";
  const SyntheticTune tune = MakeSyntheticTune(1, 2);
  const std::string wav = (dir_ / "tune.wav").string();
  AudioOptions o;
  o.sample_rate = 22050;
  ASSERT_TRUE(RenderWav(tune.score, wav, o).ok());
  const std::string bytes = ReadAll(wav);
  ASSERT_GT(bytes.size(), 44u);
  EXPECT_EQ(bytes.substr(0, 4), "RIFF");
  EXPECT_EQ(bytes.substr(8, 4), "WAVE");
  // 16-bit stereo: 4 bytes a frame. The audio covers the score (following its tempo map) plus the tail;
  // FluidSynth's player also lets the last voices release (measured: 2.4 s for this flute and piano).
  const double seconds = (bytes.size() - 44) / 4.0 / o.sample_rate;
  EXPECT_GE(seconds, tune.score.Seconds() + 1.0) << "score lasts " << tune.score.Seconds() << " s";
  EXPECT_LE(seconds, tune.score.Seconds() + 1.0 + 4.0) << "score lasts " << tune.score.Seconds() << " s";
  // Sound at the start and during the last second of the score, not silence.
  auto loud_in = [&](double from, double to) {
    int64_t loud = 0;
    for (int64_t f = static_cast<int64_t>(from * o.sample_rate); f < static_cast<int64_t>(to * o.sample_rate); ++f) {
      int16_t s;
      std::memcpy(&s, bytes.data() + 44 + 4 * f, 2);
      loud += std::abs(s) > 300;
    }
    return loud;
  };
  EXPECT_GT(loud_in(0.0, 1.0), 100);
  EXPECT_GT(loud_in(tune.score.Seconds() - 1.0, tune.score.Seconds()), 100);
  for (const auto& e : fs::directory_iterator(dir_)) EXPECT_EQ(e.path().extension(), ".wav") << e.path() << " left behind";
}

TEST_F(MediaTest, MissingSoundfontIsNamed) {
  AudioOptions o;
  o.soundfont = "/nonexistent/piano.sf2";
  Status s = RenderWav(MakeSyntheticTune(1, 0).score, (dir_ / "x.wav").string(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/piano.sf2"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(dir_ / "x.wav"));
}

}  // namespace
}  // namespace cadenza
