// A per-rank chrome://tracing timeline: complete ("X") events collected in memory, written as a JSON array.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza {

class Timeline {
 public:
  explicit Timeline(int rank) : rank_(rank) {}
  // A span on thread lane `tid` (1: the step's phases, 2+: one lane per gradient bucket), steady-clock us.
  void Add(std::string name, int tid, int64_t begin_us, int64_t end_us);
  size_t size() const;
  // Writes [{"name","ph":"X","ts","dur","pid":rank,"tid"}, ...] atomically. Files of several ranks merge into
  // one trace by concatenating their arrays (pid = rank; the clock is shared on one machine).
  Status Write(const std::string& path) const;
  static int64_t NowMicros();

 private:
  struct Event {
    std::string name;
    int tid;
    int64_t ts, dur;
  };
  int rank_;
  mutable std::mutex mu_;
  std::vector<Event> events_;
};

// "trace.json" for rank 3 -> "trace.rank3.json" (each rank writes its own file).
std::string TimelinePathForRank(const std::string& path, int rank);

}  // namespace cadenza
