// Data-parallel scaling: tokens/s at a world of 1 and of 2 (one thread each) for both families, and the
// bandwidth of the bucketed allreduce against one raw MPI_Allreduce of the same bytes, in the same run.
// Run: mpirun --allow-run-as-root -np 2 --bind-to core -x OMP_WAIT_POLICY=passive build/bench/ddp_bench
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/experiment_config.h"
#include "core/model/sequence_model.h"
#include "core/vocabulary.h"
#include "worker/communicator.h"
#include "worker/gradient_reducer.h"
#include "worker/mpi_communicator.h"
#include "worker/timeline.h"
#include "core/process_memory.h"

namespace cadenza {
namespace {

struct Args {
  std::vector<std::string> families{"transformer", "lstm"};
  int seq = 256, batch = 8, steps = 6, warmup = 2, threads = 1, reps = 20;
  double bucket_mb = 4;
  std::string timeline;
  bool serial = false;
};

struct Row {
  std::string family;
  int64_t params = 0;
  size_t buckets = 0;
  double tps1 = 0, tps2 = 0, step1 = 0, step2 = 0, exposed_wait = 0;
  double bucketed_gbs = 0, raw_gbs = 0, bucketed_copy_gbs = 0;
};

using bench::Now;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

Row RunFamily(const Args& a, const std::string& family, Communicator& comm) {
  auto loaded = LoadModelConfig(std::string(CADENZA_SOURCE_DIR) + "/configs/models/" + family + "-base.yaml");
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().message().c_str());
    AbortJob(1);
  }
  ModelConfig c = *loaded;
  c.vocab_size = Vocabulary::Get().size();
  Row row;
  row.family = family;
  const int rank = comm.rank(), world = comm.world();
  torch::manual_seed(1 + rank);
  auto batch = torch::randint(4, c.vocab_size, {a.batch, a.seq + 1}, torch::kInt64);
  auto inputs = batch.narrow(1, 0, a.seq), targets = batch.narrow(1, 1, a.seq);
  torch::manual_seed(1);
  SequenceModel model = MakeModel(c);
  model->train();
  row.params = model->NumParameters();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4));
  auto step = [&](GradientReducer* reducer, int64_t i, double* exposed) {
    if (reducer) (void)reducer->BeginStep(i);
    const int64_t t0 = Timeline::NowMicros();
    opt.zero_grad();
    auto logits = model->forward(inputs);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
    const int64_t t1 = Timeline::NowMicros();
    loss.backward();
    const int64_t t2 = Timeline::NowMicros();
    if (reducer) {
      Status s = reducer->FinishGradients();
      if (!s.ok()) AbortJob(kExitCollectiveTimeout);
    }
    const int64_t t3 = Timeline::NowMicros();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    if (reducer) {
      reducer->RecordPhase("forward", t0, t1);
      reducer->RecordPhase("backward", t1, t2);
      reducer->RecordPhase("allreduce wait", t2, t3);
      reducer->RecordPhase("optimizer", t3, Timeline::NowMicros());
    }
    if (exposed) *exposed += (t3 - t2) * 1e-6;
  };
  const double tokens = double(a.batch) * a.seq;

  // World of one: rank 0 trains alone while the others wait (sleeping) at a barrier.
  if (rank == 0) {
    for (int i = 0; i < a.warmup; ++i) step(nullptr, i, nullptr);
    const double t = Now();
    for (int i = 0; i < a.steps; ++i) step(nullptr, i, nullptr);
    row.step1 = (Now() - t) / a.steps;
    row.tps1 = tokens / row.step1;
  }
  (void)comm.Barrier("world-1 phase");

  // World of `world`: every rank trains its own batch, gradients reduced in buckets during backward.
  Timeline timeline(rank);
  ReducerOptions ro;
  ro.bucket_bytes = size_t(a.bucket_mb * 1024 * 1024);
  ro.timeline = a.timeline.empty() ? nullptr : &timeline;
  GradientReducer reducer(comm, ro);
  if (!reducer.Attach(*model).ok()) AbortJob(1);
  row.buckets = reducer.buckets().size();
  for (int i = 0; i < a.warmup; ++i) step(&reducer, i, nullptr);
  (void)comm.Barrier("world-N phase");
  double t = Now(), exposed = 0;
  for (int i = 0; i < a.steps; ++i) step(&reducer, a.warmup + i, &exposed);
  (void)comm.Barrier("world-N phase end");
  row.step2 = (Now() - t) / a.steps;
  row.tps2 = world * tokens / row.step2;
  row.exposed_wait = exposed / a.steps;
  if (!a.timeline.empty()) (void)timeline.Write(TimelinePathForRank(a.timeline + "." + family + ".json", rank));

  // Bandwidth: the reducer's buckets vs one raw MPI_Allreduce of the same number of floats.
  const double bytes = double(reducer.total_floats()) * sizeof(float);
  std::vector<float> raw(reducer.total_floats(), 1.0f);
  // Medians of the repetitions: the machine is shared, and one descheduled rank spoils a single round.
  std::vector<double> bucketed, raw_t, copy_t;
  for (int r = 0; r < a.reps + 2; ++r) {
    const bool timed = r >= 2;  // two untimed rounds first
    (void)comm.Barrier("bandwidth");
    t = Now();
    if (!reducer.ReduceBucketsOnly(a.serial).ok()) AbortJob(kExitCollectiveTimeout);
    if (timed) bucketed.push_back(Now() - t);
    (void)comm.Barrier("bandwidth");
    t = Now();
    MPI_Allreduce(MPI_IN_PLACE, raw.data(), int(raw.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (timed) raw_t.push_back(Now() - t);
    (void)comm.Barrier("bandwidth");
    t = Now();
    if (!reducer.ReduceExistingGradients().ok()) AbortJob(kExitCollectiveTimeout);
    if (timed) copy_t.push_back(Now() - t);
  }
  row.bucketed_gbs = bytes / Median(bucketed) / 1e9;
  row.raw_gbs = bytes / Median(raw_t) / 1e9;
  row.bucketed_copy_gbs = bytes / Median(copy_t) / 1e9;
  return row;
}

}  // namespace
}  // namespace cadenza

int main(int argc, char** argv) {
  cadenza::KeepFreedMemory();
  cadenza::Args a;
  CLI::App app{"ddp_bench: data-parallel scaling and bucketed-allreduce bandwidth (run under mpirun -np 2)"};
  app.add_option("--families", a.families, "model families (configs/models/<family>-base.yaml)");
  app.add_option("--seq", a.seq, "tokens per window");
  app.add_option("--batch", a.batch, "windows per rank per step");
  app.add_option("--steps", a.steps, "timed steps per phase");
  app.add_option("--warmup", a.warmup, "untimed steps first");
  app.add_option("--threads", a.threads, "torch threads per rank");
  app.add_option("--reps", a.reps, "allreduce repetitions for the bandwidth figures");
  app.add_option("--bucket-mb", a.bucket_mb, "gradient bucket size in MiB");
  app.add_option("--timeline", a.timeline, "write per-rank chrome traces: FILE.<family>.rankR.json");
  app.add_flag("--serial-buckets", a.serial, "bandwidth: wait for each bucket before starting the next");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(a.threads);
  auto made = cadenza::MakeMpiCommunicator(&argc, &argv);
  if (!made.ok()) return 1;
  auto& comm = **made;
  comm.set_timeout_seconds(600);
  std::vector<cadenza::Row> rows;
  for (const auto& f : a.families) rows.push_back(cadenza::RunFamily(a, f, comm));
  if (comm.rank() == 0) {
    std::printf("\nddp_bench: %d ranks, %d thread(s) each, T=%d, batch %d per rank, buckets of %.1f MiB, %d+%d steps\n",
                comm.world(), a.threads, a.seq, a.batch, a.bucket_mb, a.warmup, a.steps);
    std::printf("%-12s %9s %7s | %12s %12s %10s | %10s %12s | %12s %12s %8s %14s\n", "family", "params", "buckets",
                "world1 tok/s", "worldN tok/s", "scaling", "step1 s", "exposed wait", "bucketed GB/s", "raw GB/s",
                "ratio", "w/ copy GB/s");
    for (const auto& r : rows) {
      std::printf("%-12s %9lld %7zu | %12.0f %12.0f %9.1f%% | %10.3f %10.1f ms | %12.2f %12.2f %7.1f%% %14.2f\n",
                  r.family.c_str(), (long long)r.params, r.buckets, r.tps1, r.tps2,
                  100.0 * r.tps2 / (comm.world() * r.tps1), r.step1, r.exposed_wait * 1e3, r.bucketed_gbs, r.raw_gbs,
                  100.0 * r.bucketed_gbs / r.raw_gbs, r.bucketed_copy_gbs);
    }
    std::printf("scaling = worldN tok/s / (N x world1 tok/s); exposed wait = time from the end of backward to all "
                "buckets reduced (what overlap did not hide); GB/s = gradient bytes / median time per allreduce\n");
  }
  made->reset();
  cadenza::FinalizeMpi();
  return 0;
}
