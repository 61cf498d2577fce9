// Segmentation: bars and beats recovered from tokens, including empty beats and meter changes.
#include <gtest/gtest.h>

#include "core/segmentation.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

TEST(Segmentation, BarsAndBeatsOfAKnownSequence) {
  const Vocabulary& v = Vocabulary::Get();
  // 0 BOS | 1 Bar 2 TS3/4 3 Beat_0 4 Pos_0 5 Prog 6 Pitch 7 Vel 8 Dur | 9 Beat_2 10 Pos_0 11 Pitch 12 Vel 13 Dur
  // | 14 Bar 15 TS6/8 16 Beat_1 17 Pos_3 18 Prog 19 Pitch 20 Vel 21 Dur | 22 EOS
  std::vector<int32_t> t = {v.Bos(), v.Bar(), v.TimeSig(3, 4), v.Beat(0), v.Position(0), v.Program(0), v.Pitch(60), v.Velocity(9),
                            v.Duration(12), v.Beat(2), v.Position(0), v.Pitch(62), v.Velocity(9), v.Duration(12), v.Bar(),
                            v.TimeSig(6, 8), v.Beat(1), v.Position(3), v.Program(0), v.Pitch(64), v.Velocity(9), v.Duration(6),
                            v.Eos()};
  auto seg = Segment(t);
  ASSERT_TRUE(seg.ok()) << seg.status().message();
  ASSERT_EQ(seg->bars.size(), 2u);
  EXPECT_EQ(seg->bars[0].token_offset, 1);
  EXPECT_EQ(seg->bars[0].num_beats, 3);
  EXPECT_EQ(seg->bars[1].token_offset, 14);
  EXPECT_EQ(seg->bars[1].start_step, 36);
  EXPECT_EQ(seg->bars[1].first_beat, 3);
  // Beat 1 of bar 0 is empty: it starts where beat 2 does.
  EXPECT_EQ(seg->beat_token_offsets, (std::vector<int64_t>{1, 9, 9, 14, 16}));
  EXPECT_EQ(seg->BarOf(0), 0);
  EXPECT_EQ(seg->BarOf(13), 0);
  EXPECT_EQ(seg->BarOf(14), 1);
  EXPECT_EQ(seg->BarOf(22), 1);
  EXPECT_EQ(seg->BeatOf(8), 0);
  EXPECT_EQ(seg->BeatOf(9), 2);
  EXPECT_EQ(seg->BeatOf(15), 3);
  EXPECT_EQ(seg->BeatOf(19), 4);
  EXPECT_EQ(seg->BeatRange(1), (std::pair<int64_t, int64_t>{9, 9}));
  EXPECT_EQ(seg->BarRange(1), (std::pair<int64_t, int64_t>{14, 23}));
}

TEST(Segmentation, EncoderAndSegmenterAgreeOnEveryToken) {
  Score s;
  s.ticks_per_quarter = 480;
  s.time_signatures = {{0, 4, 4}, {1920 * 3, 12, 8}};
  for (int64_t t = 0; t < 1920 * 3 + 2880 * 2; t += 360) {
    Note n;
    n.start = t;
    n.end = t + 200;
    n.pitch = static_cast<uint8_t>(60 + (t / 360) % 12);
    n.velocity = 80;
    s.notes.push_back(n);
  }
  auto e = Tokenizer().Encode(s);
  ASSERT_TRUE(e.ok());
  const Segmentation& seg = e->segmentation;
  const Vocabulary& v = Vocabulary::Get();
  EXPECT_EQ(seg.bars.size(), 5u);
  // Every note onset's step equals its bar start + beat * beat length + position.
  for (size_t i = 0; i < e->tokens.size(); ++i) {
    if (v.Type(e->tokens[i]) != TokenType::kPosition) continue;
    const BarInfo& bar = seg.bars[seg.BarOf(i)];
    const int64_t beat_in_bar = seg.BeatOf(i) - bar.first_beat;
    const int64_t step = bar.start_step + beat_in_bar * v.BeatSteps(bar.numerator, bar.denominator) + v.Info(e->tokens[i]).value;
    EXPECT_EQ(step % 9, 0) << "token " << i;  // onsets every 360 ticks = 9 steps
  }
}

TEST(Segmentation, RefusesBrokenSequencesWithTheirIndex) {
  const Vocabulary& v = Vocabulary::Get();
  auto bad = Segment({v.Bar(), v.Pitch(60)});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "token 0 (Bar): expected TimeSig after Bar");
  auto beat = Segment({v.Bar(), v.TimeSig(2, 4), v.Beat(2)});
  ASSERT_FALSE(beat.ok());
  EXPECT_EQ(beat.status().message(), "token 2 (Beat_2): beat outside the bar's meter");
  // Found by the tokenizer fuzzer: an out-of-range id right after a Bar was looked up before being checked.
  for (int32_t after : {-3, v.size(), v.size() + 7}) {
    auto out_of_range = Segment({v.Bar(), after});
    ASSERT_FALSE(out_of_range.ok());
    EXPECT_EQ(out_of_range.status().message(), "token 0 (Bar): expected TimeSig after Bar");
  }
  auto empty = Segment(std::vector<int32_t>{});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->BarOf(0), 0);
}

}  // namespace
}  // namespace cadenza
