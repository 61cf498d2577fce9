// Writes the fuzzers' seed corpora from code: synthetic tunes as MIDI bytes and as token sequences.
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
  std::printf("wrote 16 MIDI seeds to %s and 16 token seeds to %s\n", argv[1], argv[2]);
  return 0;
}
