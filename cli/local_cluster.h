// A local cluster for the main job: an in-process coordinator on a free loopback port and one mpirun worker group.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/types.h>

#include "coordinator/client.h"
#include "coordinator/launcher.h"
#include "coordinator/server.h"
#include "core/status.h"

namespace cadenza {

struct LocalClusterOptions {
  std::string work_dir;                 // coordinator.db, tokens.txt, workers.log (wiped at start)
  int ranks = 2;                        // ranks of the worker group (mpirun -np)
  int threads_per_rank = 1;             // intra-op threads of each rank
  std::vector<std::string> worker_args; // extra `cadenza-worker` options (sampling: --bars, --max-tokens, --wav ...)
  bool progress = true;                 // a line per task state change on stdout
};

struct LocalExperiment {
  std::string yaml_file;  // experiment YAML with `model:` inline (its dataset and out are used as they are)
  int samples = 8;        // generated and evaluated pieces
};

struct LocalExperimentResult {
  std::string name, output_dir;
  std::string checkpoint;                     // the trained checkpoint the samples came from
  std::map<std::string, double> train;        // metrics of the training task (val_nll, tokens_per_second, ...)
  std::map<std::string, double> generate;     // generate metrics summed over shards (new_tokens, generate_seconds)
  std::map<std::string, double> aggregate;    // metrics of the job's result (the whole sample set evaluated)
  std::string samples_dir;                    // <output_dir>/samples (one folder per shard)
  std::string result_json;                    // <output_dir>/result.json (evaluation report, docs/evaluation.md)
};

// A coordinator in this process (free loopback ports, a fresh token and database in work_dir) and one
// `mpirun -np ranks cadenza-worker --coordinator ...` group, started by the coordinator's local launcher
// (coordinator/launcher.h, the same interface as `launcher: slurm`). Stop (or the destructor) hands the workers' tasks back
// (SIGUSR1) and shuts the coordinator down. While it runs, SIGINT, SIGTERM and SIGHUP make Follow return Aborted, so
// the caller unwinds to Stop and no worker outlives the process.
class LocalCluster {
 public:
  static StatusOr<std::unique_ptr<LocalCluster>> Start(const LocalClusterOptions& options);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  coord::CoordinatorClient& client() { return *client_; }
  const std::string& target() const { return target_; }      // gRPC host:port
  const std::string& token() const { return token_; }
  const std::string& http_url() const { return http_url_; }  // the live page and /api/v1 ("" without HTTP)
  const std::string& log() const { return log_; }            // the worker group's output
  // Prints a line per task leased or finished until every job succeeded; an error names a failed job, or the
  // worker group when it exits first.
  Status Follow(const std::vector<int64_t>& jobs);
  void Stop();

 private:
  LocalCluster() = default;
  LocalClusterOptions options_;
  std::unique_ptr<coord::CoordinatorServer> server_;
  std::unique_ptr<coord::CoordinatorClient> client_;
  std::string target_, token_, http_url_, log_;
  std::unique_ptr<coord::GroupLauncher> launcher_;  // the local mpirun launcher (coordinator/launcher.h)
  std::string group_;                               // the launched group's id ("" once it ended or was stopped)
  struct sigaction saved_handlers_[3] = {};         // SIGINT, SIGTERM, SIGHUP as they were before Start
  bool handlers_installed_ = false;
};

// Starts a LocalCluster, submits every experiment, prints
// progress until all jobs finish, stops the worker group (SIGUSR1: exit 4 after handing back) and the coordinator.
// An error names the job that failed and points at workers.log.
Status RunOnLocalCluster(const LocalClusterOptions& options, const std::vector<LocalExperiment>& experiments,
                         std::vector<LocalExperimentResult>* results);

// `cadenza demo --cluster`: the demo's train and generate stages through the local cluster (2 ranks, 1 thread
// each; samples as the single-machine demo draws them: 8 bars, at most 1500 tokens, top-p 0.95, WAV when `wav`).
// experiment_files[i] trains families[i]; its samples are then copied to <out>/samples/<family>/ so that the
// demo's evaluate, probe and table stages follow unchanged.
Status RunDemoStagesOnCluster(const std::string& out, const std::vector<std::string>& families,
                              const std::vector<std::string>& experiment_files, int samples, bool wav);

}  // namespace cadenza
