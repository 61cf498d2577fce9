// Reads of results, jobs, sweeps and task counts on read-only SQLite connections of their own: never the scheduler's lock.
#pragma once

#include <cstdint>
#include <deque>
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

// A page of result rows, read-only and shared: the same page may answer several identical queries (ResultQuery's
// page cache).
class ResultPage {
 public:
  // The forms a page is sent in; each is made once per page (Encoded).
  enum class Encoding { kProtoFull, kProtoCompact };

  explicit ResultPage(std::vector<ResultView> rows) : shared_(std::make_shared<Shared>(std::move(rows))) {}
  const std::vector<ResultView>& rows() const { return shared_->rows; }
  size_t size() const { return rows().size(); }
  bool empty() const { return rows().empty(); }
  const ResultView& operator[](size_t i) const { return rows()[i]; }
  const ResultView& front() const { return rows().front(); }
  const ResultView& back() const { return rows().back(); }
  std::vector<ResultView>::const_iterator begin() const { return rows().begin(); }
  std::vector<ResultView>::const_iterator end() const { return rows().end(); }

  // The page in `encoding`, made by `make` the first time it is asked for: a kept page answering many queries is
  // serialized once. Thread-safe (two first calls at once may both make it; one is kept).
  std::shared_ptr<const std::string> Encoded(Encoding encoding, const std::function<std::string()>& make) const;

 private:
  struct Shared {
    explicit Shared(std::vector<ResultView> r) : rows(std::move(r)) {}
    const std::vector<ResultView> rows;
    std::mutex mu;  // guards `encoded`
    std::map<Encoding, std::shared_ptr<const std::string>> encoded;
  };
  std::shared_ptr<Shared> shared_;
};

// Reads the results the coordinator's Store committed, from a WAL snapshot: a query neither waits for an open write
// transaction nor delays one (docs/coordinator.md, "Reads"). Thread-safe; each call takes an idle connection of a
// small pool (or opens one), so concurrent queries do not queue behind each other either.
//
// Pages of results are kept for identical queries (dashboards poll the same pages): results are only ever inserted,
// so a page stays true until a job at or before its last row is written (a result of it, or its record), which the
// Store reports through NoteJobWritten. A page that is not full can grow from any job and goes at any such write.
class ResultQuery {
 public:
  // `path` is the database a Store opened (Store::path()); it must exist. Nothing is written through this object.
  // `cache_rows`: result rows kept in cached pages at most (0: no cache); pages go oldest first beyond it.
  static StatusOr<std::unique_ptr<ResultQuery>> Open(const std::string& path, int64_t cache_rows = 0);
  ~ResultQuery();
  ResultQuery(const ResultQuery&) = delete;
  ResultQuery& operator=(const ResultQuery&) = delete;

  // Rows ordered by job id, then task id; at most `filter.limit`. Every row comes from one snapshot.
  StatusOr<ResultPage> Query(const ResultFilter& filter);
  // The writer's side (Store::SetJobWriteObserver): a committed transaction wrote job `min_job_id` or later ones.
  void NoteJobWritten(int64_t min_job_id);
  struct CacheCounts {
    int64_t hits = 0, misses = 0, pages = 0, rows = 0;
  };
  CacheCounts cache_counts() const;
  // Jobs ordered by id, with their task counts (the HTTP API and dashboards).
  StatusOr<std::vector<JobSummary>> Jobs(const JobQuery& query);
  // Every sweep (of `user`, when given) with its jobs counted by state, ordered by id.
  StatusOr<std::vector<SweepSummary>> Sweeps(const std::string& user);
  // Tasks counted by kind and state (the /metrics gauges).
  StatusOr<std::vector<TaskCount>> TaskCounts();

 private:
  ResultQuery(std::string path, int64_t cache_rows) : path_(std::move(path)), cache_rows_(cache_rows) {}
  StatusOr<std::vector<ResultView>> Read(const ResultFilter& filter);
  // Keeps `page` for `key` unless a write since `generation` reached it (or the writes since are no longer known).
  void Keep(std::string key, uint64_t generation, const ResultFilter& filter, const ResultPage& page);
  // Prepares `sql` on an idle connection, lets `bind` bind it, calls `row` for each row; `what` names the query in errors.
  Status Run(const std::string& sql, const std::function<void(sqlite3_stmt*)>& bind, const std::function<void(sqlite3_stmt*)>& row,
             const char* what);
  StatusOr<sqlite3*> Acquire();
  void Release(sqlite3* db);

  std::string path_;
  std::mutex mu_;  // guards idle_ only, never held during a query
  std::vector<sqlite3*> idle_;

  struct CachedPage {
    ResultPage page;
    int64_t last_job_id = 0;  // a write to this job or an earlier one changes the page (INT64_MAX: any write)
    uint64_t kept = 0;        // order of keeping, for eviction
  };
  // Forgets a kept page (its rows leave counts_.rows); returns the next one. Holding cache_mu_.
  std::map<std::string, CachedPage>::iterator Drop(std::map<std::string, CachedPage>::iterator it);
  const int64_t cache_rows_;
  mutable std::mutex cache_mu_;  // guards the members below; held for map operations only, never during a query
  std::map<std::string, CachedPage> cache_;
  std::deque<std::pair<uint64_t, int64_t>> writes_;  // the last writes: (generation, smallest job id written)
  uint64_t generation_ = 0;                          // writes noted so far
  uint64_t kept_ = 0;
  CacheCounts counts_;  // hits, misses and rows; pages is cache_.size()
};

}  // namespace cadenza::coord
