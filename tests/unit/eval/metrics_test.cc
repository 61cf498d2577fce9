// Hand-computed melodic and rhythmic metrics: skyline, MusPy pitch statistics, LHL syncopation, WNBD, beats, groove.
#include <gtest/gtest.h>

#include <cmath>

#include "core/eval/metrics.h"

namespace cadenza {
namespace {

std::vector<EvalNote> Onsets(const std::vector<int64_t>& steps, int length, int pitch = 60) {
  std::vector<EvalNote> notes;
  for (int64_t s : steps) notes.push_back({s, s + length, pitch, false});
  return notes;
}

TEST(MetricalWeightsTest, HierarchiesOfCommonMeters) {
  // 4/4: bar 48 steps -> halves -> quarters -> eighths -> sixteenths; triplet steps below the finest level.
  const auto w44 = MetricalWeights(4, 4);
  ASSERT_EQ(w44.size(), 48u);
  EXPECT_EQ(w44[0], 0);
  EXPECT_EQ(w44[24], -1);
  EXPECT_EQ(w44[12], -2);
  EXPECT_EQ(w44[36], -2);
  EXPECT_EQ(w44[6], -3);
  EXPECT_EQ(w44[3], -4);
  EXPECT_EQ(w44[4], -5);
  // 3/4: three quarter beats of equal weight.
  const auto w34 = MetricalWeights(3, 4);
  ASSERT_EQ(w34.size(), 36u);
  EXPECT_EQ(w34[12], -1);
  EXPECT_EQ(w34[24], -1);
  EXPECT_EQ(w34[6], -2);
  EXPECT_EQ(w34[3], -3);
  // 2/4.
  const auto w24 = MetricalWeights(2, 4);
  EXPECT_EQ(w24[12], -1);
  EXPECT_EQ(w24[6], -2);
  // 6/8: two dotted quarters, each of three eighths.
  const auto w68 = MetricalWeights(6, 8);
  ASSERT_EQ(w68.size(), 36u);
  EXPECT_EQ(w68[18], -1);
  EXPECT_EQ(w68[6], -2);
  EXPECT_EQ(w68[12], -2);
  EXPECT_EQ(w68[3], -3);
  EXPECT_EQ(w68[1], -4);
  // 12/8: dotted halves, dotted quarters, eighths, sixteenths.
  const auto w128 = MetricalWeights(12, 8);
  ASSERT_EQ(w128.size(), 72u);
  EXPECT_EQ(w128[36], -1);
  EXPECT_EQ(w128[18], -2);
  EXPECT_EQ(w128[54], -2);
  EXPECT_EQ(w128[6], -3);
  EXPECT_EQ(w128[3], -4);
}

TEST(RhythmTest, StraightQuartersAreNotSyncopated) {
  const EvalPiece piece = MakeUniformPiece(2, 4, 4, Onsets({0, 12, 24, 36, 48, 60, 72, 84}, 12));
  const RhythmMetrics r = ComputeRhythm(piece);
  EXPECT_EQ(r.onsets, 8);
  EXPECT_DOUBLE_EQ(r.syncopation, 0.0);
  EXPECT_DOUBLE_EQ(r.wnbd, 0.0);
  EXPECT_DOUBLE_EQ(r.on_beat_rate, 1.0);
  EXPECT_DOUBLE_EQ(r.on_grid_rate, 1.0);
  EXPECT_DOUBLE_EQ(r.empty_beat_rate, 0.0);
  EXPECT_DOUBLE_EQ(r.groove_consistency, 1.0);
}

TEST(RhythmTest, OffBeatEighthsMatchTheHandComputedValues) {
  // Two 4/4 bars of eighths on every "and". Weights: beat 2 and 4 = -2, beat 3 = -1, downbeat 0, "and" = -3.
  // Bar 1: 1& -> beat 2 (1), 2& -> beat 3 (2), 3& -> beat 4 (1), 4& -> next downbeat (3) = 7.
  // Bar 2: the same, but after the last 4& the piece ends (no later downbeat) = 4. Total 11.
  const EvalPiece piece = MakeUniformPiece(2, 4, 4, Onsets({6, 18, 30, 42, 54, 66, 78, 90}, 6));
  const RhythmMetrics r = ComputeRhythm(piece);
  EXPECT_DOUBLE_EQ(r.syncopation_total, 11.0);
  EXPECT_DOUBLE_EQ(r.syncopation, 5.5);
  EXPECT_DOUBLE_EQ(r.syncopation_per_onset, 11.0 / 8);
  // WNBD: every onset is half a beat from a beat (T = 1/2) and, lasting to the next onset, ends after the next
  // beat but not after the one after it: 2/T = 4; the last one ends at the piece end, the next beat: 1/T = 2.
  EXPECT_DOUBLE_EQ(r.wnbd, (7 * 4.0 + 2.0) / 8);
  EXPECT_DOUBLE_EQ(r.on_beat_rate, 0.0);
  EXPECT_DOUBLE_EQ(r.on_grid_rate, 1.0);
  EXPECT_DOUBLE_EQ(r.empty_beat_rate, 0.0);
}

TEST(RhythmTest, WnbdWeighsNotesByTheBeatsTheyCross) {
  // One 4/4 bar, onsets 0, 6, 30. Onset 6: T = 1/2, lasts to 30, past beat 24 (after next) -> 1/T = 2.
  // Onset 30: T = 1/2, lasts to the bar end 48 = the beat after next -> 2/T = 4. WNBD = (0 + 2 + 4) / 3.
  const RhythmMetrics r = ComputeRhythm(MakeUniformPiece(1, 4, 4, Onsets({0, 6, 30}, 3)));
  EXPECT_DOUBLE_EQ(r.wnbd, 2.0);
  EXPECT_NEAR(r.on_beat_rate, 1.0 / 3, 1e-12);
  // Onset 6 (w -3) holds over 12 (w -2) and 24 (w -1): the strongest gives 2. Onset 30 (w -3) over 36 (w -2): 1.
  EXPECT_DOUBLE_EQ(r.syncopation_total, 3.0);
}

TEST(RhythmTest, CompoundMeterSyncopation) {
  // Two 6/8 bars, onsets 0, 12, 24, 36. 12 (w -2) holds over 18 (w -1): 1. 24 -> 36 is a downbeat onset: no
  // silent stronger step. 36 to the end: nothing stronger than the downbeat. Total 1.
  const RhythmMetrics r = ComputeRhythm(MakeUniformPiece(2, 6, 8, Onsets({0, 12, 24, 36}, 6)));
  EXPECT_DOUBLE_EQ(r.syncopation_total, 1.0);
  EXPECT_DOUBLE_EQ(r.syncopation, 0.5);
  // Beats are dotted quarters (0, 18, 36, 54): onsets 0 and 36 on a beat.
  EXPECT_DOUBLE_EQ(r.on_beat_rate, 0.5);
}

TEST(RhythmTest, TripletsDivideTheirBeatInThree) {
  // Eighth triplets in 4/4 (4 steps apart), two bars: each beat's onsets fit a division in three, so they are on
  // that beat's hierarchy (beat -> thirds -> sixths) and nothing stronger falls silent between them: 0 syncopation
  // (read against sixteenths they scored 1 per onset, 12 per bar).
  std::vector<int64_t> triplets;
  for (int64_t s = 0; s < 96; s += 4) triplets.push_back(s);
  const RhythmMetrics r = ComputeRhythm(MakeUniformPiece(2, 4, 4, Onsets(triplets, 4)));
  EXPECT_DOUBLE_EQ(r.syncopation_total, 0.0);
  EXPECT_DOUBLE_EQ(r.on_grid_rate, 1.0);
  EXPECT_DOUBLE_EQ(r.on_beat_rate, 8.0 / 24);
  // Sixteenth triplets (2 steps) too.
  std::vector<int64_t> sixteenth_triplets;
  for (int64_t s = 0; s < 48; s += 2) sixteenth_triplets.push_back(s);
  EXPECT_DOUBLE_EQ(ComputeRhythm(MakeUniformPiece(1, 4, 4, Onsets(sixteenth_triplets, 2))).syncopation_total, 0.0);
  // A triplet held over the next beat still syncopates: onsets 0, 8, 24. Beat 1 divides in three (8 is its second
  // third, w -3); 8 holds over beat 2 (step 12, w -2) until 24: 1. 0 -> 8 and 24 -> the end pass nothing stronger.
  const RhythmMetrics skip = ComputeRhythm(MakeUniformPiece(1, 4, 4, Onsets({0, 8, 24}, 4)));
  EXPECT_DOUBLE_EQ(skip.on_grid_rate, 1.0);
  EXPECT_DOUBLE_EQ(skip.syncopation_total, 1.0);
  // Each beat chooses alone: sixteenths in beat 1, triplets in beat 2 are all on their beat's grid.
  EXPECT_DOUBLE_EQ(ComputeRhythm(MakeUniformPiece(1, 4, 4, Onsets({0, 3, 6, 9, 12, 16, 20}, 3))).on_grid_rate, 1.0);
  // In 6/8 a duplet (the dotted beat halved, 9 steps) is read as a binary division of its beat: on the grid, and the
  // second duplet note (w -2) holds over nothing stronger before the next beat.
  const RhythmMetrics duplets = ComputeRhythm(MakeUniformPiece(1, 6, 8, Onsets({0, 9, 18, 27}, 9)));
  EXPECT_DOUBLE_EQ(duplets.on_grid_rate, 1.0);
  EXPECT_DOUBLE_EQ(duplets.syncopation_total, 0.0);
}

TEST(RhythmTest, EmptyBeatsAndGrooveConsistency) {
  // Two 4/4 bars; one note sounding 6..18 covers beats 1 and 2 of 8.
  RhythmMetrics r = ComputeRhythm(MakeUniformPiece(2, 4, 4, Onsets({6}, 12)));
  EXPECT_DOUBLE_EQ(r.empty_beat_rate, 6.0 / 8);
  // Bars with onsets {0,12}, {0,24}, {0,24}: Hamming distances 2/48 and 0 -> groove 1 - (2/48 + 0)/2.
  r = ComputeRhythm(MakeUniformPiece(3, 4, 4, Onsets({0, 12, 48, 72, 96, 120}, 3)));
  EXPECT_NEAR(r.groove_consistency, 1.0 - 1.0 / 48, 1e-12);
  // A single bar has no neighbour: undefined.
  EXPECT_TRUE(std::isnan(ComputeRhythm(MakeUniformPiece(1, 4, 4, Onsets({0}, 3))).groove_consistency));
}

TEST(MelodyTest, SkylineAndPitchStatistics) {
  // Onset 0: chord C4 E4 G4 (skyline G4 = 67); onset 12: D4 (62); onset 24: C5 + C3 (skyline 72); onset 36: C#4;
  // a drum note that every pitched metric ignores.
  std::vector<EvalNote> notes = {{0, 12, 60, false},  {0, 12, 64, false},  {0, 12, 67, false}, {12, 24, 62, false},
                                 {24, 36, 72, false}, {24, 36, 48, false}, {36, 48, 61, false}, {36, 40, 36, true}};
  const EvalPiece piece = MakeUniformPiece(1, 4, 4, notes);
  const std::vector<EvalNote> melody = SkylineMelody(piece);
  ASSERT_EQ(melody.size(), 4u);
  EXPECT_EQ(melody[0].pitch, 67);
  EXPECT_EQ(melody[2].pitch, 72);
  const MelodyMetrics m = ComputeMelody(piece);
  EXPECT_EQ(m.melody_notes, 4);
  EXPECT_DOUBLE_EQ(m.avg_pitch_deviation, (5.0 + 10.0 + 11.0) / 3);
  EXPECT_DOUBLE_EQ(m.pitch_range, 72 - 48);
  EXPECT_DOUBLE_EQ(m.n_pitches_used, 7);
  // Pitch classes of 7 pitched notes: C x3, E, G, D, C#.
  const double h = -(3.0 / 7) * std::log2(3.0 / 7) - 4 * (1.0 / 7) * std::log2(1.0 / 7);
  EXPECT_NEAR(m.pitch_class_entropy, h, 1e-12);
  // C major holds all but C#; no major or natural minor scale holds C, C#, D, E and G together.
  EXPECT_NEAR(m.scale_consistency, 6.0 / 7, 1e-12);
}

TEST(MelodyTest, DegenerateInputsAreUndefined) {
  const MelodyMetrics one = ComputeMelody(MakeUniformPiece(1, 4, 4, {{0, 12, 60, false}}));
  EXPECT_TRUE(std::isnan(one.avg_pitch_deviation));
  EXPECT_DOUBLE_EQ(one.pitch_range, 0);
  EXPECT_DOUBLE_EQ(one.pitch_class_entropy, 0);
  EXPECT_DOUBLE_EQ(one.scale_consistency, 1);
  const MelodyMetrics drums = ComputeMelody(MakeUniformPiece(1, 4, 4, {{0, 12, 36, true}}));
  EXPECT_TRUE(std::isnan(drums.pitch_range));
  EXPECT_TRUE(std::isnan(drums.scale_consistency));
}

TEST(HistogramTest, PitchClassesAndNoteLengths) {
  const EvalPiece piece = MakeUniformPiece(1, 4, 4, {{0, 12, 60, false}, {12, 18, 62, false}, {18, 24, 72, false},
                                                     {24, 42, 67, false}, {42, 46, 65, false}});
  const auto pc = PitchClassHistogram(piece);
  EXPECT_DOUBLE_EQ(pc[0], 0.4);
  EXPECT_DOUBLE_EQ(pc[2], 0.2);
  const auto len = NoteLengthHistogram(piece);
  EXPECT_DOUBLE_EQ(len[2], 0.2);   // quarter (12 steps)
  EXPECT_DOUBLE_EQ(len[3], 0.4);   // eighth (6)
  EXPECT_DOUBLE_EQ(len[6], 0.2);   // dotted quarter (18)
  EXPECT_DOUBLE_EQ(len[10], 0.2);  // quarter triplet (4)
}

}  // namespace
}  // namespace cadenza
