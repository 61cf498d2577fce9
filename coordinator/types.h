// Plain records of the coordinator (jobs, tasks, results, worker groups) and the views its calls answer with: no
// gRPC, no SQLite, no torch. The client library (convert.h) and the worker include these, never the scheduler's headers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cadenza::coord {

// Values equal the cadenza.v1 enums (proto/cadenza/v1/common.proto).
enum class TaskKind { kUnspecified = 0, kTrain = 1, kGenerate = 2, kEvaluate = 3, kAggregate = 4, kScore = 5, kProbe = 6 };
inline constexpr int kNumTaskKinds = 7;  // kUnspecified included
enum class TaskState { kUnspecified = 0, kBlocked = 1, kPending = 2, kLeased = 3, kSucceeded = 4, kFailed = 5, kCancelled = 6 };
inline constexpr int kNumTaskStates = 7;  // kUnspecified included

// How many tasks of one kind are in one state (/metrics).
struct TaskCount {
  TaskKind kind;
  TaskState state;
  int64_t count;
};
enum class JobState { kUnspecified = 0, kQueued = 1, kRunning = 2, kSucceeded = 3, kFailed = 4, kCancelled = 5 };

// Names as the CLI, the logs and the HTTP API print them; "unknown" for a value outside the enum (a newer peer's).
inline const char* TaskKindName(TaskKind k) {
  static const char* const names[] = {"unspecified", "train", "generate", "evaluate", "aggregate", "score", "probe"};
  const int i = static_cast<int>(k);
  return i >= 0 && i < kNumTaskKinds ? names[i] : "unknown";
}
inline const char* TaskStateName(TaskState s) {
  static const char* const names[] = {"unspecified", "blocked", "pending", "leased", "succeeded", "failed", "cancelled"};
  const int i = static_cast<int>(s);
  return i >= 0 && i < kNumTaskStates ? names[i] : "unknown";
}
inline const char* JobStateName(JobState s) {
  static const char* const names[] = {"unspecified", "queued", "running", "succeeded", "failed", "cancelled"};
  const int i = static_cast<int>(s);
  return i >= 0 && i <= static_cast<int>(JobState::kCancelled) ? names[i] : "unknown";
}
inline bool IsTerminal(TaskState s) { return s == TaskState::kSucceeded || s == TaskState::kFailed || s == TaskState::kCancelled; }
inline bool IsTerminal(JobState s) { return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled; }

// One experiment as submitted (fields override the YAML's; see ExperimentSpec in client.proto).
struct ExperimentSpec {
  std::string experiment_yaml;
  std::string name, dataset, model_family, output_dir, reference_split;
  uint64_t seed = 0;
  int samples = 0;
  int samples_per_task = 0;
  std::map<std::string, std::string> axes;  // set by sweep expansion: the experiment's cell
};

struct NamedModel {
  std::string name, model_yaml;
  std::map<std::string, std::string> set;  // experiment key -> YAML value, for this model's runs only
};
struct GridAxis {
  std::string key;
  std::vector<std::string> values;
};
struct Budget {
  int64_t tokens = 0;
  double epochs = 0;
  int64_t steps = 0;
};

// See SweepSpec in client.proto and docs/sweeps.md.
struct SweepSpec {
  ExperimentSpec base;
  std::vector<std::string> datasets, model_families;
  std::vector<uint64_t> seeds;
  std::string name;
  std::vector<NamedModel> models;
  double match_tolerance = 0;  // 0: 0.10
  bool allow_unmatched = false;
  std::vector<double> dataset_fractions;
  std::vector<int> context_lengths;
  std::vector<GridAxis> grid;
  int random = 0;
  uint64_t random_seed = 0;
  Budget budget;
};

// A validated experiment: every field resolved, `experiment_yaml` the effective (self-contained) YAML.
struct Experiment {
  std::string name, dataset, model_family, output_dir, reference_split, experiment_yaml;
  uint64_t seed = 1;
  int samples = 8;
  int samples_per_task = 0;
  std::map<std::string, std::string> axes;  // its sweep cell: model, dataset_fraction, context_length, grid keys
  int64_t parameters = 0;                   // trainable parameters of its model (core/model_size.h)
  // A probe task follows training (`probe.lengths` is non-empty). Not stored: set by ValidateExperiment and, after a
  // restart, by Scheduler::Recover from `experiment_yaml` (outside the scheduler's lock).
  bool probe = false;
};

struct WorkerKey {
  int64_t group_id = 0;
  int rank = 0;
  bool operator<(const WorkerKey& o) const { return group_id != o.group_id ? group_id < o.group_id : rank < o.rank; }
  bool operator==(const WorkerKey& o) const { return group_id == o.group_id && rank == o.rank; }
  std::string ToString() const { return std::to_string(group_id) + "/" + std::to_string(rank); }
};

struct WorkerGroup {
  int64_t id = 0;
  std::string host, device, name;
  std::string owner;  // the user whose token registered it ("" in databases older than owners: anyone's)
  int ranks = 1;
  int threads_per_rank = 1;
  int64_t registered_ms = 0;
};

struct JobRecord {
  int64_t id = 0;
  int64_t sweep_id = 0;
  std::string user;
  Experiment experiment;
  JobState state = JobState::kQueued;
  int64_t created_ms = 0, finished_ms = 0;
  std::string error;
};

struct TaskRecord {
  int64_t id = 0;
  int64_t job_id = 0;
  TaskKind kind = TaskKind::kTrain;
  TaskState state = TaskState::kPending;
  int attempt = 0;       // attempts leased so far (the current one while leased)
  int max_attempts = 1;  // 1 + retry budget
  int shard_index = 0, shard_count = 1;
  int sample_begin = 0, sample_count = 0;
  int64_t parent_id = 0;     // evaluate: its generate task
  std::string checkpoint;    // train: the latest checkpoint reported (a retry resumes from it)
  std::string message;       // last progress message or error
  double fraction = 0;
  WorkerKey worker;          // the holder while leased
  // In memory only: renewed by the holder's heartbeats; reset to now + lease on recovery.
  int64_t lease_expires_ms = 0;
};

// A recorded task result (exactly one per task).
struct ResultRecord {
  int64_t task_id = 0;
  int attempt = 0;
  int64_t job_id = 0;
  TaskKind kind = TaskKind::kTrain;
  int shard_index = 0;
  std::map<std::string, double> metrics;
  std::vector<std::string> artifacts;
  std::string checkpoint, summary;
  int64_t recorded_ms = 0;
};

// ---- views: what the scheduler and the result queries answer, and the client's conversions read ----

// Bit mask of task kinds a worker takes.
constexpr uint32_t KindBit(TaskKind k) { return 1u << static_cast<int>(k); }

// One attempt of one task, as a worker runs it (see Task in proto/cadenza/v1/common.proto).
struct Assignment {
  TaskRecord task;
  std::string user;
  Experiment experiment;
  std::string checkpoint;   // train: where latest.pt goes / resume from; generate: the trained checkpoint
  bool resume = false;      // train: resume from `checkpoint`
  std::vector<uint64_t> seeds;
  std::string samples_dir, report_path;
  std::vector<std::string> inputs;
};

// A task its holder should stop: that attempt is no longer its lease.
struct StopNotice {
  int64_t task_id = 0;
  int attempt = 0;
};

struct TaskCountsView {
  int by_state[kNumTaskStates] = {0, 0, 0, 0, 0, 0, 0};  // indexed by TaskState
};
struct JobView {
  JobRecord job;
  TaskCountsView counts;
  double progress = 0;
  std::vector<TaskRecord> tasks;  // filled by GetJob only
};

struct JobFilter {
  std::string user;
  int64_t sweep_id = 0;
  bool active_only = false;
  int limit = 1000;
};

struct ResultFilter {
  int64_t job_id = 0, sweep_id = 0, task_id = 0;
  TaskKind kind = TaskKind::kAggregate;  // kUnspecified: every kind
  std::string user, dataset, model_family;
  int limit = 10000;  // <= 0: 10000
  int64_t offset = 0;  // rows skipped first (pagination)
};
struct ResultView {
  JobRecord job;  // without its YAML
  ResultRecord result;
};

}  // namespace cadenza::coord
