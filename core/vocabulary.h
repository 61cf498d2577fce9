// The beat-level event vocabulary (REMI-style): token ids, their meaning, and the version that datasets record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cadenza {

// Grid: 12 steps per quarter note holds sixteenths (3 steps) and eighth/sixteenth triplets (4 / 2 steps).
constexpr int kGridPerQuarter = 12;
constexpr int kMaxBeatsPerBar = 16;
constexpr int kMaxPositionsPerBeat = 24;  // a half-note beat (x/2 meters)
constexpr int kMaxDurationSteps = 192;    // 16 quarter notes; longer notes are clipped (counted in stats)
constexpr int kVelocityBins = 32;
constexpr int kTempoBins = 39;  // 120 * 2^(k/12) bpm for k = -24..14: 30..269 bpm, 120 exact
constexpr int kTempoBinOfOneTwenty = 24;
constexpr int kDrumProgram = 128;  // Program token index meaning General MIDI drums (channel 10)

enum class TokenType : uint8_t {
  kPad, kBos, kEos, kBar, kTimeSig, kBeat, kPosition, kTempo, kProgram, kPitch, kVelocity, kDuration
};

struct TokenInfo {
  TokenType type;
  int value;  // meaning depends on type: beat index, position step, tempo bin, program, pitch, bin, steps
  int value2 = 0;  // kTimeSig: denominator (value is numerator)
};

class Vocabulary {
 public:
  static const Vocabulary& Get();

  static constexpr const char* kName = "cadenza-remi-beat";
  static constexpr int kVersion = 1;

  int size() const { return static_cast<int>(names_.size()); }
  const std::string& Name(int id) const { return names_.at(id); }
  const std::vector<std::string>& names() const { return names_; }
  const TokenInfo& Info(int id) const { return info_[id]; }
  TokenType Type(int id) const { return info_[id].type; }
  // 64-bit FNV-1a over the version and the ordered token names, as 16 hex digits: any change to the vocabulary
  // changes it.
  std::string HashHex() const;

  int Pad() const { return 0; }
  int Bos() const { return 1; }
  int Eos() const { return 2; }
  int Bar() const { return 3; }
  int TimeSig(int numerator, int denominator) const;  // -1 if not representable
  int Beat(int index) const { return beat_base_ + index; }
  int Position(int step) const { return position_base_ + step; }
  int Tempo(int bin) const { return tempo_base_ + bin; }
  int Program(int program) const { return program_base_ + program; }  // kDrumProgram for drums
  int Pitch(int pitch) const { return pitch_base_ + pitch; }
  int Velocity(int bin) const { return velocity_base_ + bin; }
  int Duration(int steps) const { return duration_base_ + steps - 1; }  // steps in 1..kMaxDurationSteps

  // Id range [first, last) of each token type, for masks in constrained decoding.
  int First(TokenType t) const;
  int End(TokenType t) const;

  static int VelocityBin(int velocity);       // 1..127 -> 0..31
  static int VelocityOfBin(int bin);          // bin -> a velocity that maps back to the same bin
  static int TempoBin(double bpm);            // nearest bin, clamped
  static double TempoOfBin(int bin);          // bpm
  static bool IsSupportedMeter(int numerator, int denominator);
  // Compound meters (6/8, 9/8, 12/8, 6/16 ...) count dotted beats.
  static bool IsCompound(int numerator, int denominator);
  static int BarSteps(int numerator, int denominator);   // bar length in grid steps
  static int BeatSteps(int numerator, int denominator);  // beat length in grid steps
  static int BeatsPerBar(int numerator, int denominator);

 private:
  Vocabulary();
  void Add(std::string name, TokenInfo info);

  std::vector<std::string> names_;
  std::vector<TokenInfo> info_;
  uint64_t hash_ = 0;
  int timesig_base_ = 0, beat_base_ = 0, position_base_ = 0, tempo_base_ = 0, program_base_ = 0;
  int pitch_base_ = 0, velocity_base_ = 0, duration_base_ = 0;
};

}  // namespace cadenza
