// Result queries on their own read-only SQLite connection: one join of results and jobs, never the scheduler's lock.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/types.h"
#include "core/status.h"

struct sqlite3;

namespace cadenza::coord {

struct ResultFilter {
  int64_t job_id = 0, sweep_id = 0;
  TaskKind kind = TaskKind::kAggregate;  // kUnspecified: every kind
  std::string user, dataset, model_family;
  int limit = 10000;  // <= 0: 10000
};
struct ResultView {
  JobRecord job;  // without its YAML
  ResultRecord result;
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

 private:
  explicit ResultQuery(std::string path) : path_(std::move(path)) {}
  StatusOr<sqlite3*> Acquire();
  void Release(sqlite3* db);

  std::string path_;
  std::mutex mu_;  // guards idle_ only, never held during a query
  std::vector<sqlite3*> idle_;
};

}  // namespace cadenza::coord
