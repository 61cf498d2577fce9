// SQLite persistence of the coordinator: schema, prepared statements, transactions, recovery loads.
#include "coordinator/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "coordinator/sqlite_columns.h"

#include "core/file_util.h"

namespace cadenza::coord {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, sweep_id INTEGER NOT NULL, user TEXT NOT NULL, name TEXT NOT NULL,
  dataset TEXT NOT NULL, model_family TEXT NOT NULL, seed INTEGER NOT NULL, output_dir TEXT NOT NULL,
  reference_split TEXT NOT NULL, samples INTEGER NOT NULL, samples_per_task INTEGER NOT NULL,
  experiment_yaml TEXT NOT NULL, state INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL, error TEXT NOT NULL, axes_json TEXT NOT NULL DEFAULT '{}',
  parameters INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL REFERENCES jobs(id), kind INTEGER NOT NULL,
  state INTEGER NOT NULL, attempt INTEGER NOT NULL, max_attempts INTEGER NOT NULL, shard_index INTEGER NOT NULL,
  shard_count INTEGER NOT NULL, sample_begin INTEGER NOT NULL, sample_count INTEGER NOT NULL,
  parent_id INTEGER NOT NULL, checkpoint TEXT NOT NULL, message TEXT NOT NULL, fraction REAL NOT NULL,
  worker_group INTEGER NOT NULL, worker_rank INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_by_job ON tasks(job_id);
CREATE TABLE IF NOT EXISTS results (
  task_id INTEGER PRIMARY KEY REFERENCES tasks(id), attempt INTEGER NOT NULL, job_id INTEGER NOT NULL,
  kind INTEGER NOT NULL, shard_index INTEGER NOT NULL, metrics_json TEXT NOT NULL, artifacts_json TEXT NOT NULL,
  checkpoint TEXT NOT NULL, summary TEXT NOT NULL, recorded_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS results_by_job ON results(job_id, kind);
CREATE TABLE IF NOT EXISTS worker_groups (
  id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL, ranks INTEGER NOT NULL, threads_per_rank INTEGER NOT NULL,
  device TEXT NOT NULL, name TEXT NOT NULL, registered_ms INTEGER NOT NULL, owner TEXT NOT NULL DEFAULT '');
)sql";

// Binds by position, 1-based, in the order given.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* s) : s_(s) { sqlite3_reset(s_); sqlite3_clear_bindings(s_); }
  Binder& I(int64_t v) { sqlite3_bind_int64(s_, ++i_, v); return *this; }
  Binder& D(double v) { sqlite3_bind_double(s_, ++i_, v); return *this; }
  Binder& N() { sqlite3_bind_null(s_, ++i_); return *this; }
  Binder& S(const std::string& v) { sqlite3_bind_text(s_, ++i_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); return *this; }

 private:
  sqlite3_stmt* s_;
  int i_ = 0;
};


}  // namespace

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path_in) {
  std::unique_ptr<Store> store(new Store());  // its destructor releases whatever was taken when a step below fails
  std::string path = path_in;
  if (path == ":memory:") {
    // A private in-memory database cannot be opened by a second connection, and a shared-cache one has table locks
    // instead of WAL snapshots: a temporary file keeps the read path the same as in production.
    std::string name = (std::filesystem::temp_directory_path() / "cadenza-coordinator-XXXXXX").string();
    const int fd = mkstemp(name.data());
    if (fd < 0) return IoError(name + ": cannot create a temporary coordinator database: " + std::strerror(errno));
    ::close(fd);
    store->temporary_ = true;
    path = name;
  }
  store->path_ = path;
  // The jobs, results and worker groups are the lab's state: owner-only from creation (SQLite gives its -wal and
  // -shm files the database's mode).
  if (!store->temporary_) {
    if (Status s = MakeOwnerOnly(path); !s.ok()) return s;
  }
  // One coordinator per database: an exclusive flock on <path>-lock, held until the Store is destroyed (the kernel
  // drops it when the process dies, SIGKILL included, so a restart is never locked out by a dead coordinator).
  const std::string lock_path = path + "-lock";
  store->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (store->lock_fd_ < 0) return IoError(lock_path + ": cannot open the coordinator's lock file: " + std::strerror(errno));
  if (::flock(store->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    if (e == EWOULDBLOCK) {
      return FailedPrecondition(path + ": another coordinator is running on this database (it holds the lock file " + lock_path +
                                "); stop it, or give this one another --database");
    }
    return IoError(lock_path + ": cannot lock: " + std::strerror(e));
  }
  if (sqlite3_open_v2(path.c_str(), &store->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    return IoError(path + ": cannot open the coordinator database: " + (store->db_ ? sqlite3_errmsg(store->db_) : "out of memory"));
  }
  sqlite3_busy_timeout(store->db_, 5000);
  // Normal locking mode (not EXCLUSIVE): ResultQuery's read-only connections read WAL snapshots beside this one; the
  // lock file above keeps other coordinators out.
  // 1 KiB pages (set before the first table): a commit appends ~4 small pages to the WAL instead of ~4 x 4 KiB.
  for (const char* pragma : {"PRAGMA page_size=1024", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"}) {
    if (Status s = store->Exec(pragma); !s.ok()) return s.WithContext(path);
  }
  if (Status s = store->Exec(kSchema); !s.ok()) return s.WithContext(path);
  if (Status s = store->Migrate(); !s.ok()) return s.WithContext(path);
  struct { sqlite3_stmt** slot; const char* sql; } statements[] = {
      {&store->insert_job_,
       "INSERT INTO jobs (sweep_id, user, name, dataset, model_family, seed, output_dir, reference_split, samples, "
       "samples_per_task, experiment_yaml, state, created_ms, finished_ms, error, axes_json, parameters) "
       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
      {&store->update_job_, "UPDATE jobs SET state=?, finished_ms=?, error=? WHERE id=?"},
      {&store->insert_task_,
       "INSERT INTO tasks (id, job_id, kind, state, attempt, max_attempts, shard_index, shard_count, sample_begin, "
       "sample_count, parent_id, checkpoint, message, fraction, worker_group, worker_rank) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
      {&store->update_task_,
       "UPDATE tasks SET state=?, attempt=?, checkpoint=?, message=?, fraction=?, worker_group=?, worker_rank=? WHERE id=?"},
      {&store->insert_result_,
       "INSERT INTO results (task_id, attempt, job_id, kind, shard_index, metrics_json, artifacts_json, checkpoint, "
       "summary, recorded_ms) VALUES (?,?,?,?,?,?,?,?,?,?)"},
      {&store->begin_, "BEGIN IMMEDIATE"},
      {&store->commit_, "COMMIT"},
      {&store->rollback_, "ROLLBACK"},
  };
  for (auto& st : statements) {
    auto p = store->Prepare(st.sql);
    if (!p.ok()) return p.status().WithContext(path);
    *st.slot = *p;
  }
  return store;
}

Store::~Store() {
  for (sqlite3_stmt* s : statements_) sqlite3_finalize(s);
  sqlite3_close(db_);
  if (temporary_) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal", "-lock"}) std::filesystem::remove(path_ + suffix, ec);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Status Store::Migrate() {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA table_info(jobs)", -1, &s, nullptr) != SQLITE_OK) return Error("read the jobs columns");
  std::set<std::string> columns;
  while (sqlite3_step(s) == SQLITE_ROW) columns.insert(ColumnText(s, 1));
  sqlite3_finalize(s);
  // Columns added since the first schema, with the defaults that rows written before them get.
  static const struct { const char* name; const char* ddl; } added[] = {
      {"axes_json", "ALTER TABLE jobs ADD COLUMN axes_json TEXT NOT NULL DEFAULT '{}'"},
      {"parameters", "ALTER TABLE jobs ADD COLUMN parameters INTEGER NOT NULL DEFAULT 0"},
  };
  for (const auto& c : added) {
    if (columns.count(c.name)) continue;
    if (Status st = Exec(c.ddl); !st.ok()) return st.WithContext(std::string("add column jobs.") + c.name);
  }
  if (sqlite3_prepare_v2(db_, "PRAGMA table_info(worker_groups)", -1, &s, nullptr) != SQLITE_OK) return Error("read the worker_groups columns");
  bool has_owner = false;
  while (sqlite3_step(s) == SQLITE_ROW) has_owner = has_owner || ColumnText(s, 1) == "owner";
  sqlite3_finalize(s);
  if (!has_owner) {
    if (Status st = Exec("ALTER TABLE worker_groups ADD COLUMN owner TEXT NOT NULL DEFAULT ''"); !st.ok()) {
      return st.WithContext("add column worker_groups.owner");
    }
  }
  return Status::Ok();
}

Status Store::Error(const std::string& what) const { return IoError("coordinator database: " + what + ": " + sqlite3_errmsg(db_)); }

Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return IoError(std::string("coordinator database: ") + msg);
  }
  return Status::Ok();
}

StatusOr<sqlite3_stmt*> Store::Prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) return Error(std::string("prepare ") + sql);
  statements_.push_back(s);
  return s;
}

Status Store::Step(sqlite3_stmt* s, const char* what) {
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? Status::Ok() : Error(what);
}

Status Store::Transaction(const std::function<Status()>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = Step(begin_, "begin"); !s.ok()) return s;
  min_job_written_ = INT64_MAX;
  Status s = fn();
  if (!s.ok()) {
    (void)Step(rollback_, "rollback");
    return s;
  }
  if (Status c = Step(commit_, "commit"); !c.ok()) {
    (void)Step(rollback_, "rollback");
    return c;
  }
  if (min_job_written_ != INT64_MAX && observer_) observer_(min_job_written_);  // once the rows are visible to readers
  return Status::Ok();
}

Status Store::InsertJob(JobRecord* j) {
  const Experiment& e = j->experiment;
  Binder(insert_job_).I(j->sweep_id).S(j->user).S(e.name).S(e.dataset).S(e.model_family).I(static_cast<int64_t>(e.seed))
      .S(e.output_dir).S(e.reference_split).I(e.samples).I(e.samples_per_task).S(e.experiment_yaml)
      .I(static_cast<int>(j->state)).I(j->created_ms).I(j->finished_ms).S(j->error)
      .S(nlohmann::json(e.axes).dump()).I(e.parameters);
  if (sqlite3_step(insert_job_) != SQLITE_DONE) return Error("insert job");
  j->id = sqlite3_last_insert_rowid(db_);
  NoteJobWritten(j->id);
  return Status::Ok();
}

Status Store::UpdateJob(const JobRecord& j) {
  Binder(update_job_).I(static_cast<int>(j.state)).I(j.finished_ms).S(j.error).I(j.id);
  if (sqlite3_step(update_job_) != SQLITE_DONE) return Error("update job " + std::to_string(j.id));
  NoteJobWritten(j.id);
  return Status::Ok();
}

Status Store::InsertTask(TaskRecord* t) {
  Binder b(insert_task_);
  if (t->id > 0) b.I(t->id);
  else b.N();
  b.I(t->job_id).I(static_cast<int>(t->kind)).I(static_cast<int>(t->state)).I(t->attempt)
      .I(t->max_attempts).I(t->shard_index).I(t->shard_count).I(t->sample_begin).I(t->sample_count).I(t->parent_id)
      .S(t->checkpoint).S(t->message).D(t->fraction).I(t->worker.group_id).I(t->worker.rank);
  if (sqlite3_step(insert_task_) != SQLITE_DONE) return Error("insert task");
  t->id = sqlite3_last_insert_rowid(db_);
  return Status::Ok();
}

Status Store::UpdateTask(const TaskRecord& t) {
  Binder(update_task_).I(static_cast<int>(t.state)).I(t.attempt).S(t.checkpoint).S(t.message).D(t.fraction)
      .I(t.worker.group_id).I(t.worker.rank).I(t.id);
  if (sqlite3_step(update_task_) != SQLITE_DONE) return Error("update task " + std::to_string(t.id));
  return Status::Ok();
}

Status Store::InsertResult(const ResultRecord& r) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [k, v] : r.metrics) metrics[k] = v;
  Binder(insert_result_).I(r.task_id).I(r.attempt).I(r.job_id).I(static_cast<int>(r.kind)).I(r.shard_index)
      .S(metrics.dump()).S(nlohmann::json(r.artifacts).dump()).S(r.checkpoint).S(r.summary).I(r.recorded_ms);
  const int rc = sqlite3_step(insert_result_);
  if (rc == SQLITE_CONSTRAINT) return Aborted("task " + std::to_string(r.task_id) + ": a result is already recorded");
  if (rc != SQLITE_DONE) return Error("insert result of task " + std::to_string(r.task_id));
  NoteJobWritten(r.job_id);
  return Status::Ok();
}

Status Store::InsertWorkerGroup(WorkerGroup* g) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT INTO worker_groups (host, ranks, threads_per_rank, device, name, registered_ms, owner) VALUES (?,?,?,?,?,?,?)",
                         -1, &s, nullptr) != SQLITE_OK) {
    return Error("prepare insert worker group");
  }
  Binder(s).S(g->host).I(g->ranks).I(g->threads_per_rank).S(g->device).S(g->name).I(g->registered_ms).S(g->owner);
  const int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return Error("insert worker group");
  g->id = sqlite3_last_insert_rowid(db_);
  return Status::Ok();
}

Status Store::NewSweepId(int64_t* id) {
  if (Status s = Exec("INSERT INTO meta (key, value) VALUES ('sweep_id', 1) ON CONFLICT(key) DO UPDATE SET value = value + 1");
      !s.ok()) {
    return s;
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key='sweep_id'", -1, &s, nullptr) != SQLITE_OK) return Error("read sweep id");
  const bool row = sqlite3_step(s) == SQLITE_ROW;
  *id = row ? ColumnInt(s, 0) : 0;
  sqlite3_finalize(s);
  return row ? Status::Ok() : Error("read sweep id");
}

StatusOr<std::vector<JobRecord>> Store::LoadJobs() {
  std::lock_guard<std::mutex> lock(mu_);
  auto p = Prepare(
      "SELECT id, sweep_id, user, name, dataset, model_family, seed, output_dir, reference_split, samples, samples_per_task, "
      "experiment_yaml, state, created_ms, finished_ms, error, axes_json, parameters FROM jobs ORDER BY id");
  if (!p.ok()) return p.status();
  std::vector<JobRecord> jobs;
  int rc;
  while ((rc = sqlite3_step(*p)) == SQLITE_ROW) {
    JobRecord j;
    Experiment& e = j.experiment;
    j.id = ColumnInt(*p, 0);
    j.sweep_id = ColumnInt(*p, 1);
    j.user = ColumnText(*p, 2);
    e.name = ColumnText(*p, 3);
    e.dataset = ColumnText(*p, 4);
    e.model_family = ColumnText(*p, 5);
    e.seed = static_cast<uint64_t>(ColumnInt(*p, 6));
    e.output_dir = ColumnText(*p, 7);
    e.reference_split = ColumnText(*p, 8);
    e.samples = static_cast<int>(ColumnInt(*p, 9));
    e.samples_per_task = static_cast<int>(ColumnInt(*p, 10));
    e.experiment_yaml = ColumnText(*p, 11);
    j.state = static_cast<JobState>(ColumnInt(*p, 12));
    j.created_ms = ColumnInt(*p, 13);
    j.finished_ms = ColumnInt(*p, 14);
    j.error = ColumnText(*p, 15);
    const nlohmann::json axes = nlohmann::json::parse(ColumnText(*p, 16), nullptr, false);
    if (axes.is_object()) {
      for (auto it = axes.begin(); it != axes.end(); ++it) {
        if (it->is_string()) e.axes[it.key()] = it->get<std::string>();
      }
    }
    e.parameters = ColumnInt(*p, 17);
    jobs.push_back(std::move(j));
  }
  if (rc != SQLITE_DONE) return Error("load jobs");
  return jobs;
}

StatusOr<std::vector<TaskRecord>> Store::LoadTasks() {
  std::lock_guard<std::mutex> lock(mu_);
  auto p = Prepare(
      "SELECT id, job_id, kind, state, attempt, max_attempts, shard_index, shard_count, sample_begin, sample_count, "
      "parent_id, checkpoint, message, fraction, worker_group, worker_rank FROM tasks ORDER BY id");
  if (!p.ok()) return p.status();
  std::vector<TaskRecord> tasks;
  int rc;
  while ((rc = sqlite3_step(*p)) == SQLITE_ROW) {
    TaskRecord t;
    t.id = ColumnInt(*p, 0);
    t.job_id = ColumnInt(*p, 1);
    t.kind = static_cast<TaskKind>(ColumnInt(*p, 2));
    t.state = static_cast<TaskState>(ColumnInt(*p, 3));
    t.attempt = static_cast<int>(ColumnInt(*p, 4));
    t.max_attempts = static_cast<int>(ColumnInt(*p, 5));
    t.shard_index = static_cast<int>(ColumnInt(*p, 6));
    t.shard_count = static_cast<int>(ColumnInt(*p, 7));
    t.sample_begin = static_cast<int>(ColumnInt(*p, 8));
    t.sample_count = static_cast<int>(ColumnInt(*p, 9));
    t.parent_id = ColumnInt(*p, 10);
    t.checkpoint = ColumnText(*p, 11);
    t.message = ColumnText(*p, 12);
    t.fraction = sqlite3_column_double(*p, 13);
    t.worker.group_id = ColumnInt(*p, 14);
    t.worker.rank = static_cast<int>(ColumnInt(*p, 15));
    tasks.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return Error("load tasks");
  return tasks;
}

StatusOr<std::vector<WorkerGroup>> Store::LoadWorkerGroups() {
  std::lock_guard<std::mutex> lock(mu_);
  auto p = Prepare("SELECT id, host, ranks, threads_per_rank, device, name, registered_ms, owner FROM worker_groups ORDER BY id");
  if (!p.ok()) return p.status();
  std::vector<WorkerGroup> groups;
  int rc;
  while ((rc = sqlite3_step(*p)) == SQLITE_ROW) {
    WorkerGroup g;
    g.id = ColumnInt(*p, 0);
    g.host = ColumnText(*p, 1);
    g.ranks = static_cast<int>(ColumnInt(*p, 2));
    g.threads_per_rank = static_cast<int>(ColumnInt(*p, 3));
    g.device = ColumnText(*p, 4);
    g.name = ColumnText(*p, 5);
    g.registered_ms = ColumnInt(*p, 6);
    g.owner = ColumnText(*p, 7);
    groups.push_back(std::move(g));
  }
  if (rc != SQLITE_DONE) return Error("load worker groups");
  return groups;
}

StatusOr<int64_t> Store::CountResults() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT COUNT(*) FROM results", -1, &s, nullptr) != SQLITE_OK) return Error("count results");
  const int64_t n = sqlite3_step(s) == SQLITE_ROW ? ColumnInt(s, 0) : -1;
  sqlite3_finalize(s);
  if (n < 0) return Error("count results");
  return n;
}

}  // namespace cadenza::coord
