// MIDI reader and writer: the standard's corner cases, bad input with byte offsets, and mido agreeing with our files.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

#include "core/midi.h"
#include "tests/support/midi_bytes.h"

namespace cadenza {
namespace {

using testing::SmfBytes;
using testing::TrackBytes;

Score ParseOk(const std::vector<uint8_t>& bytes) {
  auto s = ParseMidi(bytes.data(), bytes.size(), "t.mid");
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? *s : Score{};
}

std::string ParseError(const std::vector<uint8_t>& bytes) {
  auto s = ParseMidi(bytes.data(), bytes.size(), "bad.mid");
  EXPECT_FALSE(s.ok());
  return s.ok() ? "" : s.status().message();
}

TEST(MidiReader, Format0NotesTempoMeterKeyAndName) {
  TrackBytes t;
  t.Event(0, {0xFF, 0x03, 4, 'L', 'e', 'a', 'd'})
      .Event(0, {0xFF, 0x51, 3, 0x07, 0xA1, 0x20})   // 500000 us = 120 bpm
      .Event(0, {0xFF, 0x58, 4, 3, 2, 24, 8})        // 3/4
      .Event(0, {0xFF, 0x59, 2, 0x01, 0})            // G major
      .Event(0, {0xC0, 40})                          // violin
      .Event(0, {0x90, 60, 100})
      .Event(480, {0x80, 60, 0})
      .End();
  Score s = ParseOk(SmfBytes(0, 480, {t}));
  EXPECT_EQ(s.format, 0);
  EXPECT_EQ(s.ticks_per_quarter, 480);
  ASSERT_EQ(s.tracks.size(), 1u);
  EXPECT_EQ(s.tracks[0].name, "Lead");
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_EQ(s.notes[0].start, 0);
  EXPECT_EQ(s.notes[0].end, 480);
  EXPECT_EQ(s.notes[0].pitch, 60);
  EXPECT_EQ(s.notes[0].velocity, 100);
  EXPECT_EQ(s.notes[0].program, 40);
  ASSERT_EQ(s.time_signatures.size(), 1u);
  EXPECT_EQ(s.time_signatures[0].numerator, 3);
  EXPECT_EQ(s.time_signatures[0].denominator, 4);
  ASSERT_EQ(s.key_signatures.size(), 1u);
  EXPECT_EQ(s.key_signatures[0].name(), "G major");
  EXPECT_DOUBLE_EQ(s.tempos[0].bpm(), 120.0);
}

TEST(MidiReader, RunningStatusAndVelocityZeroNoteOff) {
  TrackBytes t;
  t.Event(0, {0x90, 60, 90}).Event(0, {64, 80}).Event(240, {60, 0}).Event(240, {64, 0}).End();
  Score s = ParseOk(SmfBytes(0, 480, {t}));
  ASSERT_EQ(s.notes.size(), 2u);
  EXPECT_EQ(s.notes[0].pitch, 60);
  EXPECT_EQ(s.notes[0].end, 240);
  EXPECT_EQ(s.notes[1].pitch, 64);
  EXPECT_EQ(s.notes[1].end, 480);
}

TEST(MidiReader, OverlappingSamePitchPairsOldestFirst) {
  TrackBytes t;
  t.Event(0, {0x90, 60, 100}).Event(100, {0x90, 60, 50}).Event(100, {0x80, 60, 0}).Event(100, {0x80, 60, 0}).End();
  Score s = ParseOk(SmfBytes(0, 480, {t}));
  ASSERT_EQ(s.notes.size(), 2u);
  EXPECT_EQ(s.notes[0].start, 0);
  EXPECT_EQ(s.notes[0].end, 200);
  EXPECT_EQ(s.notes[0].velocity, 100);
  EXPECT_EQ(s.notes[1].start, 100);
  EXPECT_EQ(s.notes[1].end, 300);
}

TEST(MidiReader, Format1TempoMapToSecondsDrumsAndUnclosedNotes) {
  TrackBytes meta;
  meta.Event(0, {0xFF, 0x51, 3, 0x07, 0xA1, 0x20})   // 120 bpm
      .Event(960, {0xFF, 0x51, 3, 0x0F, 0x42, 0x40})  // 60 bpm from beat 2
      .End();
  TrackBytes drums;
  drums.Event(0, {0xFF, 0x03, 5, 'D', 'r', 'u', 'm', 's'}).Event(0, {0x99, 36, 110}).Event(120, {0x89, 36, 0})
      .Event(1800, {0x99, 38, 100}).End(60);  // snare never released: ends with the track
  Score s = ParseOk(SmfBytes(1, 480, {meta, drums}));
  EXPECT_DOUBLE_EQ(s.SecondsAt(960), 1.0);
  EXPECT_DOUBLE_EQ(s.SecondsAt(1440), 2.0);
  ASSERT_EQ(s.notes.size(), 2u);
  EXPECT_TRUE(s.notes[0].drum);
  EXPECT_EQ(s.notes[0].channel, 9);
  EXPECT_EQ(s.notes[0].track, 1);
  EXPECT_EQ(s.tracks[1].name, "Drums");
  EXPECT_EQ(s.notes[1].start, 1920);
  EXPECT_EQ(s.notes[1].end, 1980);
  EXPECT_EQ(s.end_tick, 1980);
}

TEST(MidiReader, ProgramChangeInAnotherTrackAppliesToItsChannel) {
  TrackBytes meta;
  meta.Event(0, {0xC1, 33}).End();
  TrackBytes bass;
  bass.Event(0, {0x91, 40, 90}).Event(480, {0x81, 40, 0}).End();
  Score s = ParseOk(SmfBytes(1, 480, {meta, bass}));
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_EQ(s.notes[0].program, 33);
}

// A plain reader of what RandomTracksForReaderCheck writes, as docs/midi.md states the rules: all tracks' events in
// (tick, programs and metas before notes, track, file order); notes paired oldest first per (track, channel, pitch).
struct PlainEvent {
  int64_t tick;
  int track, seq;
  uint8_t status, a, b;
};

Score PlainReferenceOfEvents(std::vector<PlainEvent> events, const std::vector<int64_t>& track_end) {
  auto order_class = [](const PlainEvent& e) { return (e.status & 0xF0) == 0xC0 || e.status == 0xFF ? 0 : 1; };
  std::stable_sort(events.begin(), events.end(), [&](const PlainEvent& x, const PlainEvent& y) {
    return std::make_tuple(x.tick, order_class(x), x.track, x.seq) < std::make_tuple(y.tick, order_class(y), y.track, y.seq);
  });
  Score s;
  uint8_t program[16] = {0};
  std::map<std::tuple<int, int, int>, std::deque<Note>> sounding;
  for (const PlainEvent& e : events) {
    const int kind = e.status & 0xF0, channel = e.status & 0x0F;
    if (e.status == 0xFF) {  // tempo: the last at a tick wins
      if (!s.tempos.empty() && s.tempos.back().tick == e.tick) s.tempos.pop_back();
      s.tempos.push_back({e.tick, 400000u + e.a});
    } else if (kind == 0xC0) {
      program[channel] = e.a;
    } else if (kind == 0x90 && e.b > 0) {
      Note n;
      n.start = e.tick;
      n.pitch = e.a;
      n.velocity = e.b;
      n.channel = static_cast<uint8_t>(channel);
      n.drum = channel == 9;
      n.program = n.drum ? 0 : program[channel];
      n.track = e.track;
      sounding[{e.track, channel, e.a}].push_back(n);
    } else {
      auto& q = sounding[{e.track, channel, e.a}];
      if (q.empty()) continue;
      q.front().end = e.tick;
      s.notes.push_back(q.front());
      q.pop_front();
    }
  }
  for (auto& [key, q] : sounding) {
    for (Note n : q) {
      n.end = std::max(n.start, track_end[std::get<0>(key)]);
      s.notes.push_back(n);
    }
  }
  s.Sort();
  return s;
}

// Random format-1 tracks (up to 20, so past the reader's merge of 16) of dense same-pitch overlaps, chords in any
// order, stray note-offs, unclosed notes, program changes and tempos shared across tracks at one tick.
std::vector<uint8_t> RandomTracksForReaderCheck(std::mt19937* rng, std::vector<PlainEvent>* events, std::vector<int64_t>* track_end) {
  auto r = [&](int n) { return static_cast<int>((*rng)() % static_cast<unsigned>(n)); };
  std::vector<TrackBytes> tracks(1 + r(r(3) == 0 ? 20 : 4));
  for (size_t t = 0; t < tracks.size(); ++t) {
    int64_t tick = 0;
    const int n = r(5) == 0 ? 0 : r(120);
    for (int i = 0; i < n; ++i) {
      const uint32_t delta = r(3) == 0 ? 0 : r(40);
      tick += delta;
      const uint8_t channel = static_cast<uint8_t>(r(6) == 0 ? 9 : r(3));
      PlainEvent e{tick, static_cast<int>(t), i, 0, static_cast<uint8_t>(60 + r(6)), 0};
      const int what = r(20);
      if (what == 0) {
        e.status = 0xFF;
        e.a = static_cast<uint8_t>(r(4));
        tracks[t].Event(delta, {0xFF, 0x51, 3, 0x06, 0x1A, 0x80 + e.a});  // 400000 + a us
      } else if (what <= 2) {
        e.status = static_cast<uint8_t>(0xC0 | channel);
        e.a = static_cast<uint8_t>(r(128));
        tracks[t].Event(delta, {e.status, e.a});
      } else {
        e.status = static_cast<uint8_t>((r(2) ? 0x90 : 0x80) | channel);
        e.b = static_cast<uint8_t>(r(4) == 0 ? 0 : 1 + r(127));
        tracks[t].Event(delta, {e.status, e.a, e.b});
      }
      events->push_back(e);
    }
    const uint32_t tail = r(50);
    tracks[t].End(tail);
    track_end->push_back(tick + tail);
  }
  return SmfBytes(1, 480, tracks);
}

TEST(MidiReader, RandomMultiTrackFilesMatchAPlainReference) {
  std::mt19937 rng(17);
  for (int file = 0; file < 400; ++file) {
    SCOPED_TRACE("file " + std::to_string(file));
    std::vector<PlainEvent> events;
    std::vector<int64_t> track_end;
    const std::vector<uint8_t> bytes = RandomTracksForReaderCheck(&rng, &events, &track_end);
    const Score want = PlainReferenceOfEvents(events, track_end);
    const Score got = ParseOk(bytes);
    ASSERT_EQ(got.notes.size(), want.notes.size());
    for (size_t i = 0; i < got.notes.size(); ++i) {
      const Note &g = got.notes[i], &w = want.notes[i];
      ASSERT_EQ(std::make_tuple(g.start, g.end, g.pitch, g.velocity, g.channel, g.program, g.drum, g.track),
                std::make_tuple(w.start, w.end, w.pitch, w.velocity, w.channel, w.program, w.drum, w.track))
          << "note " << i;
    }
    ASSERT_EQ(got.tempos.size(), want.tempos.size());
    for (size_t i = 0; i < got.tempos.size(); ++i) {
      EXPECT_EQ(got.tempos[i].tick, want.tempos[i].tick);
      EXPECT_EQ(got.tempos[i].us_per_quarter, want.tempos[i].us_per_quarter);
    }
    EXPECT_EQ(got.end_tick, *std::max_element(track_end.begin(), track_end.end()));
  }
}

TEST(MidiReader, RefusesFormat2AndSmpteWithClearErrors) {
  TrackBytes t;
  t.End();
  EXPECT_NE(ParseError(SmfBytes(2, 480, {t})).find("format 2"), std::string::npos);
  const std::string smpte = ParseError(SmfBytes(1, 0xE728, {t}));
  EXPECT_NE(smpte.find("SMPTE"), std::string::npos) << smpte;
  EXPECT_NE(smpte.find("bad.mid: byte 12"), std::string::npos) << smpte;
}

TEST(MidiReader, BadInputNamesFileOffsetAndExpectation) {
  TrackBytes good;
  good.Event(0, {0x90, 60, 100}).Event(480, {0x80, 60, 0}).End();
  const std::vector<uint8_t> file = SmfBytes(0, 480, {good});

  // Not MIDI at all.
  const std::string text = "hello, this is not a midi file";
  EXPECT_EQ(ParseError(std::vector<uint8_t>(text.begin(), text.end())),
            "bad.mid: byte 0: expected 'MThd' header chunk (this is not a Standard MIDI File)");
  // Truncated inside the track: the chunk length runs past the end.
  std::vector<uint8_t> truncated(file.begin(), file.end() - 5);
  const std::string t = ParseError(truncated);
  EXPECT_NE(t.find("bad.mid: byte 18: chunk 'MTrk' length"), std::string::npos) << t;
  EXPECT_NE(t.find("runs past the end"), std::string::npos) << t;
  // Header promises more tracks than there are.
  EXPECT_NE(ParseError(SmfBytes(1, 480, {good}, 3)).find("expected 3 track chunks"), std::string::npos);
  // Missing end-of-track.
  TrackBytes no_end;
  no_end.Event(0, {0x90, 60, 100}).Event(480, {0x80, 60, 0});
  EXPECT_NE(ParseError(SmfBytes(0, 480, {no_end})).find("expected end-of-track meta event"), std::string::npos);
  // A delta time longer than four bytes.
  TrackBytes long_vlq;
  long_vlq.Raw({0x81, 0x81, 0x81, 0x81, 0x01, 0x90, 60, 100}).End();
  EXPECT_NE(ParseError(SmfBytes(0, 480, {long_vlq})).find("byte 22: variable-length quantity longer than 4 bytes"), std::string::npos);
  // Huge delta times that add up past 2^31 ticks.
  TrackBytes huge;
  for (int i = 0; i < 9; ++i) huge.Event(0x0FFFFFFF, {0xB0, 7, 100});
  huge.End();
  EXPECT_NE(ParseError(SmfBytes(0, 480, {huge})).find("huge delta time"), std::string::npos);
  // A data byte with no status before it.
  TrackBytes no_status;
  no_status.Event(0, {60, 100}).End();
  EXPECT_NE(ParseError(SmfBytes(0, 480, {no_status})).find("byte 23: data byte 0x3C without a running status"), std::string::npos);
  // A status byte where a data byte must be.
  TrackBytes bad_data;
  bad_data.Event(0, {0x90, 0x90, 100}).End();
  EXPECT_NE(ParseError(SmfBytes(0, 480, {bad_data})).find("expected a data byte (< 0x80)"), std::string::npos);
  // A tempo of zero would divide by zero later.
  TrackBytes zero_tempo;
  zero_tempo.Event(0, {0xFF, 0x51, 3, 0, 0, 0}).End();
  EXPECT_NE(ParseError(SmfBytes(0, 480, {zero_tempo})).find("tempo of 0"), std::string::npos);
  // Ticks per quarter of zero.
  EXPECT_NE(ParseError(SmfBytes(0, 0, {good})).find("ticks per quarter note > 0"), std::string::npos);
}

TEST(MidiReader, EveryTruncationOfAValidFileFailsCleanly) {
  TrackBytes t;
  t.Event(0, {0xFF, 0x51, 3, 0x07, 0xA1, 0x20}).Event(0, {0x90, 60, 100}).Event(0x3FFF, {0x80, 60, 0}).End();
  const std::vector<uint8_t> file = SmfBytes(0, 480, {t});
  for (size_t n = 0; n < file.size(); ++n) {
    auto s = ParseMidi(file.data(), n, "cut.mid");
    ASSERT_FALSE(s.ok()) << "a file cut at " << n << " bytes parsed";
    EXPECT_EQ(s.status().message().rfind("cut.mid: byte ", 0), 0u) << s.status().message();
  }
  EXPECT_TRUE(ParseMidi(file.data(), file.size(), "full.mid").ok());
}

Score TwoTrackScore() {
  Score s;
  s.ticks_per_quarter = 480;
  s.tracks = {{"Conductor"}, {"Melody"}, {"Drums"}};
  s.tempos = {{0, 500000}, {1920, 400000}};
  s.time_signatures = {{0, 6, 8}, {2880, 2, 4}};
  s.key_signatures = {{0, -3, true}};
  for (int i = 0; i < 8; ++i) {
    Note n;
    n.start = i * 240;
    n.end = n.start + 200;
    n.pitch = static_cast<uint8_t>(60 + i);
    n.velocity = static_cast<uint8_t>(40 + 10 * i);
    n.channel = 0;
    n.program = i < 4 ? 0 : 73;  // a program change half way
    n.track = 1;
    s.notes.push_back(n);
  }
  Note kick;
  kick.start = 0;
  kick.end = 0;  // zero-length drum hit survives the round trip
  kick.pitch = 36;
  kick.velocity = 120;
  kick.channel = 9;
  kick.drum = true;
  kick.track = 2;
  s.notes.push_back(kick);
  s.Sort();
  return s;
}

void ExpectSameNotes(const Score& a, const Score& b) {
  ASSERT_EQ(a.notes.size(), b.notes.size());
  for (size_t i = 0; i < a.notes.size(); ++i) {
    SCOPED_TRACE("note " + std::to_string(i));
    EXPECT_EQ(a.notes[i].start, b.notes[i].start);
    EXPECT_EQ(a.notes[i].end, b.notes[i].end);
    EXPECT_EQ(a.notes[i].pitch, b.notes[i].pitch);
    EXPECT_EQ(a.notes[i].velocity, b.notes[i].velocity);
    EXPECT_EQ(a.notes[i].program, b.notes[i].program);
    EXPECT_EQ(a.notes[i].drum, b.notes[i].drum);
  }
}

TEST(MidiWriter, RoundTripKeepsNotesTempoMeterKeyAndNames) {
  const Score s = TwoTrackScore();
  const std::vector<uint8_t> bytes = SerializeMidi(s);
  Score r = ParseOk(bytes);
  ExpectSameNotes(s, r);
  ASSERT_EQ(r.tempos.size(), 2u);
  EXPECT_EQ(r.tempos[1].tick, 1920);
  EXPECT_EQ(r.tempos[1].us_per_quarter, 400000u);
  ASSERT_EQ(r.time_signatures.size(), 2u);
  EXPECT_EQ(r.time_signatures[0].numerator, 6);
  EXPECT_EQ(r.time_signatures[0].denominator, 8);
  EXPECT_EQ(r.key_signatures[0].name(), "C minor");
  EXPECT_EQ(r.tracks[1].name, "Melody");
  EXPECT_EQ(r.tracks[2].name, "Drums");
}

TEST(MidiWriter, WriteIsAtomicAndLeavesNoTemporaryFiles) {
  const auto dir = std::filesystem::temp_directory_path() / ("cadenza_midi_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "out.mid").string();
  ASSERT_TRUE(WriteMidiFile(TwoTrackScore(), path).ok());
  auto r = ReadMidiFile(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectSameNotes(TwoTrackScore(), *r);
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  EXPECT_FALSE(WriteMidiFile(TwoTrackScore(), (dir / "missing" / "x.mid").string()).ok());
  std::filesystem::remove_all(dir);
}

TEST(MidiReader, MissingFileIsAnError) {
  auto r = ReadMidiFile("/nonexistent/song.mid");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/song.mid: cannot open"), std::string::npos);
}

// Files we write must read the same in Python's mido (an independent parser).
TEST(MidiWriter, MidoReadsTheSameNotes) {
  if (!std::filesystem::exists("/usr/bin/python3") || std::system("/usr/bin/python3 -c 'import mido' 2>/dev/null") != 0) {
    GTEST_SKIP() << "Debian's python3 with mido is not installed (scripts/install-deps.sh installs it)";
  }
  const auto dir = std::filesystem::temp_directory_path() / ("cadenza_mido_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string mid = (dir / "x.mid").string(), out = (dir / "notes.txt").string();
  const Score s = TwoTrackScore();
  ASSERT_TRUE(WriteMidiFile(s, mid).ok());
  const std::string cmd = "/usr/bin/python3 " CADENZA_SOURCE_DIR "/tests/tools/mido_notes.py --text " + mid + " > " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), s.notes.size());
  for (size_t i = 0; i < s.notes.size(); ++i) {
    const Note& n = s.notes[i];
    std::ostringstream expect;
    expect << n.start << " " << n.end << " " << int(n.pitch) << " " << int(n.velocity) << " " << int(n.drum ? 9 : n.channel)
           << " " << int(n.program);
    EXPECT_EQ(lines[i], expect.str()) << "note " << i;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cadenza
