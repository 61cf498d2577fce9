// chrome://tracing JSON for one rank's phases and bucket allreduces.
#include "worker/timeline.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "core/file_util.h"

namespace cadenza {

void Timeline::Add(std::string name, int tid, int64_t begin_us, int64_t end_us) {
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back({std::move(name), tid, begin_us, std::max<int64_t>(0, end_us - begin_us)});
}

size_t Timeline::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

int64_t Timeline::NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status Timeline::Write(const std::string& path) const {
  nlohmann::json events = nlohmann::json::array();
  {
    std::lock_guard<std::mutex> lock(mu_);
    events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", rank_}, {"args", {{"name", "rank " + std::to_string(rank_)}}}});
    std::set<int> lanes;
    for (const Event& e : events_) {
      events.push_back({{"name", e.name}, {"ph", "X"}, {"ts", e.ts}, {"dur", e.dur}, {"pid", rank_}, {"tid", e.tid}});
      lanes.insert(e.tid);
    }
    for (int tid : lanes) {  // lane names shown by chrome://tracing and Perfetto
      const std::string name = tid == 1 ? "step phases" : "bucket " + std::to_string(tid - 2);
      events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", rank_}, {"tid", tid}, {"args", {{"name", name}}}});
    }
  }
  return WriteFileAtomic(path, events.dump() + "\n");
}

std::string TimelinePathForRank(const std::string& path, int rank) {
  const std::string tag = ".rank" + std::to_string(rank);
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return path + tag;
  return path.substr(0, dot) + tag + path.substr(dot);
}

}  // namespace cadenza
