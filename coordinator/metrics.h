// The coordinator's own counters for GET /metrics (Prometheus text format): lease latency, results, training speed.
// Lock-free on the lease path (atomics); task counts and worker numbers are read at scrape time by the caller.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/types.h"

namespace cadenza::coord {

class CoordinatorMetrics {
 public:
  // Upper bounds (seconds) of the lease latency histogram's buckets; +Inf is implied.
  static constexpr std::array<double, 12> kLeaseBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                           0.01,   0.025,   0.05,   0.1,   0.25,   1.0};

  // One LeaseTask call took `seconds` (whether or not it handed out a task).
  void ObserveLease(double seconds);
  // A task of `kind` completed with a result the scheduler accepted.
  void CountResult(TaskKind kind);
  // The latest training speed a job's rank 0 reported (all ranks together); 0 forgets the job.
  void SetTrainingSpeed(int64_t job_id, double tokens_per_second);

  struct Snapshot {
    std::vector<TaskCount> tasks;  // by kind and state (Scheduler::TaskCounts)
    int groups = 0, ranks = 0;     // live worker groups and ranks
    int64_t result_cache_hits = 0, result_cache_misses = 0, result_cache_rows = 0;  // ResultQuery's kept pages
  };
  // The exposition text: cadenza_tasks{kind,state}, cadenza_queue_depth, cadenza_leased_tasks,
  // cadenza_worker_groups, cadenza_worker_ranks, cadenza_lease_latency_seconds (histogram),
  // cadenza_results_total{kind}, cadenza_training_tokens_per_second{job}, cadenza_result_cache_hits_total,
  // cadenza_result_cache_misses_total, cadenza_result_cache_rows.
  std::string Text(const Snapshot& now) const;

 private:
  std::array<std::atomic<uint64_t>, kLeaseBuckets.size() + 1> lease_buckets_{};  // last: +Inf
  std::atomic<uint64_t> lease_sum_ns_{0};
  std::array<std::atomic<uint64_t>, kNumTaskKinds> results_{};
  mutable std::mutex speed_mu_;  // guards speed_ only (progress reports are rare: every few seconds per job)
  std::map<int64_t, double> speed_;
};

}  // namespace cadenza::coord
