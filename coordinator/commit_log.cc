// Group commit: queued changes written in batches, one SQLite transaction each; fail-stop on a failed write.
#include "coordinator/commit_log.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace cadenza::coord {

uint64_t CommitLog::Append(ChangeSet c) {
  pending_.push_back(std::move(c));
  return ++enqueued_;
}

void CommitLog::WaitDurable(std::unique_lock<std::mutex>& lock, uint64_t ticket) {
  while (durable_ < ticket) {
    if (committing_) {
      durable_cv_.wait(lock);
      continue;
    }
    committing_ = true;
    std::vector<ChangeSet> batch;
    batch.swap(pending_);
    const uint64_t last = enqueued_;
    lock.unlock();
    Status s = store_->Transaction([&]() -> Status {
      for (ChangeSet& c : batch) {
        for (const JobRecord& j : c.jobs) {
          if (Status e = store_->UpdateJob(j); !e.ok()) return e;
        }
        for (TaskRecord& t : c.inserts) {
          if (Status e = store_->InsertTask(&t); !e.ok()) return e;
        }
        for (const TaskRecord& t : c.updates) {
          if (Status e = store_->UpdateTask(t); !e.ok()) return e;
        }
        if (c.result) {
          if (Status e = store_->InsertResult(*c.result); !e.ok()) return e;
        }
      }
      return Status::Ok();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "cadenza coordinator: cannot write its database (%s); stopping: a restart recovers the last written state\n",
                   s.message().c_str());
      std::abort();
    }
    lock.lock();
    committing_ = false;
    durable_ = std::max(durable_, last);
    durable_cv_.notify_all();
  }
}

}  // namespace cadenza::coord
