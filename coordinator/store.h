// The coordinator's durable state in SQLite (WAL): jobs, tasks, results, worker groups; one transaction per change.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/types.h"
#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace cadenza::coord {

class Store {
 public:
  // Opens (creating when absent) the database at `path`, in WAL mode with synchronous=NORMAL: a committed
  // transaction survives SIGKILL of the process (not a power cut). One coordinator per database: the Store holds an
  // exclusive flock on `<path>-lock` while open, and a second Open of the same database (in any process) fails with
  // FailedPrecondition naming that file. SQLite runs in normal locking mode, so read-only connections
  // (ResultQuery) can read committed snapshots beside it. An older database gains the columns added since.
  // ":memory:" (tests): a temporary file, removed on close, so that a ResultQuery can open it through path().
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  const std::string& path() const { return path_; }  // the database file (the temporary one for ":memory:")
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Runs `fn` between BEGIN IMMEDIATE and COMMIT; rolls back (and returns its error) when `fn` fails. The Insert/Update
  // calls belong inside `fn`; Load* and CountResults take the same lock themselves.
  Status Transaction(const std::function<Status()>& fn);
  // Called after each committed transaction that wrote a job or a result, with the smallest job id it wrote (on the
  // writing thread, with the Store's lock held): ResultQuery drops the cached pages that reach that job. Set before
  // the first write.
  void SetJobWriteObserver(std::function<void(int64_t min_job_id)> observer) { observer_ = std::move(observer); }

  Status InsertJob(JobRecord* job);  // assigns job->id
  Status UpdateJob(const JobRecord& job);  // state, finished_ms, error
  Status InsertTask(TaskRecord* task);  // keeps task->id when set, else assigns one
  Status UpdateTask(const TaskRecord& task);
  // Records a result; Aborted when the task already has one (the primary key is the task id).
  Status InsertResult(const ResultRecord& result);
  Status InsertWorkerGroup(WorkerGroup* group);  // assigns group->id
  Status NewSweepId(int64_t* id);

  StatusOr<std::vector<JobRecord>> LoadJobs();
  StatusOr<std::vector<TaskRecord>> LoadTasks();
  StatusOr<std::vector<WorkerGroup>> LoadWorkerGroups();
  StatusOr<int64_t> CountResults();

 private:
  Store() = default;
  Status Exec(const char* sql);
  Status Migrate();  // adds the columns an older database lacks
  StatusOr<sqlite3_stmt*> Prepare(const char* sql);
  Status Error(const std::string& what) const;

  void NoteJobWritten(int64_t job_id) { min_job_written_ = std::min(min_job_written_, job_id); }

  std::mutex mu_;  // one connection: transactions and loads one at a time
  std::function<void(int64_t)> observer_;
  int64_t min_job_written_ = INT64_MAX;  // by the open transaction (INT64_MAX: none)
  sqlite3* db_ = nullptr;
  std::string path_;
  int lock_fd_ = -1;        // holds the flock on <path>-lock
  bool temporary_ = false;  // ":memory:": path_ and its -wal, -shm, -lock files are removed on close
  std::vector<sqlite3_stmt*> statements_;  // prepared once, finalized in the destructor
  sqlite3_stmt* insert_job_ = nullptr;
  sqlite3_stmt* update_job_ = nullptr;
  sqlite3_stmt* insert_task_ = nullptr;
  sqlite3_stmt* update_task_ = nullptr;
  sqlite3_stmt* insert_result_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;  // BEGIN IMMEDIATE / COMMIT / ROLLBACK, prepared once (parsing them was 1% of a busy coordinator)
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
  Status Step(sqlite3_stmt* s, const char* what);
};

}  // namespace cadenza::coord
