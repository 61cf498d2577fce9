// libFuzzer target: arbitrary bytes through the MIDI reader, then the tokenizer and back; nothing may crash or hang.
#include <cstdint>
#include <cstdlib>

#include "core/midi.h"
#include "core/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto score = cadenza::ParseMidi(data, size, "fuzz.mid");
  if (!score.ok()) return 0;
  // The input's size picks the grid (12, 24, 48) and the sustain pedal's mode (applied, tokens, ignored), so every
  // path is fuzzed.
  cadenza::TokenizerOptions options;
  options.grid = cadenza::kSupportedGrids[size % 3];
  constexpr cadenza::SustainPedal kModes[] = {cadenza::SustainPedal::kApply, cadenza::SustainPedal::kTokens,
                                              cadenza::SustainPedal::kIgnore};
  options.pedal = kModes[(size / 3) % 3];
  cadenza::Tokenizer tokenizer(options);
  auto encoded = tokenizer.Encode(*score);
  if (!encoded.ok()) return 0;
  auto decoded = tokenizer.Decode(encoded->tokens);
  if (!decoded.ok()) std::abort();  // the encoder's output must always decode
  auto again = tokenizer.Encode(*decoded);
  if (!again.ok() || again->tokens != encoded->tokens) std::abort();  // and round-trip exactly
  return 0;
}
