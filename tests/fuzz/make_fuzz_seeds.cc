// Writes the fuzzers' seed corpora from code: synthetic tunes as MIDI bytes and as token sequences.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/file_util.h"
#include "core/midi.h"
#include "core/synthetic.h"
#include "core/tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_fuzz_seeds MIDI_SEED_DIR TOKEN_SEED_DIR\n");
    return 2;
  }
  std::filesystem::create_directories(argv[1]);
  std::filesystem::create_directories(argv[2]);
  for (int i = 0; i < 16; ++i) {
    cadenza::SyntheticTune tune = cadenza::MakeSyntheticTune(7, i);
    const std::vector<uint8_t> midi = cadenza::SerializeMidi(tune.score);
    const std::string name = "seed-" + std::to_string(i);
    if (!cadenza::WriteFileAtomic(std::string(argv[1]) + "/" + name + ".mid", midi.data(), midi.size()).ok()) return 1;
    auto enc = cadenza::Tokenizer().Encode(tune.score);
    if (!enc.ok()) return 1;
    std::vector<uint16_t> raw(enc->tokens.begin(), enc->tokens.end());
    for (uint16_t& t : raw) t = static_cast<uint16_t>(t + 4);  // undo the fuzzer's "- 4" so seeds are valid sequences
    if (!cadenza::WriteFileAtomic(std::string(argv[2]) + "/" + name + ".tok", raw.data(), raw.size() * 2).ok()) return 1;
  }
  // Performance-style seeds (issue 16): a tempo ramp from 12 to 300 bpm, unusual meters, sustain pedal, 32nds and
  // triplets, so the fuzzer starts on the tempo-span, meter and pedal paths.
  for (int i = 0; i < 4; ++i) {
    cadenza::Score s;
    s.ticks_per_quarter = 480;
    s.tracks = {cadenza::Track{"piano"}};
    const int64_t end = 16 * 1920;
    for (int64_t t = 0; t < end; t += 120 + 37 * i) {
      const double bpm = 12.0 * std::pow(25.0, static_cast<double>(t) / end);
      s.tempos.push_back({t, static_cast<uint32_t>(60e6 / bpm)});
    }
    const int meters[][2] = {{4, 4}, {19, 16}, {21, 8}, {11, 32}, {44, 32}, {7, 8}};
    int64_t t = 0;
    for (int m = 0; m < 6; ++m) {
      s.time_signatures.push_back({t, meters[(m + i) % 6][0], meters[(m + i) % 6][1]});
      t += int64_t{meters[(m + i) % 6][0]} * 1920 / meters[(m + i) % 6][1];
    }
    for (int64_t on = 0, k = 0; on < end; on += (k % 3 == 0 ? 60 : 160), ++k) {
      cadenza::Note n;
      n.start = on;
      n.end = on + 100 + 30 * (k % 5);
      n.pitch = static_cast<uint8_t>(48 + (k * 7) % 36);
      n.velocity = static_cast<uint8_t>(30 + (k * 13) % 90);
      s.notes.push_back(n);
    }
    for (int64_t p = 0; p < end; p += 1920) {
      s.sustain.push_back({p + 100, 0, true});
      s.sustain.push_back({p + 1700, 0, false});
    }
    s.Sort();
    const std::vector<uint8_t> midi = cadenza::SerializeMidi(s);
    const std::string name = std::string(argv[1]) + "/performance-" + std::to_string(i) + ".mid";
    if (!cadenza::WriteFileAtomic(name, midi.data(), midi.size()).ok()) return 1;
    // The same piece with its pedal as tokens: an odd number of tokens (a PAD after EOS when needed) makes the token
    // fuzzer read it with the pedal vocabulary.
    cadenza::TokenizerOptions pedal;
    pedal.pedal = cadenza::SustainPedal::kTokens;
    auto enc = cadenza::Tokenizer(pedal).Encode(s);
    if (!enc.ok()) return 1;
    std::vector<uint16_t> raw(enc->tokens.begin(), enc->tokens.end());
    if (raw.size() % 2 == 0) raw.push_back(0);
    for (uint16_t& t : raw) t = static_cast<uint16_t>(t + 4);
    const std::string tok_name = std::string(argv[2]) + "/performance-pedal-" + std::to_string(i) + ".tok";
    if (!cadenza::WriteFileAtomic(tok_name, raw.data(), raw.size() * 2).ok()) return 1;
  }
  std::printf("wrote 20 MIDI seeds to %s and 20 token seeds to %s\n", argv[1], argv[2]);
  return 0;
}
