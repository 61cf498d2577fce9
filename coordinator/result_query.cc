// Result queries on a read-only SQLite connection of their own (WAL snapshot reads beside the Store's writes).
#include "coordinator/result_query.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

namespace cadenza::coord {
namespace {

constexpr size_t kMaxIdle = 4;  // connections kept open between queries

std::string Text(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s, col)) : std::string();
}
int64_t Int(sqlite3_stmt* s, int col) { return sqlite3_column_int64(s, col); }

// Finalizes the statement whatever way the query leaves.
struct Statement {
  sqlite3_stmt* s = nullptr;
  ~Statement() { sqlite3_finalize(s); }
};

}  // namespace

StatusOr<std::unique_ptr<ResultQuery>> ResultQuery::Open(const std::string& path) {
  std::unique_ptr<ResultQuery> q(new ResultQuery(path));
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

StatusOr<std::vector<ResultView>> ResultQuery::Query(const ResultFilter& f) {
  // Only the predicates the filter uses, so that SQLite can pick the index (results_by_job) for a job filter.
  std::string sql =
      "SELECT r.task_id, r.attempt, r.job_id, r.kind, r.shard_index, r.metrics_json, r.artifacts_json, r.checkpoint, r.summary, "
      "r.recorded_ms, j.sweep_id, j.user, j.name, j.dataset, j.model_family, j.seed, j.output_dir, j.reference_split, j.samples, "
      "j.samples_per_task, j.state, j.created_ms, j.finished_ms, j.error, j.axes_json, j.parameters "
      "FROM results r JOIN jobs j ON j.id = r.job_id WHERE 1";
  if (f.kind != TaskKind::kUnspecified) sql += " AND r.kind = :kind";
  if (f.job_id != 0) sql += " AND r.job_id = :job";
  if (f.sweep_id != 0) sql += " AND j.sweep_id = :sweep";
  if (!f.user.empty()) sql += " AND j.user = :user";
  if (!f.dataset.empty()) sql += " AND j.dataset = :dataset";
  if (!f.model_family.empty()) sql += " AND j.model_family = :family";
  sql += " ORDER BY r.job_id, r.task_id LIMIT :limit";

  auto db_or = Acquire();
  if (!db_or.ok()) return db_or.status();
  sqlite3* db = *db_or;
  Statement st;
  auto fail = [&](const char* what) -> Status {
    Status s = IoError(std::string("coordinator database (queries): ") + what + ": " + sqlite3_errmsg(db));
    sqlite3_finalize(st.s);
    st.s = nullptr;
    sqlite3_close(db);  // not returned to the pool: its state is unknown
    return s;
  };
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK) return fail("prepare");
  auto bind_text = [&](const char* name, const std::string& v) {
    sqlite3_bind_text(st.s, sqlite3_bind_parameter_index(st.s, name), v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  };
  auto bind_int = [&](const char* name, int64_t v) {
    if (int i = sqlite3_bind_parameter_index(st.s, name); i > 0) sqlite3_bind_int64(st.s, i, v);
  };
  bind_int(":kind", static_cast<int>(f.kind));
  bind_int(":job", f.job_id);
  bind_int(":sweep", f.sweep_id);
  if (!f.user.empty()) bind_text(":user", f.user);
  if (!f.dataset.empty()) bind_text(":dataset", f.dataset);
  if (!f.model_family.empty()) bind_text(":family", f.model_family);
  bind_int(":limit", f.limit > 0 ? f.limit : 10000);

  std::vector<ResultView> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    sqlite3_stmt* s = st.s;
    ResultView v;
    ResultRecord& r = v.result;
    r.task_id = Int(s, 0);
    r.attempt = static_cast<int>(Int(s, 1));
    r.job_id = Int(s, 2);
    r.kind = static_cast<TaskKind>(Int(s, 3));
    r.shard_index = static_cast<int>(Int(s, 4));
    const nlohmann::json m = nlohmann::json::parse(Text(s, 5), nullptr, false);
    if (m.is_object()) {
      for (auto it = m.begin(); it != m.end(); ++it) {
        if (it->is_number()) r.metrics[it.key()] = it->get<double>();
      }
    }
    const std::string artifacts = Text(s, 6);
    const nlohmann::json a = artifacts == "[]" ? nlohmann::json() : nlohmann::json::parse(artifacts, nullptr, false);
    if (a.is_array()) {
      for (const auto& x : a) {
        if (x.is_string()) r.artifacts.push_back(x.get<std::string>());
      }
    }
    r.checkpoint = Text(s, 7);
    r.summary = Text(s, 8);
    r.recorded_ms = Int(s, 9);
    JobRecord& j = v.job;
    Experiment& e = j.experiment;
    j.id = r.job_id;
    j.sweep_id = Int(s, 10);
    j.user = Text(s, 11);
    e.name = Text(s, 12);
    e.dataset = Text(s, 13);
    e.model_family = Text(s, 14);
    e.seed = static_cast<uint64_t>(Int(s, 15));
    e.output_dir = Text(s, 16);
    e.reference_split = Text(s, 17);
    e.samples = static_cast<int>(Int(s, 18));
    e.samples_per_task = static_cast<int>(Int(s, 19));
    j.state = static_cast<JobState>(Int(s, 20));
    j.created_ms = Int(s, 21);
    j.finished_ms = Int(s, 22);
    j.error = Text(s, 23);
    const std::string axes_json = Text(s, 24);  // "{}" for most jobs: not worth a parser
    const nlohmann::json axes = axes_json == "{}" ? nlohmann::json() : nlohmann::json::parse(axes_json, nullptr, false);
    if (axes.is_object()) {
      for (auto it = axes.begin(); it != axes.end(); ++it) {
        if (it->is_string()) e.axes[it.key()] = it->get<std::string>();
      }
    }
    e.parameters = Int(s, 25);
    out.push_back(std::move(v));
  }
  if (rc != SQLITE_DONE) return fail("query results");
  sqlite3_finalize(st.s);
  st.s = nullptr;
  Release(db);
  return out;
}

}  // namespace cadenza::coord
