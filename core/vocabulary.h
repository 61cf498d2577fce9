// The beat-level event vocabulary (REMI-style): token ids, their meaning, and the version that datasets record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cadenza {

// Grid: steps per quarter note. 12 (the default) holds sixteenths (3 steps) and eighth/sixteenth triplets (4 / 2
// steps); 24 adds 32nds and 32nd triplets; 48 adds 64ths. A dataset records its grid in its vocabulary's name.
constexpr int kGridPerQuarter = 12;  // the default grid
constexpr int kSupportedGrids[] = {12, 24, 48};
constexpr int kMaxMeterNumerator = 64;
constexpr int kMeterDenominators[] = {1, 2, 4, 8, 16, 32, 64};
constexpr int kNumMeterDenominators = 7;
constexpr int kMaxBeatsPerBar = 64;        // 64/4 has 64 beats
constexpr int kMaxDurationQuarters = 16;   // longer notes are clipped (counted in stats)
constexpr int kVelocityBins = 32;
// Tempo bins: 120 * 2^((k - kTempoBinOfOneTwenty) / kTempoBinsPerOctave) bpm, log-spaced, 120 exact, covering
// 9.91 .. 403.6 bpm. Adjacent bins are 2^(1/72) = 0.97% apart, so the nearest bin is within 0.49% of any tempo in
// that range (and so is a piece's playing time).
constexpr int kTempoBinsPerOctave = 72;
constexpr int kTempoBins = 386;
constexpr int kTempoBinOfOneTwenty = 259;
constexpr int kDrumProgram = 128;  // Program token index meaning General MIDI drums (channel 10)

enum class TokenType : uint8_t {
  kPad, kBos, kEos, kBar, kTimeSig, kBeat, kPosition, kTempo, kProgram, kPitch, kVelocity, kDuration,
  kPedal  // only in the pedal variants (Vocabulary::ForGrid(grid, true)), after every other token
};

struct TokenInfo {
  TokenType type;
  int value;  // meaning depends on type: beat index, position step, tempo bin, program, pitch, bin, steps, pedal
              // (1 = down, 0 = up)
  int value2 = 0;  // kTimeSig: denominator (value is numerator)
};

class Vocabulary {
 public:
  // The vocabulary of the default grid (12 per quarter).
  static const Vocabulary& Get();
  // The vocabulary of `grid` steps per quarter; nullptr unless grid is one of kSupportedGrids. `pedal_tokens`: the
  // variant that also holds Pedal_Up and Pedal_Down (the sustain pedal kept as tokens), named with kPedalSuffix; its
  // other tokens have the same ids as the plain vocabulary's.
  static const Vocabulary* ForGrid(int grid, bool pedal_tokens = false);
  // The vocabulary whose name and version these are (as datasets and checkpoints record them); nullptr if none.
  static const Vocabulary* Find(const std::string& name, int version);

  static constexpr const char* kFamily = "cadenza-remi-beat";  // name = kFamily + "-g" + grid [+ kPedalSuffix]
  static constexpr const char* kPedalSuffix = "-pedal";
  static constexpr int kVersion = 2;

  int grid() const { return grid_; }
  // True for the variants with pedal tokens.
  bool pedal_tokens() const { return pedal_tokens_; }
  // "cadenza-remi-beat-g12": the family and the grid ("cadenza-remi-beat-g12-pedal" with pedal tokens).
  const std::string& name() const { return name_; }
  int size() const { return static_cast<int>(names_.size()); }
  const std::string& Name(int id) const { return names_.at(id); }
  const std::vector<std::string>& names() const { return names_; }
  const TokenInfo& Info(int id) const { return info_[id]; }
  TokenType Type(int id) const { return info_[id].type; }
  // 64-bit FNV-1a over the name, version and the ordered token names, as 16 hex digits: any change to the
  // vocabulary (the grid included) changes it.
  std::string HashHex() const;

  int Pad() const { return 0; }
  int Bos() const { return 1; }
  int Eos() const { return 2; }
  int Bar() const { return 3; }
  int TimeSig(int numerator, int denominator) const;  // -1 if there is no such token (see IsRepresentableMeter)
  int Beat(int index) const { return beat_base_ + index; }
  int Position(int step) const { return position_base_ + step; }
  int Tempo(int bin) const { return tempo_base_ + bin; }
  int Program(int program) const { return program_base_ + program; }  // kDrumProgram for drums
  int Pitch(int pitch) const { return pitch_base_ + pitch; }
  int Velocity(int bin) const { return velocity_base_ + bin; }
  int Duration(int steps) const { return duration_base_ + steps - 1; }  // steps in 1..max_duration_steps()
  int PedalUp() const { return pedal_tokens_ ? pedal_base_ : -1; }        // -1 without pedal tokens
  int PedalDown() const { return pedal_tokens_ ? pedal_base_ + 1 : -1; }

  int max_duration_steps() const { return kMaxDurationQuarters * grid_; }
  int max_positions_per_beat() const { return 4 * grid_; }  // a whole-note beat (x/1 meters)

  // Id range [first, last) of each token type, for masks in constrained decoding.
  int First(TokenType t) const;
  int End(TokenType t) const;

  static int VelocityBin(int velocity);  // 1..127 -> 0..31
  static int VelocityOfBin(int bin);     // bin -> a velocity that maps back to the same bin
  static int TempoBin(double bpm);       // nearest bin (in log scale), clamped
  static double TempoOfBin(int bin);     // bpm
  static double MinTempoBpm() { return TempoOfBin(0); }
  static double MaxTempoBpm() { return TempoOfBin(kTempoBins - 1); }
  // A meter has a TimeSig token when 1 <= n <= 64 and d is one of kMeterDenominators.
  static bool HasMeterToken(int numerator, int denominator);
  // ... and is representable on this grid when its bar is a whole number of steps as well.
  bool IsRepresentableMeter(int numerator, int denominator) const;
  // Why a meter cannot be represented on this grid ("" when it can).
  std::string MeterProblem(int numerator, int denominator) const;
  // Compound meters (6/8, 9/8, 12/8, 6/16 ...) count dotted beats.
  static bool IsCompound(int numerator, int denominator);
  // For representable meters only:
  int BarSteps(int numerator, int denominator) const;   // bar length in grid steps
  int BeatSteps(int numerator, int denominator) const;  // beat length in grid steps
  int BeatsPerBar(int numerator, int denominator) const;
  int StepsOf(int denominator) const { return (4 * grid_) % denominator == 0 ? 4 * grid_ / denominator : 0; }  // 0 if finer than a step

 private:
  Vocabulary(int grid, bool pedal_tokens);
  void Add(std::string name, TokenInfo info);

  int grid_ = kGridPerQuarter;
  bool pedal_tokens_ = false;
  std::string name_;
  std::vector<std::string> names_;
  std::vector<TokenInfo> info_;
  uint64_t hash_ = 0;
  int timesig_base_ = 0, beat_base_ = 0, position_base_ = 0, tempo_base_ = 0, program_base_ = 0;
  int pitch_base_ = 0, velocity_base_ = 0, duration_base_ = 0, pedal_base_ = 0;
};

}  // namespace cadenza
