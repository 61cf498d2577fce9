// `cadenza-worker train` (data-parallel training through RunTraining, worker/task_runners.h) and
// `cadenza-worker --coordinator` (the agent, worker/agent.h), under mpirun or srun.

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/build_info.h"
#include "core/experiment_config.h"
#include "core/model/trainer.h"
#include "core/threads.h"
#include "core/run_layout.h"
#include "worker/agent.h"
#include "worker/communicator.h"
#include "worker/gradient_reducer.h"
#include "worker/test_communicators.h"
#include "worker/mpi_communicator.h"
#include "worker/task_runners.h"
#include "worker/timeline.h"
#include "core/process_memory.h"

namespace cadenza {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
extern "C" void OnStopSignal(int signo) {
  g_signal.store(signo);
  g_stop.store(true);
}

struct WorkerArgs {
  std::string experiment, out, timeline, comm = "auto", fault;
  int threads = 0;
  double bucket_mb = 4;
  double timeout = 60;
  bool resume = false, resume_if_checkpoint = false, quiet = false;
  int64_t stop_after = 0;
  int stopped_exit_code = 0;  // exit code when a signal stopped training before its last step (checkpoint written)
};

int RunWorkerTrain(WorkerArgs a, int* argc, char*** argv) {
  std::unique_ptr<Communicator> comm;
  const bool mpi = a.comm == "mpi" || (a.comm == "auto" && LaunchedAsMpiJob());
  if (mpi) {
    auto made = MakeMpiCommunicator(argc, argv);
    if (!made.ok()) {
      std::fprintf(stderr, "cadenza-worker: error: %s\n", made.status().message().c_str());
      return 1;
    }
    comm = std::move(*made);
  } else {
    comm = MakeInProcessCommunicator();
  }
  const int rank = comm->rank(), world = comm->world();
  // Every error ends the whole job: a rank that returns alone would leave the others waiting for it.
  auto fail = [&](const std::string& message, int code) -> int {
    std::fprintf(stderr, "cadenza-worker: rank %d of %d: error: %s\n", rank, world, message.c_str());
    std::fflush(stderr);
    if (world > 1) AbortJob(code);
    FinalizeMpi();
    return code;
  };

  auto config = LoadExperimentConfig(a.experiment);
  if (!config.ok()) return fail(config.status().message(), 1);
  if (!a.out.empty()) config->out = a.out;

  Timeline timeline(rank);
  const std::string timeline_path = a.timeline.empty() ? "" : TimelinePathForRank(a.timeline, rank);
  if (const char* f = std::getenv("CADENZA_WORKER_FAULT")) a.fault = f;
  if (!a.fault.empty()) {  // the distributed tests' way to make one rank exit, stall or be signalled at a step
    auto plan = ParseFaultPlan(a.fault);
    if (!plan.ok()) return fail("CADENZA_WORKER_FAULT: " + plan.status().message(), 2);
    comm = WithFault(std::move(comm), *plan);
  }
  comm->set_timeout_seconds(a.timeout);
  comm->set_timeout_handler([&](const std::string& message) {
    if (!timeline_path.empty()) (void)timeline.Write(timeline_path);
    std::fprintf(stderr, "cadenza-worker: %s; aborting the job with exit code %d\n", message.c_str(),
                 kExitCollectiveTimeout);
    std::fflush(stderr);
    AbortJob(kExitCollectiveTimeout);
  });

  ReducerOptions ro;
  ro.bucket_bytes = size_t(a.bucket_mb * 1024 * 1024);
  ro.timeline = timeline_path.empty() ? nullptr : &timeline;
  GradientReducer reducer(*comm, ro);

  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGUSR1, OnStopSignal);  // Slurm's warning signal (--signal=USR1@N), as the agent takes it
  TrainOptions o;
  o.resume = a.resume;
  if (a.resume_if_checkpoint) {
    // A run folder that holds a checkpoint continues, whatever started this job (a requeue, a resubmission by hand).
    // Rank 0 looks and every rank follows its answer, so the ranks agree even on a filesystem that shows a new file late.
    double found = rank == 0 && std::filesystem::exists(run_layout::LatestCheckpoint(config->out)) ? 1 : 0;
    if (Status agreed = comm->AllreduceSum(&found, 1, "resume check"); !agreed.ok()) return fail(agreed.message(), kExitCollectiveTimeout);
    o.resume = o.resume || found > 0;
    if (rank == 0) {  // even with --quiet: the job's log says which it was
      std::fprintf(stderr, "cadenza-worker: %s\n", found > 0 ? ("resuming from " + run_layout::LatestCheckpoint(config->out)).c_str()
                                                              : ("no checkpoint in " + config->out + ": a new run").c_str());
    }
  }
  o.progress = !a.quiet;
  o.stop_after_steps = a.stop_after;
  o.stop_requested = &g_stop;
  o.threads = a.threads > 0 ? a.threads
              : config->train.threads > 0
                  ? config->train.threads
                  : DefaultThreads();
  if (rank == 0 && !a.quiet) {
    std::fprintf(stderr, "cadenza-worker: %d rank(s) over %s, %d thread(s) each, global batch %d (%d per rank), "
                 "buckets of %.2f MB, timeout %.0f s\n", world, comm->name().c_str(), o.threads,
                 config->train.batch_size, world > 0 ? config->train.batch_size / world : 0, a.bucket_mb, a.timeout);
  }
  auto run = RunTraining(*config, &reducer, /*on_progress=*/nullptr, o, a.experiment);
  if (!timeline_path.empty()) {
    Status s = timeline.Write(timeline_path);
    if (!s.ok()) std::fprintf(stderr, "cadenza-worker: warning: %s\n", s.message().c_str());
  }
  if (!run.ok()) return fail(run.status().message(), 1);
  Status s = comm->Barrier("final barrier");
  if (!s.ok()) return fail(s.message(), kExitCollectiveTimeout);
  const TrainSummary& r = run->summary;
  if (rank == 0) {
    std::printf("run            %s (%s, %lld parameters)\n", config->out.c_str(), config->model.family.c_str(),
                (long long)r.parameters);
    std::printf("ranks          %d (%s)\n", world, comm->name().c_str());
    std::printf("steps          %lld of %lld%s\n", (long long)r.steps, (long long)run->config.train.steps,
                r.early_stopped ? " (early stop)" : r.interrupted ? " (stopped: resume with --resume)" : "");
    std::printf("train loss     %.6f\n", r.last_train_loss);
    std::printf("val            best NLL/token %.4f, perplexity %.2f\n", r.best_val_nll, r.best_val_perplexity);
    std::printf("speed          %.0f tokens/s (all ranks) over %.1f s\n", r.tokens_per_second, r.seconds);
    std::printf("checkpoint     %s\n", r.checkpoint.c_str());
    if (!timeline_path.empty()) std::printf("timeline       %s (one file per rank)\n", timeline_path.c_str());
  }
  comm.reset();
  FinalizeMpi();
  return r.interrupted && a.stop_after == 0 ? a.stopped_exit_code : 0;
}

struct AgentArgs {
  std::string coordinator, token_file, tls_root, tls_name, comm = "auto";
  AgentOptions o;
};

int RunWorkerAgent(AgentArgs a, int* argc, char*** argv) {
  a.o.client.target = a.coordinator;
  if (!a.token_file.empty()) {
    auto token = coord::ReadTokenFile(a.token_file);
    if (!token.ok()) {
      std::fprintf(stderr, "cadenza-worker: error: --token-file: %s\n", token.status().message().c_str());
      return 2;
    }
    a.o.client.token = *token;
  } else if (const char* t = std::getenv("CADENZA_TOKEN")) {
    a.o.client.token = t;
  }
  if (!a.tls_root.empty()) {
    std::ifstream in(a.tls_root);
    std::stringstream pem;
    pem << in.rdbuf();
    if (!in || pem.str().empty()) {
      std::fprintf(stderr, "cadenza-worker: error: --tls-root: %s: cannot read the certificate\n", a.tls_root.c_str());
      return 2;
    }
    a.o.client.tls_root_cert_pem = pem.str();
    a.o.client.tls_server_name = a.tls_name;
  }
  std::unique_ptr<Communicator> comm;
  if (a.comm == "mpi" || (a.comm == "auto" && LaunchedAsMpiJob())) {
    auto made = MakeMpiCommunicator(argc, argv);
    if (!made.ok()) {
      std::fprintf(stderr, "cadenza-worker: error: %s\n", made.status().message().c_str());
      return 1;
    }
    comm = std::move(*made);
  } else {
    comm = MakeInProcessCommunicator();
  }
  if (a.o.threads <= 0) a.o.threads = DefaultThreads();
  comm->set_timeout_seconds(a.o.timeout);
  comm->set_timeout_handler([](const std::string& message) {
    std::fprintf(stderr, "cadenza-worker: %s; aborting the job with exit code %d\n", message.c_str(), kExitCollectiveTimeout);
    std::fflush(stderr);
    AbortJob(kExitCollectiveTimeout);
  });
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGUSR1, OnStopSignal);
  const int rc = RunAgent(a.o, *comm, &g_stop, &g_signal);
  if (rc == 1 && comm->world() > 1) AbortJob(1);  // a rank that returns alone would leave the others waiting
  comm.reset();
  FinalizeMpi();
  return rc;
}

}  // namespace
}  // namespace cadenza

int main(int argc, char** argv) {
  cadenza::ReexecWithPassiveOpenMpWait(argv);  // before libgomp's threads exist: a direct start restarts once
  cadenza::SetCommandLine(argc, argv);  // recorded in each run's config.yaml
  // Large tensors and MPI buffers otherwise get mmap'd and page-faulted anew every step (PLATFORM.md).
  cadenza::KeepFreedMemory();
  cadenza::WorkerArgs a;
  cadenza::AgentArgs g;
  CLI::App app{
      "cadenza-worker: data-parallel training over MPI ranks, alone or as a worker group of a coordinator.\n"
      "  mpirun -np N cadenza-worker --coordinator HOST:PORT --token-file F   (or srun --mpi=pmix -n N ...)\n"
      "    The agent (docs/worker.md): rank 0 registers the group and leases training tasks, which every rank trains\n"
      "    together; each rank leases generate/evaluate/aggregate tasks on its own; heartbeats per rank keep the\n"
      "    leases. SIGTERM/SIGUSR1/SIGINT: checkpoint, hand the task back (it resumes from the checkpoint), exit 4.\n"
      "  mpirun -np N cadenza-worker train EXPERIMENT.yaml      (or srun --mpi=pmix -n N cadenza-worker ...)\n"
      "Each rank reads every N-th window; train.batch_size is the GLOBAL batch (batch_size/N per rank), so the\n"
      "same experiment follows the same loss trajectory at any N (exactly without dropout) and resumes at any N.\n"
      "Gradients are averaged in buckets reduced while backward runs. Rank 0 writes the run folder.\n"
      "Exit codes: 0 done (agent: idle for --max-idle), 1 error, 2 bad usage, 4 agent stopped by a signal,\n"
      "75 a collective timed out (a rank died or stalled)."};
  app.require_subcommand(0, 1);
  app.add_option("--coordinator", g.coordinator, "agent: coordinator HOST:PORT to serve (required unless `train`)");
  app.add_option("--token-file", g.token_file, "agent: file whose first line is the bearer token (default: $CADENZA_TOKEN)");
  app.add_option("--tls-root", g.tls_root, "agent: PEM certificate of the coordinator's CA (default: plaintext)");
  app.add_option("--tls-server-name", g.tls_name, "agent: name to check the certificate against (default: HOST)");
  app.add_option("--name", g.o.name, "agent: worker group name (default: slurm-$SLURM_JOB_ID or host:pid)");
  app.add_option("--threads", g.o.threads, "agent: intra-op threads per rank (default: cores / ranks on this node)")
      ->check(CLI::Range(0, cadenza::kMaxThreads));
  app.add_option("--bucket-mb", g.o.bucket_mb, "agent: gradient bucket size in MiB for training tasks (default 4)")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout", g.o.timeout, "agent: seconds a training collective may wait before exit 75 (default 60)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-idle", g.o.max_idle_seconds, "agent: exit 0 after this many seconds with no task on any rank (default 0: never)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--connect-timeout", g.o.connect_timeout_ms, "agent: milliseconds rank 0 waits for the coordinator at start (default 60000)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--bars", g.o.sample.bars, "agent: generate tasks stop a sample after this many bars (default 8)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-tokens", g.o.sample.max_tokens, "agent: generate tasks cap a sample at this many tokens (default 1500)")
      ->check(CLI::PositiveNumber);
  app.add_option("--temperature", g.o.sample.temperature, "agent: sampling temperature (default 1)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", g.o.sample.top_p, "agent: nucleus sampling mass (default 0.95)")->check(CLI::Range(0.0, 1.0));
  app.add_flag("--wav", g.o.sample.wav, "agent: generate tasks also render WAV (when the soundfont exists)");
  app.add_option("--eval-jobs", g.o.eval_jobs, "agent: threads of an evaluate/aggregate task (default 1)")->check(CLI::Range(1, cadenza::kMaxThreads));
  app.add_option("--comm", g.comm, "agent: collectives: auto (MPI when launched by mpirun/srun), mpi, local")
      ->check(CLI::IsMember({"auto", "mpi", "local"}));
  app.add_flag("-q,--quiet", g.o.quiet, "agent: no log lines");
  g.o.threads = 0;
  auto* train = app.add_subcommand("train", "train an experiment data-parallel on every rank of the job");
  train->add_option("experiment", a.experiment, "experiment YAML (configs/experiments/*.yaml)")->required()->check(CLI::ExistingFile);
  train->add_option("--out", a.out, "run folder (default: the experiment's `out`)");
  train->add_option("--threads", a.threads, "intra-op threads per rank (default: train.threads, or cores / ranks on this node)")
      ->check(CLI::Range(0, cadenza::kMaxThreads));
  train->add_option("--bucket-mb", a.bucket_mb, "gradient bucket size in MiB (default 4)")->check(CLI::PositiveNumber);
  train->add_option("--timeline", a.timeline, "write a chrome://tracing JSON per rank: FILE -> FILE.rankR.json");
  train->add_option("--timeout", a.timeout, "seconds a collective may wait before the job is aborted with exit code 75 (default 60)")
      ->check(CLI::PositiveNumber);
  train->add_flag("--resume", a.resume, "continue from <out>/checkpoints/latest.pt (at any number of ranks)");
  train->add_flag("--resume-if-checkpoint", a.resume_if_checkpoint,
                  "continue from <out>/checkpoints/latest.pt when it exists, else start a new run (batch jobs: slurm/train.sbatch)");
  train->add_option("--stopped-exit-code", a.stopped_exit_code,
                    "exit code when a signal stopped training early, after its checkpoint (default 0; slurm/train.sbatch "
                    "uses 4 and requeues the job)")
      ->check(CLI::Range(0, 255));
  train->add_option("--stop-after", a.stop_after, "checkpoint and stop after this many steps (0: run to the end)")
      ->check(CLI::NonNegativeNumber);
  train->add_option("--comm", a.comm, "collectives: auto (MPI when launched by mpirun/srun), mpi, local")
      ->check(CLI::IsMember({"auto", "mpi", "local"}));
  train->add_flag("-q,--quiet", a.quiet, "no progress lines");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*train) return cadenza::RunWorkerTrain(a, &argc, &argv);
  if (g.coordinator.empty()) {
    std::fprintf(stderr, "cadenza-worker: error: give --coordinator HOST:PORT (the agent) or the `train` command\n%s",
                 app.help().c_str());
    return 2;
  }
  return cadenza::RunWorkerAgent(g, &argc, &argv);
}
