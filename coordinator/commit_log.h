// Group commit of the scheduler's state changes to SQLite: changes queue in memory order and are written in batches,
// one transaction each, by whichever waiter comes first; a caller answers once its own change is durable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "coordinator/store.h"
#include "coordinator/types.h"

namespace cadenza::coord {

// One state change as it is written: in one transaction with the others of its batch, in this order (jobs, inserts,
// updates, result). Task ids are the caller's (Store::InsertTask keeps them).
struct ChangeSet {
  std::vector<TaskRecord> inserts;
  std::vector<TaskRecord> updates;
  std::vector<JobRecord> jobs;  // updates of existing jobs: state, finished_ms, error
  std::optional<ResultRecord> result;
};

// The order, as the scheduler uses it: a change is applied to the scheduler's memory first, under its mutex, and
// queued here under the same mutex, which gives it a ticket; tickets follow memory order and batches are written in
// ticket order. WaitDurable(ticket) returns once that ticket and every one before it is written, so an answer sent
// after it never depends on a change that a crash could still lose. Memory is ahead of the database by the queued
// changes: a reader of memory (GetJob, ListJobs, WatchJob, a Heartbeat's stop notices) can see a change whose
// transaction is not yet committed; if the process dies before the commit, that change is gone after the restart,
// and nobody was answered for it.
//
// Not thread-safe on its own: every call is made holding the caller's mutex (the `lock` of WaitDurable).
class CommitLog {
 public:
  explicit CommitLog(Store* store) : store_(store) {}
  CommitLog(const CommitLog&) = delete;
  CommitLog& operator=(const CommitLog&) = delete;

  // Queues `c` (already applied to the caller's memory); returns its ticket (1, 2, ...).
  uint64_t Append(ChangeSet c);
  // The ticket of the last change queued (0 before the first).
  uint64_t last_ticket() const { return enqueued_; }
  // The ticket up to which every change is written.
  uint64_t durable_ticket() const { return durable_; }

  // Returns once every change up to `ticket` is written. `lock` holds the caller's mutex on entry and on return. The
  // first waiter writes every queued change in one transaction with `lock` released (so others queue meanwhile);
  // later waiters wait for it, then write what queued behind it. A failed write stops the process (fail-stop:
  // memory would be ahead of the database for good; a restart recovers the last committed state).
  void WaitDurable(std::unique_lock<std::mutex>& lock, uint64_t ticket);

 private:
  Store* store_;
  std::vector<ChangeSet> pending_;        // queued, not yet written
  uint64_t enqueued_ = 0, durable_ = 0;  // tickets of the last queued and of the last written change
  bool committing_ = false;              // a waiter is writing a batch (without the caller's mutex)
  std::condition_variable durable_cv_;
};

}  // namespace cadenza::coord
