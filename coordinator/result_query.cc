// Result queries on a read-only SQLite connection of their own (WAL snapshot reads beside the Store's writes).
#include "coordinator/result_query.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <map>
#include <string_view>
#include <nlohmann/json.hpp>

#include "coordinator/sqlite_columns.h"

namespace cadenza::coord {
namespace {

constexpr size_t kMaxIdle = 4;  // connections kept open between queries
constexpr size_t kWritesKept = 4096;  // writes remembered for the pages being read (a second or more of a busy coordinator)
constexpr int kDefaultLimit = 10000;

int PageLimit(const ResultFilter& f) { return f.limit > 0 ? f.limit : kDefaultLimit; }

// Every field of the filter: equal keys, equal pages.
std::string CacheKey(const ResultFilter& f) {
  std::string k;
  for (int64_t v : {f.job_id, f.sweep_id, f.task_id, static_cast<int64_t>(f.kind), static_cast<int64_t>(PageLimit(f)),
                    std::max<int64_t>(0, f.offset)}) {
    k += std::to_string(v);
    k += ',';
  }
  for (const std::string* t : {&f.user, &f.dataset, &f.model_family}) {
    k += std::to_string(t->size());
    k += ':';
    k += *t;
  }
  return k;
}


// Binds a named parameter the statement has (a filter leaves out the predicates it does not use).
void BindInt(sqlite3_stmt* st, const char* name, int64_t v) {
  if (int i = sqlite3_bind_parameter_index(st, name); i > 0) sqlite3_bind_int64(st, i, v);
}
void BindText(sqlite3_stmt* st, const char* name, const std::string& v) {
  if (int i = sqlite3_bind_parameter_index(st, name); i > 0) {
    sqlite3_bind_text(st, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
}

std::map<std::string, std::string> ParseAxes(const std::string& axes_json) {
  std::map<std::string, std::string> out;
  if (axes_json == "{}") return out;  // most jobs: not worth a parser
  const nlohmann::json axes = nlohmann::json::parse(axes_json, nullptr, false);
  if (!axes.is_object()) return out;
  for (auto it = axes.begin(); it != axes.end(); ++it) {
    if (it->is_string()) out[it.key()] = it->get<std::string>();
  }
  return out;
}

std::string_view ColumnView(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  return p ? std::string_view(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s, col)) : std::string_view();
}

// A result's metrics as Store::InsertResult writes them: one flat object of numbers ({"a":0.5,"b":null}; null for a
// value that was not finite, skipped as before). False for anything else (an escape in a key, a nested value), which
// the general parser then reads: this path only skips building a JSON tree for every row.
bool ParseFlatMetrics(std::string_view s, std::map<std::string, double>* out) {
  size_t i = 0;
  auto at = [&](char c) { return i < s.size() && s[i] == c; };
  if (!at('{')) return false;
  ++i;
  if (at('}')) return i + 1 == s.size();
  while (true) {
    if (!at('"')) return false;
    const size_t key_end = s.find_first_of("\\\"", ++i);
    if (key_end == std::string_view::npos || s[key_end] != '"') return false;
    std::string_view key = s.substr(i, key_end - i);
    i = key_end + 1;
    if (!at(':')) return false;
    ++i;
    if (s.compare(i, 4, "null") == 0) {
      i += 4;
    } else {
      double v = 0;
      const auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), v);
      if (ec != std::errc()) return false;
      i = static_cast<size_t>(end - s.data());
      out->insert_or_assign(std::string(key), v);
    }
    if (at(',')) {
      ++i;
      continue;
    }
    return at('}') && i + 1 == s.size();
  }
}

}  // namespace

std::shared_ptr<const std::string> ResultPage::Encoded(Encoding encoding, const std::function<std::string()>& make) const {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (auto it = shared_->encoded.find(encoding); it != shared_->encoded.end()) return it->second;
  }
  auto bytes = std::make_shared<const std::string>(make());  // outside the lock: a large page takes a while
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->encoded.emplace(encoding, std::move(bytes)).first->second;
}

StatusOr<std::unique_ptr<ResultQuery>> ResultQuery::Open(const std::string& path, int64_t cache_rows) {
  std::unique_ptr<ResultQuery> q(new ResultQuery(path, cache_rows));
  auto db = q->Acquire();  // fails now, not at the first query, when the database is not there
  if (!db.ok()) return db.status();
  q->Release(*db);
  return q;
}

ResultQuery::~ResultQuery() {
  for (sqlite3* db : idle_) sqlite3_close(db);
}

StatusOr<sqlite3*> ResultQuery::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      sqlite3* db = idle_.back();
      idle_.pop_back();
      return db;
    }
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return IoError(path_ + ": cannot open the coordinator database for queries: " + msg);
  }
  // A WAL reader waits only in rare cases (another connection running recovery of the WAL index); never for a writer.
  sqlite3_busy_timeout(db, 5000);
  return db;
}

void ResultQuery::Release(sqlite3* db) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdle) {
      idle_.push_back(db);
      return;
    }
  }
  sqlite3_close(db);
}

Status ResultQuery::Run(const std::string& sql, const std::function<void(sqlite3_stmt*)>& bind,
                        const std::function<void(sqlite3_stmt*)>& row, const char* what) {
  auto db_or = Acquire();
  if (!db_or.ok()) return db_or.status();
  sqlite3* db = *db_or;
  sqlite3_stmt* st = nullptr;
  auto fail = [&](const char* step) -> Status {
    Status s = IoError(std::string("coordinator database (") + what + "): " + step + ": " + sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);  // not returned to the pool: its state is unknown
    return s;
  };
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return fail("prepare");
  bind(st);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
  if (rc != SQLITE_DONE) return fail("step");
  sqlite3_finalize(st);
  Release(db);
  return Status::Ok();
}

StatusOr<ResultPage> ResultQuery::Query(const ResultFilter& f) {
  std::string key;
  uint64_t generation = 0;
  if (cache_rows_ > 0) {
    key = CacheKey(f);
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      counts_.hits++;
      return it->second.page;
    }
    counts_.misses++;
    generation = generation_;  // read before the snapshot begins: a write after this is among writes_ when Keep looks
  }
  auto rows = Read(f);
  if (!rows.ok()) return rows.status();
  ResultPage page(std::move(rows).value());
  if (cache_rows_ > 0) Keep(std::move(key), generation, f, page);
  return page;
}

void ResultQuery::Keep(std::string key, uint64_t generation, const ResultFilter& f, const ResultPage& page) {
  const int64_t rows = static_cast<int64_t>(page.size());
  if (rows > cache_rows_) return;
  // Rows come ordered by job: a full page changes only when a job up to its last row's is written.
  const int64_t last_job = rows == PageLimit(f) && rows > 0 ? page.back().result.job_id : INT64_MAX;
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (generation_ > generation) {  // writes committed while the page was read: it may hold them or not
    if (writes_.empty() || writes_.front().first > generation + 1) return;
    for (auto it = writes_.rbegin(); it != writes_.rend() && it->first > generation; ++it) {
      if (it->second <= last_job) return;
    }
  }
  if (auto it = cache_.find(key); it != cache_.end()) Drop(it);  // an identical query kept it meanwhile
  while (!cache_.empty() && counts_.rows + rows > cache_rows_) {
    auto oldest = cache_.begin();
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->second.kept < oldest->second.kept) oldest = it;
    }
    Drop(oldest);
  }
  cache_.emplace(std::move(key), CachedPage{page, last_job, ++kept_});
  counts_.rows += rows;
}

std::map<std::string, ResultQuery::CachedPage>::iterator ResultQuery::Drop(std::map<std::string, CachedPage>::iterator it) {
  counts_.rows -= static_cast<int64_t>(it->second.page.size());
  return cache_.erase(it);
}

void ResultQuery::NoteJobWritten(int64_t min_job_id) {
  if (cache_rows_ <= 0) return;
  std::lock_guard<std::mutex> lock(cache_mu_);
  writes_.emplace_back(++generation_, min_job_id);
  if (writes_.size() > kWritesKept) writes_.pop_front();
  for (auto it = cache_.begin(); it != cache_.end();) it = it->second.last_job_id < min_job_id ? std::next(it) : Drop(it);
}

ResultQuery::CacheCounts ResultQuery::cache_counts() const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  CacheCounts c = counts_;
  c.pages = static_cast<int64_t>(cache_.size());
  return c;
}

StatusOr<std::vector<ResultView>> ResultQuery::Read(const ResultFilter& f) {
  // Only the predicates the filter uses, so that SQLite can pick the index (results_by_job) for a job filter.
  std::string sql =
      "SELECT r.task_id, r.attempt, r.job_id, r.kind, r.shard_index, r.metrics_json, r.artifacts_json, r.checkpoint, r.summary, "
      "r.recorded_ms, j.sweep_id, j.user, j.name, j.dataset, j.model_family, j.seed, j.output_dir, j.reference_split, j.samples, "
      "j.samples_per_task, j.state, j.created_ms, j.finished_ms, j.error, j.axes_json, j.parameters "
      "FROM results r JOIN jobs j ON j.id = r.job_id WHERE 1";
  if (f.kind != TaskKind::kUnspecified) sql += " AND r.kind = :kind";
  if (f.job_id != 0) sql += " AND r.job_id = :job";
  if (f.task_id != 0) sql += " AND r.task_id = :task";
  if (f.sweep_id != 0) sql += " AND j.sweep_id = :sweep";
  if (!f.user.empty()) sql += " AND j.user = :user";
  if (!f.dataset.empty()) sql += " AND j.dataset = :dataset";
  if (!f.model_family.empty()) sql += " AND j.model_family = :family";
  sql += " ORDER BY r.job_id, r.task_id LIMIT :limit OFFSET :offset";

  std::vector<ResultView> out;
  Status s = Run(
      sql,
      [&](sqlite3_stmt* st) {
        BindInt(st, ":kind", static_cast<int>(f.kind));
        BindInt(st, ":job", f.job_id);
        BindInt(st, ":task", f.task_id);
        BindInt(st, ":sweep", f.sweep_id);
        BindText(st, ":user", f.user);
        BindText(st, ":dataset", f.dataset);
        BindText(st, ":family", f.model_family);
        BindInt(st, ":limit", PageLimit(f));
        BindInt(st, ":offset", std::max<int64_t>(0, f.offset));
      },
      [&](sqlite3_stmt* s) {
        ResultView& v = out.emplace_back();  // filled in place: a ResultView is a few hundred bytes of strings and maps
        ResultRecord& r = v.result;
        r.task_id = ColumnInt(s, 0);
        r.attempt = static_cast<int>(ColumnInt(s, 1));
        r.job_id = ColumnInt(s, 2);
        r.kind = static_cast<TaskKind>(ColumnInt(s, 3));
        r.shard_index = static_cast<int>(ColumnInt(s, 4));
        if (const std::string_view metrics = ColumnView(s, 5); !ParseFlatMetrics(metrics, &r.metrics)) {
          r.metrics.clear();
          const nlohmann::json m = nlohmann::json::parse(metrics, nullptr, false);
          if (m.is_object()) {
            for (auto it = m.begin(); it != m.end(); ++it) {
              if (it->is_number()) r.metrics[it.key()] = it->get<double>();
            }
          }
        }
        if (const std::string_view artifacts = ColumnView(s, 6); artifacts != "[]") {
          const nlohmann::json a = nlohmann::json::parse(artifacts, nullptr, false);
          if (a.is_array()) {
            for (const auto& x : a) {
              if (x.is_string()) r.artifacts.push_back(x.get<std::string>());
            }
          }
        }
        r.checkpoint = ColumnText(s, 7);
        r.summary = ColumnText(s, 8);
        r.recorded_ms = ColumnInt(s, 9);
        // Rows come ordered by job: a job's later rows copy its record from the row before instead of decoding it again.
        if (out.size() > 1 && out[out.size() - 2].job.id == r.job_id) {
          v.job = out[out.size() - 2].job;
          return;
        }
        JobRecord& j = v.job;
        Experiment& e = j.experiment;
        j.id = r.job_id;
        j.sweep_id = ColumnInt(s, 10);
        j.user = ColumnText(s, 11);
        e.name = ColumnText(s, 12);
        e.dataset = ColumnText(s, 13);
        e.model_family = ColumnText(s, 14);
        e.seed = static_cast<uint64_t>(ColumnInt(s, 15));
        e.output_dir = ColumnText(s, 16);
        e.reference_split = ColumnText(s, 17);
        e.samples = static_cast<int>(ColumnInt(s, 18));
        e.samples_per_task = static_cast<int>(ColumnInt(s, 19));
        j.state = static_cast<JobState>(ColumnInt(s, 20));
        j.created_ms = ColumnInt(s, 21);
        j.finished_ms = ColumnInt(s, 22);
        j.error = ColumnText(s, 23);
        e.axes = ParseAxes(ColumnText(s, 24));
        e.parameters = ColumnInt(s, 25);
      },
      "query results");
  if (!s.ok()) return s;
  return out;
}

StatusOr<std::vector<JobSummary>> ResultQuery::Jobs(const JobQuery& f) {
  std::string sql =
      "SELECT j.id, j.sweep_id, j.user, j.name, j.dataset, j.model_family, j.seed, j.state, j.created_ms, j.finished_ms, "
      "j.error, j.axes_json, j.parameters, j.output_dir, "
      "(SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 2), "
      "(SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 3), "
      "(SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 4), "
      "(SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id), "
      "(SELECT COALESCE(MAX(t.fraction), 0) FROM tasks t WHERE t.job_id = j.id AND t.kind = 1) "
      "FROM jobs j WHERE 1";
  if (f.sweep_id != 0) sql += " AND j.sweep_id = :sweep";
  if (f.job_id != 0) sql += " AND j.id = :job";
  if (!f.user.empty()) sql += " AND j.user = :user";
  sql += " ORDER BY j.id LIMIT :limit OFFSET :offset";
  std::vector<JobSummary> out;
  Status s = Run(
      sql,
      [&](sqlite3_stmt* st) {
        BindInt(st, ":sweep", f.sweep_id);
        BindInt(st, ":job", f.job_id);
        BindText(st, ":user", f.user);
        BindInt(st, ":limit", f.limit > 0 ? f.limit : 1000);
        BindInt(st, ":offset", std::max<int64_t>(0, f.offset));
      },
      [&](sqlite3_stmt* s) {
        JobSummary j;
        j.id = ColumnInt(s, 0);
        j.sweep_id = ColumnInt(s, 1);
        j.user = ColumnText(s, 2);
        j.name = ColumnText(s, 3);
        j.dataset = ColumnText(s, 4);
        j.model_family = ColumnText(s, 5);
        j.seed = static_cast<uint64_t>(ColumnInt(s, 6));
        j.state = static_cast<JobState>(ColumnInt(s, 7));
        j.created_ms = ColumnInt(s, 8);
        j.finished_ms = ColumnInt(s, 9);
        j.error = ColumnText(s, 10);
        j.axes = ParseAxes(ColumnText(s, 11));
        j.parameters = ColumnInt(s, 12);
        j.output_dir = ColumnText(s, 13);
        j.tasks_pending = ColumnInt(s, 14);
        j.tasks_leased = ColumnInt(s, 15);
        j.tasks_succeeded = ColumnInt(s, 16);
        j.tasks_total = ColumnInt(s, 17);
        j.train_fraction = sqlite3_column_double(s, 18);
        out.push_back(std::move(j));
      },
      "list jobs");
  if (!s.ok()) return s;
  return out;
}

StatusOr<std::vector<SweepSummary>> ResultQuery::Sweeps(const std::string& user) {
  std::string sql =
      "SELECT sweep_id, user, COUNT(*), SUM(state = 1), SUM(state = 2), SUM(state = 3), SUM(state = 4), SUM(state = 5), "
      "MIN(created_ms), MAX(finished_ms) FROM jobs WHERE sweep_id != 0";
  if (!user.empty()) sql += " AND user = :user";
  sql += " GROUP BY sweep_id ORDER BY sweep_id";
  std::vector<SweepSummary> out;
  Status s = Run(
      sql, [&](sqlite3_stmt* st) { BindText(st, ":user", user); },
      [&](sqlite3_stmt* s) {
        SweepSummary w;
        w.id = ColumnInt(s, 0);
        w.user = ColumnText(s, 1);
        w.jobs = ColumnInt(s, 2);
        for (int k = 0; k < 5; ++k) w.jobs_by_state[k + 1] = ColumnInt(s, 3 + k);
        w.created_ms = ColumnInt(s, 8);
        w.last_finished_ms = ColumnInt(s, 9);
        out.push_back(std::move(w));
      },
      "list sweeps");
  if (!s.ok()) return s;
  return out;
}

StatusOr<std::vector<TaskCount>> ResultQuery::TaskCounts() {
  std::vector<TaskCount> out;
  Status s = Run(
      "SELECT kind, state, COUNT(*) FROM tasks GROUP BY kind, state ORDER BY kind, state", [](sqlite3_stmt*) {},
      [&](sqlite3_stmt* s) {
        out.push_back({static_cast<TaskKind>(ColumnInt(s, 0)), static_cast<TaskState>(ColumnInt(s, 1)), ColumnInt(s, 2)});
      },
      "count tasks");
  if (!s.ok()) return s;
  return out;
}

}  // namespace cadenza::coord
