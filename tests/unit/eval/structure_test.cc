// Known answers for segment embeddings, the SSM and its structure scores (repeated bar, ABAB, no repetition).
#include <gtest/gtest.h>

#include <cmath>

#include "core/eval/evaluate.h"
#include "core/eval/ssm.h"
#include "core/tokenizer.h"

namespace cadenza {
namespace {

// One 4/4 bar of quarter notes C E G C starting at `start`.
void AddBarA(std::vector<EvalNote>* notes, int64_t start) {
  const int pitches[4] = {60, 64, 67, 72};
  for (int b = 0; b < 4; ++b) notes->push_back({start + 12 * b, start + 12 * b + 12, pitches[b], false});
}
// One 4/4 bar of off-beat eighths on other pitch classes (C# D# F# A#): shares nothing with bar A.
void AddBarB(std::vector<EvalNote>* notes, int64_t start) {
  const int pitches[4] = {61, 63, 66, 70};
  for (int b = 0; b < 4; ++b) notes->push_back({start + 12 * b + 6, start + 12 * b + 12, pitches[b], false});
}

Ssm SsmOf(const EvalPiece& piece, SegmentUnit unit) {
  auto ssm = SelfSimilarity(SegmentEmbeddings(piece, unit));
  EXPECT_TRUE(ssm.ok()) << ssm.status().message();
  return ssm.ok() ? *ssm : Ssm{};
}

TEST(StructureTest, OneRepeatedBarGivesOnesEverywhereAtBarLevel) {
  std::vector<EvalNote> notes;
  for (int bar = 0; bar < 8; ++bar) AddBarA(&notes, 48 * bar);
  const EvalPiece piece = MakeUniformPiece(8, 4, 4, notes);
  const Ssm ssm = SsmOf(piece, SegmentUnit::kBar);
  ASSERT_EQ(ssm.n, 8);
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 8; ++j) EXPECT_NEAR(ssm.at(i, j), 1.0, 1e-6) << i << "," << j;
  }
  const StructureScores s = ScoreStructure(ssm, StructureOptions{});
  EXPECT_DOUBLE_EQ(s.repetition, 1.0);
  EXPECT_DOUBLE_EQ(s.variation, 0.0);
  ASSERT_EQ(s.repetition_by_lag.size(), 7u);
  for (double r : s.repetition_by_lag) EXPECT_DOUBLE_EQ(r, 1.0);
  EXPECT_EQ(s.best_lag, 1);
}

TEST(StructureTest, OneRepeatedBarGivesOnesOnBarLagDiagonalsAtBeatLevel) {
  std::vector<EvalNote> notes;
  for (int bar = 0; bar < 6; ++bar) AddBarA(&notes, 48 * bar);
  const EvalPiece piece = MakeUniformPiece(6, 4, 4, notes);
  const Ssm ssm = SsmOf(piece, SegmentUnit::kBeat);
  ASSERT_EQ(ssm.n, 24);
  // Beats carry C, E, G, C on the same onset position: pitch classes equal -> 1, else (0 + 1) / 2.
  const int pc[4] = {0, 4, 7, 0};
  for (int i = 0; i < 24; ++i) {
    for (int j = 0; j < 24; ++j) {
      if ((j - i) % 4 == 0) {
        EXPECT_NEAR(ssm.at(i, j), 1.0, 1e-6) << "bar-lag diagonal " << i << "," << j;
      }
      EXPECT_NEAR(ssm.at(i, j), pc[i % 4] == pc[j % 4] ? 1.0 : 0.5, 1e-6) << i << "," << j;
    }
  }
  // Beat 1 (C4) against beat 2 (E4): same onset position, other pitch class -> exactly (0 + 1) / 2.
  EXPECT_NEAR(ssm.at(0, 1), 0.5, 1e-6);
  StructureOptions o;
  const StructureScores s = ScoreStructure(ssm, o);
  EXPECT_EQ(s.best_lag, 4);
  EXPECT_DOUBLE_EQ(s.repetition_by_lag[3], 1.0);
  EXPECT_DOUBLE_EQ(s.repetition_by_lag[7], 1.0);
}

TEST(StructureTest, AbabFormGivesACheckerboard) {
  // Sections of two bars: A A | B B | A A | B B.
  std::vector<EvalNote> notes;
  for (int bar = 0; bar < 8; ++bar) {
    if ((bar / 2) % 2 == 0) AddBarA(&notes, 48 * bar); else AddBarB(&notes, 48 * bar);
  }
  const EvalPiece piece = MakeUniformPiece(8, 4, 4, notes);
  const Ssm ssm = SsmOf(piece, SegmentUnit::kBar);
  ASSERT_EQ(ssm.n, 8);
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 8; ++j) {
      const bool same = (i / 2) % 2 == (j / 2) % 2;
      EXPECT_NEAR(ssm.at(i, j), same ? 1.0 : 0.0, 1e-6) << i << "," << j;
    }
  }
  const StructureScores s = ScoreStructure(ssm, StructureOptions{});
  // 28 pairs, 12 of them within the same section letter.
  EXPECT_NEAR(s.repetition, 12.0 / 28.0, 1e-12);
  EXPECT_NEAR(s.mean_similarity, 12.0 / 28.0, 1e-6);
  EXPECT_DOUBLE_EQ(s.repetition_by_lag[3], 1.0);  // lag 4 bars: A->A, B->B
  EXPECT_DOUBLE_EQ(s.repetition_by_lag[1], 0.0);  // lag 2 bars: A->B always
  EXPECT_EQ(s.best_lag, 4);
  // The 4-bar segment AB has one more copy: score 1, coverage 4/8, fitness 2*1*0.5/1.5.
  const SegmentFitness f = ComputeSegmentFitness(ssm, 0, 4, 0.8);
  EXPECT_EQ(f.copies, 2);
  EXPECT_DOUBLE_EQ(f.score, 1.0);
  EXPECT_DOUBLE_EQ(f.coverage, 0.5);
  EXPECT_NEAR(f.fitness, 2.0 / 3.0, 1e-12);
  // One bar A repeats at 0, 1, 4, 5: coverage 3/8, fitness 2*0.375/1.375.
  EXPECT_NEAR(ComputeSegmentFitness(ssm, 0, 1, 0.8).fitness, 0.75 / 1.375, 1e-12);
  EXPECT_NEAR(s.structureness, 2.0 / 3.0, 1e-12);
  ASSERT_EQ(s.si.size(), 3u);
  EXPECT_NEAR(s.si[0], 2.0 / 3.0, 1e-12);  // lengths 2..4
  EXPECT_DOUBLE_EQ(s.si[2], 0.0);          // lengths 8..16: no room for a second copy
  const auto scape = FitnessScape(ssm, 8, 0.8);
  ASSERT_EQ(scape.size(), 8u);
  EXPECT_EQ(scape[3].size(), 5u);
  EXPECT_NEAR(scape[3][0], 2.0 / 3.0, 1e-12);
}

TEST(StructureTest, PieceWithoutRepetitionHasNoStructure) {
  // Bar k: one note of pitch class k at onset step 3k: no two bars share pitch class or onset position.
  std::vector<EvalNote> notes;
  for (int bar = 0; bar < 8; ++bar) notes.push_back({48 * bar + 3 * bar, 48 * bar + 3 * bar + 2, 60 + bar, false});
  const Ssm ssm = SsmOf(MakeUniformPiece(8, 4, 4, notes), SegmentUnit::kBar);
  const StructureScores s = ScoreStructure(ssm, StructureOptions{});
  EXPECT_DOUBLE_EQ(s.repetition, 0.0);
  EXPECT_DOUBLE_EQ(s.mean_similarity, 0.0);
  EXPECT_DOUBLE_EQ(s.structureness, 0.0);
}

TEST(StructureTest, ZeroVectorsHaveDefinedCosine) {
  const float zero[3] = {0, 0, 0}, x[3] = {1, 2, 3}, y[3] = {-1, -2, -3};
  EXPECT_DOUBLE_EQ(Cosine(zero, zero, 3), 1.0);
  EXPECT_DOUBLE_EQ(Cosine(zero, x, 3), 0.0);
  EXPECT_DOUBLE_EQ(Cosine(x, x, 3), 1.0);
  EXPECT_DOUBLE_EQ(Cosine(x, y, 3), -1.0);
  // Two empty bars are the same; an empty bar and a full one are not.
  std::vector<EvalNote> notes;
  AddBarA(&notes, 0);
  AddBarA(&notes, 48 * 3);
  const Ssm ssm = SsmOf(MakeUniformPiece(4, 4, 4, notes), SegmentUnit::kBar);
  EXPECT_NEAR(ssm.at(1, 2), 1.0, 1e-9);
  EXPECT_NEAR(ssm.at(0, 1), 0.0, 1e-9);
  EXPECT_NEAR(ssm.at(0, 3), 1.0, 1e-6);
}

TEST(StructureTest, EmbeddingsFromAMatrix) {
  // A model's hidden states for 4 bars, ABAB.
  const Embeddings hidden = {{1, 0, 0.5f}, {0, 1, 0}, {1, 0, 0.5f}, {0, 1, 0}};
  std::vector<EvalNote> notes;
  for (int bar = 0; bar < 4; ++bar) AddBarA(&notes, 48 * bar);
  const EvalPiece piece = MakeUniformPiece(4, 4, 4, notes);
  Ssm ssm;
  auto m = EvaluatePieceWithEmbeddings(piece, hidden, EvalOptions{}, &ssm);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->segments, 4);
  EXPECT_NEAR(ssm.at(0, 2), 1.0, 1e-6);
  EXPECT_NEAR(ssm.at(0, 1), 0.0, 1e-6);
  EXPECT_NEAR(m->structure.repetition, 2.0 / 6.0, 1e-12);
  // The built-in embeddings see four identical bars instead.
  auto own = EvaluatePiece(piece, EvalOptions{});
  ASSERT_TRUE(own.ok());
  EXPECT_DOUBLE_EQ(own->structure.repetition, 1.0);

  auto wrong_rows = EvaluatePieceWithEmbeddings(piece, {{1, 0}, {0, 1}}, EvalOptions{});
  ASSERT_FALSE(wrong_rows.ok());
  EXPECT_NE(wrong_rows.status().message().find("2 rows"), std::string::npos) << wrong_rows.status().message();
  auto ragged = SelfSimilarity({{1, 0}, {0, 1, 2}});
  ASSERT_FALSE(ragged.ok());
  EXPECT_NE(ragged.status().message().find("row 1"), std::string::npos) << ragged.status().message();
  auto nan = SelfSimilarity({{1, 0}, {NAN, 1}});
  EXPECT_FALSE(nan.ok());
}

TEST(StructureTest, TooManySegmentsSkipsOnlyTheStructure) {
  std::vector<EvalNote> notes;
  for (int bar = 0; bar < 6; ++bar) AddBarA(&notes, 48 * bar);
  EvalOptions o;
  o.max_segments = 5;
  Ssm ssm;
  auto m = EvaluatePiece(MakeUniformPiece(6, 4, 4, notes), o, &ssm);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->segments, 6);
  EXPECT_EQ(ssm.n, 0);
  EXPECT_TRUE(std::isnan(m->structure.repetition));
  EXPECT_TRUE(std::isnan(m->structure.structureness));
  EXPECT_NE(m->note.find("more than the limit of 5"), std::string::npos) << m->note;
  EXPECT_DOUBLE_EQ(m->melody.pitch_range, 12);
  EXPECT_DOUBLE_EQ(m->rhythm.syncopation, 0);
}

TEST(StructureTest, HiddenStatesPooledPerBarAndBeat) {
  // Tokens of two 4/4 bars; fake "hidden states": row t = (t, 1).
  Score score;
  score.tracks = {{"t"}};
  for (int k = 0; k < 8; ++k) {
    Note n;
    n.start = 480 * k;
    n.end = n.start + 480;
    n.pitch = static_cast<uint8_t>(60 + k);
    n.velocity = 80;
    score.notes.push_back(n);
  }
  auto enc = Tokenizer().Encode(score);
  ASSERT_TRUE(enc.ok());
  const Segmentation& seg = enc->segmentation;
  Embeddings hidden;
  for (int64_t t = 0; t < seg.num_tokens; ++t) hidden.push_back({static_cast<float>(t), 1.0f});
  auto bars = PoolTokenEmbeddings(hidden, seg, SegmentUnit::kBar);
  ASSERT_TRUE(bars.ok()) << bars.status().message();
  ASSERT_EQ(bars->size(), 2u);
  const auto [b0, e0] = seg.BarRange(0);
  EXPECT_FLOAT_EQ((*bars)[0][0], (b0 + e0 - 1) / 2.0f);  // mean of b0 .. e0-1
  EXPECT_FLOAT_EQ((*bars)[0][1], 1.0f);
  auto beats = PoolTokenEmbeddings(hidden, seg, SegmentUnit::kBeat);
  ASSERT_TRUE(beats.ok());
  EXPECT_EQ(beats->size(), 8u);
  // They line up with the piece's segments.
  auto piece = PieceFromTokens(enc->tokens);
  ASSERT_TRUE(piece.ok());
  EvalOptions o;
  o.unit = SegmentUnit::kBeat;
  EXPECT_TRUE(EvaluatePieceWithEmbeddings(*piece, *beats, o).ok());
  hidden.pop_back();
  auto short_rows = PoolTokenEmbeddings(hidden, seg, SegmentUnit::kBar);
  ASSERT_FALSE(short_rows.ok());
  EXPECT_NE(short_rows.status().message().find("tokens"), std::string::npos);
}

TEST(StructureTest, EmptyPieceIsAnError) {
  auto m = EvaluatePiece(MakeUniformPiece(2, 4, 4, {}), EvalOptions{});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("empty piece"), std::string::npos);
}

TEST(StructureTest, SegmentsFollowTheMeter) {
  const EvalPiece piece = MakeUniformPiece(2, 6, 8, {{0, 6, 60, false}});
  const auto beats = SegmentSpans(piece, SegmentUnit::kBeat);
  ASSERT_EQ(beats.size(), 4u);  // two dotted-quarter beats per 6/8 bar
  EXPECT_EQ(beats[1], std::make_pair(int64_t{18}, int64_t{36}));
  EXPECT_EQ(BarGridOfSegments(piece, SegmentUnit::kBeat), (std::vector<int>{0, 2}));
  EXPECT_EQ(SegmentSpans(piece, SegmentUnit::kBar).size(), 2u);
}

}  // namespace
}  // namespace cadenza
