// Rendering a score to a WAV file with FluidSynth and a General MIDI soundfont. Torch-free.
#pragma once

#include <string>

#include "core/score.h"
#include "core/status.h"

namespace cadenza {

// Debian's fluid-soundfont-gm; the first that exists of this and $CADENZA_SOUNDFONT is used by default.
std::string DefaultSoundfont();

struct AudioOptions {
  std::string soundfont;   // empty: DefaultSoundfont()
  int sample_rate = 44100;
  double tail_seconds = 1.0;  // let the last notes ring out
};

// Writes 16-bit stereo PCM WAV (atomically: temporary name, then rename). Errors name the soundfont or file.
Status RenderWav(const Score& score, const std::string& wav_path, const AudioOptions& options = {});

}  // namespace cadenza
