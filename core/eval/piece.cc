// Conversion of tokens, Scores and MIDI files into EvalPiece (bars and notes on the tokenizer's grid).
#include "core/eval/piece.h"

#include <algorithm>
#include <tuple>

#include "core/midi.h"
#include "core/segmentation.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"

namespace cadenza {

int64_t EvalPiece::num_beats() const {
  int64_t n = 0;
  for (const EvalBar& b : bars) n += b.num_beats;
  return n;
}

namespace {
EvalBar MakeBar(int64_t start, int numerator, int denominator) {
  EvalBar b;
  b.start = start;
  b.numerator = numerator;
  b.denominator = denominator;
  const Vocabulary& v = Vocabulary::Get();
  b.length = v.BarSteps(numerator, denominator);
  b.beat_steps = v.BeatSteps(numerator, denominator);
  b.num_beats = v.BeatsPerBar(numerator, denominator);
  return b;
}

void SortNotes(std::vector<EvalNote>* notes) {
  std::sort(notes->begin(), notes->end(), [](const EvalNote& a, const EvalNote& b) {
    return std::make_tuple(a.on, a.pitch, a.drum, a.off) < std::make_tuple(b.on, b.pitch, b.drum, b.off);
  });
}
}  // namespace

StatusOr<EvalPiece> PieceFromTokens(const int32_t* tokens, size_t count) {
  auto seg = Segment(tokens, count);
  if (!seg.ok()) return seg.status();
  auto score = Tokenizer().Decode(tokens, count);
  if (!score.ok()) return score.status();
  EvalPiece piece;
  piece.bars.reserve(seg->bars.size());
  for (const BarInfo& b : seg->bars) piece.bars.push_back(MakeBar(b.start_step, b.numerator, b.denominator));
  constexpr int64_t kTicksPerStep = Tokenizer::kDecodeTicksPerQuarter / kGridPerQuarter;
  piece.notes.reserve(score->notes.size());
  for (const Note& n : score->notes) {
    EvalNote e;
    e.on = n.start / kTicksPerStep;
    e.off = std::max(e.on + 1, n.end / kTicksPerStep);
    e.pitch = n.pitch;
    e.drum = n.drum;
    piece.notes.push_back(e);
  }
  SortNotes(&piece.notes);
  return piece;
}

StatusOr<EvalPiece> PieceFromScore(const Score& score) {
  auto enc = Tokenizer().Encode(score);
  if (!enc.ok()) return enc.status();
  return PieceFromTokens(enc->tokens);
}

StatusOr<EvalPiece> ReadEvalPiece(const std::string& path) {
  auto score = ReadMidiFile(path);
  if (!score.ok()) return score.status();
  if (score->notes.empty()) return InvalidArgument(path + ": the file has no notes (empty piece)");
  auto piece = PieceFromScore(*score);
  if (!piece.ok()) return piece.status().WithContext(path);
  return piece;
}

StatusOr<std::vector<int32_t>> ReadPieceTokens(const std::string& path) {
  auto score = ReadMidiFile(path);
  if (!score.ok()) return score.status();
  if (score->notes.empty()) return InvalidArgument(path + ": the file has no notes (empty piece)");
  auto enc = Tokenizer().Encode(*score);
  if (!enc.ok()) return enc.status().WithContext(path);
  return std::move(enc->tokens);
}

EvalPiece MakeUniformPiece(int bars, int numerator, int denominator, std::vector<EvalNote> notes) {
  EvalPiece p;
  int64_t start = 0;
  for (int i = 0; i < bars; ++i) {
    p.bars.push_back(MakeBar(start, numerator, denominator));
    start = p.bars.back().end();
  }
  p.notes = std::move(notes);
  SortNotes(&p.notes);
  return p;
}

}  // namespace cadenza
