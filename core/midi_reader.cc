// Standard MIDI File reader: bytes -> Score, with byte-offset errors for every malformation.
#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/file_util.h"
#include "core/midi.h"

namespace cadenza {
namespace {

constexpr int64_t kMaxTick = int64_t{1} << 31;  // beyond this a delta time is absurd (hours at any tempo)

std::string Hex(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", v & 0xFFu);
  return buf;
}

// An event gathered from all tracks, ordered globally before notes are paired.
struct RawEvent {
  enum Kind : uint8_t { kTempo, kTimeSig, kKeySig, kProgram, kNoteOff, kNoteOn };
  int64_t tick;
  int track;
  int64_t seq;
  Kind kind;
  uint8_t channel, a, b;
  uint32_t value;  // tempo (us per quarter)
  int order_class() const { return kind <= kProgram ? 0 : 1; }  // meta and programs before notes at a tick
};

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& name) : d_(data), size_(size), name_(name) {
    events_.reserve(std::min<size_t>(size / 3, size_t{1} << 22));  // an event takes at least 3 bytes
  }

  StatusOr<Score> Run() {
    Score score;
    if (size_ < 4 || std::string(reinterpret_cast<const char*>(d_), 4) != "MThd") {
      return Error(0, "expected 'MThd' header chunk (this is not a Standard MIDI File)");
    }
    if (size_ < 14) return Error(size_, "expected a 14-byte header chunk, found the end of the file");
    const uint32_t header_len = Be32(4);
    if (header_len < 6) return Error(4, "expected header length >= 6, found " + std::to_string(header_len));
    if (header_len > size_ - 8) return Error(4, "header length " + std::to_string(header_len) + " runs past the end of the file");
    const int format = Be16(8);
    const int declared_tracks = Be16(10);
    const uint16_t division = Be16(12);
    if (format == 2) return Error(8, "MIDI format 2 (independent sequences) is not supported; expected format 0 or 1");
    if (format > 2) return Error(8, "expected MIDI format 0 or 1, found " + std::to_string(format));
    if (division & 0x8000) return Error(12, "SMPTE time division is not supported; expected ticks per quarter note");
    if (division == 0) return Error(12, "expected ticks per quarter note > 0, found 0");
    score.format = format;
    score.ticks_per_quarter = division;

    size_t pos = 8 + header_len;
    int track_index = 0;
    while (pos + 8 <= size_) {
      const std::string id(reinterpret_cast<const char*>(d_ + pos), 4);
      const uint32_t len = Be32(pos + 4);
      if (len > size_ - pos - 8) {
        return Error(pos + 4, "chunk '" + Printable(id) + "' length " + std::to_string(len) + " runs past the end of the file (" +
                                  std::to_string(size_ - pos - 8) + " bytes left)");
      }
      if (id == "MTrk") {
        score.tracks.emplace_back();
        Status s = ParseTrack(pos + 8, pos + 8 + len, track_index, &score.tracks.back());
        if (!s.ok()) return s;
        ++track_index;
      }  // other chunk types are skipped, as the standard asks
      pos += 8 + len;
    }
    if (track_index < declared_tracks) {
      return Error(pos, "expected " + std::to_string(declared_tracks) + " track chunks (as the header says), found " +
                            std::to_string(track_index) + " (truncated file?)");
    }
    BuildScore(&score);
    return score;
  }

 private:
  Status Error(size_t offset, const std::string& what) const {
    return InvalidArgument(name_ + ": byte " + std::to_string(offset) + ": " + what);
  }
  static std::string Printable(const std::string& s) {
    std::string out;
    for (char c : s) out += (c >= 32 && c < 127) ? c : '?';
    return out;
  }
  uint16_t Be16(size_t p) const { return static_cast<uint16_t>(d_[p] << 8 | d_[p + 1]); }
  uint32_t Be32(size_t p) const {
    return uint32_t{d_[p]} << 24 | uint32_t{d_[p + 1]} << 16 | uint32_t{d_[p + 2]} << 8 | d_[p + 3];
  }

  // Variable-length quantity: at most 4 bytes, inside [*pos, end).
  Status ReadVlq(size_t* pos, size_t end, uint32_t* out) const {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      if (*pos >= end) return Error(*pos, "expected a variable-length quantity, found the end of the track chunk");
      const uint8_t b = d_[(*pos)++];
      v = (v << 7) | (b & 0x7F);
      if (!(b & 0x80)) {
        *out = v;
        return Status::Ok();
      }
    }
    return Error(*pos - 4, "variable-length quantity longer than 4 bytes");
  }

  Status ParseTrack(size_t pos, size_t end, int track, Track* out) {
    run_starts_.push_back(events_.size());
    const size_t chunk_start = pos;
    int64_t tick = 0;
    int running = -1;
    bool have_name = false;
    while (pos < end) {
      uint32_t delta = 0;
      const size_t event_pos = pos;
      Status s = ReadVlq(&pos, end, &delta);
      if (!s.ok()) return s;
      tick += delta;
      if (tick >= kMaxTick) {
        return Error(event_pos, "absolute time " + std::to_string(tick) + " ticks exceeds the limit of 2^31 (huge delta time)");
      }
      if (pos >= end) return Error(pos, "expected an event after the delta time, found the end of the track chunk");
      uint8_t status = d_[pos];
      if (status < 0x80) {
        if (running < 0) return Error(pos, "data byte " + Hex(status) + " without a running status");
        status = static_cast<uint8_t>(running);
      } else {
        ++pos;
      }

      if (status == 0xFF) {  // meta event; does not change running status
        if (pos >= end) return Error(pos, "expected a meta event type, found the end of the track chunk");
        const uint8_t type = d_[pos++];
        uint32_t len = 0;
        s = ReadVlq(&pos, end, &len);
        if (!s.ok()) return s;
        if (len > end - pos) return Error(pos, "meta event length " + std::to_string(len) + " runs past the end of the track chunk");
        const uint8_t* m = d_ + pos;
        const size_t meta_pos = pos;
        pos += len;
        switch (type) {
          case 0x2F:  // end of track
            last_track_tick_[track] = tick;
            return Status::Ok();
          case 0x51: {
            if (len != 3) return Error(meta_pos, "tempo meta event must have 3 data bytes, has " + std::to_string(len));
            const uint32_t us = uint32_t{m[0]} << 16 | uint32_t{m[1]} << 8 | m[2];
            if (us == 0) return Error(meta_pos, "tempo of 0 microseconds per quarter note");
            Push({tick, track, 0, RawEvent::kTempo, 0, 0, 0, us});
            break;
          }
          case 0x58: {
            if (len < 2) return Error(meta_pos, "time signature meta event must have 4 data bytes, has " + std::to_string(len));
            if (m[0] == 0 || m[1] > 6) {
              return Error(meta_pos, "time signature " + std::to_string(m[0]) + "/2^" + std::to_string(m[1]) +
                                         ": expected numerator >= 1 and denominator 2^0..2^6");
            }
            Push({tick, track, 0, RawEvent::kTimeSig, 0, m[0], m[1], 0});
            break;
          }
          case 0x59: {
            if (len < 2) return Error(meta_pos, "key signature meta event must have 2 data bytes, has " + std::to_string(len));
            const int fifths = static_cast<int8_t>(m[0]);
            if (fifths < -7 || fifths > 7 || m[1] > 1) {
              return Error(meta_pos, "key signature " + std::to_string(fifths) + " " + std::to_string(m[1]) +
                                         ": expected -7..7 sharps/flats and mode 0 or 1");
            }
            Push({tick, track, 0, RawEvent::kKeySig, 0, m[0], m[1], 0});
            break;
          }
          case 0x03:
            if (!have_name) {
              out->name.assign(reinterpret_cast<const char*>(m), len);
              have_name = true;
            }
            break;
          default:
            break;  // text, markers, lyrics, sequencer-specific: not needed
        }
        continue;
      }
      if (status == 0xF0 || status == 0xF7) {  // sysex: skip its payload; cancels running status
        uint32_t len = 0;
        s = ReadVlq(&pos, end, &len);
        if (!s.ok()) return s;
        if (len > end - pos) return Error(pos, "sysex length " + std::to_string(len) + " runs past the end of the track chunk");
        pos += len;
        running = -1;
        continue;
      }
      if (status >= 0xF0) return Error(pos - 1, "unexpected status byte " + Hex(status) + " (system messages do not belong in a MIDI file)");

      running = status;
      const uint8_t kind = status & 0xF0;
      const uint8_t channel = status & 0x0F;
      const int nbytes = (kind == 0xC0 || kind == 0xD0) ? 1 : 2;
      uint8_t data[2] = {0, 0};
      for (int i = 0; i < nbytes; ++i) {
        if (pos >= end) return Error(pos, "expected a data byte of a " + Hex(status) + " message, found the end of the track chunk");
        if (d_[pos] & 0x80) return Error(pos, "expected a data byte (< 0x80) of a " + Hex(status) + " message, found " + Hex(d_[pos]));
        data[i] = d_[pos++];
      }
      if (kind == 0x90 && data[1] > 0) {
        Push({tick, track, 0, RawEvent::kNoteOn, channel, data[0], data[1], 0});
      } else if (kind == 0x80 || kind == 0x90) {
        Push({tick, track, 0, RawEvent::kNoteOff, channel, data[0], 0, 0});
      } else if (kind == 0xC0) {
        Push({tick, track, 0, RawEvent::kProgram, channel, data[0], 0, 0});
      } else if (kind == 0xB0 && data[0] == 64) {  // sustain pedal: kept apart, it needs no merge with the notes
        sustain_.push_back({tick, channel, data[1] >= 64});
      }
    }
    return Error(end, "expected end-of-track meta event (FF 2F 00) before the end of the track chunk that starts at byte " +
                          std::to_string(chunk_start - 8));
  }

  void Push(RawEvent e) {
    e.seq = static_cast<int64_t>(events_.size());
    events_.push_back(e);
  }

  // Orders events by (tick, meta before notes, seq); seq grows with the track index, so it breaks every tie.
  // Each track is already in tick order: sort within tracks, then merge the tracks pairwise (sorting all
  // events at once was 7% of an ingest).
  void SortEvents() {
    auto before = [](const RawEvent& x, const RawEvent& y) {
      return std::make_tuple(x.tick, x.order_class(), x.seq) < std::make_tuple(y.tick, y.order_class(), y.seq);
    };
    std::vector<size_t> bounds = run_starts_;
    if (bounds.empty() || bounds.front() != 0) bounds.insert(bounds.begin(), 0);
    bounds.push_back(events_.size());
    for (size_t i = 0; i + 1 < bounds.size(); ++i) {
      auto first = events_.begin() + static_cast<std::ptrdiff_t>(bounds[i]);
      auto last = events_.begin() + static_cast<std::ptrdiff_t>(bounds[i + 1]);
      if (!std::is_sorted(first, last, before)) std::sort(first, last, before);
    }
    std::vector<RawEvent> merged;
    while (bounds.size() > 2) {
      merged.resize(events_.size());
      std::vector<size_t> next{0};
      for (size_t i = 0; i + 1 < bounds.size(); i += 2) {
        const RawEvent* e = events_.data();
        if (i + 2 < bounds.size()) {
          std::merge(e + bounds[i], e + bounds[i + 1], e + bounds[i + 1], e + bounds[i + 2], merged.data() + bounds[i], before);
          next.push_back(bounds[i + 2]);
        } else {
          std::copy(e + bounds[i], e + bounds[i + 1], merged.data() + bounds[i]);
          next.push_back(bounds[i + 1]);
        }
      }
      events_.swap(merged);
      bounds = std::move(next);
    }
  }

  void BuildScore(Score* score) {
    SortEvents();
    uint8_t program[16] = {0};
    struct Open {
      int64_t start;
      uint8_t velocity, program;
    };
    // Notes sounding per (track, channel, pitch), oldest first: a vector and the index of its oldest entry.
    struct Fifo {
      std::vector<Open> notes;
      size_t head = 0;
    };
    std::unordered_map<uint64_t, Fifo> open;
    auto key = [](int track, int channel, int pitch) {
      return (static_cast<uint64_t>(track) << 16) | (static_cast<uint64_t>(channel) << 8) | static_cast<uint64_t>(pitch);
    };
    size_t note_ons = 0;
    for (const RawEvent& e : events_) note_ons += e.kind == RawEvent::kNoteOn;
    score->notes.reserve(note_ons);
    for (const RawEvent& e : events_) {
      switch (e.kind) {
        case RawEvent::kTempo:
          if (!score->tempos.empty() && score->tempos.back().tick == e.tick) score->tempos.pop_back();
          score->tempos.push_back({e.tick, e.value});
          break;
        case RawEvent::kTimeSig:
          if (!score->time_signatures.empty() && score->time_signatures.back().tick == e.tick) score->time_signatures.pop_back();
          score->time_signatures.push_back({e.tick, e.a, 1 << e.b});
          break;
        case RawEvent::kKeySig:
          if (!score->key_signatures.empty() && score->key_signatures.back().tick == e.tick) score->key_signatures.pop_back();
          score->key_signatures.push_back({e.tick, static_cast<int8_t>(e.a), e.b == 1});
          break;
        case RawEvent::kProgram:
          program[e.channel] = e.a;
          break;
        default:
          break;
        case RawEvent::kNoteOn:
          open[key(e.track, e.channel, e.a)].notes.push_back({e.tick, e.b, program[e.channel]});
          break;
        case RawEvent::kNoteOff: {
          auto it = open.find(key(e.track, e.channel, e.a));
          if (it == open.end() || it->second.head == it->second.notes.size()) break;  // stray note-off: nothing sounds
          Fifo& fifo = it->second;
          const Open o = fifo.notes[fifo.head++];
          if (fifo.head == fifo.notes.size()) fifo.notes.clear(), fifo.head = 0;  // drained: reuse from the start
          AddNote(score, e.track, e.channel, e.a, o.start, e.tick, o.velocity, o.program);
          break;
        }
      }
    }
    int64_t end_tick = 0;
    for (const auto& [track, tick] : last_track_tick_) end_tick = std::max(end_tick, tick);
    for (auto& [k, fifo] : open) {  // notes never released end with their track (Sort() orders them)
      const int track = static_cast<int>(k >> 16), channel = static_cast<int>((k >> 8) & 0xFF), pitch = static_cast<int>(k & 0xFF);
      for (size_t i = fifo.head; i < fifo.notes.size(); ++i) {
        const Open& o = fifo.notes[i];
        AddNote(score, track, channel, pitch, o.start, std::max(o.start, last_track_tick_[track]), o.velocity, o.program);
      }
    }
    score->end_tick = end_tick;
    score->sustain = std::move(sustain_);  // Sort() orders them by tick, keeping track then file order at a tick
    score->Sort();
  }

  static void AddNote(Score* score, int track, int channel, int pitch, int64_t start, int64_t end, uint8_t velocity, uint8_t program) {
    Note n;
    n.start = start;
    n.end = end;
    n.pitch = static_cast<uint8_t>(pitch);
    n.velocity = velocity;
    n.channel = static_cast<uint8_t>(channel);
    n.drum = channel == 9;
    n.program = n.drum ? 0 : program;
    n.track = track;
    score->notes.push_back(n);
  }

  const uint8_t* d_;
  size_t size_;
  const std::string& name_;
  std::vector<RawEvent> events_;
  std::vector<size_t> run_starts_;  // index of each track's first event in events_
  std::vector<PedalEvent> sustain_;  // CC 64 in track order, then file order (stable-sorted by tick at the end)
  std::map<int, int64_t> last_track_tick_;
};

}  // namespace

StatusOr<Score> ParseMidi(const uint8_t* data, size_t size, const std::string& name) {
  return Parser(data, size, name).Run();
}

StatusOr<Score> ReadMidiFile(const std::string& path) {
  auto bytes = ReadFileBytes(path);
  if (!bytes.ok()) return bytes.status();
  return ParseMidi(bytes->data(), bytes->size(), path);
}

}  // namespace cadenza
