// Worker groups started on demand: the GroupLauncher interface, its Slurm (sbatch/scancel/squeue) and local (mpirun)
// implementations, and the process-runner seam that lets the Slurm one be tested with a fake.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace cadenza::coord {

// What a command printed and how it ended.
struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string output;  // stdout and stderr together
};

// Runs a command to its end. The seam between SlurmLauncher and the real sbatch/scancel/squeue.
class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // argv[0] is looked up on PATH. An error only when the command cannot run at all (not found: NOT_FOUND).
  virtual StatusOr<ProcessResult> Run(const std::vector<std::string>& argv) = 0;
};
std::unique_ptr<ProcessRunner> MakeSystemProcessRunner();

// One worker group to start: `cadenza-worker --coordinator <coordinator> --token-file <token_file>` on `ranks`
// ranks over `nodes` nodes, `threads_per_rank` threads each, plus `worker_args`.
struct GroupSpec {
  int nodes = 1;
  int ranks = 2;
  int threads_per_rank = 1;
  std::string coordinator;  // host:port the ranks dial
  std::string token_file;   // first line: the bearer token of the group
  std::vector<std::string> worker_args;
};

enum class GroupState { kQueued, kRunning, kEnded };
const char* GroupStateName(GroupState s);

struct LaunchedGroup {
  std::string id;           // Slurm job id, or "local-N"
  std::string worker_name;  // the name the group registers with (cadenza-worker --name): slurm-<job id>, local-N
  GroupState state = GroupState::kQueued;
  std::string detail;       // Slurm's reason / the exit code
};

class GroupLauncher {
 public:
  virtual ~GroupLauncher() = default;
  virtual std::string kind() const = 0;  // "slurm", "local"
  virtual StatusOr<LaunchedGroup> Launch(const GroupSpec& spec) = 0;
  // Stops a group: its ranks hand their tasks back (SIGTERM / SIGUSR1) and exit.
  virtual Status Cancel(const std::string& id) = 0;
  // The groups this launcher started that have not ended (for Slurm: found by job name, so a restarted coordinator
  // finds the groups its previous run submitted). The local launcher lists a group that ended once more, kEnded
  // with "exit code N" as its detail.
  virtual StatusOr<std::vector<LaunchedGroup>> List() = 0;
};

struct SlurmLauncherOptions {
  std::string script = "slurm/worker.sbatch";  // sbatch script taking HOST:PORT TOKEN_FILE [worker options]
  std::string job_name = "cadenza-worker";     // squeue --name finds this coordinator's groups by it
  std::vector<std::string> sbatch_args;        // --partition=..., --account=..., --qos=..., --time=..., --gres=gpu:N
  std::string output;                          // sbatch --output (empty: the script's own)
  std::string worker;                          // exported to the job as CADENZA_WORKER (empty: the script's default)
};
std::unique_ptr<GroupLauncher> MakeSlurmLauncher(SlurmLauncherOptions options, std::unique_ptr<ProcessRunner> runner);

struct LocalLauncherOptions {
  std::string mpirun = "mpirun";
  std::string worker = "cadenza-worker";
  std::string log_dir = ".";  // <log_dir>/<id>.log per group
  std::string log_file;       // instead: every group's output in this one file (`cadenza demo`: workers.log)
  std::string name_prefix = "local";  // groups are <prefix>-1, <prefix>-2, ... (their --name and id)
};
// Groups as `mpirun -np ranks cadenza-worker ...` process groups of this process (what `cadenza demo` starts).
std::unique_ptr<GroupLauncher> MakeLocalLauncher(LocalLauncherOptions options);

// Runs argv in a new process group (so a signal to the group reaches mpirun and every rank), signals unblocked,
// with stdout and stderr appended to `log` (or, `append` false, written over it); returns its pid, or -1 if fork
// failed (exit code 127 if argv[0] cannot run).
pid_t SpawnProcessGroup(const std::vector<std::string>& argv, const std::string& log, bool append);

// `cadenza-worker` next to this binary, in the build tree's worker/ folder, or on PATH; $CADENZA_WORKER wins.
std::string DefaultWorkerBinary();

// The token the groups a coordinator launches register with: `user`'s worker token in a tokens file ("<token> <user>
// [role]" lines, coordinator/auth.h), else that user's admin token; with an empty `user`, the first such token of
// anyone. NOT_FOUND naming the file and the user when there is none.
StatusOr<std::string> TokenOfUser(const std::string& tokens_file, const std::string& user);

}  // namespace cadenza::coord
