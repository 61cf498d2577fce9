// libFuzzer target: arbitrary token sequences through the strict decoder and the segmenter.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/midi.h"
#include "core/segmentation.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int vocab = cadenza::Vocabulary::Get().size();
  std::vector<int32_t> tokens(size / 2);
  for (size_t i = 0; i < tokens.size(); ++i) {
    uint16_t raw;
    std::memcpy(&raw, data + 2 * i, 2);
    tokens[i] = raw % (vocab + 8) - 4;  // mostly valid ids, some out of range on both sides
  }
  (void)cadenza::Segment(tokens);
  cadenza::Tokenizer tokenizer;
  auto score = tokenizer.Decode(tokens);
  if (!score.ok()) return 0;
  // Whatever decodes must serialize, parse and encode without error.
  const std::vector<uint8_t> bytes = cadenza::SerializeMidi(*score);
  auto parsed = cadenza::ParseMidi(bytes.data(), bytes.size(), "decoded.mid");
  if (!parsed.ok()) std::abort();
  auto encoded = tokenizer.Encode(*parsed);
  if (!encoded.ok()) std::abort();
  return 0;
}
