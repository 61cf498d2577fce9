// Standard MIDI File writer: Score -> format 1 bytes (track 0: tempo/meter/key; then one track per Score track).
#include <algorithm>
#include <map>
#include <tuple>

#include "core/file_util.h"
#include "core/midi.h"

namespace cadenza {
namespace {

struct OutEvent {
  int64_t tick;
  int order;  // at one tick: programs, note-offs, note-ons (a re-struck note is not cut), then offs of 0-length notes
  int64_t seq;
  std::vector<uint8_t> bytes;
};

void PutVlq(std::vector<uint8_t>* out, uint32_t v) {
  uint8_t buf[5];
  int n = 0;
  buf[n++] = v & 0x7F;
  while (v >>= 7) buf[n++] = static_cast<uint8_t>(0x80 | (v & 0x7F));
  while (n) out->push_back(buf[--n]);
}

void PutBe32(std::vector<uint8_t>* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<uint8_t>(v >> s));
}

std::vector<uint8_t> Meta(uint8_t type, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0xFF, type};
  PutVlq(&b, static_cast<uint32_t>(data.size()));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::vector<uint8_t> NameMeta(const std::string& name) { return Meta(0x03, std::vector<uint8_t>(name.begin(), name.end())); }

// Appends an MTrk chunk; events are sorted, written with running status, and closed by end-of-track.
void PutTrack(std::vector<uint8_t>* out, std::vector<OutEvent> events) {
  std::stable_sort(events.begin(), events.end(), [](const OutEvent& a, const OutEvent& b) {
    return std::tie(a.tick, a.order, a.seq) < std::tie(b.tick, b.order, b.seq);
  });
  std::vector<uint8_t> body;
  int64_t last = 0;
  int running = -1;
  for (const OutEvent& e : events) {
    PutVlq(&body, static_cast<uint32_t>(e.tick - last));
    last = e.tick;
    const uint8_t status = e.bytes[0];
    if (status < 0xF0 && status == running) {
      body.insert(body.end(), e.bytes.begin() + 1, e.bytes.end());
    } else {
      body.insert(body.end(), e.bytes.begin(), e.bytes.end());
      running = status < 0xF0 ? status : -1;
    }
  }
  PutVlq(&body, 0);
  body.insert(body.end(), {0xFF, 0x2F, 0x00});
  out->insert(out->end(), {'M', 'T', 'r', 'k'});
  PutBe32(out, static_cast<uint32_t>(body.size()));
  out->insert(out->end(), body.begin(), body.end());
}

}  // namespace

std::vector<uint8_t> SerializeMidi(const Score& score) {
  int num_tracks = static_cast<int>(score.tracks.size());
  for (const Note& n : score.notes) num_tracks = std::max(num_tracks, n.track + 1);

  std::vector<OutEvent> meta;
  int64_t seq = 0;
  for (const TempoChange& t : score.tempos) {
    const uint32_t us = t.us_per_quarter;
    meta.push_back({t.tick, 0, seq++, Meta(0x51, {uint8_t(us >> 16), uint8_t(us >> 8), uint8_t(us)})});
  }
  for (const TimeSignature& ts : score.time_signatures) {
    uint8_t pow2 = 0;
    while ((1 << pow2) < ts.denominator && pow2 < 6) ++pow2;
    meta.push_back({ts.tick, 0, seq++, Meta(0x58, {uint8_t(ts.numerator), pow2, 24, 8})});
  }
  for (const KeySignature& k : score.key_signatures) {
    meta.push_back({k.tick, 0, seq++, Meta(0x59, {uint8_t(int8_t(k.fifths)), uint8_t(k.minor ? 1 : 0)})});
  }

  // Format 1 puts tempo and meter in a track of their own; Score track 0 is that track when it has no notes.
  bool track0_has_notes = false;
  for (const Note& n : score.notes) track0_has_notes |= n.track == 0;
  const int offset = track0_has_notes ? 1 : 0;
  const int file_tracks = std::max(1, num_tracks + offset);

  std::vector<std::vector<OutEvent>> tracks(file_tracks);
  if (offset == 0 && !score.tracks.empty() && !score.tracks[0].name.empty()) {
    tracks[0].push_back({0, -1, seq++, NameMeta(score.tracks[0].name)});
  }
  tracks[0].insert(tracks[0].end(), meta.begin(), meta.end());
  for (int t = 0; t < num_tracks; ++t) {
    if (t + offset == 0) continue;
    if (t < static_cast<int>(score.tracks.size()) && !score.tracks[t].name.empty()) {
      tracks[t + offset].push_back({0, -1, seq++, NameMeta(score.tracks[t].name)});
    }
  }
  // Program changes: whenever a note needs a program its channel does not have in this track.
  std::map<std::pair<int, int>, int> channel_program;  // (file track, channel) -> program
  for (const Note& n : score.notes) {
    const int ft = n.track + offset;
    const uint8_t ch = n.drum ? 9 : (n.channel & 0x0F);
    if (!n.drum) {
      auto [it, inserted] = channel_program.emplace(std::make_pair(ft, int(ch)), n.program);
      if (inserted || it->second != n.program) {
        it->second = n.program;
        tracks[ft].push_back({n.start, 0, seq++, {uint8_t(0xC0 | ch), uint8_t(n.program & 0x7F)}});
      }
    }
    const uint8_t vel = static_cast<uint8_t>(std::clamp<int>(n.velocity, 1, 127));
    tracks[ft].push_back({n.start, 2, seq++, {uint8_t(0x90 | ch), uint8_t(n.pitch & 0x7F), vel}});
    tracks[ft].push_back({std::max(n.end, n.start), n.end > n.start ? 1 : 3, seq++, {uint8_t(0x80 | ch), uint8_t(n.pitch & 0x7F), 0}});
  }
  // Sustain pedal (CC 64) in the track of the first note on its channel (track 0 when none), with the note-offs.
  for (const PedalEvent& p : score.sustain) {
    int ft = 0;
    for (const Note& n : score.notes) {
      if ((n.drum ? 9 : (n.channel & 0x0F)) == (p.channel & 0x0F)) {
        ft = n.track + offset;
        break;
      }
    }
    tracks[ft].push_back({p.tick, 1, seq++, {uint8_t(0xB0 | (p.channel & 0x0F)), 64, uint8_t(p.down ? 127 : 0)}});
  }

  std::vector<uint8_t> out = {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 1};
  out.push_back(static_cast<uint8_t>(file_tracks >> 8));
  out.push_back(static_cast<uint8_t>(file_tracks));
  out.push_back(static_cast<uint8_t>(score.ticks_per_quarter >> 8));
  out.push_back(static_cast<uint8_t>(score.ticks_per_quarter));
  for (auto& t : tracks) PutTrack(&out, std::move(t));
  return out;
}

Status WriteMidiFile(const Score& score, const std::string& path) {
  const std::vector<uint8_t> bytes = SerializeMidi(score);
  return WriteFileAtomic(path, bytes.data(), bytes.size());
}

}  // namespace cadenza
