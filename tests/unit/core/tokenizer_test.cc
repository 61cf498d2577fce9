// Tokenizer: exact token sequences for hand-made pieces, meters, tempo, quantisation error, strict decoding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/grammar.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

const Vocabulary& V() { return Vocabulary::Get(); }

std::string Names(const std::vector<int32_t>& tokens) {
  std::ostringstream out;
  for (size_t i = 0; i < tokens.size(); ++i) out << (i ? " " : "") << V().Name(tokens[i]);
  return out.str();
}

Note MakeNote(int64_t start, int64_t end, int pitch, int velocity = 64, int program = 0, bool drum = false) {
  Note n;
  n.start = start;
  n.end = end;
  n.pitch = static_cast<uint8_t>(pitch);
  n.velocity = static_cast<uint8_t>(velocity);
  n.program = static_cast<uint8_t>(program);
  n.drum = drum;
  n.channel = drum ? 9 : 0;
  return n;
}

Score MakeScore(std::vector<Note> notes, std::vector<TimeSignature> meters = {}, int tpq = 480) {
  Score s;
  s.ticks_per_quarter = tpq;
  s.notes = std::move(notes);
  s.time_signatures = std::move(meters);
  s.Sort();
  return s;
}

EncodedPiece EncodeOk(const Score& s) {
  auto e = Tokenizer().Encode(s);
  EXPECT_TRUE(e.ok()) << e.status().message();
  return e.ok() ? *e : EncodedPiece{};
}

TEST(Vocabulary, LayoutMatchesTheDocumentedTable) {
  EXPECT_EQ(V().size(), 1431);
  EXPECT_EQ(V().name(), "cadenza-remi-beat-g12");
  EXPECT_EQ(V().Name(0), "PAD");
  EXPECT_EQ(V().Name(3), "Bar");
  EXPECT_EQ(V().Name(4), "TimeSig_1/1");
  EXPECT_EQ(V().Name(V().TimeSig(6, 8)), "TimeSig_6/8");
  EXPECT_EQ(V().Name(V().TimeSig(64, 64)), "TimeSig_64/64");
  EXPECT_EQ(V().Beat(0), 452);
  EXPECT_EQ(V().Position(0), 516);
  EXPECT_EQ(V().Tempo(0), 564);
  EXPECT_EQ(V().Program(0), 950);
  EXPECT_EQ(V().Name(V().Program(kDrumProgram)), "Program_Drums");
  EXPECT_EQ(V().Pitch(0), 1079);
  EXPECT_EQ(V().Velocity(0), 1207);
  EXPECT_EQ(V().Duration(1), 1239);
  EXPECT_EQ(V().Name(1430), "Duration_192");
  EXPECT_EQ(V().TimeSig(5, 3), -1);
  EXPECT_EQ(V().TimeSig(65, 4), -1);
  EXPECT_EQ(V().TimeSig(4, 128), -1);
  // The hash is what datasets are checked against: changing the vocabulary must change the version too.
  EXPECT_EQ(V().HashHex().size(), 16u);
  for (TokenType t : {TokenType::kTimeSig, TokenType::kBeat, TokenType::kPitch, TokenType::kDuration}) {
    for (int id = V().First(t); id < V().End(t); ++id) EXPECT_EQ(V().Type(id), t) << V().Name(id);
  }
}

TEST(Vocabulary, EachGridHasItsOwnNameAndHash) {
  const Vocabulary* g24 = Vocabulary::ForGrid(24);
  const Vocabulary* g48 = Vocabulary::ForGrid(48);
  ASSERT_NE(g24, nullptr);
  ASSERT_NE(g48, nullptr);
  EXPECT_EQ(Vocabulary::ForGrid(16), nullptr);
  EXPECT_EQ(g24->name(), "cadenza-remi-beat-g24");
  EXPECT_EQ(g48->name(), "cadenza-remi-beat-g48");
  EXPECT_NE(g24->HashHex(), V().HashHex());
  EXPECT_NE(g48->HashHex(), g24->HashHex());
  EXPECT_EQ(g24->max_duration_steps(), 384);
  EXPECT_EQ(g48->max_positions_per_beat(), 192);
  EXPECT_EQ(Vocabulary::Find("cadenza-remi-beat-g24", Vocabulary::kVersion), g24);
  EXPECT_EQ(Vocabulary::Find("cadenza-remi-beat-g24", 1), nullptr);
  EXPECT_EQ(Vocabulary::Find("cadenza-remi-beat", 1), nullptr);  // the v1 vocabulary: refused by name
}

TEST(Vocabulary, PedalTokensLiveInAVariantAndTheDefaultStaysAsItWas) {
  // The default vocabulary is what existing datasets (out/pop909-v2, out/nottingham-v2) and checkpoints record.
  EXPECT_EQ(V().name(), "cadenza-remi-beat-g12");
  EXPECT_EQ(V().size(), 1431);
  EXPECT_EQ(V().HashHex(), "28d31bd5ac13a3d2");
  EXPECT_FALSE(V().pedal_tokens());
  EXPECT_EQ(V().PedalUp(), -1);
  EXPECT_EQ(V().First(TokenType::kPedal), V().End(TokenType::kPedal));  // none
  EXPECT_EQ(V().End(TokenType::kDuration), 1431);
  EXPECT_EQ(Vocabulary::ForGrid(12, false), &V());
  for (int grid : kSupportedGrids) {
    const Vocabulary* plain = Vocabulary::ForGrid(grid);
    const Vocabulary* pedal = Vocabulary::ForGrid(grid, true);
    ASSERT_NE(pedal, nullptr);
    EXPECT_EQ(pedal->name(), plain->name() + "-pedal");
    EXPECT_TRUE(pedal->pedal_tokens());
    EXPECT_EQ(pedal->grid(), grid);
    EXPECT_NE(pedal->HashHex(), plain->HashHex());
    EXPECT_EQ(Vocabulary::Find(pedal->name(), Vocabulary::kVersion), pedal);
    EXPECT_EQ(Vocabulary::Find(plain->name(), Vocabulary::kVersion), plain);
    // Every plain token keeps its id; the two pedal tokens come last.
    ASSERT_EQ(pedal->size(), plain->size() + 2);
    for (int id = 0; id < plain->size(); ++id) ASSERT_EQ(pedal->Name(id), plain->Name(id));
    EXPECT_EQ(pedal->Name(pedal->PedalUp()), "Pedal_Up");
    EXPECT_EQ(pedal->Name(pedal->PedalDown()), "Pedal_Down");
    EXPECT_EQ(pedal->PedalUp(), plain->size());
    EXPECT_EQ(pedal->Type(pedal->PedalDown()), TokenType::kPedal);
    EXPECT_EQ(pedal->First(TokenType::kPedal), plain->size());
    EXPECT_EQ(pedal->End(TokenType::kPedal), pedal->size());
    EXPECT_EQ(pedal->End(TokenType::kDuration), plain->size());
  }
  EXPECT_EQ(Vocabulary::ForGrid(16, true), nullptr);
  EXPECT_EQ(Tokenizer(TokenizerOptions::For(*Vocabulary::ForGrid(24, true))).vocabulary().name(),
            "cadenza-remi-beat-g24-pedal");
  TokenizerOptions apply;
  EXPECT_EQ(Tokenizer(apply).vocabulary().name(), "cadenza-remi-beat-g12");  // the default mode keeps the default
  SustainPedal mode = SustainPedal::kApply;
  EXPECT_TRUE(ParseSustainPedal("tokens", &mode));
  EXPECT_EQ(mode, SustainPedal::kTokens);
  EXPECT_FALSE(ParseSustainPedal("on", &mode));
}

TEST(Vocabulary, BinsRoundTrip) {
  for (int v = 1; v <= 127; ++v) EXPECT_EQ(Vocabulary::VelocityBin(Vocabulary::VelocityOfBin(Vocabulary::VelocityBin(v))), Vocabulary::VelocityBin(v));
  EXPECT_EQ(Vocabulary::TempoBin(120), 259);
  EXPECT_EQ(Vocabulary::TempoBin(60), 187);
  EXPECT_EQ(Vocabulary::TempoBin(1000), 385);
  EXPECT_EQ(Vocabulary::TempoBin(1), 0);
  for (int b = 0; b < kTempoBins; ++b) EXPECT_EQ(Vocabulary::TempoBin(60e6 / std::lround(60e6 / Vocabulary::TempoOfBin(b))), b);
}

TEST(Vocabulary, TempoBinsCover10To400BpmWithinTheDocumentedBound) {
  EXPECT_LE(Vocabulary::MinTempoBpm(), 10.0);
  EXPECT_GE(Vocabulary::MaxTempoBpm(), 400.0);
  double worst = 0;
  for (double bpm = 10; bpm <= 400; bpm *= 1.0007) {
    const double err = std::abs(Vocabulary::TempoOfBin(Vocabulary::TempoBin(bpm)) / bpm - 1);
    worst = std::max(worst, err);
  }
  EXPECT_LT(worst, 0.0049);  // half of 2^(1/72) - 1, docs/tokenizer.md
  EXPECT_GT(worst, 0.0047);
}

TEST(Vocabulary, MetersCountBeatsAsMusiciansDo) {
  EXPECT_EQ(V().BeatsPerBar(4, 4), 4);
  EXPECT_EQ(V().BeatsPerBar(3, 4), 3);
  EXPECT_EQ(V().BeatsPerBar(2, 4), 2);
  EXPECT_EQ(V().BeatsPerBar(6, 8), 2);
  EXPECT_EQ(V().BeatsPerBar(12, 8), 4);
  EXPECT_EQ(V().BeatsPerBar(3, 8), 3);
  EXPECT_EQ(V().BeatSteps(6, 8), 18);
  EXPECT_EQ(V().BarSteps(12, 8), 72);
  EXPECT_EQ(V().BeatSteps(2, 2), 24);
  EXPECT_EQ(V().BeatSteps(4, 1), 48);
  EXPECT_EQ(V().BarSteps(19, 16), 57);
  EXPECT_EQ(V().BeatsPerBar(19, 16), 19);
  EXPECT_EQ(V().BarSteps(21, 8), 126);
  EXPECT_EQ(V().BeatsPerBar(21, 8), 7);  // compound: 7 dotted quarters
  // A 1/32 is 1.5 steps on the 12 grid: 44/32 has beats of two 32nds (3 steps); 11/32 cannot be represented.
  EXPECT_TRUE(V().IsRepresentableMeter(44, 32));
  EXPECT_EQ(V().BarSteps(44, 32), 66);
  EXPECT_EQ(V().BeatSteps(44, 32), 3);
  EXPECT_FALSE(V().IsRepresentableMeter(11, 32));
  EXPECT_NE(V().MeterProblem(11, 32).find("16.5 steps"), std::string::npos) << V().MeterProblem(11, 32);
  EXPECT_TRUE(Vocabulary::ForGrid(24)->IsRepresentableMeter(11, 32));
  EXPECT_TRUE(Vocabulary::ForGrid(48)->IsRepresentableMeter(63, 64));
  EXPECT_FALSE(Vocabulary::ForGrid(48)->IsRepresentableMeter(65, 64));
}

TEST(Tokenizer, EncodesASimpleBarExactly) {
  // C on beat 1 (quarter), E on beat 2 and a half (eighth), G triplet on beat 4's second third.
  Score s = MakeScore({MakeNote(0, 480, 60, 100), MakeNote(720, 960, 64, 80), MakeNote(1440 + 160, 1440 + 320, 67, 60)});
  EncodedPiece e = EncodeOk(s);
  EXPECT_EQ(Names(e.tokens),
            "BOS Bar TimeSig_4/4 Beat_0 Pos_0 Tempo_259 Program_0 Pitch_60 Velocity_24 Duration_12 "
            "Beat_1 Pos_6 Pitch_64 Velocity_19 Duration_6 "
            "Beat_3 Pos_4 Pitch_67 Velocity_14 Duration_4 EOS");
  EXPECT_EQ(e.num_bars, 1);
  EXPECT_EQ(e.stats.notes_out, 3);
  EXPECT_EQ(e.stats.off_grid_onsets, 0);
}

TEST(Tokenizer, CompoundMeterCountsDottedBeats) {
  // 6/8: the second beat starts at the dotted quarter (720 ticks); an eighth later is Pos_6 of that beat.
  Score s = MakeScore({MakeNote(0, 240, 60), MakeNote(720, 960, 62), MakeNote(960, 1200, 64)}, {{0, 6, 8}});
  EXPECT_EQ(Names(EncodeOk(s).tokens),
            "BOS Bar TimeSig_6/8 Beat_0 Pos_0 Tempo_259 Program_0 Pitch_60 Velocity_15 Duration_6 "
            "Beat_1 Pos_0 Pitch_62 Velocity_15 Duration_6 Pos_6 Pitch_64 Velocity_15 Duration_6 EOS");
}

TEST(Tokenizer, MeterChangesAndEmptyBars) {
  // Bar 1 in 3/4, bar 2 empty, bar 3 in 2/4 (meter change at tick 2*1440).
  Score s = MakeScore({MakeNote(0, 480, 60), MakeNote(2880 + 480, 2880 + 960, 62)}, {{0, 3, 4}, {2880, 2, 4}});
  EncodedPiece e = EncodeOk(s);
  EXPECT_EQ(Names(e.tokens),
            "BOS Bar TimeSig_3/4 Beat_0 Pos_0 Tempo_259 Program_0 Pitch_60 Velocity_15 Duration_12 "
            "Bar TimeSig_3/4 Bar TimeSig_2/4 Beat_1 Pos_0 Program_0 Pitch_62 Velocity_15 Duration_12 EOS");
  ASSERT_EQ(e.segmentation.bars.size(), 3u);
  EXPECT_EQ(e.segmentation.bars[2].start_step, 72);
  EXPECT_EQ(e.segmentation.bars[2].num_beats, 2);
}

TEST(Tokenizer, MeterChangeInsideABarCutsItShort) {
  // 4/4 for two beats, then 3/4: the first bar becomes a 2/4 bar.
  Score s = MakeScore({MakeNote(0, 480, 60), MakeNote(960, 1440, 62)}, {{0, 4, 4}, {960, 3, 4}});
  EncodedPiece e = EncodeOk(s);
  EXPECT_EQ(Names(e.tokens),
            "BOS Bar TimeSig_2/4 Beat_0 Pos_0 Tempo_259 Program_0 Pitch_60 Velocity_15 Duration_12 "
            "Bar TimeSig_3/4 Beat_0 Pos_0 Program_0 Pitch_62 Velocity_15 Duration_12 EOS");
  auto d = Tokenizer().Decode(e.tokens);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->notes[1].start, 960);
  EXPECT_EQ(EncodeOk(*d).tokens, e.tokens);
}

TEST(Tokenizer, TempoChangesAppearAtTheirPosition) {
  Score s = MakeScore({MakeNote(0, 480, 60), MakeNote(1920 + 960, 1920 + 1440, 62)});
  s.tempos = {{0, 600000}, {1920 + 960, 300000}};  // 100 bpm, then 200 bpm at bar 2 beat 3
  EncodedPiece e = EncodeOk(s);
  // 100 bpm's nearest bin (240, 99.93 bpm) makes the first 6 quarters 2.4 ms long; 200 bpm lies between bins 312
  // (199.86) and 313 (201.79), and 313 is taken because it keeps the running time closer to the file's.
  const int t100 = Vocabulary::TempoBin(100), t200 = 313;
  EXPECT_EQ(Vocabulary::TempoBin(200), 312);
  EXPECT_EQ(Names(e.tokens), "BOS Bar TimeSig_4/4 Beat_0 Pos_0 Tempo_" + std::to_string(t100) +
                                 " Program_0 Pitch_60 Velocity_15 Duration_12 Bar TimeSig_4/4 Beat_2 Pos_0 Tempo_" +
                                 std::to_string(t200) + " Program_0 Pitch_62 Velocity_15 Duration_12 EOS");
}

TEST(Tokenizer, DrumsAndInstrumentsOrderedAndResetPerBar) {
  Score s = MakeScore({MakeNote(0, 480, 48, 64, 33), MakeNote(0, 480, 72, 64, 0), MakeNote(0, 120, 36, 64, 0, true),
                       MakeNote(1920, 2400, 74, 64, 0)});
  EXPECT_EQ(Names(EncodeOk(s).tokens),
            "BOS Bar TimeSig_4/4 Beat_0 Pos_0 Tempo_259 Program_0 Pitch_72 Velocity_15 Duration_12 "
            "Program_33 Pitch_48 Velocity_15 Duration_12 Program_Drums Pitch_36 Velocity_15 Duration_3 "
            "Bar TimeSig_4/4 Beat_0 Pos_0 Program_0 Pitch_74 Velocity_15 Duration_12 EOS");
}

TEST(Tokenizer, QuantisationErrorIsMeasured) {
  // 10 ticks late at 480 tpq and 120 bpm: 10/480 of 0.5 s = 10.42 ms; snaps to beat 1.
  Score s = MakeScore({MakeNote(10, 480, 60), MakeNote(480, 960, 62)});
  EncodedPiece e = EncodeOk(s);
  EXPECT_EQ(e.stats.off_grid_onsets, 1);
  EXPECT_NEAR(e.stats.max_onset_error_ms, 10.4167, 1e-3);
  EXPECT_NEAR(e.stats.mean_onset_error_ms, 10.4167 / 2, 1e-3);
  EXPECT_NEAR(e.stats.mean_onset_error_steps, 0.125, 1e-9);
  // Triplets at 1024 tpq are stored rounded to whole ticks: within a tick counts as on the grid.
  Score t = MakeScore({MakeNote(341, 682, 60), MakeNote(683, 1024, 62)}, {}, 1024);
  EXPECT_EQ(EncodeOk(t).stats.off_grid_onsets, 0);
}

TEST(Tokenizer, DuplicatesOverlapsAndLongNotesAreNormalised) {
  Score s = MakeScore({MakeNote(0, 480, 60), MakeNote(0, 960, 60), MakeNote(240, 1200, 60), MakeNote(0, 480 * 20, 67)});
  EncodedPiece e = EncodeOk(s);
  EXPECT_EQ(e.stats.duplicate_notes, 1);
  EXPECT_EQ(e.stats.clipped_durations, 1);
  // The longer of the two C's at 0 is kept and cut where the next C starts (6 steps).
  EXPECT_EQ(Names(e.tokens),
            "BOS Bar TimeSig_4/4 Beat_0 Pos_0 Tempo_259 Program_0 Pitch_60 Velocity_15 Duration_6 Pitch_67 Velocity_15 "
            "Duration_192 Pos_6 Pitch_60 Velocity_15 Duration_24 EOS");
}

TEST(Tokenizer, RoundTripIsExactOnTheGrid) {
  Score s;
  s.ticks_per_quarter = 480;
  s.time_signatures = {{0, 4, 4}, {1920 * 2, 6, 8}, {1920 * 2 + 1440 * 2, 12, 8}};
  s.tempos = {{0, 500000}, {1920, 600000}};
  int pitch = 50;
  for (int64_t t = 0; t < 1920 * 2 + 1440 * 2 + 2880 * 2; t += 160) {  // an eighth-triplet grid
    s.notes.push_back(MakeNote(t, t + 160 * (1 + pitch % 3), pitch, 1 + (pitch * 7) % 127, pitch % 2 ? 0 : 41));
    pitch = 40 + (pitch * 13) % 50;
  }
  s.Sort();
  EncodedPiece e = EncodeOk(s);
  auto d = Tokenizer().Decode(e.tokens);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(EncodeOk(*d).tokens, e.tokens);
  ASSERT_EQ(d->notes.size(), s.notes.size());
  ASSERT_EQ(d->time_signatures.size(), 3u);
  EXPECT_EQ(d->time_signatures[2].tick, 1920 * 2 + 1440 * 2);
  for (const Note& n : d->notes) {
    auto it = std::find_if(s.notes.begin(), s.notes.end(), [&](const Note& o) { return o.start == n.start && o.pitch == n.pitch; });
    ASSERT_NE(it, s.notes.end());
    EXPECT_EQ(it->end, n.end);
    EXPECT_EQ(it->program, n.program);
    EXPECT_EQ(Vocabulary::VelocityBin(it->velocity), Vocabulary::VelocityBin(n.velocity));
  }
}

TEST(Tokenizer, DecodeNamesTheTokenThatBreaksTheGrammar) {
  const Vocabulary& v = V();
  auto err = [](std::vector<int32_t> t) {
    auto d = Tokenizer().Decode(t);
    EXPECT_FALSE(d.ok());
    return d.ok() ? std::string() : d.status().message();
  };
  const int32_t head[] = {v.Bos(), v.Bar(), v.TimeSig(3, 4)};
  auto seq = [&](std::initializer_list<int32_t> rest) {
    std::vector<int32_t> t(std::begin(head), std::end(head));
    t.insert(t.end(), rest);
    return t;
  };
  EXPECT_EQ(err(seq({v.Beat(3), v.Position(0)})), "token 3 (Beat_3): expected a beat below 3 in this meter");
  EXPECT_EQ(err(seq({v.Beat(0), v.Position(0), v.Pitch(60)})), "token 5 (Pitch_60): expected a Program before the first note of a bar");
  EXPECT_EQ(err(seq({v.Beat(0), v.Position(12)})), "token 4 (Pos_12): expected a position below 12 in this meter");
  EXPECT_EQ(err(seq({v.Beat(1), v.Position(0), v.Beat(0)})), "token 5 (Beat_0): expected a beat after beat 1 (time only moves forward)");
  EXPECT_EQ(err(seq({v.Beat(0), v.Position(0), v.Program(0), v.Pitch(60), v.Duration(3)})),
            "token 7 (Duration_3): expected Velocity after Pitch");
  EXPECT_EQ(err(seq({v.Beat(0), v.Position(0), v.Program(0), v.Pitch(60), v.Velocity(3)})),
            "tokens end inside a bar header, a position or a note (after token 8)");
  EXPECT_EQ(err({v.Bos(), v.Bar(), v.Pitch(3)}), "token 2 (Pitch_3): expected TimeSig after Bar");
  EXPECT_EQ(err({v.Bos(), v.Bar(), v.TimeSig(4, 4), v.Eos(), v.Bar()}), "token 4 (Bar): expected only PAD after EOS");
  EXPECT_EQ(err({v.Bos(), 9999}), "token 1 (id 9999): expected a token id in 0..1430");
  // A bar-aligned window (no BOS, padded) decodes.
  auto w = Tokenizer().Decode({v.Bar(), v.TimeSig(4, 4), v.Beat(1), v.Position(0), v.Program(0), v.Pitch(60), v.Velocity(10),
                               v.Duration(12), v.Pad(), v.Pad()});
  ASSERT_TRUE(w.ok()) << w.status().message();
  ASSERT_EQ(w->notes.size(), 1u);
  EXPECT_EQ(w->notes[0].start, 480);
}

TEST(Tokenizer, AbsurdlyLongPiecesAreRefusedNotHung) {
  Score s = MakeScore({MakeNote(0, 1, 60), MakeNote(int64_t{1} << 30, (int64_t{1} << 30) + 1, 62)}, {}, 1);
  auto e = Tokenizer().Encode(s);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("more than 20000 bars"), std::string::npos);
}

TEST(Tokenizer, DecodedDrumsGoToChannelTen) {
  Score s = MakeScore({MakeNote(0, 480, 36, 100, 0, true), MakeNote(0, 480, 60, 100, 5)});
  auto d = Tokenizer().Decode(EncodeOk(s).tokens);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->notes.size(), 2u);
  for (const Note& n : d->notes) {
    if (n.pitch == 36) {
      EXPECT_TRUE(n.drum);
      EXPECT_EQ(n.channel, 9);
    } else {
      EXPECT_EQ(n.program, 5);
      EXPECT_NE(n.channel, 9);
    }
  }
}

}  // namespace
}  // namespace cadenza

namespace cadenza {
namespace {

// A sampled piece cannot end before its first note: an untrained model's early EOS would be an empty MIDI file.
TEST(Grammar, EndOfPieceNeedsANote) {
  const Vocabulary& v = Vocabulary::Get();
  GrammarState g;
  for (int32_t t : {v.Bos(), v.Bar(), v.TimeSig(4, 4)}) ASSERT_TRUE(g.Advance(t).ok()) << v.Name(t);
  EXPECT_FALSE(g.Accepts(v.Eos())) << "no note yet";
  EXPECT_FALSE(g.Advance(v.Eos()).ok());
  for (int32_t t : {v.Beat(0), v.Position(0), v.Program(0), v.Pitch(60), v.Velocity(4), v.Duration(12)}) {
    ASSERT_TRUE(g.Advance(t).ok()) << v.Name(t);
  }
  EXPECT_TRUE(g.Accepts(v.Eos()));
  EXPECT_TRUE(g.Advance(v.Eos()).ok());
  EXPECT_TRUE(g.finished());
}

// Pedal tokens (the -pedal vocabularies): right after a Pos (or its Tempo), before the position's notes, a release
// before a press, a release only while the pedal is down. The grammar and the decoder agree token by token.
TEST(Grammar, PedalTokensWhereTheDecoderTakesThem) {
  const Vocabulary& v = *Vocabulary::ForGrid(12, true);
  const Tokenizer tok(TokenizerOptions::For(v));
  const std::vector<int32_t> head = {v.Bos(), v.Bar(), v.TimeSig(4, 4), v.Beat(0), v.Position(0), v.Tempo(259)};
  const std::vector<int32_t> note = {v.Program(0), v.Pitch(60), v.Velocity(4), v.Duration(12)};
  auto accepts_all = [&](const std::vector<int32_t>& tokens) {
    GrammarState g(v);
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (!g.Advance(tokens[i]).ok()) return static_cast<int>(i);
    }
    return -1;
  };
  auto cat = [](std::vector<std::vector<int32_t>> parts) {
    std::vector<int32_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  // Accepted: a press after the Tempo before the notes; a release then a press at one position (a pedal change);
  // a position with only a pedal token.
  const std::vector<int32_t> good =
      cat({head, {v.PedalDown()}, note, {v.Beat(1), v.Position(0), v.PedalUp(), v.PedalDown()}, note,
           {v.Beat(2), v.Position(6), v.PedalUp()}, {v.Eos()}});
  EXPECT_EQ(accepts_all(good), -1);
  auto decoded = tok.Decode(good);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  ASSERT_EQ(decoded->sustain.size(), 4u);
  const int64_t step = Tokenizer::kDecodeTicksPerQuarter / 12;
  const std::vector<std::pair<int64_t, bool>> want = {{0, true}, {12 * step, false}, {12 * step, true}, {30 * step, false}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(decoded->sustain[i].tick, want[i].first) << i;
    EXPECT_EQ(decoded->sustain[i].down, want[i].second) << i;
    EXPECT_EQ(decoded->sustain[i].channel, decoded->notes.front().channel) << i;
  }
  // The sampler offers the pedal tokens there, and only the ones that may come.
  {
    GrammarState g(v);
    for (int32_t t : head) ASSERT_TRUE(g.Advance(t).ok());
    std::vector<uint8_t> allowed;
    g.Allowed(&allowed);
    EXPECT_TRUE(allowed[v.PedalDown()]);
    EXPECT_FALSE(allowed[v.PedalUp()]) << "the pedal is up after BOS";
  }
  // Refused, by the grammar and by the decoder at the same token.
  const std::vector<std::pair<std::vector<int32_t>, std::string>> bad = {
      {cat({head, {v.PedalUp()}}), "Pedal_Up only while the pedal is down"},
      {cat({head, {v.PedalDown(), v.PedalUp()}}), "no Pedal_Up after a Pedal_Down"},
      {cat({head, {v.PedalDown(), v.PedalDown()}}), "Pedal_Down only while the pedal is up"},
      {cat({head, note, {v.PedalDown()}}), "before its notes"},
      {cat({head, {v.Program(0), v.PedalDown()}}), "Pitch after Program"},
      {{v.Bos(), v.Bar(), v.TimeSig(4, 4), v.PedalDown()}, "after a Pos"},
      {{v.Bos(), v.Bar(), v.TimeSig(4, 4), v.Beat(0), v.Position(0), v.PedalDown(), v.Tempo(259)}, "Tempo right after a Pos"},
  };
  for (const auto& [tokens, message] : bad) {
    const int at = accepts_all(tokens);
    EXPECT_EQ(at, static_cast<int>(tokens.size()) - 1) << message;
    auto d = tok.Decode(tokens);
    ASSERT_FALSE(d.ok()) << message;
    EXPECT_NE(d.status().message().find("token " + std::to_string(tokens.size() - 1) + " "), std::string::npos)
        << d.status().message();
    EXPECT_NE(d.status().message().find(message), std::string::npos) << d.status().message();
  }
  // A window that starts on a bar may start inside a press: its first Pedal_Up says so (pressed from its start).
  const std::vector<int32_t> window = cat({{v.Bar(), v.TimeSig(4, 4), v.Beat(1), v.Position(0), v.PedalUp()}, note});
  EXPECT_EQ(accepts_all(window), -1);
  auto w = tok.Decode(window);
  ASSERT_TRUE(w.ok()) << w.status().message();
  ASSERT_EQ(w->sustain.size(), 2u);
  EXPECT_TRUE(w->sustain[0].down);
  EXPECT_EQ(w->sustain[0].tick, 0);
  EXPECT_EQ(w->sustain[1].tick, 12 * step);
  // The plain vocabulary has no pedal tokens: its ids stop before them.
  EXPECT_FALSE(Tokenizer().Decode(good).ok());
  GrammarState plain;
  EXPECT_FALSE(plain.Accepts(v.PedalDown()));
}

}  // namespace
}  // namespace cadenza
