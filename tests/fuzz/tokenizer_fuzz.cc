// libFuzzer target: arbitrary token sequences through the strict decoder, the grammar and the segmenter.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/grammar.h"
#include "core/midi.h"
#include "core/segmentation.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An odd number of tokens draws from the vocabulary with pedal tokens (a superset: the other ids are the same),
  // so the pedal's decoding and grammar are fuzzed too.
  cadenza::TokenizerOptions options;
  if ((size / 2) % 2 == 1) options.pedal = cadenza::SustainPedal::kTokens;
  cadenza::Tokenizer tokenizer(options);
  const cadenza::Vocabulary& v = tokenizer.vocabulary();
  const int vocab = v.size();
  std::vector<int32_t> tokens(size / 2);
  for (size_t i = 0; i < tokens.size(); ++i) {
    uint16_t raw;
    std::memcpy(&raw, data + 2 * i, 2);
    tokens[i] = raw % (vocab + 8) - 4;  // mostly valid ids, some out of range on both sides
  }
  (void)cadenza::Segment(tokens.data(), tokens.size(), v);
  auto score = tokenizer.Decode(tokens);
  if (!score.ok()) return 0;
  // The sampler's grammar accepts whatever the decoder accepts, up to its end (EOS needs a note first).
  cadenza::GrammarState grammar(v);
  for (int32_t t : tokens) {
    if (t == v.Eos() || t == v.Pad()) break;
    if (!grammar.Advance(t).ok()) std::abort();
  }
  // Whatever decodes must serialize, parse and encode without error.
  const std::vector<uint8_t> bytes = cadenza::SerializeMidi(*score);
  auto parsed = cadenza::ParseMidi(bytes.data(), bytes.size(), "decoded.mid");
  if (!parsed.ok()) std::abort();
  auto encoded = tokenizer.Encode(*parsed);
  if (!encoded.ok()) std::abort();
  return 0;
}
