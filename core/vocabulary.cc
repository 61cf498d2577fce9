// The token table of docs/tokenizer.md, built once per grid, plus the binning rules for velocity, tempo and meters.
#include "core/vocabulary.h"

#include <cmath>
#include <cstdio>
#include <numeric>

namespace cadenza {
namespace {
int DenominatorIndex(int denominator) {
  for (int i = 0; i < kNumMeterDenominators; ++i) {
    if (kMeterDenominators[i] == denominator) return i;
  }
  return -1;
}

// Units of 1/d per beat when one unit is finer than the grid: the fewest units that make a whole step (1 otherwise).
int UnitsPerStep(int grid, int denominator) { return denominator / std::gcd(4 * grid, denominator); }
}  // namespace

const Vocabulary& Vocabulary::Get() { return *ForGrid(kGridPerQuarter); }

const Vocabulary* Vocabulary::ForGrid(int grid, bool pedal_tokens) {
  static const Vocabulary g12(12, false), g24(24, false), g48(48, false);
  static const Vocabulary p12(12, true), p24(24, true), p48(48, true);
  switch (grid) {
    case 12: return pedal_tokens ? &p12 : &g12;
    case 24: return pedal_tokens ? &p24 : &g24;
    case 48: return pedal_tokens ? &p48 : &g48;
    default: return nullptr;
  }
}

const Vocabulary* Vocabulary::Find(const std::string& name, int version) {
  if (version != kVersion) return nullptr;
  for (int g : kSupportedGrids) {
    for (bool pedal : {false, true}) {
      const Vocabulary* v = ForGrid(g, pedal);
      if (v->name() == name) return v;
    }
  }
  return nullptr;
}

void Vocabulary::Add(std::string name, TokenInfo info) {
  names_.push_back(std::move(name));
  info_.push_back(info);
}

Vocabulary::Vocabulary(int grid, bool pedal_tokens)
    : grid_(grid),
      pedal_tokens_(pedal_tokens),
      name_(std::string(kFamily) + "-g" + std::to_string(grid) + (pedal_tokens ? kPedalSuffix : "")) {
  Add("PAD", {TokenType::kPad, 0});
  Add("BOS", {TokenType::kBos, 0});
  Add("EOS", {TokenType::kEos, 0});
  Add("Bar", {TokenType::kBar, 0});
  timesig_base_ = size();
  for (int d : kMeterDenominators)
    for (int n = 1; n <= kMaxMeterNumerator; ++n) Add("TimeSig_" + std::to_string(n) + "/" + std::to_string(d), {TokenType::kTimeSig, n, d});
  beat_base_ = size();
  for (int b = 0; b < kMaxBeatsPerBar; ++b) Add("Beat_" + std::to_string(b), {TokenType::kBeat, b});
  position_base_ = size();
  for (int p = 0; p < max_positions_per_beat(); ++p) Add("Pos_" + std::to_string(p), {TokenType::kPosition, p});
  tempo_base_ = size();
  for (int t = 0; t < kTempoBins; ++t) Add("Tempo_" + std::to_string(t), {TokenType::kTempo, t});
  program_base_ = size();
  for (int p = 0; p < 128; ++p) Add("Program_" + std::to_string(p), {TokenType::kProgram, p});
  Add("Program_Drums", {TokenType::kProgram, kDrumProgram});
  pitch_base_ = size();
  for (int p = 0; p < 128; ++p) Add("Pitch_" + std::to_string(p), {TokenType::kPitch, p});
  velocity_base_ = size();
  for (int v = 0; v < kVelocityBins; ++v) Add("Velocity_" + std::to_string(v), {TokenType::kVelocity, v});
  duration_base_ = size();
  for (int d = 1; d <= max_duration_steps(); ++d) Add("Duration_" + std::to_string(d), {TokenType::kDuration, d});
  // Appended last, so that every other token keeps its id (and the plain vocabulary its hash).
  pedal_base_ = size();
  if (pedal_tokens_) {
    Add("Pedal_Up", {TokenType::kPedal, 0});
    Add("Pedal_Down", {TokenType::kPedal, 1});
  }

  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  };
  mix(name_ + "/" + std::to_string(kVersion) + "\n");
  for (const std::string& n : names_) mix(n + "\n");
  hash_ = h;
}

std::string Vocabulary::HashHex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash_));
  return buf;
}

int Vocabulary::TimeSig(int numerator, int denominator) const {
  if (!HasMeterToken(numerator, denominator)) return -1;
  return timesig_base_ + DenominatorIndex(denominator) * kMaxMeterNumerator + (numerator - 1);
}

int Vocabulary::First(TokenType t) const {
  switch (t) {
    case TokenType::kPad: return 0;
    case TokenType::kBos: return 1;
    case TokenType::kEos: return 2;
    case TokenType::kBar: return 3;
    case TokenType::kTimeSig: return timesig_base_;
    case TokenType::kBeat: return beat_base_;
    case TokenType::kPosition: return position_base_;
    case TokenType::kTempo: return tempo_base_;
    case TokenType::kProgram: return program_base_;
    case TokenType::kPitch: return pitch_base_;
    case TokenType::kVelocity: return velocity_base_;
    case TokenType::kDuration: return duration_base_;
    case TokenType::kPedal: return pedal_base_;
  }
  return 0;
}

int Vocabulary::End(TokenType t) const {
  switch (t) {
    case TokenType::kPedal: return size();
    default: return First(static_cast<TokenType>(static_cast<int>(t) + 1));
  }
}

int Vocabulary::VelocityBin(int velocity) {
  if (velocity < 1) velocity = 1;
  if (velocity > 127) velocity = 127;
  return (velocity - 1) / 4;
}

int Vocabulary::VelocityOfBin(int bin) { return bin * 4 + 4 > 127 ? 127 : bin * 4 + 4; }

int Vocabulary::TempoBin(double bpm) {
  if (!(bpm > 0)) return kTempoBinOfOneTwenty;
  const double x = kTempoBinsPerOctave * std::log2(bpm / 120.0) + kTempoBinOfOneTwenty;
  if (!(x > 0)) return 0;
  if (x >= kTempoBins - 1) return kTempoBins - 1;
  return static_cast<int>(std::lround(x));
}

double Vocabulary::TempoOfBin(int bin) {
  return 120.0 * std::exp2(static_cast<double>(bin - kTempoBinOfOneTwenty) / kTempoBinsPerOctave);
}

bool Vocabulary::HasMeterToken(int numerator, int denominator) {
  return numerator >= 1 && numerator <= kMaxMeterNumerator && DenominatorIndex(denominator) >= 0;
}

std::string Vocabulary::MeterProblem(int numerator, int denominator) const {
  const std::string meter = std::to_string(numerator) + "/" + std::to_string(denominator);
  if (numerator < 1 || numerator > kMaxMeterNumerator) {
    return meter + ": numerator outside 1.." + std::to_string(kMaxMeterNumerator);
  }
  if (DenominatorIndex(denominator) < 0) return meter + ": denominator not one of 1, 2, 4, ..., 64";
  if ((int64_t{numerator} * 4 * grid_) % denominator != 0) {
    char steps[32];
    std::snprintf(steps, sizeof steps, "%g", numerator * 4.0 * grid_ / denominator);
    return meter + ": its bar is " + steps + " steps on a " +
           std::to_string(grid_) + "-per-quarter grid (a whole number is needed; ingest with a finer --grid)";
  }
  return "";
}

bool Vocabulary::IsRepresentableMeter(int numerator, int denominator) const {
  return HasMeterToken(numerator, denominator) && (int64_t{numerator} * 4 * grid_) % denominator == 0;
}

bool Vocabulary::IsCompound(int numerator, int denominator) {
  return denominator >= 8 && numerator % 3 == 0 && numerator > 3;
}

int Vocabulary::BarSteps(int numerator, int denominator) const { return numerator * 4 * grid_ / denominator; }

int Vocabulary::BeatSteps(int numerator, int denominator) const {
  const int units = UnitsPerStep(grid_, denominator);
  if (units > 1) return units * 4 * grid_ / denominator;  // a 1/d note is finer than a step: beats of whole steps
  const int unit = 4 * grid_ / denominator;
  return IsCompound(numerator, denominator) ? 3 * unit : unit;
}

int Vocabulary::BeatsPerBar(int numerator, int denominator) const {
  const int bar = BarSteps(numerator, denominator), beat = BeatSteps(numerator, denominator);
  return (bar + beat - 1) / beat;
}

}  // namespace cadenza
