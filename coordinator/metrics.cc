// Prometheus text exposition (version 0.0.4) of the coordinator's counters and the caller's snapshot.
#include "coordinator/metrics.h"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace cadenza::coord {
namespace {

std::string Number(double x) {
  if (std::isinf(x)) return x > 0 ? "+Inf" : "-Inf";
  std::ostringstream o;
  o << std::setprecision(10) << x;
  return o.str();
}

}  // namespace

void CoordinatorMetrics::ObserveLease(double seconds) {
  size_t b = 0;
  while (b < kLeaseBuckets.size() && seconds > kLeaseBuckets[b]) ++b;
  lease_buckets_[b].fetch_add(1, std::memory_order_relaxed);  // cumulated at scrape time
  lease_sum_ns_.fetch_add(static_cast<uint64_t>(std::max(0.0, seconds) * 1e9), std::memory_order_relaxed);
}

void CoordinatorMetrics::CountResult(TaskKind kind) {
  const int k = static_cast<int>(kind);
  if (k >= 0 && k < kNumTaskKinds) results_[k].fetch_add(1, std::memory_order_relaxed);
}

void CoordinatorMetrics::SetTrainingSpeed(int64_t job_id, double tokens_per_second) {
  std::lock_guard<std::mutex> lock(speed_mu_);
  if (tokens_per_second > 0 && std::isfinite(tokens_per_second)) speed_[job_id] = tokens_per_second;
  else speed_.erase(job_id);
}

std::string CoordinatorMetrics::Text(const Snapshot& now) const {
  std::ostringstream o;
  o << "# HELP cadenza_tasks Tasks by kind and state.\n# TYPE cadenza_tasks gauge\n";
  int64_t pending = 0, leased = 0;
  for (const TaskCount& c : now.tasks) {
    o << "cadenza_tasks{kind=\"" << TaskKindName(c.kind) << "\",state=\"" << TaskStateName(c.state) << "\"} " << c.count << "\n";
    if (c.state == TaskState::kPending) pending += c.count;
    if (c.state == TaskState::kLeased) leased += c.count;
  }
  o << "# HELP cadenza_queue_depth Tasks ready to be leased.\n# TYPE cadenza_queue_depth gauge\ncadenza_queue_depth " << pending << "\n";
  o << "# HELP cadenza_leased_tasks Tasks leased to workers now.\n# TYPE cadenza_leased_tasks gauge\ncadenza_leased_tasks " << leased
    << "\n";
  o << "# HELP cadenza_worker_groups Worker groups with a live rank.\n# TYPE cadenza_worker_groups gauge\ncadenza_worker_groups "
    << now.groups << "\n";
  o << "# HELP cadenza_worker_ranks Worker ranks alive (heartbeating).\n# TYPE cadenza_worker_ranks gauge\ncadenza_worker_ranks "
    << now.ranks << "\n";
  o << "# HELP cadenza_lease_latency_seconds Time to answer a LeaseTask call.\n# TYPE cadenza_lease_latency_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t b = 0; b <= kLeaseBuckets.size(); ++b) {
    cumulative += lease_buckets_[b].load(std::memory_order_relaxed);
    o << "cadenza_lease_latency_seconds_bucket{le=\"" << (b < kLeaseBuckets.size() ? Number(kLeaseBuckets[b]) : "+Inf") << "\"} "
      << cumulative << "\n";
  }
  // The count is the +Inf bucket's, so that the histogram is consistent even while leases are being observed.
  o << "cadenza_lease_latency_seconds_sum " << Number(lease_sum_ns_.load(std::memory_order_relaxed) / 1e9) << "\n";
  o << "cadenza_lease_latency_seconds_count " << cumulative << "\n";
  o << "# HELP cadenza_results_total Task results accepted, by kind.\n# TYPE cadenza_results_total counter\n";
  for (int k = 1; k < kNumTaskKinds; ++k) {
    o << "cadenza_results_total{kind=\"" << TaskKindName(static_cast<TaskKind>(k)) << "\"} " << results_[k].load(std::memory_order_relaxed)
      << "\n";
  }
  o << "# HELP cadenza_result_cache_hits_total Result queries answered from a kept page.\n# TYPE cadenza_result_cache_hits_total counter\n"
       "cadenza_result_cache_hits_total " << now.result_cache_hits << "\n";
  o << "# HELP cadenza_result_cache_misses_total Result queries that read the database (with the cache on).\n"
       "# TYPE cadenza_result_cache_misses_total counter\ncadenza_result_cache_misses_total " << now.result_cache_misses << "\n";
  o << "# HELP cadenza_result_cache_rows Result rows in kept pages.\n# TYPE cadenza_result_cache_rows gauge\ncadenza_result_cache_rows "
    << now.result_cache_rows << "\n";
  o << "# HELP cadenza_training_tokens_per_second Training speed of each running job (all ranks), as last reported.\n"
       "# TYPE cadenza_training_tokens_per_second gauge\n";
  std::lock_guard<std::mutex> lock(speed_mu_);
  for (const auto& [job, speed] : speed_) o << "cadenza_training_tokens_per_second{job=\"" << job << "\"} " << Number(speed) << "\n";
  return o.str();
}

}  // namespace cadenza::coord
