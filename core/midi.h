// Standard MIDI File reader and writer (formats 0 and 1, PPQ time division).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/score.h"
#include "core/status.h"

namespace cadenza {

// Parses SMF bytes. `name` is used in error messages ("song.mid: byte 1234: expected ...").
// Never crashes or hangs on bad input: every malformation becomes a Status naming the byte offset.
StatusOr<Score> ParseMidi(const uint8_t* data, size_t size, const std::string& name);
StatusOr<Score> ReadMidiFile(const std::string& path);

// Writes format 1: track 0 holds tempo, meter and key; then one track per Score::tracks entry.
std::vector<uint8_t> SerializeMidi(const Score& score);
// Atomic: writes to a temporary name, fsyncs and renames, so a crash never leaves a partial file.
Status WriteMidiFile(const Score& score, const std::string& path);

}  // namespace cadenza
