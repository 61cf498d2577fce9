// EvalPiece from a Score, from tokens and from MIDI files: grid steps, bars with meters, drums, and named errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/eval/piece.h"
#include "core/midi.h"
#include "core/tokenizer.h"

namespace cadenza {
namespace {

Score WaltzScore() {
  Score s;
  s.ticks_per_quarter = 96;
  s.tracks = {{"melody"}};
  s.time_signatures = {{0, 3, 4}, {96 * 6, 6, 8}};  // two bars of 3/4, then 6/8
  auto note = [&](int64_t start, int64_t len, int pitch, bool drum = false) {
    Note n;
    n.start = start;
    n.end = start + len;
    n.pitch = static_cast<uint8_t>(pitch);
    n.velocity = 80;
    n.drum = drum;
    n.channel = drum ? 9 : 0;
    s.notes.push_back(n);
  };
  note(0, 96, 60);
  note(96, 48, 62);
  note(96 * 6, 96 * 3 / 2, 67);     // first 6/8 bar, a dotted quarter
  note(96 * 6 + 48, 24, 36, true);  // a drum hit on the second eighth
  s.Sort();
  return s;
}

TEST(PieceTest, FromScoreOnTheGrid) {
  auto piece = PieceFromScore(WaltzScore());
  ASSERT_TRUE(piece.ok()) << piece.status().message();
  ASSERT_EQ(piece->bars.size(), 3u);
  EXPECT_EQ(piece->bars[0].numerator, 3);
  EXPECT_EQ(piece->bars[0].length, 36);
  EXPECT_EQ(piece->bars[0].num_beats, 3);
  EXPECT_EQ(piece->bars[2].start, 72);
  EXPECT_EQ(piece->bars[2].numerator, 6);
  EXPECT_EQ(piece->bars[2].beat_steps, 18);
  EXPECT_EQ(piece->bars[2].num_beats, 2);
  EXPECT_EQ(piece->end_step(), 72 + 36);
  EXPECT_EQ(piece->num_beats(), 3 + 3 + 2);
  ASSERT_EQ(piece->notes.size(), 4u);
  EXPECT_EQ(piece->notes[1].on, 12);
  EXPECT_EQ(piece->notes[1].off, 18);
  EXPECT_EQ(piece->notes[2].on, 72);
  EXPECT_EQ(piece->notes[2].off, 90);
  EXPECT_TRUE(piece->notes[3].drum);
  EXPECT_EQ(piece->notes[3].on, 78);
}

TEST(PieceTest, TokensAndMidiGiveTheSamePiece) {
  const Score score = WaltzScore();
  auto enc = Tokenizer().Encode(score);
  ASSERT_TRUE(enc.ok());
  auto from_tokens = PieceFromTokens(enc->tokens);
  ASSERT_TRUE(from_tokens.ok()) << from_tokens.status().message();
  const std::string path = (std::filesystem::temp_directory_path() / ("cadenza_piece_" + std::to_string(::getpid()) + ".mid")).string();
  ASSERT_TRUE(WriteMidiFile(score, path).ok());
  auto from_midi = ReadEvalPiece(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(from_midi.ok()) << from_midi.status().message();
  ASSERT_EQ(from_midi->notes.size(), from_tokens->notes.size());
  for (size_t i = 0; i < from_midi->notes.size(); ++i) {
    EXPECT_EQ(from_midi->notes[i].on, from_tokens->notes[i].on);
    EXPECT_EQ(from_midi->notes[i].pitch, from_tokens->notes[i].pitch);
  }
  EXPECT_EQ(from_midi->bars.size(), from_tokens->bars.size());
}

TEST(PieceTest, ErrorsNameTheInput) {
  auto bad_tokens = PieceFromTokens(std::vector<int32_t>{1, 3, 2});  // BOS Bar EOS: no TimeSig
  ASSERT_FALSE(bad_tokens.ok());
  EXPECT_NE(bad_tokens.status().message().find("token"), std::string::npos) << bad_tokens.status().message();
  const std::string path = (std::filesystem::temp_directory_path() / ("cadenza_bad_" + std::to_string(::getpid()) + ".mid")).string();
  std::ofstream(path) << "not midi";
  auto bad_midi = ReadEvalPiece(path);
  std::filesystem::remove(path);
  ASSERT_FALSE(bad_midi.ok());
  EXPECT_NE(bad_midi.status().message().find(path), std::string::npos) << bad_midi.status().message();
  Score empty;
  empty.tracks = {{"t"}};
  const std::string empty_path = path + ".empty.mid";
  ASSERT_TRUE(WriteMidiFile(empty, empty_path).ok());
  auto no_notes = ReadEvalPiece(empty_path);
  std::filesystem::remove(empty_path);
  ASSERT_FALSE(no_notes.ok());
  EXPECT_NE(no_notes.status().message().find("no notes"), std::string::npos) << no_notes.status().message();
  EXPECT_NE(no_notes.status().message().find(empty_path), std::string::npos) << no_notes.status().message();
}

}  // namespace
}  // namespace cadenza
