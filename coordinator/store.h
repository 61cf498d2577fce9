// The coordinator's durable state in SQLite (WAL): jobs, tasks, results, worker groups; one transaction per change.
#pragma once

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
  // Opens (creating when absent) the database at `path` (":memory:" for tests), in WAL mode with
  // synchronous=NORMAL: a committed transaction survives SIGKILL of the process (not a power cut).
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Runs `fn` between BEGIN IMMEDIATE and COMMIT; rolls back (and returns its error) when `fn` fails. The Insert/Update
  // calls belong inside `fn`; Load* and CountResults take the same lock themselves.
  Status Transaction(const std::function<Status()>& fn);

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
  // Results of one job (kind kUnspecified: every kind), ordered by task id.
  StatusOr<std::vector<ResultRecord>> LoadResults(int64_t job_id, TaskKind kind);
  StatusOr<int64_t> CountResults();

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  StatusOr<sqlite3_stmt*> Prepare(const char* sql);
  Status Error(const std::string& what) const;

  std::mutex mu_;  // one connection: transactions and loads one at a time
  sqlite3* db_ = nullptr;
  std::vector<sqlite3_stmt*> statements_;  // prepared once, finalized in the destructor
  sqlite3_stmt* insert_job_ = nullptr;
  sqlite3_stmt* update_job_ = nullptr;
  sqlite3_stmt* insert_task_ = nullptr;
  sqlite3_stmt* update_task_ = nullptr;
  sqlite3_stmt* insert_result_ = nullptr;
  sqlite3_stmt* select_results_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;  // BEGIN IMMEDIATE / COMMIT / ROLLBACK, prepared once (parsing them was 1% of a busy coordinator)
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
  Status Step(sqlite3_stmt* s, const char* what);
};

}  // namespace cadenza::coord
