// Test helper: builds Standard MIDI File bytes by hand, so reader tests control every byte.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace cadenza::testing {

class TrackBytes {
 public:
  TrackBytes& Delta(uint32_t d) {
    uint8_t buf[5];
    int n = 0;
    buf[n++] = d & 0x7F;
    while (d >>= 7) buf[n++] = static_cast<uint8_t>(0x80 | (d & 0x7F));
    while (n) bytes_.push_back(buf[--n]);
    return *this;
  }
  TrackBytes& Raw(std::initializer_list<int> b) {
    for (int x : b) bytes_.push_back(static_cast<uint8_t>(x));
    return *this;
  }
  TrackBytes& Event(uint32_t delta, std::initializer_list<int> b) { return Delta(delta).Raw(b); }
  TrackBytes& End(uint32_t delta = 0) { return Event(delta, {0xFF, 0x2F, 0x00}); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

inline void PutBe(std::vector<uint8_t>* out, uint32_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

inline std::vector<uint8_t> SmfBytes(int format, int division, const std::vector<TrackBytes>& tracks, int declared_tracks = -1) {
  std::vector<uint8_t> out = {'M', 'T', 'h', 'd'};
  PutBe(&out, 6, 4);
  PutBe(&out, format, 2);
  PutBe(&out, declared_tracks >= 0 ? declared_tracks : static_cast<int>(tracks.size()), 2);
  PutBe(&out, division, 2);
  for (const TrackBytes& t : tracks) {
    out.insert(out.end(), {'M', 'T', 'r', 'k'});
    PutBe(&out, static_cast<uint32_t>(t.bytes().size()), 4);
    out.insert(out.end(), t.bytes().begin(), t.bytes().end());
  }
  return out;
}

}  // namespace cadenza::testing
