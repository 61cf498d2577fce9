// Where the General MIDI soundfont is: in cadenza_core, so commands that only name it need not load FluidSynth.
#include <cstdlib>
#include <string>

#include "core/audio.h"

namespace cadenza {

std::string DefaultSoundfont() {
  if (const char* env = std::getenv("CADENZA_SOUNDFONT"); env && *env) return env;
  return "/usr/share/sounds/sf2/FluidR3_GM.sf2";
}

}  // namespace cadenza
