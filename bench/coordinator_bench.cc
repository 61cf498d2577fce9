// coordinator_bench: 500 simulated workers heartbeating at 1 Hz while leasing and completing tasks against a real
// coordinator (gRPC on loopback, SQLite on disk): lease+complete pairs/s and p50/p99 latency, as a table; then the
// same alone and beside a stream of result queries (phases alone / with queries, A B B A), and one AggregateResults
// over 10,000 results.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "coordinator/client.h"
#include "coordinator/convert.h"
#include "coordinator/server.h"
#include "core/process_memory.h"

namespace fs = std::filesystem;
using namespace cadenza;
using namespace cadenza::coord;
using Clock = std::chrono::steady_clock;

namespace {

const char* kToken = "bench-token-000001";

// Latencies in microseconds, appended under a lock (callbacks run on gRPC threads).
struct Samples {
  std::mutex mu;
  std::vector<double> us;
  void Add(double v) {
    std::lock_guard<std::mutex> l(mu);
    us.push_back(v);
  }
  double Pct(double p) {
    std::lock_guard<std::mutex> l(mu);
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1, static_cast<size_t>(p * (us.size() - 1) + 0.5))] / 1000.0;
  }
  size_t Size() {
    std::lock_guard<std::mutex> l(mu);
    return us.size();
  }
};

// CPU time of the calling thread: what a query costs whatever the neighbours do.
double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
// CPU time of the whole process (every thread, user + system): server and client sides of a call together.
double ProcessCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
double Us(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }

struct Bench {
  std::vector<CoordinatorClient*> clients;  // one connection each; loops and heartbeats spread over them
  std::vector<v1::WorkerRef> workers;
  std::atomic<bool> measuring{false}, stopping{false};
  std::atomic<int64_t> next_worker{0}, empty_leases{0}, errors{0}, inflight{0};
  // Per phase: 0 alone, 1 with result queries running beside the loops.
  std::atomic<int> phase{0};
  std::atomic<int64_t> pairs[2] = {{0}, {0}}, heartbeats[2] = {{0}, {0}};
  Samples lease[2], complete[2], pair[2], heartbeat[2];
  std::mutex mu;
  std::condition_variable idle;

  // One closed loop: lease -> complete -> lease ... on the next simulated worker each time.
  void StartPair(CoordinatorClient* client) {
    if (stopping.load()) {
      if (--inflight == 0) idle.notify_all();
      return;
    }
    const v1::WorkerRef w = workers[next_worker++ % workers.size()];
    auto ctx = std::make_shared<grpc::ClientContext>();
    client->Prepare(ctx.get());
    auto req = std::make_shared<v1::LeaseTaskRequest>();
    *req->mutable_worker() = w;
    auto resp = std::make_shared<v1::LeaseTaskResponse>();
    const auto t0 = Clock::now();
    client->worker_stub()->async()->LeaseTask(ctx.get(), req.get(), resp.get(), [this, client, ctx, req, resp, w, t0](grpc::Status s) {
      const auto t1 = Clock::now();
      if (!s.ok() || !resp->leased()) {
        (s.ok() ? empty_leases : errors)++;
        StartPair(client);
        return;
      }
      if (measuring.load()) lease[phase].Add(Us(t0, t1));
      auto cctx = std::make_shared<grpc::ClientContext>();
      client->Prepare(cctx.get());
      auto creq = std::make_shared<v1::CompleteTaskRequest>();
      *creq->mutable_worker() = w;
      creq->mutable_task()->set_task_id(resp->task().task_id());
      creq->mutable_task()->set_attempt(resp->task().attempt());
      (*creq->mutable_result()->mutable_metrics())["score"] = 0.5;
      auto cresp = std::make_shared<v1::CompleteTaskResponse>();
      client->worker_stub()->async()->CompleteTask(cctx.get(), creq.get(), cresp.get(), [this, client, cctx, creq, cresp, t0, t1](grpc::Status cs) {
        const auto t2 = Clock::now();
        if (!cs.ok()) {
          errors++;
        } else if (measuring.load()) {
          complete[phase].Add(Us(t1, t2));
          pair[phase].Add(Us(t0, t2));
          pairs[phase]++;
        }
        StartPair(client);
      });
    });
  }

  // Piggybacked: CompleteTask(lease_next) completes the held task and leases the next one in one round trip;
  // a plain LeaseTask only when the loop holds nothing. `task_id` 0: nothing held.
  void StartPiggy(CoordinatorClient* client, v1::WorkerRef w, int64_t task_id, int attempt) {
    if (stopping.load()) {
      if (--inflight == 0) idle.notify_all();
      return;
    }
    if (task_id == 0) {
      w = workers[next_worker++ % workers.size()];
      auto ctx = std::make_shared<grpc::ClientContext>();
      client->Prepare(ctx.get());
      auto req = std::make_shared<v1::LeaseTaskRequest>();
      *req->mutable_worker() = w;
      auto resp = std::make_shared<v1::LeaseTaskResponse>();
      client->worker_stub()->async()->LeaseTask(ctx.get(), req.get(), resp.get(), [this, client, ctx, req, resp, w](grpc::Status s) {
        if (!s.ok() || !resp->leased()) (s.ok() ? empty_leases : errors)++;
        const bool ok = s.ok() && resp->leased();
        StartPiggy(client, w, ok ? resp->task().task_id() : 0, ok ? resp->task().attempt() : 0);
      });
      return;
    }
    auto ctx = std::make_shared<grpc::ClientContext>();
    client->Prepare(ctx.get());
    auto req = std::make_shared<v1::CompleteTaskRequest>();
    *req->mutable_worker() = w;
    req->mutable_task()->set_task_id(task_id);
    req->mutable_task()->set_attempt(attempt);
    (*req->mutable_result()->mutable_metrics())["score"] = 0.5;
    req->set_lease_next(true);
    auto resp = std::make_shared<v1::CompleteTaskResponse>();
    const auto t0 = Clock::now();
    client->worker_stub()->async()->CompleteTask(ctx.get(), req.get(), resp.get(), [this, client, ctx, req, resp, w, t0](grpc::Status s) {
      if (!s.ok()) {
        errors++;
        StartPiggy(client, w, 0, 0);
        return;
      }
      if (measuring.load()) {
        complete[phase].Add(Us(t0, Clock::now()));
        pairs[phase]++;
      }
      const bool next = resp->next_leased();
      if (!next) empty_leases++;
      StartPiggy(client, w, next ? resp->next().task_id() : 0, next ? resp->next().attempt() : 0);
    });
  }

  // Every worker once per second, spread evenly: one heartbeat every 1/N s.
  void HeartbeatLoop() {
    const auto period = std::chrono::microseconds(1000000 / workers.size());
    auto next = Clock::now();
    size_t i = 0;
    while (!stopping.load()) {
      next += period;
      std::this_thread::sleep_until(next);
      CoordinatorClient* client = clients[i % clients.size()];
      auto ctx = std::make_shared<grpc::ClientContext>();
      client->Prepare(ctx.get());
      auto req = std::make_shared<v1::HeartbeatRequest>();
      *req->mutable_worker() = workers[i++ % workers.size()];
      auto resp = std::make_shared<v1::HeartbeatResponse>();
      const auto t0 = Clock::now();
      client->worker_stub()->async()->Heartbeat(ctx.get(), req.get(), resp.get(), [this, ctx, req, resp, t0](grpc::Status s) {
        if (!s.ok()) errors++;
        else if (measuring.load()) {
          heartbeat[phase].Add(Us(t0, Clock::now()));
          heartbeats[phase]++;
        }
      });
    }
  }
};

// `rate` QueryResults per second while `querying` (a dashboard's page: the sweep's generate results, --query-rows rows, 1,000 by default), on a
// connection of their own, each answered before the next (closed loop, paced).
void QueryLoop(Bench* b, CoordinatorClient* client, int64_t sweep_id, int rows_per_page, bool compact, double rate, std::atomic<bool>* querying,
               std::atomic<int64_t>* answered, std::atomic<int64_t>* failed, Samples* latency) {
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  auto next = Clock::now();
  while (!b->stopping.load()) {
    next += period;
    std::this_thread::sleep_until(next);
    if (!querying->load()) {
      next = Clock::now();
      continue;
    }
    v1::QueryResultsRequest q;
    q.set_sweep_id(sweep_id);
    q.set_kind(v1::TASK_KIND_GENERATE);
    q.set_limit(rows_per_page);
    q.set_compact(compact);
    v1::QueryResultsResponse rows;
    const auto t0 = Clock::now();
    if (!client->QueryResults(q, &rows).ok()) {
      (*failed)++;
    } else if (b->measuring.load()) {
      latency->Add(Us(t0, Clock::now()));
      (*answered)++;
    }
  }
}

// The same pacing over HTTP: what a dashboard polls (/api/v1 jobs and results pages of 100, /metrics), in turn.
void HttpQueryLoop(Bench* b, int port, int64_t sweep_id, double rate, std::atomic<bool>* querying, std::atomic<int64_t>* answered,
                   std::atomic<int64_t>* failed, Samples* latency) {
  httplib::Client http("127.0.0.1", port);
  http.set_keep_alive(true);
  const httplib::Headers auth = {{"Authorization", std::string("Bearer ") + kToken}};
  const std::string paths[] = {"/api/v1/jobs?sweep=" + std::to_string(sweep_id) + "&limit=100&offset=1000",
                               "/api/v1/results?sweep=" + std::to_string(sweep_id) + "&kind=generate&limit=100", "/metrics"};
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  auto next = Clock::now();
  for (size_t i = 0; !b->stopping.load(); ++i) {
    next += period;
    std::this_thread::sleep_until(next);
    if (!querying->load()) {
      next = Clock::now();
      continue;
    }
    const auto t0 = Clock::now();
    auto r = http.Get(paths[i % 3].c_str(), auth);
    if (!r || r->status != 200) {
      (*failed)++;
    } else if (b->measuring.load()) {
      latency->Add(Us(t0, Clock::now()));
      (*answered)++;
    }
  }
}

std::string Row(const std::string& name, const std::string& value, const std::string& target, const std::string& verdict) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "| %-34s | %14s | %10s | %-7s |\n", name.c_str(), value.c_str(), target.c_str(), verdict.c_str());
  return buf;
}
std::string Fmt(double v, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// --query-process: the same QueryLoop in a process of its own, as a dashboard or `cadenza results` is one. Commands
// on stdin, a line each: "on" / "off" (the phases with and without queries), "stop"; then one line on stdout:
// answered, failed, and each measured latency in us.
int RunQueryChild(const std::string& target, int64_t sweep_id, int rows, bool compact, double rate) {
  ClientOptions co;
  co.target = target;
  co.token = kToken;
  auto client = CoordinatorClient::Connect(co);
  Bench b;
  std::atomic<bool> querying{false};
  std::atomic<int64_t> answered{0}, failed{0};
  Samples latency;
  std::thread qt(QueryLoop, &b, client.get(), sweep_id, rows, compact, rate, &querying, &answered, &failed, &latency);
  for (std::string line; std::getline(std::cin, line);) {
    if (line == "on") {
      b.measuring = true;
      querying = true;
    } else if (line == "off") {
      querying = false;
      b.measuring = false;
    } else if (line == "stop") {
      break;
    }
  }
  querying = false;
  b.stopping = true;
  qt.join();
  std::cout << answered.load() << " " << failed.load();
  for (double us : latency.us) std::cout << " " << us;
  std::cout << std::endl;
  return 0;
}

// The parent's end of a query child: started with pipes on its stdin and stdout.
struct QueryChild {
  pid_t pid = -1;
  int to = -1, from = -1;
  bool Start(const std::vector<std::string>& args) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return false;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    to = in[1];
    from = out[0];
    return rc == 0;
  }
  void Send(const char* line) {
    if (write(to, line, strlen(line)) < 0) std::cerr << "coordinator_bench: query child: write failed\n";
  }
  // "stop", then its counts and latencies; false when it did not answer.
  bool Stop(std::atomic<int64_t>* answered, std::atomic<int64_t>* failed, Samples* latency) {
    Send("stop\n");
    close(to);
    std::string text;
    char buf[65536];
    for (ssize_t n; (n = read(from, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    close(from);
    int status = 0;
    waitpid(pid, &status, 0);
    std::istringstream in(text);
    int64_t a = 0, f = 0;
    if (!(in >> a >> f)) return false;
    *answered = a;
    *failed = f;
    for (double us; in >> us;) latency->Add(us);
    return true;
  }
};

}  // namespace

int main(int argc, char** argv) {
  KeepFreedMemoryUpTo(size_t{32} << 20);  // as `cadenza coordinator` does (cli/cluster_commands.cc)
  CLI::App app{"Load generator for the coordinator: simulated workers heartbeat at 1 Hz while leasing and completing tasks"};
  int workers = 500, groups = 50, inflight = 16, connections = 8, experiments = 5000, samples = 8;
  double seconds = 10, warmup = 1;
  std::string dir = "out/coordinator-bench";
  app.add_option("--workers", workers, "Simulated worker ranks (each heartbeats once per second)")->capture_default_str();
  app.add_option("--groups", groups, "Worker groups the ranks are split into")->capture_default_str();
  app.add_option("--inflight", inflight, "Lease+complete loops running at once (closed loops)")->capture_default_str();
  app.add_option("--connections", connections, "Client connections (channels) the loops and heartbeats are spread over")->capture_default_str();
  app.add_option("--experiments", experiments, "Experiments submitted up front (each = 2 + 2 * samples tasks)")->capture_default_str();
  app.add_option("--samples", samples, "Samples per experiment, one generate task each")->capture_default_str();
  app.add_option("--seconds", seconds, "Measured duration")->capture_default_str();
  app.add_option("--warmup", warmup, "Unmeasured seconds first")->capture_default_str();
  int direct = 0;
  std::string mode = "separate";
  app.add_option("--mode", mode, "separate: LeaseTask then CompleteTask per task; piggyback: CompleteTask(lease_next) leases the next task in the same call")
      ->capture_default_str()->check(CLI::IsMember({"separate", "piggyback"}));
  app.add_option("--direct", direct, "First run this many pairs straight on the scheduler (no gRPC) and print the rate")->capture_default_str();
  app.add_option("--dir", dir, "Folder for the database and tokens (wiped first)")->capture_default_str();
  double query_rate = 20;
  int query_rows = 1000;
  int aggregate_results = 10000;
  int result_cache_rows = CoordinatorConfig().result_cache_rows;
  app.add_option("--result-cache-rows", result_cache_rows,
                 "Rows of result pages the coordinator keeps for repeated queries (coordinator.yaml limits.result_cache_rows); "
                 "0: every query reads SQLite")
      ->capture_default_str();
  app.add_option("--query-rows", query_rows, "Rows of each QueryResults page (--query-via grpc)")->capture_default_str();
  bool query_compact = false;
  app.add_flag("--query-compact", query_compact,
               "Ask for compact pages (QueryResultsRequest.compact: each job's fields once), as `cadenza results` does");
  app.add_option("--query-rate", query_rate,
                 "Result queries/s in the 'with queries' phases; the run measures --seconds alone and --seconds with queries, "
                 "in the order A B B A (0: one phase alone, as before)")->capture_default_str();
  std::string query_via = "grpc";
  app.add_option("--query-via", query_via,
                 "grpc: QueryResults pages of --query-rows generate rows; http: the dashboard's GETs (/api/v1/jobs and /api/v1/results "
                 "pages of 100, /metrics) on the coordinator's HTTP port")
      ->capture_default_str()->check(CLI::IsMember({"grpc", "http"}));
  app.add_option("--aggregate-results", aggregate_results, "Results one timed AggregateResults runs over at the end (0: skip)")
      ->capture_default_str();
  bool query_process = false;
  app.add_flag("--query-process", query_process,
               "Run the gRPC query client in a second process (as a dashboard or `cadenza results` is), not in this one");
  std::string child_target;
  int64_t child_sweep = 0;
  app.add_option("--query-child", child_target, "(internal) be the query process of a parent bench, against this address");
  app.add_option("--query-sweep", child_sweep, "(internal) the sweep the query process reads");
  CLI11_PARSE(app, argc, argv);
  if (!child_target.empty()) return RunQueryChild(child_target, child_sweep, query_rows, query_compact, query_rate);
  if (query_process && query_via != "grpc") {
    std::cerr << "coordinator_bench: --query-process is for --query-via grpc\n";
    return 2;
  }
  if (groups < 1 || workers < groups) {
    std::cerr << "coordinator_bench: --workers must be >= --groups >= 1\n";
    return 2;
  }

  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir + "/tokens.txt") << kToken << " bench admin\n";  // admin: one client submits, serves as the workers and reads
  CoordinatorConfig config;
  config.listen = "127.0.0.1:0";
  config.database = dir + "/coordinator.db";
  config.tokens_file = dir + "/tokens.txt";
  config.max_sweep_experiments = experiments;
  config.result_cache_rows = result_cache_rows;
  auto server = CoordinatorServer::Start(config);
  if (!server.ok()) {
    std::cerr << "coordinator_bench: " << server.status().message() << "\n";
    return 1;
  }
  ClientOptions co;
  co.target = "127.0.0.1:" + std::to_string((*server)->port());
  co.token = kToken;
  auto client = CoordinatorClient::Connect(co);

  Bench b;
  std::vector<std::unique_ptr<CoordinatorClient>> pool;
  for (int i = 0; i < std::max(1, connections); ++i) {
    pool.push_back(CoordinatorClient::Connect(co));
    b.clients.push_back(pool.back().get());
  }
  const int per_group = workers / groups;
  for (int g = 0; g < groups; ++g) {
    v1::RegisterWorkerGroupRequest req;
    req.mutable_group()->set_host("sim-" + std::to_string(g));
    req.mutable_group()->set_ranks(per_group);
    req.mutable_group()->set_device("cpu");
    v1::RegisterWorkerGroupResponse resp;
    if (Status s = client->RegisterWorkerGroup(req, &resp); !s.ok()) {
      std::cerr << "coordinator_bench: register: " << s.message() << "\n";
      return 1;
    }
    for (int r = 0; r < per_group; ++r) {
      v1::WorkerRef w;
      w.set_group_id(resp.group_id());
      w.set_rank(r);
      b.workers.push_back(w);
    }
  }
  // One sweep over `experiments` seeds: each experiment is train -> samples x generate -> samples x evaluate -> aggregate.
  const double t_submit = bench::Now();
  v1::SubmitSweepRequest sweep;
  sweep.mutable_sweep()->mutable_base()->set_experiment_yaml(
      "name: bench\ndataset: /data/bench\nout: /runs/bench\nmodel: {family: lstm, d_model: 32, layers: 1, hidden: 32}\n"
      "train: {seq_len: 32, steps: 10}\n");
  sweep.mutable_sweep()->mutable_base()->set_samples(samples);
  sweep.mutable_sweep()->mutable_base()->set_samples_per_task(1);
  for (int i = 1; i <= experiments; ++i) sweep.mutable_sweep()->add_seeds(static_cast<uint64_t>(i));
  v1::SubmitResponse submitted;
  ClientOptions slow = co;
  slow.deadline_ms = 600000;
  if (Status s = CoordinatorClient::Connect(slow)->SubmitSweep(sweep, &submitted); !s.ok()) {
    std::cerr << "coordinator_bench: submit: " << s.message() << "\n";
    return 1;
  }
  const double submit_s = bench::Now() - t_submit;

  if (direct > 0) {  // the scheduler alone, no gRPC: what the state machine and SQLite cost per pair
    Scheduler& sched = (*server)->scheduler();
    const double d0 = bench::Now();
    int n = 0;
    for (; n < direct; ++n) {
      const v1::WorkerRef& w = b.workers[n % b.workers.size()];
      const WorkerKey key{w.group_id(), w.rank()};
      auto a = sched.Lease(key, 0, NowUnixMs());
      if (!a.ok() || !a->has_value()) break;
      ResultRecord r;
      r.metrics["score"] = 0.5;
      if (!sched.Complete(key, (**a).task.id, (**a).task.attempt, r, NowUnixMs()).ok()) break;
    }
    std::cout << "direct (no gRPC): " << n << " lease+complete pairs in " << Fmt(bench::Now() - d0, 3) << " s = "
              << Fmt(n / (bench::Now() - d0), 0) << " pairs/s\n";
  }
  std::thread hb([&b] { b.HeartbeatLoop(); });
  b.inflight = inflight;
  for (int i = 0; i < inflight; ++i) {
    if (mode == "piggyback") b.StartPiggy(b.clients[i % b.clients.size()], {}, 0, 0);
    else b.StartPair(b.clients[i % b.clients.size()]);
  }
  std::atomic<bool> querying{false};
  std::atomic<int64_t> queries{0}, query_errors{0};
  Samples query_ms;
  std::unique_ptr<CoordinatorClient> query_client;
  QueryChild query_child;
  std::thread qt;
  if (query_rate > 0) {
    if (query_via == "http") {
      qt = std::thread(HttpQueryLoop, &b, (*server)->http_port(), submitted.sweep_id(), query_rate, &querying, &queries, &query_errors,
                       &query_ms);
    } else if (query_process) {
      std::vector<std::string> args = {"coordinator_bench", "--query-child", co.target, "--query-sweep",
                                             std::to_string(submitted.sweep_id()), "--query-rows", std::to_string(query_rows),
                                             "--query-rate", Fmt(query_rate, 3)};
      if (query_compact) args.push_back("--query-compact");
      if (!query_child.Start(args)) {
        std::cerr << "coordinator_bench: cannot start the query process\n";
        return 1;
      }
    } else {
      query_client = CoordinatorClient::Connect(co);
      qt = std::thread(QueryLoop, &b, query_client.get(), submitted.sweep_id(), query_rows, query_compact, query_rate, &querying, &queries,
                       &query_errors, &query_ms);
    }
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  // Phase 0 alone, phase 1 with queries; A B B A (each half of --seconds) so that a drift over the run (the database
  // grows, the neighbours come and go) weighs on both alike.
  const std::vector<int> order = query_rate > 0 ? std::vector<int>{0, 1, 1, 0} : std::vector<int>{0};
  double elapsed_by[2] = {0, 0};
  for (int ph : order) {
    b.phase = ph;
    querying = ph == 1;
    if (query_child.pid > 0) query_child.Send(ph == 1 ? "on\n" : "off\n");
    b.measuring = true;
    const double p0 = bench::Now();
    std::this_thread::sleep_for(std::chrono::duration<double>(query_rate > 0 ? seconds / 2 : seconds));
    b.measuring = false;
    elapsed_by[ph] += bench::Now() - p0;
  }
  querying = false;
  if (query_child.pid > 0 && !query_child.Stop(&queries, &query_errors, &query_ms)) {
    std::cerr << "coordinator_bench: the query process gave no counts\n";
  }
  const double elapsed = elapsed_by[0];
  b.stopping = true;
  {
    std::unique_lock<std::mutex> l(b.mu);
    b.idle.wait_for(l, std::chrono::seconds(10), [&b] { return b.inflight.load() == 0; });
  }
  hb.join();
  if (qt.joinable()) qt.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // last heartbeat callbacks

  // What one QueryResults page costs the process once the loops have stopped: the server's SQL, row decoding and
  // serialization plus the client's parsing, all on these cores. 20/s of it is what the lease loops lose beside queries.
  std::vector<double> query_call_cpu_ms, query_stage_ms;  // stages: SQL + decode, to proto, serialize, parse
  int64_t query_page_bytes = 0;
  const ResultQuery::CacheCounts cache = (*server)->results().cache_counts();  // over the run: hits are pages not read again
  auto fresh = ResultQuery::Open(config.database);  // no cache: the stages and timings below read SQLite every time
  if (!fresh.ok()) {
    std::cerr << "coordinator_bench: " << fresh.status().message() << "\n";
    return 1;
  }
  if (query_rate > 0 && query_via == "grpc") {
    for (int k = 0; k < 30; ++k) {
      v1::QueryResultsRequest q;
      q.set_sweep_id(submitted.sweep_id());
      q.set_kind(v1::TASK_KIND_GENERATE);
      q.set_limit(query_rows);
      q.set_compact(query_compact);
      v1::QueryResultsResponse rows;
      const double c0 = ProcessCpuMs();
      if (client->QueryResults(q, &rows).ok()) query_call_cpu_ms.push_back(ProcessCpuMs() - c0);
    }
    std::sort(query_call_cpu_ms.begin(), query_call_cpu_ms.end());
    // The same page's stages one by one on this thread (median of 10): where a call's CPU goes.
    ResultFilter f;
    f.sweep_id = submitted.sweep_id();
    f.kind = TaskKind::kGenerate;
    f.limit = query_rows;
    std::vector<double> st[4];
    for (int k = 0; k < 10; ++k) {
      double c = ThreadCpuMs();
      auto rows = (*fresh)->Query(f);
      if (!rows.ok()) break;
      st[0].push_back(ThreadCpuMs() - c);
      c = ThreadCpuMs();
      v1::QueryResultsResponse resp;
      ToProto(rows->rows(), query_compact, &resp);
      st[1].push_back(ThreadCpuMs() - c);
      c = ThreadCpuMs();
      const std::string wire = resp.SerializeAsString();
      st[2].push_back(ThreadCpuMs() - c);
      c = ThreadCpuMs();
      v1::QueryResultsResponse back;
      back.ParseFromString(wire);
      st[3].push_back(ThreadCpuMs() - c);
      if (k == 0) query_page_bytes = static_cast<int64_t>(wire.size());
    }
    for (auto& v : st) {
      std::sort(v.begin(), v.end());
      query_stage_ms.push_back(v.empty() ? -1 : v[v.size() / 2]);
    }
  }

  // One AggregateResults over exactly `aggregate_results` results: the sweep's generate results, topped up by direct
  // scheduler pairs when the run left fewer; median of 5 calls (gRPC on loopback, grouped by model_family and seed).
  std::vector<double> agg_ms, query_only_ms, query_cpu_ms;
  int64_t agg_rows = 0;
  if (aggregate_results > 0) {
    ResultFilter f;
    f.sweep_id = submitted.sweep_id();
    f.kind = TaskKind::kGenerate;
    f.limit = aggregate_results;
    auto have = (*server)->results().Query(f);
    int64_t n = have.ok() ? static_cast<int64_t>(have->size()) : 0;
    Scheduler& sched = (*server)->scheduler();
    for (int64_t i = 0; n < aggregate_results; ++i) {  // every kind a rank takes: the graph moves on to more generates
      const v1::WorkerRef& w = b.workers[i % b.workers.size()];
      const WorkerKey key{w.group_id(), w.rank()};
      auto a = sched.Lease(key, 0, NowUnixMs());
      if (!a.ok() || !a->has_value()) break;
      ResultRecord r;
      r.metrics["score"] = 0.5;
      r.metrics["pitch_range"] = static_cast<double>(i % 13);
      if (!sched.Complete(key, (**a).task.id, (**a).task.attempt, r, NowUnixMs()).ok()) break;
      if ((**a).task.kind == TaskKind::kGenerate) ++n;
    }
    v1::AggregateResultsRequest req;
    req.mutable_filter()->set_sweep_id(submitted.sweep_id());
    req.mutable_filter()->set_kind(v1::TASK_KIND_GENERATE);
    req.mutable_filter()->set_limit(aggregate_results);
    req.add_group_by("model_family");
    req.add_group_by("seed");
    for (int k = 0; k < 5; ++k) {
      v1::AggregateResultsResponse resp;
      const auto a0 = Clock::now();
      if (Status s = client->AggregateResults(req, &resp); !s.ok()) {
        std::cerr << "coordinator_bench: aggregate: " << s.message() << "\n";
        break;
      }
      agg_ms.push_back(Us(a0, Clock::now()) / 1000.0);
      agg_rows = 0;
      for (const auto& row : resp.rows()) agg_rows += row.count();
    }
    std::sort(agg_ms.begin(), agg_ms.end());
    for (int k = 0; k < 5; ++k) {  // the same rows straight from ResultQuery: the SQL join and row decoding alone
      const auto q0 = Clock::now();
      const double c0 = ThreadCpuMs();
      auto rows = (*fresh)->Query(f);
      if (rows.ok()) {
        query_only_ms.push_back(Us(q0, Clock::now()) / 1000.0);
        query_cpu_ms.push_back(ThreadCpuMs() - c0);
      }
    }
    std::sort(query_only_ms.begin(), query_only_ms.end());
    std::sort(query_cpu_ms.begin(), query_cpu_ms.end());
  }

  const double pairs_s = b.pairs[0].load() / elapsed;
  const double lease99 = b.lease[0].Pct(0.99), complete99 = b.complete[0].Pct(0.99);
  const bool piggy = mode == "piggyback";
  const bool met_rate = pairs_s >= 5000, met_p99 = (piggy || lease99 < 20) && complete99 < 20;
  char host[256] = "?";
  gethostname(host, sizeof host);
  std::cout << "coordinator_bench: " << b.workers.size() << " workers (" << groups << " groups x " << per_group
            << " ranks) heartbeating at 1 Hz; mode " << mode << "; " << inflight << " lease+complete loops in flight over " << b.clients.size()
            << " connections; " << Fmt(seconds, 0)
            << (query_rate > 0 ? " s measured alone + " + Fmt(seconds, 0) + " s with " + Fmt(query_rate, 0) + " result queries/s (A B B A)" +
                                  (query_process ? std::string(" from a second process") : std::string()) : " s measured")
            << " after " << Fmt(warmup, 0) << " s warm-up; coordinator in this process on 127.0.0.1, SQLite WAL at "
            << config.database << "; " << std::thread::hardware_concurrency() << " cores (" << host << ")\n";
  std::cout << "submitted " << submitted.job_ids_size() << " experiments (" << experiments * (2 + 2 * samples) << " tasks once expanded) in "
            << Fmt(submit_s) << " s\n\n";
  std::cout << Row("metric", "value", "target", "verdict") << "|" << std::string(36, '-') << "|" << std::string(16, '-') << "|"
            << std::string(12, '-') << "|" << std::string(9, '-') << "|\n";
  std::cout << Row("lease+complete pairs/s", Fmt(pairs_s, 0), ">= 5000", met_rate ? "met" : "MISSED");
  if (!piggy) {
    std::cout << Row("LeaseTask p50 / p99 (ms)", Fmt(b.lease[0].Pct(0.5)) + " / " + Fmt(lease99), "p99 < 20", lease99 < 20 ? "met" : "MISSED");
    std::cout << Row("CompleteTask p50 / p99 (ms)", Fmt(b.complete[0].Pct(0.5)) + " / " + Fmt(complete99), "p99 < 20", complete99 < 20 ? "met" : "MISSED");
    std::cout << Row("pair: lease then complete p50/p99", Fmt(b.pair[0].Pct(0.5)) + " / " + Fmt(b.pair[0].Pct(0.99)), "", "");
  } else {
    std::cout << Row("Complete+lease_next p50 / p99 (ms)", Fmt(b.complete[0].Pct(0.5)) + " / " + Fmt(complete99), "p99 < 20", complete99 < 20 ? "met" : "MISSED");
  }
  std::cout << Row("Heartbeat p50 / p99 (ms)", Fmt(b.heartbeat[0].Pct(0.5)) + " / " + Fmt(b.heartbeat[0].Pct(0.99)), "", "");
  std::cout << Row("heartbeats/s", Fmt(b.heartbeats[0].load() / elapsed, 0), "500", "");
  bool met_queries = true, met_aggregate = true;
  if (query_rate > 0) {  // the same loops beside a stream of result queries, measured in the same run
    const double with_s = b.pairs[1].load() / elapsed_by[1];
    const double ratio = pairs_s > 0 ? with_s / pairs_s : 0;
    met_queries = ratio >= 0.9;
    std::cout << Row("pairs/s with " + Fmt(query_rate, 0) + " queries/s", Fmt(with_s, 0), "", "");
    std::cout << Row("  with queries / alone", Fmt(ratio, 3), ">= 0.90", met_queries ? "met" : "MISSED");
    if (!piggy) {
      std::cout << Row("  LeaseTask p50 / p99 (ms)", Fmt(b.lease[1].Pct(0.5)) + " / " + Fmt(b.lease[1].Pct(0.99)), "", "");
      std::cout << Row("  CompleteTask p50 / p99 (ms)", Fmt(b.complete[1].Pct(0.5)) + " / " + Fmt(b.complete[1].Pct(0.99)), "", "");
    } else {
      std::cout << Row("  Complete+lease_next p50/p99 (ms)", Fmt(b.complete[1].Pct(0.5)) + " / " + Fmt(b.complete[1].Pct(0.99)), "", "");
    }
    if (query_via == "http") {
      const double p99 = query_ms.Pct(0.99);
      std::cout << Row("  HTTP GETs/s (jobs, results, metrics)", Fmt(queries.load() / elapsed_by[1], 1), Fmt(query_rate, 0), "");
      std::cout << Row("  HTTP GET p50 / p99 (ms)", Fmt(query_ms.Pct(0.5)) + " / " + Fmt(p99), "p99 < 50", p99 < 50 ? "met" : "MISSED");
      met_queries = met_queries && p99 < 50;
    } else {
      std::cout << Row("  QueryResults/s (" + std::to_string(query_rows) + (query_compact ? " compact" : "") + " rows each)", Fmt(queries.load() / elapsed_by[1], 1), Fmt(query_rate, 0), "");
      std::cout << Row("  QueryResults p50 / p99 (ms)", Fmt(query_ms.Pct(0.5)) + " / " + Fmt(query_ms.Pct(0.99)), "", "");
      if (!query_call_cpu_ms.empty()) {
        std::cout << Row("  QueryResults CPU, process (ms)", Fmt(query_call_cpu_ms[query_call_cpu_ms.size() / 2]) + " (min " +
                         Fmt(query_call_cpu_ms.front()) + ")", "", "");
        std::cout << Row("    query / to proto / ser. / parse", Fmt(query_stage_ms[0]) + " / " + Fmt(query_stage_ms[1]) + " / " +
                         Fmt(query_stage_ms[2]) + " / " + Fmt(query_stage_ms[3]), "", "");
        std::cout << Row("    page bytes on the wire", std::to_string(query_page_bytes), "", "");
        std::cout << Row("    pages from the cache (hits/reads)",
                         std::to_string(cache.hits) + "/" + std::to_string(cache.hits + cache.misses) +
                             (result_cache_rows > 0 ? "" : " (off)"), "", "");
      }
    }
  }
  if (aggregate_results > 0) {
    const double median = agg_ms.empty() ? -1 : agg_ms[agg_ms.size() / 2];
    met_aggregate = !agg_ms.empty() && median < 200 && agg_rows == aggregate_results;
    std::cout << Row("AggregateResults over " + std::to_string(agg_rows) + " (ms)",
                     agg_ms.empty() ? "error" : Fmt(median) + " (max " + Fmt(agg_ms.back()) + ")", "< 200", met_aggregate ? "met" : "MISSED");
    if (!query_only_ms.empty()) {
      std::cout << Row("  of which ResultQuery::Query (ms)", Fmt(query_only_ms[query_only_ms.size() / 2]) + " (CPU " +
                       Fmt(query_cpu_ms[query_cpu_ms.size() / 2]) + ")", "", "");
    }
  }
  std::cout << Row("empty leases / errors", std::to_string(b.empty_leases.load()) + " / " + std::to_string(b.errors.load() + query_errors.load()), "", "");
  (*server)->Shutdown();
  return met_rate && met_p99 && met_queries && met_aggregate ? 0 : 3;
}
