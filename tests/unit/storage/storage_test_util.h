// Helpers for the storage tests: temporary folders and small hand-built tunes written as MIDI files.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/midi.h"
#include "core/score.h"

namespace cadenza::testing {

// A fresh folder under the system temp dir, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "cadenza-storage-XXXXXX").string();
    path_ = ::mkdtemp(templ.data()) ? templ : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

// A melody of eighth notes plus a bass note per bar; `variant` changes the pitches, so tunes differ.
inline Score MakeTune(int variant, int bars = 8, int numerator = 4, int denominator = 4) {
  Score s;
  s.ticks_per_quarter = 480;
  s.tracks = {Track{"melody"}, Track{"bass"}};
  s.time_signatures = {TimeSignature{0, numerator, denominator}};
  s.tempos = {TempoChange{0, static_cast<uint32_t>(500000 + 10000 * (variant % 7))}};
  s.key_signatures = {KeySignature{0, variant % 5, false}};
  const int64_t bar_ticks = static_cast<int64_t>(numerator) * 480 * 4 / denominator;
  const int64_t eighth = 240;
  for (int b = 0; b < bars; ++b) {
    const int64_t bar_start = b * bar_ticks;
    for (int64_t t = 0; t + eighth <= bar_ticks; t += eighth) {
      Note n;
      n.start = bar_start + t;
      n.end = n.start + eighth;
      n.pitch = static_cast<uint8_t>(60 + (variant * 7 + b * 5 + t / eighth * 3) % 24);
      n.velocity = static_cast<uint8_t>(64 + (variant + b) % 32);
      n.channel = 0;
      n.program = static_cast<uint8_t>(variant % 8);
      n.track = 0;
      s.notes.push_back(n);
    }
    Note bass;
    bass.start = bar_start;
    bass.end = bar_start + bar_ticks;
    bass.pitch = static_cast<uint8_t>(36 + (variant + b) % 12);
    bass.velocity = 70;
    bass.channel = 1;
    bass.program = 32;
    bass.track = 1;
    s.notes.push_back(bass);
  }
  s.end_tick = bars * bar_ticks;
  s.Sort();
  return s;
}

// Writes `score` as a MIDI file, creating the folders; returns the error message or "".
inline std::string WriteTune(const Score& score, const std::string& path) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  Status s = WriteMidiFile(score, path);
  return s.ok() ? std::string() : s.message();
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace cadenza::testing
