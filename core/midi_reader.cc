// Standard MIDI File reader: bytes -> Score in one pass per track, with byte-offset errors for every malformation.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <vector>

#include "core/file_util.h"
#include "core/midi.h"

namespace cadenza {
namespace {

constexpr int64_t kMaxTick = int64_t{1} << 31;  // beyond this a delta time is absurd (hours at any tempo)
constexpr size_t kMaxMergeSegments = 16;        // more tracks with notes than this: one stable sort instead of a merge
constexpr ptrdiff_t kMaxInsertionRun = 32;      // notes at one onset of one track sorted by insertion up to this

std::string Hex(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", v & 0xFFu);
  return buf;
}

// A program change, kept apart from the notes: it applies to its channel in every track from its tick on.
struct ProgramChange {
  int64_t tick;
  uint8_t channel, program;
};

bool ChordOrder(const Note& x, const Note& y) {  // Score::Sort's order among notes of one track and one onset
  return std::tie(x.channel, x.pitch, x.end) < std::tie(y.channel, y.pitch, y.end);
}

// Sorts each run of equal onsets of one track's notes (already in onset order) by (channel, pitch, end), stably.
void SortOnsetRuns(Note* first, Note* last) {
  for (Note* run = first; run < last;) {
    Note* run_end = run + 1;
    bool sorted = true;
    for (; run_end < last && run_end->start == run->start; ++run_end) sorted = sorted && !ChordOrder(*run_end, run_end[-1]);
    if (!sorted && run_end - run > kMaxInsertionRun) {
      std::stable_sort(run, run_end, ChordOrder);
    } else if (!sorted) {
      for (Note* p = run + 1; p < run_end; ++p) {
        if (!ChordOrder(*p, p[-1])) continue;
        const Note n = *p;
        Note* q = p;
        do {
          *q = q[-1];
          --q;
        } while (q > run && ChordOrder(n, q[-1]));
        *q = n;
      }
    }
    run = run_end;
  }
}

// Merges runs a (earlier tracks) and b, each in onset order, into out: by start, a's notes first on a tie. out may
// be where b's array starts, writing behind the reads of b.
void MergeTwo(const Note* a, const Note* a_end, const Note* b, const Note* b_end, Note* out) {
  while (a != a_end && b != b_end) {
    const bool take_b = b->start < a->start;
    const Note* from = take_b ? b : a;
    *out++ = *from;
    a += !take_b;
    b += take_b;
  }
  out = std::copy(a, a_end, out);
  if (out != b) std::copy(b, b_end, out);  // else b's rest is in place already
}

// At one tick the last tempo / meter / key wins: `v` is in (track, file) order; stable by tick, then deduplicated.
template <typename T>
void LastPerTick(std::vector<T>* v) {
  auto by_tick = [](const T& a, const T& b) { return a.tick < b.tick; };
  if (!std::is_sorted(v->begin(), v->end(), by_tick)) std::stable_sort(v->begin(), v->end(), by_tick);
  size_t kept = 0;
  for (size_t i = 0; i < v->size(); ++i) {
    if (kept > 0 && (*v)[kept - 1].tick == (*v)[i].tick) {
      (*v)[kept - 1] = (*v)[i];
    } else {
      (*v)[kept++] = (*v)[i];
    }
  }
  v->resize(kept);
}

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& name) : d_(data), size_(size), name_(name) {}

  StatusOr<Score> Run() {
    Score score;
    if (size_ < 4 || std::memcmp(d_, "MThd", 4) != 0) {
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
    score.tracks.reserve(std::min<size_t>(declared_tracks, size_ / 12));  // an empty track chunk takes 12 bytes
    score.notes.reserve(size_ / 6);  // a note with its note-off takes at least 6 bytes

    size_t pos = 8 + header_len;
    int track_index = 0;
    while (pos + 8 <= size_) {
      const char* id = reinterpret_cast<const char*>(d_ + pos);
      const uint32_t len = Be32(pos + 4);
      if (len > size_ - pos - 8) {
        return Error(pos + 4, "chunk '" + Printable(std::string(id, 4)) + "' length " + std::to_string(len) +
                                  " runs past the end of the file (" + std::to_string(size_ - pos - 8) + " bytes left)");
      }
      if (std::memcmp(id, "MTrk", 4) == 0) {
        score.tracks.emplace_back();
        Status s = ParseTrack(pos + 8, pos + 8 + len, track_index, &score);
        if (!s.ok()) return s;
        ++track_index;
      }  // other chunk types are skipped, as the standard asks
      pos += 8 + len;
    }
    if (track_index < declared_tracks) {
      return Error(pos, "expected " + std::to_string(declared_tracks) + " track chunks (as the header says), found " +
                            std::to_string(track_index) + " (truncated file?)");
    }
    Finish(&score);
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

  // Variable-length quantity: at most 4 bytes, inside [*pos, end); false when malformed (VlqError says how).
  bool ReadVlq(size_t* pos, size_t end, uint32_t* out) const {
    size_t p = *pos;
    uint32_t v = 0;
    for (int i = 0; i < 4 && p < end; ++i) {
      const uint8_t b = d_[p++];
      v = (v << 7) | (b & 0x7F);
      if (!(b & 0x80)) {
        *out = v;
        *pos = p;
        return true;
      }
    }
    return false;
  }
  Status VlqError(size_t start, size_t end) const {
    for (size_t p = start; p < start + 4; ++p) {
      if (p >= end) return Error(p, "expected a variable-length quantity, found the end of the track chunk");
    }
    return Error(start, "variable-length quantity longer than 4 bytes");
  }
  Status DataByteError(size_t pos, size_t end, uint8_t status, int nbytes) const {
    for (int i = 0; i < nbytes; ++i, ++pos) {
      if (pos >= end) return Error(pos, "expected a data byte of a " + Hex(status) + " message, found the end of the track chunk");
      if (d_[pos] & 0x80) return Error(pos, "expected a data byte (< 0x80) of a " + Hex(status) + " message, found " + Hex(d_[pos]));
    }
    return InternalError("DataByteError called on valid data bytes");
  }

  // One pass over a track: notes are paired as they come, per (channel, pitch) oldest first, in place in
  // score->notes (an open note's `end` holds the index + 1 of the next open note of its pitch, 0 for none).
  Status ParseTrack(size_t pos, size_t end, int track, Score* score) {
    std::vector<Note>& notes = score->notes;
    const size_t first_note = notes.size();
    const size_t chunk_start = pos;
    int64_t tick = 0;
    int running = -1;
    bool have_name = false;
    size_t open = 0;
    uint16_t channels = 0;  // channels with a note-on in this track
    while (pos < end) {
      const size_t event_pos = pos;
      uint32_t delta = 0;
      if (!ReadVlq(&pos, end, &delta)) return VlqError(event_pos, end);
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

      if (status < 0xF0) {  // channel message: the common case
        running = status;
        const uint8_t kind = status & 0xF0;
        const uint8_t channel = status & 0x0F;
        const int nbytes = (kind == 0xC0 || kind == 0xD0) ? 1 : 2;
        if (end - pos < static_cast<size_t>(nbytes) || (d_[pos] & 0x80) || (nbytes == 2 && (d_[pos + 1] & 0x80))) {
          return DataByteError(pos, end, status, nbytes);
        }
        const uint8_t a = d_[pos], b = nbytes == 2 ? d_[pos + 1] : 0;
        pos += nbytes;
        const int slot = channel << 7 | a;
        if ((kind == 0x80 || kind == 0x90) && !(ready_channels_ >> channel & 1)) {  // its pairing slots, cleared on first use
          std::memset(head_ + (channel << 7), 0, 128 * sizeof head_[0]);
          ready_channels_ |= static_cast<uint16_t>(1u << channel);
        }
        if (kind == 0x90 && b > 0) {
          Note& n = notes.emplace_back();  // filled in place: a Note built aside and copied stalled on store forwarding
          n.start = tick;
          n.end = 0;
          n.pitch = a;
          n.velocity = b;
          n.channel = channel;
          n.drum = channel == 9;
          n.track = track;
          const int64_t index_plus_1 = static_cast<int64_t>(notes.size());
          if (head_[slot] == 0) {
            head_[slot] = index_plus_1;
          } else {
            notes[tail_[slot] - 1].end = index_plus_1;
          }
          tail_[slot] = index_plus_1;
          ++open;
          channels |= static_cast<uint16_t>(1u << channel);
        } else if (kind == 0x80 || kind == 0x90) {
          if (head_[slot] != 0) {  // else a stray note-off: nothing sounds
            Note& n = notes[head_[slot] - 1];
            head_[slot] = n.end;
            n.end = tick;
            --open;
          }
        } else if (kind == 0xC0) {
          programs_.push_back({tick, channel, a});
        } else if (kind == 0xB0 && a == 64) {  // sustain pedal: kept apart, it needs no merge with the notes
          score->sustain.push_back({tick, channel, b >= 64});
        }
        continue;
      }

      if (status == 0xFF) {  // meta event; does not change running status
        if (pos >= end) return Error(pos, "expected a meta event type, found the end of the track chunk");
        const uint8_t type = d_[pos++];
        uint32_t len = 0;
        const size_t len_pos = pos;
        if (!ReadVlq(&pos, end, &len)) return VlqError(len_pos, end);
        if (len > end - pos) return Error(pos, "meta event length " + std::to_string(len) + " runs past the end of the track chunk");
        const uint8_t* m = d_ + pos;
        const size_t meta_pos = pos;
        pos += len;
        switch (type) {
          case 0x2F:  // end of track: notes never released end here
            if (open > 0) CloseOpenNotes(&notes, channels, tick);
            SortOnsetRuns(notes.data() + first_note, notes.data() + notes.size());
            if (notes.size() > first_note) segments_.push_back(first_note);
            score->end_tick = std::max(score->end_tick, tick);
            return Status::Ok();
          case 0x51: {
            if (len != 3) return Error(meta_pos, "tempo meta event must have 3 data bytes, has " + std::to_string(len));
            const uint32_t us = uint32_t{m[0]} << 16 | uint32_t{m[1]} << 8 | m[2];
            if (us == 0) return Error(meta_pos, "tempo of 0 microseconds per quarter note");
            score->tempos.push_back({tick, us});
            break;
          }
          case 0x58: {
            if (len < 2) return Error(meta_pos, "time signature meta event must have 4 data bytes, has " + std::to_string(len));
            if (m[0] == 0 || m[1] > 6) {
              return Error(meta_pos, "time signature " + std::to_string(m[0]) + "/2^" + std::to_string(m[1]) +
                                         ": expected numerator >= 1 and denominator 2^0..2^6");
            }
            score->time_signatures.push_back({tick, m[0], 1 << m[1]});
            break;
          }
          case 0x59: {
            if (len < 2) return Error(meta_pos, "key signature meta event must have 2 data bytes, has " + std::to_string(len));
            const int fifths = static_cast<int8_t>(m[0]);
            if (fifths < -7 || fifths > 7 || m[1] > 1) {
              return Error(meta_pos, "key signature " + std::to_string(fifths) + " " + std::to_string(m[1]) +
                                         ": expected -7..7 sharps/flats and mode 0 or 1");
            }
            score->key_signatures.push_back({tick, fifths, m[1] == 1});
            break;
          }
          case 0x03:
            if (!have_name) {
              score->tracks.back().name.assign(reinterpret_cast<const char*>(m), len);
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
        const size_t len_pos = pos;
        if (!ReadVlq(&pos, end, &len)) return VlqError(len_pos, end);
        if (len > end - pos) return Error(pos, "sysex length " + std::to_string(len) + " runs past the end of the track chunk");
        pos += len;
        running = -1;
        continue;
      }
      return Error(pos - 1, "unexpected status byte " + Hex(status) + " (system messages do not belong in a MIDI file)");
    }
    return Error(end, "expected end-of-track meta event (FF 2F 00) before the end of the track chunk that starts at byte " +
                          std::to_string(chunk_start - 8));
  }

  // Ends every note still sounding at the track's end tick and leaves the pairing table empty for the next track.
  void CloseOpenNotes(std::vector<Note>* notes, uint16_t channels, int64_t tick) {
    for (int channel = 0; channel < 16; ++channel) {
      if (!(channels >> channel & 1)) continue;
      for (int slot = channel << 7; slot < (channel + 1) << 7; ++slot) {
        for (int64_t i = head_[slot]; i != 0;) {
          Note& n = (*notes)[i - 1];
          i = n.end;
          n.end = std::max(n.start, tick);
        }
        head_[slot] = 0;
      }
    }
  }

  // Tracks' notes into Score::Sort's order, then each note's program, the meta maps and the pedal.
  void Finish(Score* score) {
    std::vector<Note>& notes = score->notes;
    if (segments_.size() > kMaxMergeSegments) {
      std::stable_sort(notes.begin(), notes.end(),
                       [](const Note& x, const Note& y) { return std::tie(x.start, x.track) < std::tie(y.start, y.track); });
    } else if (segments_.size() > 1) {
      MergeSegments(&notes);
    }
    if (!programs_.empty()) {  // a note takes its channel's latest program change at or before its onset, any track
      auto by_tick = [](const ProgramChange& a, const ProgramChange& b) { return a.tick < b.tick; };
      if (!std::is_sorted(programs_.begin(), programs_.end(), by_tick)) {
        std::stable_sort(programs_.begin(), programs_.end(), by_tick);
      }
      uint8_t program[16] = {0};
      size_t next = 0;
      for (Note& n : notes) {
        for (; next < programs_.size() && programs_[next].tick <= n.start; ++next) {
          program[programs_[next].channel] = programs_[next].program;
        }
        n.program = n.drum ? 0 : program[n.channel];
      }
    }
    LastPerTick(&score->tempos);
    LastPerTick(&score->time_signatures);
    LastPerTick(&score->key_signatures);
    auto by_tick = [](const PedalEvent& a, const PedalEvent& b) { return a.tick < b.tick; };
    if (!std::is_sorted(score->sustain.begin(), score->sustain.end(), by_tick)) {
      std::stable_sort(score->sustain.begin(), score->sustain.end(), by_tick);
    }
  }

  // Merges the tracks' runs of notes (each in onset order) by (start, track): the first two into a scratch array,
  // that and the third back in place, and so on, each a branchless two-way merge.
  void MergeSegments(std::vector<Note>* notes) {
    std::vector<Note> scratch(notes->size());
    std::vector<Note>* from = notes;  // holds the merged tracks so far at [0, done)
    size_t done = segments_[1];
    for (size_t i = 1; i < segments_.size(); ++i) {
      const size_t end = i + 1 < segments_.size() ? segments_[i + 1] : notes->size();
      std::vector<Note>* to = from == notes ? &scratch : notes;
      MergeTwo(from->data(), from->data() + done, notes->data() + done, notes->data() + end, to->data());
      from = to;
      done = end;
    }
    if (from != notes) notes->swap(scratch);
  }

  const uint8_t* d_;
  size_t size_;
  const std::string& name_;
  int64_t head_[16 * 128];  // per (channel, pitch): index + 1 of the oldest sounding note, 0 for none
  uint16_t ready_channels_ = 0;  // channels whose 128 head_ entries are initialised
  int64_t tail_[16 * 128];  // per (channel, pitch): index + 1 of the newest sounding note (valid while head_ is set)
  std::vector<size_t> segments_;  // where each track with notes starts in Score::notes
  std::vector<ProgramChange> programs_;  // in track, then file order
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
