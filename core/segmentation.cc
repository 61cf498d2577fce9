// Recovers bars and beats from a token sequence and answers which bar/beat a token belongs to.
#include "core/segmentation.h"

#include <algorithm>

#include "core/vocabulary.h"

namespace cadenza {

StatusOr<Segmentation> Segment(const int32_t* tokens, size_t count) {
  return Segment(tokens, count, Vocabulary::Get());
}

StatusOr<Segmentation> Segment(const int32_t* tokens, size_t count, const Vocabulary& v) {
  Segmentation seg;
  seg.num_tokens = static_cast<int64_t>(count);
  std::vector<int64_t> beat_set;  // beat offsets of the current bar, -1 where the beat has no Beat token
  auto close_bar = [&](int64_t next_offset) {
    if (seg.bars.empty()) return;
    for (int b = static_cast<int>(beat_set.size()) - 1; b >= 0; --b) {  // empty beats start where the next one does
      if (beat_set[b] < 0) beat_set[b] = next_offset;
      next_offset = beat_set[b];
    }
    seg.beat_token_offsets.insert(seg.beat_token_offsets.end(), beat_set.begin(), beat_set.end());
  };
  auto error = [&](size_t i, const std::string& what) {
    return InvalidArgument("token " + std::to_string(i) + " (" + v.Name(tokens[i]) + "): " + what);
  };
  int last_beat = -1;
  for (size_t i = 0; i < count; ++i) {
    const int32_t t = tokens[i];
    if (t < 0 || t >= v.size()) return InvalidArgument("token " + std::to_string(i) + ": id " + std::to_string(t) + " is outside the vocabulary");
    const TokenInfo& info = v.Info(t);
    if (info.type == TokenType::kBar) {
      close_bar(static_cast<int64_t>(i));
      BarInfo bar;
      bar.token_offset = static_cast<int64_t>(i);
      if (!seg.bars.empty()) {
        const BarInfo& prev = seg.bars.back();
        bar.start_step = prev.start_step + v.BarSteps(prev.numerator, prev.denominator);
      }
      if (i + 1 >= count || tokens[i + 1] < 0 || tokens[i + 1] >= v.size() || v.Type(tokens[i + 1]) != TokenType::kTimeSig) return error(i, "expected TimeSig after Bar");
      const TokenInfo& ts = v.Info(tokens[i + 1]);
      if (!v.IsRepresentableMeter(ts.value, ts.value2)) return error(i + 1, "meter not representable on this grid");
      bar.numerator = ts.value;
      bar.denominator = ts.value2;
      bar.num_beats = v.BeatsPerBar(ts.value, ts.value2);
      bar.first_beat = static_cast<int64_t>(seg.beat_token_offsets.size());
      seg.bars.push_back(bar);
      beat_set.assign(bar.num_beats, -1);
      beat_set[0] = static_cast<int64_t>(i);  // Bar and TimeSig belong to beat 0
      last_beat = -1;
    } else if (info.type == TokenType::kBeat) {
      if (seg.bars.empty()) return error(i, "Beat before the first Bar");
      if (info.value >= seg.bars.back().num_beats) return error(i, "beat outside the bar's meter");
      if (info.value <= last_beat) return error(i, "beats must increase inside a bar");
      if (info.value > 0) beat_set[info.value] = static_cast<int64_t>(i);
      last_beat = info.value;
    }
  }
  close_bar(static_cast<int64_t>(count));
  return seg;
}

int64_t Segmentation::BarOf(int64_t token) const {
  if (bars.empty()) return 0;
  auto it = std::upper_bound(bars.begin(), bars.end(), token, [](int64_t t, const BarInfo& b) { return t < b.token_offset; });
  return it == bars.begin() ? 0 : static_cast<int64_t>(it - bars.begin()) - 1;
}

int64_t Segmentation::BeatOf(int64_t token) const {
  if (beat_token_offsets.empty()) return 0;
  auto it = std::upper_bound(beat_token_offsets.begin(), beat_token_offsets.end(), token);
  return it == beat_token_offsets.begin() ? 0 : static_cast<int64_t>(it - beat_token_offsets.begin()) - 1;
}

std::pair<int64_t, int64_t> Segmentation::BarRange(int64_t bar) const {
  const int64_t begin = bars[bar].token_offset;
  const int64_t end = bar + 1 < static_cast<int64_t>(bars.size()) ? bars[bar + 1].token_offset : num_tokens;
  return {begin, end};
}

std::pair<int64_t, int64_t> Segmentation::BeatRange(int64_t beat) const {
  const int64_t begin = beat_token_offsets[beat];
  const int64_t end = beat + 1 < static_cast<int64_t>(beat_token_offsets.size()) ? beat_token_offsets[beat + 1] : num_tokens;
  return {begin, end};
}

std::vector<int64_t> Segmentation::BarTokenOffsets() const {
  std::vector<int64_t> out;
  out.reserve(bars.size());
  for (const BarInfo& b : bars) out.push_back(b.token_offset);
  return out;
}

}  // namespace cadenza
