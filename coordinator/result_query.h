// Reads of results, jobs, sweeps and task counts on read-only SQLite connections of their own: never the scheduler's lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/types.h"
#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace cadenza::coord {

// ResultFilter and ResultView: coordinator/types.h.

// One job as a dashboard lists it: its record and its tasks' progress.
struct JobSummary {
  int64_t id = 0, sweep_id = 0;
  std::string user, name, dataset, model_family, output_dir, error;
  uint64_t seed = 0;
  JobState state = JobState::kQueued;
  int64_t created_ms = 0, finished_ms = 0, parameters = 0;
  std::map<std::string, std::string> axes;
  int64_t tasks_pending = 0, tasks_leased = 0, tasks_succeeded = 0, tasks_total = 0;
  double train_fraction = 0;  // the training task's last reported progress (0..1)
};
struct JobQuery {
  int64_t sweep_id = 0, job_id = 0;
  std::string user;  // empty: every user's
  int limit = 1000;  // <= 0: 1000
  int64_t offset = 0;
};
struct SweepSummary {
  int64_t id = 0;
  std::string user;
  int64_t jobs = 0;
  int64_t jobs_by_state[6] = {0, 0, 0, 0, 0, 0};  // indexed by JobState
  int64_t created_ms = 0, last_finished_ms = 0;
};

// Reads the results the coordinator's Store committed, from a WAL snapshot: a query neither waits for an open write
// transaction nor delays one (docs/coordinator.md, "Reads"). Thread-safe; each call takes an idle connection of a
// small pool (or opens one), so concurrent queries do not queue behind each other either.
class ResultQuery {
 public:
  // `path` is the database a Store opened (Store::path()); it must exist. Nothing is written through this object.
  static StatusOr<std::unique_ptr<ResultQuery>> Open(const std::string& path);
  ~ResultQuery();
  ResultQuery(const ResultQuery&) = delete;
  ResultQuery& operator=(const ResultQuery&) = delete;

  // Rows ordered by job id, then task id; at most `filter.limit`. Every row comes from one snapshot.
  StatusOr<std::vector<ResultView>> Query(const ResultFilter& filter);
  // Jobs ordered by id, with their task counts (the HTTP API and dashboards).
  StatusOr<std::vector<JobSummary>> Jobs(const JobQuery& query);
  // Every sweep (of `user`, when given) with its jobs counted by state, ordered by id.
  StatusOr<std::vector<SweepSummary>> Sweeps(const std::string& user);
  // Tasks counted by kind and state (the /metrics gauges).
  StatusOr<std::vector<TaskCount>> TaskCounts();

 private:
  explicit ResultQuery(std::string path) : path_(std::move(path)) {}
  // Prepares `sql` on an idle connection, lets `bind` bind it, calls `row` for each row; `what` names the query in errors.
  Status Run(const std::string& sql, const std::function<void(sqlite3_stmt*)>& bind, const std::function<void(sqlite3_stmt*)>& row,
             const char* what);
  StatusOr<sqlite3*> Acquire();
  void Release(sqlite3* db);

  std::string path_;
  std::mutex mu_;  // guards idle_ only, never held during a query
  std::vector<sqlite3*> idle_;
};

}  // namespace cadenza::coord
