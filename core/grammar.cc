// Incremental token grammar (docs/tokenizer.md): allowed-next sets for constrained decoding.
#include "core/grammar.h"

#include "core/vocabulary.h"

namespace cadenza {

GrammarState::GrammarState() : vocab_(&Vocabulary::Get()) {}

bool GrammarState::Accepts(int32_t t) const {
  const Vocabulary& v = *vocab_;
  if (t < 0 || t >= v.size()) return false;
  const TokenInfo& info = v.Info(t);
  switch (phase_) {
    case Phase::kStart:
      return info.type == TokenType::kBos || info.type == TokenType::kBar;  // a window may start on a bar
    case Phase::kAfterBos:
      return info.type == TokenType::kBar;
    case Phase::kTimeSig:
      return info.type == TokenType::kTimeSig && v.IsRepresentableMeter(info.value, info.value2);
    case Phase::kPosition:
      return info.type == TokenType::kPosition && info.value < beat_steps_ &&
             beat_ * beat_steps_ + info.value < bar_steps_ && beat_ * beat_steps_ + info.value > step_in_bar_;
    case Phase::kPitch:
      return info.type == TokenType::kPitch;
    case Phase::kVelocity:
      return info.type == TokenType::kVelocity;
    case Phase::kDuration:
      return info.type == TokenType::kDuration;
    case Phase::kDone:
      return info.type == TokenType::kPad;
    case Phase::kEvent:
      switch (info.type) {
        case TokenType::kBar:
          return max_bars_ == 0 || bars_ < max_bars_;
        case TokenType::kEos:
          return notes_ > 0;  // a piece holds at least one note (an untrained model's early EOS is no sample)
        case TokenType::kBeat:
          // Only beats that still leave a valid position (the bar may be cut short).
          return info.value > beat_ && info.value < beats_ && info.value * beat_steps_ < bar_steps_;
        case TokenType::kPosition:
          return beat_ >= 0 && info.value < beat_steps_ && beat_ * beat_steps_ + info.value < bar_steps_ &&
                 beat_ * beat_steps_ + info.value > step_in_bar_;
        case TokenType::kTempo:
          return tempo_allowed_;
        case TokenType::kProgram:
          return step_in_bar_ >= 0;
        case TokenType::kPitch:
          return step_in_bar_ >= 0 && instrument_ >= 0;
        case TokenType::kPedal:
          if (step_in_bar_ < 0 || !pedal_open_) return false;
          return info.value == 0 ? pedal_ != Pedal::kUp && !down_here_ : pedal_ != Pedal::kDown;
        default:
          return false;
      }
  }
  return false;
}

void GrammarState::Allowed(std::vector<uint8_t>* allowed) const {
  const int n = vocab_->size();
  allowed->assign(n, 0);
  for (int t = 0; t < n; ++t) (*allowed)[t] = Accepts(t) ? 1 : 0;
}

Status GrammarState::Advance(int32_t t) {
  const Vocabulary& v = *vocab_;
  if (!Accepts(t)) {
    return InvalidArgument("token " + (t >= 0 && t < v.size() ? v.Name(t) : "id " + std::to_string(t)) +
                           " is not allowed here by the token grammar");
  }
  const TokenInfo& info = v.Info(t);
  const bool was_position = info.type == TokenType::kPosition;
  switch (info.type) {
    case TokenType::kPad:
      break;
    case TokenType::kBos:
      phase_ = Phase::kAfterBos;
      pedal_ = Pedal::kUp;
      break;
    case TokenType::kEos:
      phase_ = Phase::kDone;
      break;
    case TokenType::kBar:
      ++bars_;
      phase_ = Phase::kTimeSig;
      break;
    case TokenType::kTimeSig:
      beats_ = v.BeatsPerBar(info.value, info.value2);
      beat_steps_ = v.BeatSteps(info.value, info.value2);
      bar_steps_ = v.BarSteps(info.value, info.value2);
      beat_ = -1;
      step_in_bar_ = -1;
      instrument_ = -1;
      phase_ = Phase::kEvent;
      break;
    case TokenType::kBeat:
      beat_ = info.value;
      phase_ = Phase::kPosition;
      break;
    case TokenType::kPosition:
      step_in_bar_ = beat_ * beat_steps_ + info.value;
      pedal_open_ = true;
      down_here_ = false;
      phase_ = Phase::kEvent;
      break;
    case TokenType::kTempo:
      break;
    case TokenType::kPedal:
      pedal_ = info.value == 0 ? Pedal::kUp : Pedal::kDown;
      if (info.value == 1) down_here_ = true;
      break;
    case TokenType::kProgram:
      instrument_ = info.value;
      pedal_open_ = false;
      phase_ = Phase::kPitch;
      break;
    case TokenType::kPitch:
      pedal_open_ = false;
      phase_ = Phase::kVelocity;
      break;
    case TokenType::kVelocity:
      phase_ = Phase::kDuration;
      break;
    case TokenType::kDuration:
      ++notes_;
      phase_ = Phase::kEvent;
      break;
  }
  tempo_allowed_ = was_position;
  return Status::Ok();
}

}  // namespace cadenza
