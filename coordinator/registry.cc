// Worker registry: group registration (persisted), per-rank heartbeats and dead-rank detection (in memory).
#include "coordinator/registry.h"

#include <set>

namespace cadenza::coord {

Status WorkerRegistry::Recover(int64_t now_ms) {
  if (!store_) return Status::Ok();
  auto groups = store_->LoadWorkerGroups();
  if (!groups.ok()) return groups.status();
  std::lock_guard<std::mutex> lock(mu_);
  for (WorkerGroup& g : *groups) {
    for (int r = 0; r < g.ranks; ++r) last_seen_ms_[{g.id, r}] = now_ms;
    groups_[g.id] = std::move(g);
  }
  return Status::Ok();
}

StatusOr<int64_t> WorkerRegistry::Register(const WorkerGroup& group, int64_t group_id, int64_t now_ms, bool admin) {
  if (group.ranks < 1 || group.ranks > 65536) return InvalidArgument("group.ranks: expected 1..65536, found " + std::to_string(group.ranks));
  if (group.threads_per_rank < 0) return InvalidArgument("group.threads_per_rank: expected >= 0");
  std::lock_guard<std::mutex> lock(mu_);
  if (group_id != 0) {
    auto it = groups_.find(group_id);
    if (it == groups_.end()) return NotFound("group_id: no worker group " + std::to_string(group_id) + " (register with group_id 0)");
    if (!admin && !it->second.owner.empty() && it->second.owner != group.owner) {
      return PermissionDenied("group_id: worker group " + std::to_string(group_id) + " belongs to another user");
    }
    if (it->second.ranks != group.ranks) {
      return InvalidArgument("group.ranks: group " + std::to_string(group_id) + " has " + std::to_string(it->second.ranks) + " ranks");
    }
  } else {
    WorkerGroup g = group;
    g.registered_ms = now_ms;
    if (store_) {
      if (Status s = store_->Transaction([&] { return store_->InsertWorkerGroup(&g); }); !s.ok()) return s;
    } else {
      g.id = groups_.empty() ? 1 : groups_.rbegin()->first + 1;
    }
    group_id = g.id;
    groups_[g.id] = g;
  }
  for (int r = 0; r < group.ranks; ++r) last_seen_ms_[{group_id, r}] = now_ms;
  return group_id;
}

Status WorkerRegistry::CheckOwner(const WorkerKey& worker, const std::string& user, bool admin) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = groups_.find(worker.group_id);
  if (it == groups_.end()) return NotFound("worker.group_id: no worker group " + std::to_string(worker.group_id) + " (register again)");
  if (!admin && !it->second.owner.empty() && it->second.owner != user) {
    return PermissionDenied("worker.group_id: worker group " + std::to_string(worker.group_id) + " belongs to another user");
  }
  return Status::Ok();
}

Status WorkerRegistry::Heartbeat(const WorkerKey& worker, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = groups_.find(worker.group_id);
  if (it == groups_.end()) return NotFound("worker.group_id: no worker group " + std::to_string(worker.group_id) + " (register again)");
  if (worker.rank < 0 || worker.rank >= it->second.ranks) {
    return InvalidArgument("worker.rank: expected 0.." + std::to_string(it->second.ranks - 1) + ", found " + std::to_string(worker.rank));
  }
  last_seen_ms_[worker] = now_ms;
  return Status::Ok();
}

std::vector<WorkerKey> WorkerRegistry::CollectDead(int64_t now_ms) {
  std::vector<WorkerKey> dead;
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t timeout = options_.TimeoutMs();
  for (auto it = last_seen_ms_.begin(); it != last_seen_ms_.end();) {
    if (now_ms - it->second > timeout) {
      dead.push_back(it->first);
      it = last_seen_ms_.erase(it);
    } else {
      ++it;
    }
  }
  return dead;
}

int WorkerRegistry::LiveGroups() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<int64_t> groups;
  for (const auto& [key, seen] : last_seen_ms_) groups.insert(key.group_id);
  return static_cast<int>(groups.size());
}

std::multimap<std::string, int64_t> WorkerRegistry::LiveGroupIdsByName() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<int64_t> live;
  for (const auto& [key, seen] : last_seen_ms_) live.insert(key.group_id);
  std::multimap<std::string, int64_t> out;
  for (int64_t id : live) {
    auto it = groups_.find(id);
    if (it != groups_.end()) out.emplace(it->second.name, id);
  }
  return out;
}

int WorkerRegistry::LiveRanks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(last_seen_ms_.size());
}

}  // namespace cadenza::coord
