// The launch policy: fill while tasks wait, drain what idles.
#include "coordinator/launch_policy.h"

#include <set>

namespace cadenza::coord {

std::vector<LaunchDecision> LaunchPolicy::Decide(int64_t now_ms, int waiting, const std::vector<GroupView>& groups) {
  std::vector<LaunchDecision> out;
  std::set<std::string> present;
  int alive = 0, free_ranks = 0;
  for (const GroupView& g : groups) {
    const std::string& id = g.group.id;
    present.insert(id);
    if (g.group.state == GroupState::kEnded || cancelled_[id]) continue;
    ++alive;
    if (!last_busy_ms_.count(id)) last_busy_ms_[id] = now_ms;
    const bool starting = g.group.state == GroupState::kQueued || !g.registered;
    if (g.group.state == GroupState::kRunning && !running_since_ms_.count(id)) running_since_ms_[id] = now_ms;
    if (starting || g.leases > 0) last_busy_ms_[id] = now_ms;
    // Ranks that will take waiting tasks without a new group: those of groups still starting, and idle groups.
    if (starting) free_ranks += o_.ranks_per_group;
    else if (g.leases == 0) free_ranks += o_.ranks_per_group;

    if (g.group.state == GroupState::kRunning && !g.registered && now_ms - running_since_ms_[id] >= o_.start_timeout_ms) {
      out.push_back({LaunchDecision::kCancel, id, "running " + std::to_string((now_ms - running_since_ms_[id]) / 1000) +
                                                      " s without registering (launch.start_timeout_s)"});
    } else if (g.registered && g.leases == 0 && now_ms - last_busy_ms_[id] >= o_.idle_timeout_ms) {
      out.push_back({LaunchDecision::kCancel, id, "idle for " + std::to_string((now_ms - last_busy_ms_[id]) / 1000) +
                                                      " s (launch.idle_timeout_s), " + std::to_string(waiting) + " tasks waiting"});
    }
  }
  for (const LaunchDecision& d : out) {
    cancelled_[d.id] = true;
    --alive;
  }
  // Forget groups that left the launcher's list.
  for (auto* m : {&last_busy_ms_, &running_since_ms_}) {
    for (auto it = m->begin(); it != m->end();) it = present.count(it->first) ? std::next(it) : m->erase(it);
  }
  for (auto it = cancelled_.begin(); it != cancelled_.end();) it = present.count(it->first) ? std::next(it) : cancelled_.erase(it);

  if (waiting > free_ranks && alive < o_.max_groups) {
    out.push_back({LaunchDecision::kLaunch, "", std::to_string(waiting) + " tasks waiting, " + std::to_string(alive) + " of " +
                                                    std::to_string(o_.max_groups) + " groups (launch.max_groups)"});
  }
  return out;
}

int64_t LaunchPolicy::IdleMs(const std::string& id, int64_t now_ms) const {
  auto it = last_busy_ms_.find(id);
  return it == last_busy_ms_.end() ? 0 : now_ms - it->second;
}

}  // namespace cadenza::coord
