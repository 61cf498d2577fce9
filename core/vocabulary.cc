// The token table of docs/tokenizer.md, built once, plus the binning rules for velocity, tempo and meters.
#include "core/vocabulary.h"

#include <cmath>
#include <cstdio>

namespace cadenza {
namespace {
constexpr int kDenominators[] = {2, 4, 8, 16};
}

const Vocabulary& Vocabulary::Get() {
  static const Vocabulary vocabulary;
  return vocabulary;
}

void Vocabulary::Add(std::string name, TokenInfo info) {
  names_.push_back(std::move(name));
  info_.push_back(info);
}

Vocabulary::Vocabulary() {
  Add("PAD", {TokenType::kPad, 0});
  Add("BOS", {TokenType::kBos, 0});
  Add("EOS", {TokenType::kEos, 0});
  Add("Bar", {TokenType::kBar, 0});
  timesig_base_ = size();
  for (int d : kDenominators)
    for (int n = 1; n <= 16; ++n) Add("TimeSig_" + std::to_string(n) + "/" + std::to_string(d), {TokenType::kTimeSig, n, d});
  beat_base_ = size();
  for (int b = 0; b < kMaxBeatsPerBar; ++b) Add("Beat_" + std::to_string(b), {TokenType::kBeat, b});
  position_base_ = size();
  for (int p = 0; p < kMaxPositionsPerBeat; ++p) Add("Pos_" + std::to_string(p), {TokenType::kPosition, p});
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
  for (int d = 1; d <= kMaxDurationSteps; ++d) Add("Duration_" + std::to_string(d), {TokenType::kDuration, d});

  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  };
  mix(std::string(kName) + "/" + std::to_string(kVersion) + "\n");
  for (const std::string& n : names_) mix(n + "\n");
  hash_ = h;
}

std::string Vocabulary::HashHex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash_));
  return buf;
}

int Vocabulary::TimeSig(int numerator, int denominator) const {
  if (!IsSupportedMeter(numerator, denominator)) return -1;
  int di = 0;
  while (kDenominators[di] != denominator) ++di;
  return timesig_base_ + di * 16 + (numerator - 1);
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
  }
  return 0;
}

int Vocabulary::End(TokenType t) const {
  switch (t) {
    case TokenType::kDuration: return size();
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
  const long bin = std::lround(12.0 * std::log2(bpm / 120.0)) + kTempoBinOfOneTwenty;
  return bin < 0 ? 0 : (bin >= kTempoBins ? kTempoBins - 1 : static_cast<int>(bin));
}

double Vocabulary::TempoOfBin(int bin) { return 120.0 * std::exp2((bin - kTempoBinOfOneTwenty) / 12.0); }

bool Vocabulary::IsSupportedMeter(int numerator, int denominator) {
  return numerator >= 1 && numerator <= 16 && (denominator == 2 || denominator == 4 || denominator == 8 || denominator == 16);
}

bool Vocabulary::IsCompound(int numerator, int denominator) {
  return denominator >= 8 && numerator % 3 == 0 && numerator > 3;
}

int Vocabulary::BarSteps(int numerator, int denominator) { return numerator * 4 * kGridPerQuarter / denominator; }

int Vocabulary::BeatSteps(int numerator, int denominator) {
  const int unit = 4 * kGridPerQuarter / denominator;
  return IsCompound(numerator, denominator) ? 3 * unit : unit;
}

int Vocabulary::BeatsPerBar(int numerator, int denominator) {
  const int bar = BarSteps(numerator, denominator), beat = BeatSteps(numerator, denominator);
  return (bar + beat - 1) / beat;
}

}  // namespace cadenza
