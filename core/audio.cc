// FluidSynth's file renderer driven by its MIDI player on sample time: faster than real time and deterministic.
#include "core/audio.h"

#include <fluidsynth.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "core/file_util.h"
#include "core/midi.h"

namespace cadenza {

Status RenderWav(const Score& score, const std::string& wav_path, const AudioOptions& options) {
  const std::string soundfont = options.soundfont.empty() ? DefaultSoundfont() : options.soundfont;
  if (!std::filesystem::exists(soundfont)) {
    return NotFound(soundfont + ": soundfont not found (apt install fluid-soundfont-gm, or set CADENZA_SOUNDFONT)");
  }
  if (options.sample_rate < 8000 || options.sample_rate > 192000) {
    return InvalidArgument("sample rate " + std::to_string(options.sample_rate) + " Hz is outside 8000..192000");
  }
  fluid_set_log_function(FLUID_WARN, nullptr, nullptr);  // FluidSynth's own chatter would interleave with ours
  fluid_set_log_function(FLUID_INFO, nullptr, nullptr);
  const std::string tmp = wav_path + ".tmp-" + std::to_string(::getpid()) + ".wav";
  std::unique_ptr<fluid_settings_t, void (*)(fluid_settings_t*)> settings(new_fluid_settings(), delete_fluid_settings);
  fluid_settings_setstr(settings.get(), "audio.file.name", tmp.c_str());
  fluid_settings_setstr(settings.get(), "audio.file.type", "wav");
  fluid_settings_setstr(settings.get(), "audio.file.format", "s16");
  fluid_settings_setstr(settings.get(), "player.timing-source", "sample");
  fluid_settings_setint(settings.get(), "synth.lock-memory", 0);
  fluid_settings_setnum(settings.get(), "synth.sample-rate", options.sample_rate);
  std::unique_ptr<fluid_synth_t, void (*)(fluid_synth_t*)> synth(new_fluid_synth(settings.get()), delete_fluid_synth);
  if (!synth || fluid_synth_sfload(synth.get(), soundfont.c_str(), 1) == FLUID_FAILED) {
    return InvalidArgument(soundfont + ": FluidSynth cannot load this soundfont");
  }
  const std::vector<uint8_t> midi = SerializeMidi(score);
  std::unique_ptr<fluid_player_t, void (*)(fluid_player_t*)> player(new_fluid_player(synth.get()), delete_fluid_player);
  if (!player || fluid_player_add_mem(player.get(), midi.data(), midi.size()) != FLUID_OK ||
      fluid_player_play(player.get()) != FLUID_OK) {
    return Status(StatusCode::kInternal, wav_path + ": FluidSynth refused the MIDI data");
  }
  {
    std::unique_ptr<fluid_file_renderer_t, void (*)(fluid_file_renderer_t*)> renderer(new_fluid_file_renderer(synth.get()),
                                                                                      delete_fluid_file_renderer);
    if (!renderer) return IoError(wav_path + ": FluidSynth cannot open the output file");
    int period = 64;
    fluid_settings_getint(settings.get(), "audio.period-size", &period);
    const auto blocks_for = [&](double seconds) {
      return static_cast<int64_t>(seconds * options.sample_rate / std::max(1, period)) + 1;
    };
    // The player stops at the score's end once the last voices have released (2-3 s), but on some scores it never
    // reports the end (a generated 23 s sample once rendered 50 GB): never more than the score plus that release.
    constexpr double kReleaseSeconds = 5.0;
    const int64_t max_blocks = blocks_for(score.Seconds() + kReleaseSeconds);
    for (int64_t block = 0; fluid_player_get_status(player.get()) == FLUID_PLAYER_PLAYING; ++block) {
      if (block == max_blocks) {
        fluid_player_stop(player.get());
        break;
      }
      if (fluid_file_renderer_process_block(renderer.get()) != FLUID_OK) {
        std::filesystem::remove(tmp);
        return IoError(wav_path + ": write failed while rendering");
      }
    }
    const int64_t tail_blocks = blocks_for(options.tail_seconds) - 1;
    for (int64_t i = 0; i < tail_blocks; ++i) fluid_file_renderer_process_block(renderer.get());
  }  // the renderer finalises the WAV header when deleted
  return CommitTempFile(tmp, wav_path);  // fsync, rename, fsync the folder
}

}  // namespace cadenza
