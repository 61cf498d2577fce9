// Performance-style MIDI (issue 16): tempo ramps from 12 to 300 bpm, unusual meters, sustain pedal, 32nd runs and
// triplets, generated here, written as MIDI files, read back and tokenized: round trip within the documented
// quantisation, playing time within 0.5%, the file's bar count, and every loss counted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "core/midi.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"

namespace cadenza {
namespace {

constexpr int kTpq = 480;

Note PerformanceNote(int64_t start, int64_t end, int pitch, int channel = 0, int velocity = 80) {
  Note n;
  n.start = start;
  n.end = end;
  n.pitch = static_cast<uint8_t>(pitch);
  n.velocity = static_cast<uint8_t>(velocity);
  n.channel = static_cast<uint8_t>(channel);
  n.track = 0;
  return n;
}

// Writes the score as a MIDI file's bytes and reads it back: what a user's file goes through.
Score ThroughMidi(Score s) {
  s.tracks = {Track{"piano"}};
  s.Sort();
  const std::vector<uint8_t> bytes = SerializeMidi(s);
  auto read = ParseMidi(bytes.data(), bytes.size(), "generated.mid");
  EXPECT_TRUE(read.ok()) << read.status().message();
  return read.ok() ? *read : Score();
}

// A decoded score (its own tracks) written as a MIDI file's bytes and read back.
Score AsMidiFile(const Score& s) {
  const std::vector<uint8_t> bytes = SerializeMidi(s);
  auto read = ParseMidi(bytes.data(), bytes.size(), "decoded.mid");
  EXPECT_TRUE(read.ok()) << read.status().message();
  return read.ok() ? *read : Score();
}

EncodedPiece Encode(const Score& s, int grid = 12, SustainPedal pedal = SustainPedal::kApply) {
  TokenizerOptions o;
  o.grid = grid;
  o.pedal = pedal;
  auto e = Tokenizer(o).Encode(s);
  EXPECT_TRUE(e.ok()) << e.status().message();
  return e.ok() ? *e : EncodedPiece{};
}

Score Decode(const EncodedPiece& e, int grid = 12, SustainPedal pedal = SustainPedal::kApply) {
  TokenizerOptions o;
  o.grid = grid;
  o.pedal = pedal;
  auto d = Tokenizer(o).Decode(e.tokens);
  EXPECT_TRUE(d.ok()) << d.status().message();
  return d.ok() ? *d : Score();
}

// Bars as a score editor counts them: from tick 0 in the meter in force, a time signature always starting a new
// bar, up to the bar that holds the last onset. Returns (start tick, numerator, denominator) per bar.
struct FileBar {
  double start_quarters;
  int numerator, denominator;
};
std::vector<FileBar> FileBars(const Score& s) {
  std::vector<TimeSignature> meters = s.time_signatures;
  if (meters.empty() || meters.front().tick > 0) meters.insert(meters.begin(), TimeSignature{0, 4, 4});
  int64_t last_onset = 0;
  for (const Note& n : s.notes) last_onset = std::max(last_onset, n.start);
  std::vector<FileBar> bars;
  double start = 0;  // in ticks, exact for these meters
  size_t mi = 0;
  while (start <= static_cast<double>(last_onset)) {
    while (mi + 1 < meters.size() && static_cast<double>(meters[mi + 1].tick) <= start) ++mi;
    double length = static_cast<double>(meters[mi].numerator) * 4 * s.ticks_per_quarter / meters[mi].denominator;
    if (mi + 1 < meters.size() && meters[mi + 1].tick < start + length) length = meters[mi + 1].tick - start;
    bars.push_back({start / s.ticks_per_quarter, meters[mi].numerator, meters[mi].denominator});
    start += length;
  }
  return bars;
}

double LastEndSeconds(const Score& s) {
  int64_t last = 0;
  for (const Note& n : s.notes) last = std::max(last, n.end);
  return s.SecondsAt(last);
}

// ----- tempo -----------------------------------------------------------------------------------------------------

// 24 bars of 4/4 eighth notes under a tempo that ramps geometrically from 12 to 300 bpm, one tempo event every
// `every` ticks (off the grid when `every` is not a multiple of a step).
Score TempoRamp(int64_t every) {
  Score s;
  s.ticks_per_quarter = kTpq;
  const int64_t end = 24 * 4 * kTpq;
  for (int64_t t = 0; t < end; t += every) {
    const double bpm = 12.0 * std::pow(300.0 / 12.0, static_cast<double>(t) / end);
    s.tempos.push_back({t, static_cast<uint32_t>(std::lround(60e6 / bpm))});
  }
  for (int64_t t = 0; t < end; t += kTpq / 2) s.notes.push_back(PerformanceNote(t, t + kTpq / 2, 60 + (t / 240) % 12));
  return s;
}

TEST(PerformanceMidi, TempoRampFrom12To300BpmKeepsThePlayingTime) {
  for (int64_t every : {int64_t{120}, int64_t{37}, int64_t{480}}) {
    SCOPED_TRACE("a tempo event every " + std::to_string(every) + " ticks");
    const Score file = ThroughMidi(TempoRamp(every));
    const EncodedPiece e = Encode(file);
    EXPECT_EQ(e.stats.clamped_tempos, 0);
    EXPECT_EQ(e.stats.tempo_changes, static_cast<int64_t>(file.tempos.size()));
    const Score back = Decode(e);
    const double want = LastEndSeconds(file), got = LastEndSeconds(back);
    EXPECT_GT(want, 130.0);  // 12 bpm is slow: the ramp's first bars take most of its 143 s
    EXPECT_LT(std::abs(got / want - 1), 0.005) << "file " << want << " s, tokens " << got << " s";
    EXPECT_NEAR(e.stats.seconds_in, want, 1e-6);
    EXPECT_NEAR(e.stats.seconds_out, got, 1e-3);
    EXPECT_EQ(static_cast<size_t>(e.num_bars), FileBars(file).size());
    EXPECT_EQ(back.notes.size(), file.notes.size());
    // Every onset keeps its time within the ramp's drift (the grid is exact for eighths).
    for (size_t i = 0; i < back.notes.size(); i += 17) {
      EXPECT_NEAR(back.SecondsAt(back.notes[i].start), file.SecondsAt(file.notes[i].start),
                  0.005 * file.SecondsAt(file.notes[i].start) + 1e-9);
    }
  }
}

TEST(PerformanceMidi, ConstantTempiAnywhereIn10To400BpmStayWithinHalfAPercent) {
  for (double bpm = 10; bpm <= 400; bpm *= 1.137) {
    Score s;
    s.ticks_per_quarter = kTpq;
    s.tempos = {{0, static_cast<uint32_t>(std::lround(60e6 / bpm))}};
    for (int64_t t = 0; t < 8 * kTpq; t += kTpq) s.notes.push_back(PerformanceNote(t, t + kTpq, 60));
    const EncodedPiece e = Encode(s);
    EXPECT_EQ(e.stats.clamped_tempos, 0) << bpm;
    const double drift = LastEndSeconds(Decode(e)) / LastEndSeconds(s) - 1;
    EXPECT_LT(std::abs(drift), 0.0049) << bpm << " bpm";
  }
}

TEST(PerformanceMidi, TemposOutsideTheBinsAreClampedAndCounted) {
  Score s;
  s.ticks_per_quarter = kTpq;
  s.tempos = {{0, 12000000}, {4 * kTpq, 500000}, {8 * kTpq, 100000}};  // 5 bpm, 120 bpm, 600 bpm
  for (int64_t t = 0; t < 12 * kTpq; t += kTpq) s.notes.push_back(PerformanceNote(t, t + kTpq, 60));
  const EncodedPiece e = Encode(s);
  EXPECT_EQ(e.stats.clamped_tempos, 2);
}

// ----- meters ----------------------------------------------------------------------------------------------------

// Two bars of each meter, a note on every beat unit (every sixteenth for finer units); meters change at bar lines.
Score MeterParade(const std::vector<std::pair<int, int>>& meters) {
  Score s;
  s.ticks_per_quarter = kTpq;
  int64_t t = 0;
  for (auto [n, d] : meters) {
    s.time_signatures.push_back({t, n, d});
    const int64_t bar = int64_t{n} * 4 * kTpq / d, step = std::max<int64_t>(4 * kTpq / d, kTpq / 4);
    for (int b = 0; b < 2; ++b, t += bar) {
      for (int64_t k = 0; k < bar; k += step) s.notes.push_back(PerformanceNote(t + k, t + std::min(k + step, bar), 60 + (k / step) % 12));
    }
  }
  return s;
}

TEST(PerformanceMidi, UnusualMetersAreKeptWithTheFilesBarGrid) {
  const std::vector<std::pair<int, int>> meters = {{4, 4}, {19, 16}, {21, 8}, {11, 32}, {44, 32}, {5, 4}, {64, 64}, {3, 1}, {7, 8}};
  const Score file = ThroughMidi(MeterParade(meters));
  const std::vector<FileBar> want = FileBars(file);
  ASSERT_EQ(want.size(), 2 * meters.size());
  for (int grid : {24, 48}) {  // every meter of the list is representable on these grids
    SCOPED_TRACE("grid " + std::to_string(grid));
    const EncodedPiece e = Encode(file, grid);
    EXPECT_EQ(e.stats.skipped_meters, 0);
    EXPECT_EQ(e.stats.off_grid_onsets, 0);
    ASSERT_EQ(e.segmentation.bars.size(), want.size());
    for (size_t b = 0; b < want.size(); ++b) {
      const BarInfo& bar = e.segmentation.bars[b];
      EXPECT_EQ(bar.numerator, want[b].numerator) << "bar " << b;
      EXPECT_EQ(bar.denominator, want[b].denominator) << "bar " << b;
      EXPECT_DOUBLE_EQ(static_cast<double>(bar.start_step) / grid, want[b].start_quarters) << "bar " << b;
    }
    const Score back = Decode(e, grid);
    ASSERT_EQ(back.notes.size(), file.notes.size());
    for (size_t i = 0; i < back.notes.size(); ++i) {
      EXPECT_EQ(back.notes[i].start * kTpq, file.notes[i].start * Tokenizer::kDecodeTicksPerQuarter);
    }
    EXPECT_EQ(e.stats.moved_meters, 0);
  }
}

TEST(PerformanceMidi, MetersTheGridCannotHoldAreSkippedWithTheirReasonNeverRewritten) {
  // On the 12 grid a 32nd is 1.5 steps: 11/32 (16.5 steps) cannot be represented; 44/32 (66 steps) can.
  const Score file = ThroughMidi(MeterParade({{4, 4}, {11, 32}, {44, 32}, {19, 16}, {21, 8}}));
  const EncodedPiece e = Encode(file, 12);
  EXPECT_EQ(e.stats.skipped_meters, 1);
  ASSERT_EQ(e.stats.skipped_meter_reasons.size(), 1u);
  EXPECT_NE(e.stats.skipped_meter_reasons[0].find("11/32"), std::string::npos) << e.stats.skipped_meter_reasons[0];
  std::set<std::string> names;
  for (const BarInfo& b : e.segmentation.bars) names.insert(std::to_string(b.numerator) + "/" + std::to_string(b.denominator));
  EXPECT_TRUE(names.count("44/32") && names.count("19/16") && names.count("21/8")) << ::testing::PrintToString(names);
  EXPECT_FALSE(names.count("11/32"));
  // The bars after the skipped meter start where the file's do: 44/32 at the file's tick.
  const std::vector<FileBar> want = FileBars(file);
  bool found = false;
  for (const BarInfo& b : e.segmentation.bars) {
    if (b.numerator == 44 && b.denominator == 32 && !found) {
      found = true;
      EXPECT_DOUBLE_EQ(static_cast<double>(b.start_step) / 12, want[4].start_quarters);
    }
  }
  EXPECT_TRUE(found);
  // Nothing is read as 4/4 in place of a meter the file has.
  const Score back = Decode(e, 12);
  for (const TimeSignature& ts : back.time_signatures) EXPECT_FALSE(ts.numerator == 4 && ts.denominator == 4 && ts.tick > 0);
}

// ----- sustain pedal ---------------------------------------------------------------------------------------------

TEST(PerformanceMidi, SustainPedalLengthensNotesReleasedWhileItIsDown) {
  Score s;
  s.ticks_per_quarter = kTpq;
  // Pedal down at beat 0.5 .. up at beat 4; C released at beat 1 (held to 4), E at beat 2 re-struck at beat 3
  // (held only to 3), G released after the pedal (untouched); a note on channel 1 is not under channel 0's pedal.
  s.notes = {PerformanceNote(0, 480, 60), PerformanceNote(480, 960, 64), PerformanceNote(1440, 1680, 64), PerformanceNote(960, 2400, 67),
             PerformanceNote(0, 480, 48, 1)};
  s.sustain = {{240, 0, true}, {1920, 0, false}};
  const Score file = ThroughMidi(s);
  ASSERT_EQ(file.sustain.size(), 2u);
  EXPECT_TRUE(file.sustain[0].down);
  const EncodedPiece e = Encode(file);
  EXPECT_EQ(e.stats.sustain_presses, 1);
  EXPECT_EQ(e.stats.sustained_notes, 3);  // C, the first E, the second E
  const Score back = Decode(e);
  auto end_of = [&back](int pitch, int64_t start) {
    for (const Note& n : back.notes) {
      if (n.pitch == pitch && n.start == start) return n.end;
    }
    return int64_t{-1};
  };
  EXPECT_EQ(end_of(60, 0), 1920);
  EXPECT_EQ(end_of(64, 480), 1440);  // re-struck at 1440: held to there, not cut as an overlap
  EXPECT_EQ(end_of(64, 1440), 1920);
  EXPECT_EQ(end_of(67, 960), 2400);
  EXPECT_EQ(end_of(48, 0), 480);
  EXPECT_EQ(e.stats.cut_overlaps, 0);
  // Without the pedal the notes end at the key release.
  const EncodedPiece dry = Encode(file, 12, SustainPedal::kIgnore);
  EXPECT_EQ(dry.stats.sustained_notes, 0);
  const Score dry_back = Decode(dry);
  for (const Note& n : dry_back.notes) {
    if (n.pitch == 60) {
      EXPECT_EQ(n.end, 480);
    }
  }
}

TEST(PerformanceMidi, PedalHeldToTheEndAndReleasedAtTheKeyReleaseTick) {
  Score s;
  s.ticks_per_quarter = kTpq;
  s.notes = {PerformanceNote(0, 480, 60), PerformanceNote(480, 960, 62), PerformanceNote(1920, 2400, 64)};
  s.sustain = {{480, 0, true}, {1920, 0, false}, {2000, 0, true}};  // a press at a release tick; a last press never released
  int64_t presses = 0, lengthened = 0;
  const std::vector<int64_t> ends = SustainedNoteEnds(ThroughMidi(s), &presses, &lengthened);
  ASSERT_EQ(ends.size(), 3u);
  EXPECT_EQ(ends[0], 480);   // released as the pedal went down: not held
  EXPECT_EQ(ends[1], 1920);  // held to the release
  EXPECT_EQ(ends[2], 2400);  // the pedal never released ends with the piece: nothing to lengthen
  EXPECT_EQ(presses, 1);
  EXPECT_EQ(lengthened, 1);
}

// Pedal down/up around notes, off the grid: a press, a pedal change (release and press within a step), a last
// release after every key release, a press shorter than a step, and another channel's press inside one of channel 0.
Score PedalPiece() {
  Score s;
  s.ticks_per_quarter = kTpq;
  s.notes = {PerformanceNote(0, 480, 60), PerformanceNote(0, 480, 48, 1), PerformanceNote(480, 960, 64), PerformanceNote(960, 2400, 67),
             PerformanceNote(2400, 2880, 62)};
  s.sustain = {{250, 0, true},  {1925, 0, false}, {1930, 0, true}, {2000, 1, true}, {2100, 1, false},
               {3000, 0, false}, {3100, 0, true}, {3110, 0, false}};
  return s;
}

std::string Names(const std::vector<int32_t>& tokens, const Vocabulary& v) {
  std::string out;
  for (int32_t t : tokens) out += (out.empty() ? "" : " ") + v.Name(t);
  return out;
}

TEST(PerformanceMidi, PedalKeptAsTokensAtItsGridPositionsWhileNotesEndAtTheKeyRelease) {
  const Score file = ThroughMidi(PedalPiece());
  ASSERT_EQ(file.sustain.size(), 8u);
  const EncodedPiece e = Encode(file, 12, SustainPedal::kTokens);
  const Vocabulary& v = *Vocabulary::ForGrid(12, true);
  // 40 ticks a step: the press at tick 250 is step 6, the change at 1925/1930 step 48 (bar 2), the release at 3000
  // step 75; the press 3100..3110 is within step 78 (lost), channel 1's 2000..2100 lies inside channel 0's (joined).
  EXPECT_EQ(Names(e.tokens, v),
            "BOS Bar TimeSig_4/4 Beat_0 Pos_0 Tempo_259 Program_0 Pitch_48 Velocity_19 Duration_12 Pitch_60 "
            "Velocity_19 Duration_12 Pos_6 Pedal_Down Beat_1 Pos_0 Pitch_64 Velocity_19 Duration_12 Beat_2 Pos_0 "
            "Pitch_67 Velocity_19 Duration_36 "
            "Bar TimeSig_4/4 Beat_0 Pos_0 Pedal_Up Pedal_Down Beat_1 Pos_0 Program_0 Pitch_62 Velocity_19 Duration_12 "
            "Beat_2 Pos_3 Pedal_Up EOS");
  EXPECT_EQ(e.stats.pedal_tokens, 4);
  EXPECT_EQ(e.stats.lost_pedal_presses, 2);
  EXPECT_EQ(e.stats.sustain_presses, 0);
  EXPECT_EQ(e.stats.sustained_notes, 0);

  // Back to MIDI: notes end at the key release, the pedal is CC 64 within half a step (20 ticks) of the file's.
  const Score back = AsMidiFile(Decode(e, 12, SustainPedal::kTokens));
  ASSERT_EQ(back.notes.size(), file.notes.size());
  for (size_t i = 0; i < back.notes.size(); ++i) {
    EXPECT_EQ(back.notes[i].start, file.notes[i].start) << i;
    EXPECT_EQ(back.notes[i].end, file.notes[i].end) << i;
  }
  ASSERT_EQ(back.sustain.size(), 4u);
  const PedalEvent kept[] = {{250, 0, true}, {1925, 0, false}, {1930, 0, true}, {3000, 0, false}};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(back.sustain[i].down, kept[i].down) << i;
    EXPECT_EQ(back.sustain[i].channel, 0) << i;
    EXPECT_LE(std::abs(back.sustain[i].tick - kept[i].tick), 20) << i;
  }
  // ... and encodes to the same tokens.
  EXPECT_EQ(Encode(back, 12, SustainPedal::kTokens).tokens, e.tokens);

  // The default (apply) on the same file: plain vocabulary, no pedal tokens, notes lengthened to the release.
  const EncodedPiece applied = Encode(file);
  EXPECT_EQ(Tokenizer().vocabulary().HashHex(), "28d31bd5ac13a3d2");
  for (int32_t t : applied.tokens) EXPECT_LT(t, Vocabulary::Get().size());
  EXPECT_EQ(applied.stats.pedal_tokens, 0);
  EXPECT_GT(applied.stats.sustained_notes, 0);
  const Score applied_back = Decode(applied);
  EXPECT_TRUE(applied_back.sustain.empty());
  for (const Note& n : applied_back.notes) {
    if (n.pitch == 60) {
      EXPECT_EQ(n.end, 1920);  // released at 480 under the pedal: held to its release
    }
  }
}

TEST(PerformanceMidi, PedalTokensOnEveryGridAndAPedalNeverReleased) {
  Score s = PedalPiece();
  s.sustain.push_back({3200, 0, true});  // never released
  const Score file = ThroughMidi(s);
  for (int grid : kSupportedGrids) {
    const EncodedPiece e = Encode(file, grid, SustainPedal::kTokens);
    const Vocabulary& v = *Vocabulary::ForGrid(grid, true);
    int downs = 0, ups = 0;
    for (int32_t t : e.tokens) {
      downs += t == v.PedalDown();
      ups += t == v.PedalUp();
    }
    // The finer grids hold the press at 3100..3110 (steps 155..156 on the 24 grid; 310..311 on the 48 grid).
    EXPECT_EQ(downs, grid == 12 ? 3 : 4) << grid;
    EXPECT_EQ(ups, grid == 12 ? 2 : 3) << grid;
    EXPECT_EQ(e.stats.lost_pedal_presses, grid == 12 ? 2 : 1) << grid;
    const Score back = Decode(e, grid, SustainPedal::kTokens);
    ASSERT_FALSE(back.sustain.empty());
    EXPECT_TRUE(back.sustain.back().down) << "the last press stays down, as in the file";
    EXPECT_LE(std::abs(back.sustain.back().tick - 3200), kTpq / grid / 2);
    EXPECT_EQ(Encode(back, grid, SustainPedal::kTokens).tokens, e.tokens) << grid;
  }
}

// ----- fine rhythms ----------------------------------------------------------------------------------------------

// A bar of 32nd notes, a bar of eighth triplets, a bar of sixteenth triplets and a bar of 32nd triplets.
Score FineRhythms() {
  Score s;
  s.ticks_per_quarter = kTpq;
  int pitch = 60;
  auto run = [&](int64_t bar, int64_t step) {
    for (int64_t t = bar * 1920; t < (bar + 1) * 1920; t += step) s.notes.push_back(PerformanceNote(t, t + step, pitch++ % 24 + 60));
  };
  run(0, 60);   // 32nds
  run(1, 160);  // eighth triplets
  run(2, 80);   // sixteenth triplets
  run(3, 40);   // 32nd triplets
  return s;
}

TEST(PerformanceMidi, ThirtySecondRunsAndTripletsRoundTripOnTheGridThatHoldsThem) {
  const Score file = ThroughMidi(FineRhythms());
  // The 24 grid holds 32nds (3 steps) and every triplet here (8, 4, 2 steps): exact.
  for (int grid : {24, 48}) {
    const EncodedPiece e = Encode(file, grid);
    EXPECT_EQ(e.stats.off_grid_onsets, 0) << grid;
    EXPECT_EQ(e.stats.duplicate_notes, 0) << grid;
    const Score back = Decode(e, grid);
    ASSERT_EQ(back.notes.size(), file.notes.size());
    for (size_t i = 0; i < back.notes.size(); ++i) {
      EXPECT_EQ(back.notes[i].start, file.notes[i].start) << i;
      EXPECT_EQ(back.notes[i].end, file.notes[i].end) << i;
    }
    EXPECT_EQ(static_cast<size_t>(e.num_bars), FileBars(file).size());
  }
  // The 12 grid holds the triplets (4, 2, 1 steps) but not the 32nds: every other 32nd moves by half a step,
  // counted; none is lost (32nds land on distinct steps or are counted as merged).
  const EncodedPiece e12 = Encode(file, 12);
  EXPECT_EQ(e12.stats.off_grid_onsets, 16);
  EXPECT_EQ(e12.stats.notes_out + e12.stats.duplicate_notes, static_cast<int64_t>(file.notes.size()));
  const Score back12 = Decode(e12, 12);
  std::multiset<int64_t> want, got;
  for (const Note& n : file.notes) {
    if (n.start >= 1920) want.insert(n.start);
  }
  for (const Note& n : back12.notes) {
    if (n.start >= 1920) got.insert(n.start);
  }
  EXPECT_EQ(got, want);  // the triplet bars are exact
  EXPECT_EQ(want.size(), 12u + 24u + 48u);
}

// ----- every loss counted ----------------------------------------------------------------------------------------

TEST(PerformanceMidi, EveryLossIsCounted) {
  Score s;
  s.ticks_per_quarter = kTpq;
  s.time_signatures = {{0, 4, 4}, {1920 + 160, 3, 4}, {1920 * 3, 65, 4}};  // a change a triplet eighth into bar 2; 65/4
  s.tempos = {{0, 12000000}};                                             // 5 bpm: clamped
  s.notes = {PerformanceNote(0, 480, 60), PerformanceNote(10, 480, 60),   // duplicate after quantisation (10 ticks off the grid)
             PerformanceNote(480, 1440, 62), PerformanceNote(960, 1200, 62),  // the first D still sounds at the second: cut
             PerformanceNote(1920, 1920 + 20 * 480, 64),             // 20 quarters: clipped
             PerformanceNote(3 * 1920, 3 * 1920 + 240, 65), PerformanceNote(3 * 1920 + 240, 3 * 1920 + 480, 67)};
  s.sustain = {{3 * 1920 + 120, 0, true}, {3 * 1920 + 960, 0, false}};
  const EncodedPiece e = Encode(ThroughMidi(s));
  const QuantizationStats& q = e.stats;
  EXPECT_EQ(q.off_grid_onsets, 1);
  EXPECT_EQ(q.duplicate_notes, 1);
  EXPECT_EQ(q.cut_overlaps, 1);
  EXPECT_EQ(q.clipped_durations, 1);
  EXPECT_EQ(q.clamped_tempos, 1);
  EXPECT_EQ(q.skipped_meters, 1);
  EXPECT_EQ(q.moved_meters, 1);
  EXPECT_EQ(q.sustain_presses, 1);
  EXPECT_EQ(q.sustained_notes, 2);
}

TEST(PerformanceMidi, TokensRoundTripExactlyOnEveryGrid) {
  // What the fuzzer asserts, on the generated files: Encode(Decode(tokens)) == tokens.
  const std::vector<Score> files = {ThroughMidi(TempoRamp(37)), ThroughMidi(TempoRamp(120)),
                                    ThroughMidi(MeterParade({{4, 4}, {19, 16}, {21, 8}, {11, 32}, {44, 32}, {3, 1}})),
                                    ThroughMidi(FineRhythms()), ThroughMidi(PedalPiece())};
  for (int grid : kSupportedGrids) {
    for (size_t f = 0; f < files.size(); ++f) {
      for (SustainPedal pedal : {SustainPedal::kApply, SustainPedal::kTokens, SustainPedal::kIgnore}) {
        const EncodedPiece e = Encode(files[f], grid, pedal);
        const EncodedPiece again = Encode(Decode(e, grid, pedal), grid, pedal);
        EXPECT_EQ(again.tokens, e.tokens) << "file " << f << ", grid " << grid;
      }
    }
  }
}

TEST(PerformanceMidi, AnUnsupportedGridIsAnError) {
  TokenizerOptions o;
  o.grid = 16;
  auto e = Tokenizer(o).Encode(TempoRamp(480));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("12, 24 or 48"), std::string::npos);
}

}  // namespace
}  // namespace cadenza
