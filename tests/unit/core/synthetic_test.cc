// The synthetic corpus: deterministic by seed, several meters, repeated and varied sections, exact round trip.
#include "core/synthetic.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/midi.h"
#include "core/tokenizer.h"

namespace cadenza {
namespace {

// Melody pitches of bars [first, first + count), relative to the first bar's start.
std::vector<std::pair<int64_t, int>> MelodyOfBars(const Score& score, int64_t begin_tick, int64_t end_tick) {
  std::vector<std::pair<int64_t, int>> out;
  for (const Note& n : score.notes) {
    if (n.track == 0 && n.start >= begin_tick && n.start < end_tick) out.emplace_back(n.start - begin_tick, n.pitch);
  }
  return out;
}

TEST(SyntheticTest, SameSeedSameTunesOtherSeedOtherTunes) {
  const SyntheticTune a = MakeSyntheticTune(7, 3);
  const SyntheticTune b = MakeSyntheticTune(7, 3);
  const SyntheticTune c = MakeSyntheticTune(8, 3);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(SerializeMidi(a.score), SerializeMidi(b.score));
  EXPECT_NE(SerializeMidi(a.score), SerializeMidi(c.score));
  // Tune i does not depend on how many tunes are made.
  SyntheticOptions o;
  o.seed = 7;
  o.count = 5;
  EXPECT_EQ(SerializeMidi(MakeSyntheticCorpus(o)[3].score), SerializeMidi(a.score));
}

TEST(SyntheticTest, CorpusCoversTheMetersFormsAndChanges) {
  SyntheticOptions o;
  o.seed = 1;
  o.count = 200;
  std::set<std::string> meters, forms;
  int meter_changes = 0, tempo_changes = 0, minor = 0;
  for (const SyntheticTune& t : MakeSyntheticCorpus(o)) {
    ASSERT_FALSE(t.score.notes.empty()) << t.name;
    meters.insert(std::to_string(t.score.time_signatures[0].numerator) + "/" +
                  std::to_string(t.score.time_signatures[0].denominator));
    forms.insert(t.form);
    meter_changes += t.score.time_signatures.size() > 1;
    tempo_changes += t.score.tempos.size() > 1;
    minor += t.score.key_signatures.at(0).minor;
  }
  EXPECT_EQ(meters, (std::set<std::string>{"2/4", "3/4", "4/4", "6/8", "12/8"}));
  EXPECT_GE(forms.size(), 5u);
  EXPECT_GT(meter_changes, 10);
  EXPECT_GT(tempo_changes, 20);
  EXPECT_GT(minor, 20);
}

TEST(SyntheticTest, RepeatedSectionsRepeatAndVariedSectionsDiffer) {
  int checked_repeat = 0, checked_variation = 0;
  for (int i = 0; i < 60; ++i) {
    const SyntheticTune t = MakeSyntheticTune(1, i);
    if (t.score.time_signatures.size() > 1) continue;  // keep the arithmetic simple: one meter
    const int64_t bar_ticks = 480LL * 4 * t.score.time_signatures[0].numerator / t.score.time_signatures[0].denominator;
    const int64_t section_ticks = t.score.end_tick / static_cast<int64_t>(t.form.size() - std::count(t.form.begin(), t.form.end(), '\''));
    ASSERT_EQ(section_ticks % bar_ticks, 0) << t.name;
    auto section = [&](int k) { return MelodyOfBars(t.score, k * section_ticks, (k + 1) * section_ticks); };
    if (t.form == "AABA" || t.form == "AABB") {
      EXPECT_EQ(section(0), section(1)) << t.name;
      ++checked_repeat;
    }
    if (t.form == "AA'BA") {
      const auto a = section(0), a2 = section(1);
      ASSERT_EQ(a.size(), a2.size()) << t.name;  // same rhythm
      EXPECT_NE(a, a2) << t.name;                // other pitches
      EXPECT_EQ(section(0), section(3)) << t.name;
      ++checked_variation;
    }
  }
  EXPECT_GT(checked_repeat, 0);
  EXPECT_GT(checked_variation, 0);
}

TEST(SyntheticTest, TunesAreOnTheGridSoTheTokenRoundTripIsExact) {
  Tokenizer tok;
  for (int i = 0; i < 50; ++i) {
    const SyntheticTune t = MakeSyntheticTune(2, i);
    StatusOr<Score> parsed = ParseMidi(SerializeMidi(t.score).data(), SerializeMidi(t.score).size(), t.name);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    StatusOr<EncodedPiece> enc = tok.Encode(*parsed);
    ASSERT_TRUE(enc.ok()) << enc.status().message();
    EXPECT_EQ(enc->stats.off_grid_onsets, 0) << t.name;
    EXPECT_EQ(enc->stats.notes_out, static_cast<int64_t>(t.score.notes.size())) << t.name;
    StatusOr<Score> dec = tok.Decode(enc->tokens);
    ASSERT_TRUE(dec.ok()) << dec.status().message();
    StatusOr<EncodedPiece> again = tok.Encode(*dec);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->tokens, enc->tokens) << t.name;
  }
}

TEST(SyntheticTest, WritesOneReadableFilePerTune) {
  const std::string dir = ::testing::TempDir() + "/synthetic_corpus";
  std::filesystem::remove_all(dir);
  SyntheticOptions o;
  o.seed = 3;
  o.count = 12;
  ASSERT_TRUE(WriteSyntheticCorpus(o, dir).ok());
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++files;
    StatusOr<Score> s = ReadMidiFile(entry.path().string());
    EXPECT_TRUE(s.ok()) << entry.path() << ": " << s.status().message();
  }
  EXPECT_EQ(files, 12);
  std::filesystem::remove_all(dir);
}

TEST(SyntheticTest, UnwritableFolderIsANamedError) {
  SyntheticOptions o;
  o.count = 1;
  const Status s = WriteSyntheticCorpus(o, "/proc/cadenza-cannot-write-here");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/proc/cadenza-cannot-write-here"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace cadenza
