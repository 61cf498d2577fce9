// model_bench: cadenza's LibTorch models against the same models in Python PyTorch (bench/reference_models.py),
// measured in the same run, on the same machine, with the same threads, malloc tuning and OpenMP wait policy.
//
// Every measurement runs in a fresh child process (`model_bench --one JOB ...` for C++, `/usr/bin/python3
// bench/reference_models.py --job JOB ...` for Python), one after the other, never two at once, so peak memory
// (VmHWM) belongs to one configuration only and the two implementations never compete for the cores. Each child
// prints one JSON line; this parent only orchestrates and prints the side-by-side tables (Markdown).
//
// Figures: training tokens/s (T=256 batch 16, T=1024 batch 4), batch-1 generation tokens/s and per-token latency
// (KV cache / RNN state stepping), peak memory of a training step, attention-RNN memory by attention kind at
// T=1024 (blocked additive vs dot, and the naive [B,T,T,A] additive form in Python), and the Transformer's
// model GFLOP/s against a 2048x2048 float matmul measured by the same process kind with the same threads.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/experiment_config.h"
#include "core/model/checkpoint.h"
#include "core/model/cpu_matmul.h"
#include "core/model/mixed_precision.h"
#include "core/model/model_api.h"
#include "core/model/precision.h"
#include "core/model/sequence_model.h"
#include "core/vocabulary.h"
#include "core/process_memory.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The Python reference gets the malloc settings of our mallopt() calls through glibc's tunables.
constexpr const char* kPythonMallocTunables = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184";

// ------------------------------------------------------------------------------------------- child: jobs
struct JobArgs {
  std::string job, config_json, state_dict, reference, precision = "fp32";
  int threads = 2, seq = 256, batch = 16, tokens = 512, warmup = 2, steps = 5;
};

json ConfigToJson(const ModelConfig& c) {
  return json{{"family", c.family},       {"vocab_size", c.vocab_size}, {"d_model", c.d_model},
              {"layers", c.layers},       {"heads", c.heads},           {"ff_dim", c.ff_dim},
              {"max_len", c.max_len},     {"hidden", c.hidden},         {"attention", c.attention},
              {"attention_window", c.attention_window}, {"dropout", c.dropout}, {"tie_embeddings", c.tie_embeddings}};
}

ModelConfig ConfigFromJson(const json& j) {
  ModelConfig c;
  c.family = j.at("family");
  c.vocab_size = j.at("vocab_size");
  c.d_model = j.at("d_model");
  c.layers = j.at("layers");
  c.heads = j.at("heads");
  c.ff_dim = j.at("ff_dim");
  c.max_len = j.at("max_len");
  c.hidden = j.at("hidden");
  c.attention = j.at("attention");
  c.attention_window = j.at("attention_window");
  c.dropout = j.at("dropout");
  c.tie_embeddings = j.at("tie_embeddings");
  return c;
}

int64_t ProcStatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::atoll(line.c_str() + prefix.size());
  }
  return 0;
}

double ProcMemAvailableGb() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) == 0) return std::atoll(line.c_str() + 13) / 1024.0 / 1024.0;
  }
  return 0;
}

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The same parameter groups as core/model/trainer.cc: decay on weight matrices except the (tied) embedding.
std::vector<torch::optim::OptimizerParamGroup> ParamGroups(SequenceModelImpl& model) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : model.named_parameters()) {
    const bool matrix = item.value().dim() >= 2 && item.key().find("embedding") == std::string::npos;
    (matrix ? decay : no_decay).push_back(item.value());
  }
  auto opts = [](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(3e-4).betas({0.9, 0.98}).weight_decay(wd).eps(1e-8));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, opts(0.01));
  groups.emplace_back(no_decay, opts(0.0));
  return groups;
}

torch::Tensor RandomBatch(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randint(1, V, {B, T + 1}, gen, torch::kInt64);
}

json JobTrain(const ModelConfig& c, const JobArgs& a) {
  if (Status p = CheckPrecision(a.precision, CurrentCpuFeatures(), "--precision"); !p.ok()) throw std::runtime_error(p.message());
  const Bf16ComputeScope precision(a.precision == "bf16");  // as the trainer does for train.precision: bf16
  torch::manual_seed(1);
  SequenceModel model = MakeModel(c);
  model->train();
  torch::optim::AdamW optimizer(ParamGroups(*model));
  auto batch = RandomBatch(a.batch, a.seq, c.vocab_size, 7);
  auto inputs = batch.narrow(1, 0, a.seq), targets = batch.narrow(1, 1, a.seq);
  const int64_t rss_before = ProcStatusKb("VmRSS"), hwm_before = ProcStatusKb("VmHWM");
  std::vector<double> times;
  double loss_value = 0;
  for (int i = 0; i < a.warmup + a.steps; ++i) {
    const auto t0 = Clock::now();
    optimizer.zero_grad();
    auto logits = model->forward(inputs);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                                                     torch::nn::functional::CrossEntropyFuncOptions().ignore_index(0));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    optimizer.step();
    loss_value = loss.item<double>();
    const double dt = Seconds(t0, Clock::now());
    if (i >= a.warmup) times.push_back(dt);
  }
  const double med = Median(times);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return json{{"params", model->NumParameters()}, {"step_s", med}, {"step_times", times},
              {"tokens_per_s", double(a.batch) * a.seq / med}, {"loss", loss_value}, {"precision", a.precision},
              {"rss_before_kb", rss_before}, {"hwm_before_kb", hwm_before}, {"hwm_after_kb", ProcStatusKb("VmHWM")},
              {"maxrss_kb", ru.ru_maxrss}};
}

json JobGenerate(const ModelConfig& c, const JobArgs& a) {
  torch::manual_seed(1);
  SequenceModel model = MakeModel(c);
  model->eval();
  torch::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(3);
  struct Run {
    double total_s, median_ms, p90_ms;
  };
  std::vector<Run> runs;
  for (int r = 0; r < a.warmup + a.steps; ++r) {
    const int n = r < a.warmup ? 32 : a.tokens;
    auto state = model->NewState(1, a.tokens);
    auto token = torch::tensor({int64_t{1}}, torch::kInt64);  // BOS
    std::vector<double> lat;
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      const auto s = Clock::now();
      auto logits = model->Step(token, *state);
      token = torch::multinomial(torch::softmax(logits, -1), 1, false, gen).squeeze(-1);
      lat.push_back(Seconds(s, Clock::now()));
    }
    const double total = Seconds(t0, Clock::now());
    if (r >= a.warmup) {
      std::vector<double> sorted = lat;
      std::sort(sorted.begin(), sorted.end());
      runs.push_back({total, 1e3 * Median(lat), 1e3 * sorted[size_t(0.9 * sorted.size())]});
    }
  }
  std::vector<Run> by_total = runs;
  std::sort(by_total.begin(), by_total.end(), [](const Run& x, const Run& y) { return x.total_s < y.total_s; });
  const Run& best = by_total[by_total.size() / 2];  // the median run
  std::vector<double> totals;
  for (const Run& r : runs) totals.push_back(r.total_s);
  return json{{"params", model->NumParameters()}, {"tokens", a.tokens}, {"tokens_per_s", a.tokens / best.total_s},
              {"ms_per_token", 1e3 * best.total_s / a.tokens}, {"median_ms", best.median_ms}, {"p90_ms", best.p90_ms},
              {"runs", totals}};
}

json JobMatmul(const JobArgs& a) {
  const int64_t n = 2048;
  auto gen = at::detail::createCPUGenerator(5);
  auto x = torch::randn({n, n}, gen), y = torch::randn({n, n}, gen);
  std::vector<double> times;
  for (int i = 0; i < a.warmup + a.steps; ++i) {
    const auto t0 = Clock::now();
    auto z = torch::mm(x, y);
    const double dt = Seconds(t0, Clock::now());
    if (i >= a.warmup) times.push_back(dt);
  }
  const double med = Median(times);
  return json{{"n", n}, {"s", med}, {"gflops", 2.0 * n * n * n / med / 1e9}};
}

// Writes the model's state dict and (tokens, eval-mode logits) for the Python `check` job.
json JobExport(const ModelConfig& c, const JobArgs& a) {
  torch::manual_seed(11);
  SequenceModel model = MakeModel(c);
  model->eval();
  torch::NoGradGuard no_grad;
  auto tokens = RandomBatch(2, 63, c.vocab_size, 13);  // [2, 64]
  auto logits = model->forward(tokens);
  Status s = ExportStateDict(a.state_dict, *model);
  if (!s.ok()) throw std::runtime_error(s.message());
  c10::Dict<std::string, at::Tensor> dict;
  dict.insert("tokens", tokens);
  dict.insert("logits", logits);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  std::ofstream(a.reference, std::ios::binary).write(bytes.data(), bytes.size());
  // The batch-1 generation path (RowAffine, written-out RNN cells) must give the forward's logits.
  auto one = tokens.narrow(0, 0, 1);
  auto state = model->NewState(1, one.size(1));
  double step_diff = 0;
  for (int64_t t = 0; t < one.size(1); ++t) {
    auto step = model->Step(one.select(1, t).contiguous(), *state);
    step_diff = std::max(step_diff, (step - logits.select(0, 0).select(0, t).unsqueeze(0)).abs().max().item<double>());
  }
  return json{{"params", model->NumParameters()}, {"step_vs_forward", step_diff}};
}

int RunChild(const JobArgs& a) {
  SetTorchThreads(a.threads);
  ModelConfig c;
  if (a.job != "matmul") c = ConfigFromJson(json::parse(a.config_json));
  json r;
  if (a.job == "train") r = JobTrain(c, a);
  else if (a.job == "generate") r = JobGenerate(c, a);
  else if (a.job == "matmul") r = JobMatmul(a);
  else if (a.job == "params") r = json{{"params", MakeModel(c)->NumParameters()}};
  else if (a.job == "export") r = JobExport(c, a);
  else {
    std::fprintf(stderr, "model_bench: unknown job %s\n", a.job.c_str());
    return 2;
  }
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  r["impl"] = "cadenza";
  r["threads"] = torch::get_num_threads();
  r["omp_wait_policy"] = wait ? wait : "";
  std::cout << r.dump() << std::endl;
  return 0;
}

// ------------------------------------------------------------------------------------ parent: orchestration
std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

struct Bench {
  int threads = 2;
  bool quick = false;
  std::set<std::string> only;
  std::string source_dir, python = "/usr/bin/python3", self;
  std::map<std::string, json> cache;  // command line -> result (a configuration is measured once per run)
  std::vector<std::string> log;       // every child command with its load average, for the record
  double max_others = 0;              // most CPU (in cores) other processes used during one child
  double max_steal = 0;               // most CPU (in cores) the hypervisor stole during one child
  int rounds = 2;                     // timing children per implementation, alternating the order

  bool Wants(const std::string& section) const { return only.empty() || only.count(section); }

  static std::string Quote(const std::string& s) {
    std::string q = "'";
    for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return q + "'";
  }

  // Busy CPU seconds of the whole machine (all processes) from /proc/stat.
  // Busy and stolen (taken by the hypervisor for other guests) CPU seconds of the whole machine, from /proc/stat.
  static std::pair<double, double> MachineBusyAndStealSeconds() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    const double tick = double(sysconf(_SC_CLK_TCK));
    return {(user + nice + system + irq + softirq) / tick, steal / tick};
  }

  static double ChildrenCpuSeconds() {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  }

  static std::string LoadAvg() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
  }

  // Runs one child (impl "cpp" or "py") and returns its JSON line; {"error": ...} when it failed.
  json Run(const std::string& impl, const std::string& job, const std::string& config_json, const std::string& extra,
           const std::string& label = "", int round = 0) {
    std::string cmd;
    if (impl == "cpp") {
      cmd = Quote(self) + " --one " + job;
    } else {
      cmd = std::string("GLIBC_TUNABLES=") + kPythonMallocTunables + " " + Quote(python) + " " +
            Quote(source_dir + "/bench/reference_models.py") + " --job " + job;
    }
    cmd += " --threads " + std::to_string(threads) + extra;
    if (!config_json.empty()) cmd += " --config " + Quote(config_json);
    const std::string key = cmd + " #" + std::to_string(round);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    const std::string load = LoadAvg();
    std::fprintf(stderr, "[load %s] %s %s %s%s\n", load.c_str(), impl == "cpp" ? "C++   " : "Python", job.c_str(), label.c_str(), extra.c_str());
    const auto t0 = Clock::now();
    const auto [busy0, steal0] = MachineBusyAndStealSeconds();
    const double child0 = ChildrenCpuSeconds();
    FILE* pipe = ::popen(cmd.c_str(), "r");
    std::string out;
    if (pipe) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    }
    const int status = pipe ? ::pclose(pipe) : -1;
    // CPU time that other processes used while the child ran, in cores: the noise of this measurement.
    const double wall = Seconds(t0, Clock::now());
    const auto [busy1, steal1] = MachineBusyAndStealSeconds();
    const double others = std::max(0.0, (busy1 - busy0) - (ChildrenCpuSeconds() - child0)) / std::max(1e-3, wall);
    const double steal = (steal1 - steal0) / std::max(1e-3, wall);
    max_others = std::max(max_others, others);
    max_steal = std::max(max_steal, steal);
    json r;
    std::istringstream lines(out);
    std::string line, last;
    while (std::getline(lines, line)) {
      if (!line.empty() && line[0] == '{') last = line;
    }
    if (status != 0 || last.empty()) {
      r = json{{"error", "exit status " + std::to_string(status)}};
    } else {
      r = json::parse(last, nullptr, /*allow_exceptions=*/false);
      if (r.is_discarded()) r = json{{"error", "unreadable output"}};
    }
    // The log names the model instead of repeating its JSON (the JSON is the YAML's fields, vocab_size added).
    std::string shown = cmd;
    if (!config_json.empty()) shown = shown.substr(0, shown.size() - Quote(config_json).size()) + "'<" + label + " JSON>'";
    log.push_back("[load " + load + ", " + Fmt("%.0f s, others ", wall) + Fmt("%.2f cores, ", others) + Fmt("steal %.2f] ", steal) + shown);
    r["others_cores"] = others;
    r["steal_cores"] = steal;
    cache[key] = r;
    return r;
  }

  struct Spec {
    std::string impl, job, config_json, extra, label;
  };

  // Runs each spec `rounds` times, alternating the order (A B, B A, ...) so drift on the shared machine does not
  // favour one side, and pools the rounds (Merge).
  std::vector<json> Alternating(const std::vector<Spec>& specs) {
    std::vector<std::vector<json>> got(specs.size());
    for (int round = 0; round < rounds; ++round) {
      for (size_t k = 0; k < specs.size(); ++k) {
        const size_t i = round % 2 == 0 ? k : specs.size() - 1 - k;
        const Spec& sp = specs[i];
        got[i].push_back(Run(sp.impl, sp.job, sp.config_json, sp.extra, sp.label, round));
      }
    }
    std::vector<json> merged;
    for (size_t i = 0; i < specs.size(); ++i) merged.push_back(Merge(specs[i].job, got[i]));
    return merged;
  }

  // train: all timed steps pooled (median over them), memory from the round with the largest step delta;
  // generate: the median of all runs; matmul: the median of the rounds' medians. Noise: the worst round.
  static json Merge(const std::string& job, const std::vector<json>& rs) {
    for (const json& r : rs) {
      if (r.contains("error")) return r;
    }
    json m = rs[0];
    double others = 0, steal = 0;
    for (const json& r : rs) {
      others = std::max(others, r.value("others_cores", 0.0));
      steal = std::max(steal, r.value("steal_cores", 0.0));
    }
    m["others_cores"] = others;
    m["steal_cores"] = steal;
    m["rounds"] = rs.size();
    if (job == "train") {
      const double tokens_per_step = rs[0]["tokens_per_s"].get<double>() * rs[0]["step_s"].get<double>();
      std::vector<double> steps;
      for (const json& r : rs) {
        for (double t : r["step_times"]) steps.push_back(t);
      }
      auto delta = [](const json& r) { return r["hwm_after_kb"].get<double>() - r["rss_before_kb"].get<double>(); };
      for (const json& r : rs) {
        if (delta(r) > delta(m)) {
          m["hwm_after_kb"] = r["hwm_after_kb"];
          m["rss_before_kb"] = r["rss_before_kb"];
        }
      }
      m["step_times"] = steps;
      m["step_s"] = Median(steps);
      m["tokens_per_s"] = tokens_per_step / Median(steps);
    } else if (job == "generate") {
      std::vector<double> totals, med, p90;
      for (const json& r : rs) {
        for (double t : r["runs"]) totals.push_back(t);
        med.push_back(r["median_ms"]);
        p90.push_back(r["p90_ms"]);
      }
      std::sort(totals.begin(), totals.end());
      const double total = totals[totals.size() / 2];
      const double tokens = rs[0]["tokens"];
      m["runs"] = totals;
      m["tokens_per_s"] = tokens / total;
      m["ms_per_token"] = 1e3 * total / tokens;
      m["median_ms"] = Median(med);
      m["p90_ms"] = Median(p90);
    } else if (job == "matmul") {
      std::vector<double> secs;
      for (const json& r : rs) secs.push_back(r["s"]);
      const double n = rs[0]["n"];
      m["s"] = Median(secs);
      m["gflops"] = 2.0 * n * n * n / Median(secs) / 1e9;
    }
    return m;
  }

  static std::string Args(int seq, int batch, int warmup, int steps) {
    return " --seq " + std::to_string(seq) + " --batch " + std::to_string(batch) + " --warmup " + std::to_string(warmup) +
           " --steps " + std::to_string(steps);
  }
};

bool Ok(const json& r) { return !r.contains("error"); }
// A dagger on figures measured while other processes used more than a quarter of a core.
constexpr double kNoisyCores = 0.25;
std::string Mark(const json& r) { return r.value("others_cores", 0.0) + r.value("steal_cores", 0.0) > kNoisyCores ? " †" : ""; }
const char* kNoiseNote = " † = other processes on this machine or the hypervisor (steal) took more than 0.25 cores during that measurement (see the log).";
std::string Err(const json& r) { return "failed (" + r.value("error", std::string("?")) + ")"; }

struct Table {
  Table(std::string t, std::string n) : title(std::move(t)), note(std::move(n)) {}
  std::string title, note;
  std::vector<std::vector<std::string>> rows;
  void Print() const {
    std::printf("\n### %s\n\n| metric | cadenza (C++) | PyTorch (Python) | ratio C++/Py | target |\n|---|---:|---:|---:|---|\n",
                title.c_str());
    for (const auto& r : rows) {
      std::printf("|");
      for (size_t i = 0; i < 5; ++i) std::printf(" %s |", i < r.size() ? r[i].c_str() : "");
      std::printf("\n");
    }
    if (!note.empty()) std::printf("\n%s\n", note.c_str());
    std::fflush(stdout);
  }
};

// "4732 (4650-4800)": the median and the range over the timed steps, as tokens/s.
std::string TokensCell(const json& r, double tokens_per_step) {
  if (!Ok(r)) return Err(r);
  double lo = 1e30, hi = 0;
  for (double t : r["step_times"]) {
    lo = std::min(lo, tokens_per_step / t);
    hi = std::max(hi, tokens_per_step / t);
  }
  return Fmt("%.0f", r["tokens_per_s"].get<double>()) + " (" + Fmt("%.0f", lo) + "-" + Fmt("%.0f", hi) + ")" + Mark(r);
}

std::string Target(bool met, const std::string& what) { return (met ? "met (" : "**MISSED** (") + what + ")"; }

double MB(const json& r, const char* a, const char* b) { return (r[a].get<double>() - r[b].get<double>()) / 1024.0; }

// Analytic matmul FLOPs of one Transformer training step (forward + backward = 3x forward), dense as computed:
//   per token, forward:  2 * N_mm        weights: L * (4 D^2 + 2 D F)  (qkv 3D^2, proj D^2, ff1 DF, ff2 FD)
//                      + 2 * D * V       tied output projection (logits = h E^T)
//                      + 4 * L * T * D   attention: QK^T (2TD) and AV (2TD) per layer; baddbmm computes the
//                                        full T x T, the causal half that is masked away is counted too
//   training step = 3 * forward * B * T  = 6 * (N_mm + D V) * tokens + 12 * L * T * D * tokens.
// Not counted: biases, LayerNorm, softmax, dropout, GELU/ReLU, embedding gather/scatter, AdamW (all elementwise).
double TransformerTrainFlops(const ModelConfig& c, int64_t B, int64_t T) {
  const double D = c.d_model, F = c.ff_dim, L = c.layers, V = c.vocab_size;
  const double n_mm = L * (4 * D * D + 2 * D * F);
  return double(B * T) * (6 * (n_mm + D * V) + 12 * L * T * D);
}

int RunParent(Bench& b) {
  setenv("OMP_WAIT_POLICY", "passive", 1);  // inherited by every child, C++ and Python alike
  auto load = [&](const std::string& name) {
    auto c = LoadModelConfig(b.source_dir + "/configs/models/" + name + ".yaml");
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", c.status().message().c_str());
      std::exit(1);
    }
    c->vocab_size = Vocabulary::Get().size();
    return *c;
  };
  const ModelConfig transformer = load("transformer-base"), lstm = load("lstm-base"), gru = load("gru-base");
  const std::string tj = ConfigToJson(transformer).dump(), lj = ConfigToJson(lstm).dump(), gj = ConfigToJson(gru).dump();
  const int warm = b.quick ? 1 : 2, steps = b.quick ? 3 : 7;
  const int gen_tokens = 512, gen_runs = b.quick ? 1 : 3;

  std::printf("# model_bench: cadenza (LibTorch C++) vs PyTorch (Python), same models, same process settings\n\n");
  std::printf("threads %d, OMP_WAIT_POLICY=passive, C++ mallopt(M_MMAP_MAX,0)+mallopt(M_TRIM_THRESHOLD,-1), Python "
              "GLIBC_TUNABLES=%s; %s; vocab %d; load average at start %s\n",
              b.threads, kPythonMallocTunables, (b.quick ? std::string("quick: 1 warm-up + 3 timed steps, 1 round") :
                        "2 warm-up + 7 timed steps per child, " + std::to_string(b.rounds) + " rounds per figure in alternating order, medians over the pooled steps").c_str(),
              Vocabulary::Get().size(), Bench::LoadAvg().c_str());
  // LibTorch's fp32 GEMMs: oneDNN in cadenza (core/model/cpu_matmul.h) unless CADENZA_MATMUL=openblas; the Python
  // reference runs Debian's PyTorch as installed (OpenBLAS).
  std::printf("fp32 matrix products: cadenza on %s, PyTorch on its BLAS (OpenBLAS)\n", CpuMatmulLibrary());
  std::vector<std::string> targets;

  // --- same architecture: parameter count, and the C++ weights loaded into the Python modules give the same logits
  if (b.Wants("check")) {
    Table t{"Same models: parameters, and logits of the C++ weights run by the Python modules (eval, B=2, T=64)",
            "Step vs forward: each implementation's batch-1 generation loop (Step per token) against its own forward "
            "logits, max abs difference over 64 positions; Python with and without --gemv (the C++ batch-1 path)."};
    char dir_template[] = "/tmp/model_bench.XXXXXX";
    const std::string dir = ::mkdtemp(dir_template) ? dir_template : "/tmp";
    ModelConfig dot = lstm, additive = lstm;
    dot.attention = "dot";
    additive.attention = "additive";
    for (const auto& [name, cfg] : std::vector<std::pair<std::string, ModelConfig>>{
             {"transformer-base", transformer}, {"lstm-base (general)", lstm}, {"lstm-base, dot", dot},
             {"lstm-base, additive", additive}, {"gru-tiny (additive, window 32)", load("gru-tiny")}}) {
      const std::string cj = ConfigToJson(cfg).dump();
      const std::string files = " --state-dict " + dir + "/sd.pt --reference " + dir + "/ref.pt";
      json cpp = b.Run("cpp", "export", cj, files, name), py = Ok(cpp) ? b.Run("py", "check", cj, files, name) : cpp;
      json pg = Ok(cpp) ? b.Run("py", "check", cj, files + " --gemv", name) : cpp;
      if (!Ok(cpp) || !Ok(py) || !Ok(pg)) {
        t.rows.push_back({name + ": parameters", Ok(cpp) ? std::to_string(cpp["params"].get<int64_t>()) : Err(cpp),
                          Ok(py) && Ok(pg) ? "" : Err(Ok(py) ? pg : py)});
        continue;
      }
      const int64_t pc = cpp["params"], pp = py["params"];
      t.rows.push_back({name + ": parameters", std::to_string(pc), std::to_string(pp), Fmt("%.3f", double(pc) / pp),
                        pc == pp ? "equal" : "**DIFFERENT**"});
      const double diff = py["max_abs_diff"], scale = py["logit_scale"];
      t.rows.push_back({name + ": logits, max abs diff (max abs logit " + Fmt("%.2g", scale) + ")", "reference",
                        Fmt("%.1e", diff), "", diff <= 1e-5 * std::max(1.0, scale) ? "same function" : "**DIFFERENT**"});
      const double sc = cpp["step_vs_forward"], sp = py["step_vs_forward"], sg = pg["step_vs_forward"];
      t.rows.push_back({name + ": step vs forward (B=1)", Fmt("%.1e", sc), Fmt("%.1e", sp) + " / --gemv " + Fmt("%.1e", sg), "",
                        std::max({sc, sp, sg}) <= 1e-4 * std::max(1.0, scale) ? "agree" : "**DISAGREE**"});
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    t.Print();
  }

  // --- training throughput and peak memory (the same children)
  struct TrainCase {
    std::string name;
    const ModelConfig* cfg;
    std::string json;
    int T, B;
  };
  const std::vector<TrainCase> train_cases = {{"transformer-base", &transformer, tj, 256, 16}, {"transformer-base", &transformer, tj, 1024, 4},
                                              {"lstm-base", &lstm, lj, 256, 16},               {"lstm-base", &lstm, lj, 1024, 4},
                                              {"gru-base", &gru, gj, 256, 16},                 {"gru-base", &gru, gj, 1024, 4}};
  std::map<std::string, std::pair<json, json>> train;  // "name T" -> (cpp, py)
  const bool want_train = b.Wants("train") || b.Wants("memory");
  if (want_train || b.Wants("flops")) {
    for (const auto& tc : train_cases) {
      if (!want_train && tc.cfg != &transformer) continue;
      const std::string args = Bench::Args(tc.T, tc.B, warm, steps);
      auto r = b.Alternating({{"cpp", "train", tc.json, args, tc.name}, {"py", "train", tc.json, args, tc.name}});
      train[tc.name + " " + std::to_string(tc.T)] = {r[0], r[1]};
    }
  }
  if (b.Wants("train")) {
    Table t{"Training throughput, tokens/s (median of the timed steps of all rounds; range in brackets)",
            "One step = zero_grad, forward, cross-entropy (ignore_index 0), backward, clip_grad_norm_(1.0), AdamW step, loss.item(); "
            "dropout 0.1 active (train mode), random tokens." + std::string(kNoiseNote)};
    for (const auto& tc : train_cases) {
      const auto& [cpp, py] = train[tc.name + " " + std::to_string(tc.T)];
      const std::string metric = tc.name + " T=" + std::to_string(tc.T) + " B=" + std::to_string(tc.B);
      if (!Ok(cpp) || !Ok(py)) {
        t.rows.push_back({metric, TokensCell(cpp, 0), TokensCell(py, 0), "", ""});
        continue;
      }
      const double ratio = cpp["tokens_per_s"].get<double>() / py["tokens_per_s"].get<double>();
      const std::string target = Target(ratio >= 2.0, ">= 2x");
      t.rows.push_back({metric, TokensCell(cpp, tc.B * tc.T), TokensCell(py, tc.B * tc.T), Fmt("%.2fx", ratio), target});
      targets.push_back("training " + metric + ": " + Fmt("%.2fx", ratio) + " -> " + target);
    }
    t.Print();
  }
  if (b.Wants("memory")) {
    Table t{"Peak memory of a training step, MB (VmHWM after the steps - VmRSS before the first; fresh process each)",
            "The delta covers activations, gradients, AdamW state (allocated on the first step) and allocator retention; the "
            "absolute VmHWM includes each runtime's baseline (the Python interpreter and its torch import are larger). Lower is better."};
    for (const auto& tc : train_cases) {
      const auto& [cpp, py] = train[tc.name + " " + std::to_string(tc.T)];
      const std::string metric = tc.name + " T=" + std::to_string(tc.T) + " B=" + std::to_string(tc.B);
      if (!Ok(cpp) || !Ok(py)) {
        t.rows.push_back({metric, Ok(cpp) ? "" : Err(cpp), Ok(py) ? "" : Err(py)});
        continue;
      }
      const double mc = MB(cpp, "hwm_after_kb", "rss_before_kb"), mp = MB(py, "hwm_after_kb", "rss_before_kb");
      t.rows.push_back({metric + ": step delta", Fmt("%.0f", mc), Fmt("%.0f", mp), Fmt("%.2f", mc / mp), ""});
      t.rows.push_back({metric + ": process VmHWM", Fmt("%.0f", cpp["hwm_after_kb"].get<double>() / 1024),
                        Fmt("%.0f", py["hwm_after_kb"].get<double>() / 1024),
                        Fmt("%.2f", cpp["hwm_after_kb"].get<double>() / py["hwm_after_kb"].get<double>()), ""});
    }
    t.Print();
  }

  // --- batch-1 generation
  if (b.Wants("generate")) {
    Table t{"Batch-1 generation of " + std::to_string(gen_tokens) + " tokens (Transformer: KV cache; LSTM: state stepping)",
            "Per token: Step(token) -> logits, softmax, multinomial sample; no grammar mask; eval mode, no grad. "
            "Median of all runs (" + std::to_string(gen_runs) + " per child after a 32-token warm-up, " + std::to_string(b.rounds) +
            " children per row in alternating order); latency: median over the children. Latency ratios are C++/Python (lower is better). "
            "The C++ models step one sequence on one thread with matrix-vector products (addmv) and written-out LSTM/GRU "
            "cells instead of [1, K] GEMMs (OpenBLAS 0.3.21 packs the whole weight matrix for those, and with two OpenMP "
            "threads wakes the second one for every product); the Python reference uses nn.Linear/nn.LSTM as written with "
            "the bench's threads. The --gemv row gives Python the same path (and one thread), leaving only the language "
            "and runtime difference." + std::string(kNoiseNote)};
    for (const auto& [name, cj] : std::vector<std::pair<std::string, std::string>>{{"transformer-base", tj}, {"lstm-base", lj}}) {
      const std::string args = " --tokens " + std::to_string(gen_tokens) + " --warmup 1 --steps " + std::to_string(gen_runs);
      auto r = b.Alternating({{"cpp", "generate", cj, args, name}, {"py", "generate", cj, args, name},
                              {"py", "generate", cj, args + " --gemv", name}});
      const json &cpp = r[0], &py = r[1], &pg = r[2];
      if (!Ok(cpp) || !Ok(py)) {
        t.rows.push_back({name, Ok(cpp) ? "" : Err(cpp), Ok(py) ? "" : Err(py)});
        continue;
      }
      const double ratio = cpp["tokens_per_s"].get<double>() / py["tokens_per_s"].get<double>();
      const std::string target = Target(ratio >= 1.5, ">= 1.5x");
      t.rows.push_back({name + ": tokens/s", Fmt("%.0f", cpp["tokens_per_s"]) + Mark(cpp), Fmt("%.0f", py["tokens_per_s"]) + Mark(py),
                        Fmt("%.2fx", ratio), target});
      if (Ok(pg)) {
        t.rows.push_back({name + ": tokens/s, Python with the C++ batch-1 path (--gemv)", Fmt("%.0f", cpp["tokens_per_s"]),
                          Fmt("%.0f", pg["tokens_per_s"]) + Mark(pg), Fmt("%.2fx", cpp["tokens_per_s"].get<double>() / pg["tokens_per_s"].get<double>()),
                          "language/runtime share only"});
      }
      for (const auto& [key, label] : std::vector<std::pair<std::string, std::string>>{
               {"ms_per_token", "mean ms/token"}, {"median_ms", "median ms/token"}, {"p90_ms", "p90 ms/token"}}) {
        t.rows.push_back({name + ": " + label, Fmt("%.3f", cpp[key]), Fmt("%.3f", py[key]),
                          Fmt("%.2f", cpp[key].get<double>() / py[key].get<double>()), ""});
      }
      targets.push_back("generation " + name + ": " + Fmt("%.2fx", ratio) + " -> " + target);
    }
    t.Print();
  }

  // --- attention-RNN memory by attention kind at T=1024
  if (b.Wants("attention")) {
    Table t{"Attention RNN (lstm-base sizes) at T=1024: training-step peak memory delta, MB, by attention kind",
            "Same delta as above (VmHWM - VmRSS before the first step), 1 warm-up + 2 timed steps (1 + 1 with --quick); "
            "step time in brackets. `additive` is the blocked custom autograd function in both implementations "
            "(core/model/additive_attention.cc, mirrored in Python); `additive, naive` is the textbook "
            "tanh(q_i + k_j) . v over a materialised [B,T,T,A] tensor, run in Python only and only where it fits in memory."};
    const std::string attention_steps = b.quick ? "1" : "2";
    std::map<std::string, double> cpp_mb;
    for (int B : {4, 1}) {
      for (const std::string kind : {"dot", "general", "additive", "additive, naive"}) {
        ModelConfig cfg = lstm;
        const bool naive = kind == "additive, naive";
        cfg.attention = naive ? "additive" : kind;
        const std::string cj = ConfigToJson(cfg).dump();
        const std::string args = " --seq 1024 --batch " + std::to_string(B) + " --warmup 1 --steps " + attention_steps;
        const std::string metric = "B=" + std::to_string(B) + " " + kind;
        const std::string label = "lstm-base, attention " + cfg.attention;
        json cpp = naive ? json{{"error", "not run"}} : b.Run("cpp", "train", cj, args, label);
        json py;
        // The naive form holds several [B,T,T,A] float tensors at once (sum, tanh output kept for backward, its
        // gradient): estimate 4 copies and run it only when that fits well inside MemAvailable.
        const double copy_gb = 4.0 * B * 1024.0 * 1024.0 * cfg.hidden / 1e9;
        const double avail_gb = ProcMemAvailableGb();
        if (naive && 4 * copy_gb > 0.7 * avail_gb) {
          py = json{{"error", Fmt("skipped: ~%.0f GB needed (4 x ", 4 * copy_gb) + Fmt("%.1f GB [B,T,T,A]), ", copy_gb) +
                                  Fmt("%.0f GB available", avail_gb)}};
        } else if (naive || kind == "dot" || kind == "additive" || kind == "general") {
          py = b.Run("py", "train", cj, args + (naive ? " --naive-additive" : ""), label);
        }
        auto cell = [](const json& r) {
          if (!Ok(r)) return r["error"] == "not run" ? std::string("-") : Err(r);
          return Fmt("%.0f", MB(r, "hwm_after_kb", "rss_before_kb")) + " (" + Fmt("%.1f s", r["step_s"]) + ")";
        };
        std::string ratio, target;
        if (Ok(cpp) && Ok(py)) ratio = Fmt("%.2f", MB(cpp, "hwm_after_kb", "rss_before_kb") / MB(py, "hwm_after_kb", "rss_before_kb"));
        if (Ok(cpp)) cpp_mb[metric] = MB(cpp, "hwm_after_kb", "rss_before_kb");
        const std::string dot_key = "B=" + std::to_string(B) + " dot";
        if (kind == "additive" && Ok(cpp) && cpp_mb.count(dot_key)) {
          const double x = cpp_mb[metric] / cpp_mb[dot_key];
          target = Target(x <= 2.0, "C++ additive/dot " + Fmt("%.2f", x) + "x, <= 2x");
          targets.push_back("attention memory " + metric + " (C++): additive/dot " + Fmt("%.2fx", x) + " -> " + target);
        }
        if (naive && Ok(py) && cpp_mb.count("B=" + std::to_string(B) + " additive")) {
          target = "naive / C++ blocked: " + Fmt("%.1fx", MB(py, "hwm_after_kb", "rss_before_kb") / cpp_mb["B=" + std::to_string(B) + " additive"]);
        }
        t.rows.push_back({metric, cell(cpp), cell(py), ratio, target});
      }
    }
    t.Print();
  }

  // --- Transformer model GFLOP/s vs a large matmul
  if (b.Wants("flops")) {
    const std::string mm_args = std::string(" --warmup 3 --steps ") + (b.quick ? "5" : "10");
    auto mm = b.Alternating({{"cpp", "matmul", "", mm_args, "2048x2048"}, {"py", "matmul", "", mm_args, "2048x2048"}});
    const json &mc = mm[0], &mp = mm[1];
    Table t{"Transformer training: model GFLOP/s against a 2048x2048 float torch.mm (same process kind, same threads)",
            "Model FLOPs per step = 6 (N_mm + D V) B T + 12 L T D B T, with N_mm = L (4 D^2 + 2 D F) the matmul weights "
            "(qkv, proj, ff1, ff2; biases and LayerNorm excluded), D V the tied logits projection and 12 L T D the dense "
            "QK^T and AV products (forward 4 L T D per token, x3 for backward), the dense count of the usual model-FLOPs "
            "convention: PyTorch's baddbmm computes the masked causal half too, cadenza's fused attention kernel skips it. Elementwise work (LayerNorm, softmax, dropout, ReLU, AdamW) is not counted." +
            std::string(kNoiseNote) + " transformer-base: N_mm = " + Fmt("%.0f", transformer.layers * (4.0 * transformer.d_model * transformer.d_model + 2.0 * transformer.d_model * transformer.ff_dim)) +
            ", D V = " + std::to_string(transformer.d_model * transformer.vocab_size) + "."};
    auto gf = [](const json& r) { return Ok(r) ? Fmt("%.1f", r["gflops"]) + Mark(r) : Err(r); };
    t.rows.push_back({"2048x2048 mm GFLOP/s (peak)", gf(mc), gf(mp), Ok(mc) && Ok(mp) ? Fmt("%.2f", mc["gflops"].get<double>() / mp["gflops"].get<double>()) : "", ""});
    for (const auto& tc : train_cases) {
      if (tc.cfg != &transformer) continue;
      auto it = train.find(tc.name + " " + std::to_string(tc.T));
      if (it == train.end()) continue;
      const auto& [cpp, py] = it->second;
      const double flops = TransformerTrainFlops(transformer, tc.B, tc.T);
      const std::string metric = "T=" + std::to_string(tc.T) + " B=" + std::to_string(tc.B);
      if (!Ok(cpp) || !Ok(py) || !Ok(mc) || !Ok(mp)) {
        t.rows.push_back({metric, "failed"});
        continue;
      }
      const double gc = flops / cpp["step_s"].get<double>() / 1e9, gp = flops / py["step_s"].get<double>() / 1e9;
      const double fc = gc / mc["gflops"].get<double>(), fp = gp / mp["gflops"].get<double>();
      t.rows.push_back({metric + ": model GFLOP/s (" + Fmt("%.2f", flops / 1e9) + " GFLOP/step)", Fmt("%.1f", gc) + Mark(cpp),
                        Fmt("%.1f", gp) + Mark(py), Fmt("%.2fx", gc / gp), ""});
      std::string target;
      if (tc.T == 256) {
        target = Target(fc >= 0.8, ">= 80% of peak");
        targets.push_back("Transformer T=256 training at " + Fmt("%.0f%%", 100 * fc) + " of the C++ matmul peak -> " + target);
      }
      t.rows.push_back({metric + ": % of own mm peak", Fmt("%.0f%%", 100 * fc), Fmt("%.0f%%", 100 * fp), "", target});
    }
    t.Print();
  }

  // --- bf16 mixed precision against fp32, both implementations, all four children of a row alternating
  if (b.Wants("bf16")) {
    Table t{"bf16 mixed precision: training tokens/s, bf16 against fp32 (columns: C++, Python; the last column holds the targets)",
            "C++: train.precision: bf16 (core/model/mixed_precision.h: bf16 GEMM inputs, fp32 accumulation, fp32 master "
            "weights, optimizer, LayerNorm, softmax, loss); Python: torch.autocast(\"cpu\", dtype=torch.bfloat16) around the "
            "forward, the loss on fp32 logits. The four children of a row (C++ fp32, C++ bf16, Python fp32, Python bf16) run "
            "one after the other, the order reversed in the next round." + std::string(kNoiseNote)};
    for (const auto& tc : train_cases) {
      if (tc.cfg == &gru) continue;  // issue 17's bf16 targets name the Transformer and the LSTM
      const std::string args = Bench::Args(tc.T, tc.B, warm, steps);
      auto r = b.Alternating({{"cpp", "train", tc.json, args, tc.name},
                              {"cpp", "train", tc.json, args + " --precision bf16", tc.name},
                              {"py", "train", tc.json, args, tc.name},
                              {"py", "train", tc.json, args + " --precision bf16", tc.name}});
      const std::string metric = tc.name + " T=" + std::to_string(tc.T) + " B=" + std::to_string(tc.B);
      const double tokens = double(tc.B) * tc.T;
      t.rows.push_back({metric + ": fp32", TokensCell(r[0], tokens), TokensCell(r[2], tokens),
                        Ok(r[0]) && Ok(r[2]) ? Fmt("%.2fx", r[0]["tokens_per_s"].get<double>() / r[2]["tokens_per_s"].get<double>()) : "", ""});
      t.rows.push_back({metric + ": bf16", TokensCell(r[1], tokens), TokensCell(r[3], tokens),
                        Ok(r[1]) && Ok(r[3]) ? Fmt("%.2fx", r[1]["tokens_per_s"].get<double>() / r[3]["tokens_per_s"].get<double>()) : "", ""});
      if (!Ok(r[0]) || !Ok(r[1]) || !Ok(r[2]) || !Ok(r[3])) continue;
      const double own = r[1]["tokens_per_s"].get<double>() / r[0]["tokens_per_s"].get<double>();
      const double py_own = r[3]["tokens_per_s"].get<double>() / r[2]["tokens_per_s"].get<double>();
      const double vs_py = r[1]["tokens_per_s"].get<double>() / r[3]["tokens_per_s"].get<double>();
      const double need = tc.cfg == &transformer ? 1.7 : 1.4;
      const std::string own_target = Target(own >= need, Fmt(">= %.1fx fp32", need));
      t.rows.push_back({metric + ": bf16 / fp32", Fmt("%.2fx", own), Fmt("%.2fx", py_own), "", own_target});
      t.rows.push_back({metric + ": bf16, C++ / Python bf16", "", "", Fmt("%.2fx", vs_py), Target(vs_py >= 1.5, ">= 1.5x")});
      t.rows.push_back({metric + ": final loss fp32 / bf16 (one batch, after the same steps)", Fmt("%.4f", r[0]["loss"].get<double>()) + " / " + Fmt("%.4f", r[1]["loss"].get<double>()),
                        Fmt("%.4f", r[2]["loss"].get<double>()) + " / " + Fmt("%.4f", r[3]["loss"].get<double>()), "", ""});
      targets.push_back("bf16 " + metric + ": " + Fmt("%.2fx", own) + " fp32 -> " + own_target);
      targets.push_back("bf16 " + metric + ": " + Fmt("%.2fx", vs_py) + " the Python bf16 reference -> " + Target(vs_py >= 1.5, ">= 1.5x"));
    }
    t.Print();
  }

  if (!targets.empty()) {
    std::printf("\n### Targets\n\n");
    for (const auto& s : targets) std::printf("- %s\n", s.c_str());
  }
  std::printf("\nload average at end %s; during one measurement other processes used up to %.2f cores and the hypervisor "
              "stole up to %.2f (see the log)\n\n"
              "<details><summary>child processes (load average before each, wall time, CPU used by other processes "
              "and stolen meanwhile)</summary>\n\n```\n",
              Bench::LoadAvg().c_str(), b.max_others, b.max_steal);
  for (const auto& s : b.log) std::printf("%s\n", s.c_str());
  std::printf("```\n</details>\n");
  return 0;
}

}  // namespace

}  // namespace cadenza

int main(int argc, char** argv) {
  // LibTorch's large tensors are otherwise mmap'd and page-faulted anew every step (PLATFORM.md); the Python
  // reference gets the same settings through GLIBC_TUNABLES.
  cadenza::KeepFreedMemory();
  using namespace cadenza;
  CLI::App app{"model_bench: cadenza's LibTorch models vs the same models in Python PyTorch (bench/reference_models.py).\n"
               "Prints Markdown tables: metric | cadenza (C++) | PyTorch (Python) | ratio | target."};
  Bench b;
  JobArgs job;
  std::string only;
  b.source_dir = CADENZA_SOURCE_DIR;
  app.add_option("--threads", b.threads, "Intra-op threads for every child, C++ and Python")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_flag("--quick", b.quick, "Fewer steps and runs, one round");
  app.add_option("--rounds", b.rounds, "Timing children per implementation and figure, in alternating order (pooled)")
      ->capture_default_str()->check(CLI::Range(1, 20));
  app.add_option("--only", only, "Comma-separated sections: check, train, memory, generate, attention, flops, bf16");
  app.add_option("--python", b.python, "Python with torch (Debian's python3-torch)")->capture_default_str();
  app.add_option("--source-dir", b.source_dir, "cadenza source tree (configs/models, bench/reference_models.py)")->capture_default_str();
  // Child mode (used by the parent; documented for reproducing one measurement by hand).
  app.add_option("--one", job.job, "Run one measurement in this process and print it as JSON: train, generate, matmul, params, export");
  app.add_option("--config", job.config_json, "Model config as JSON (child mode)");
  app.add_option("--seq", job.seq, "Training sequence length (child mode)");
  app.add_option("--batch", job.batch, "Training batch (child mode)");
  app.add_option("--tokens", job.tokens, "Tokens to generate (child mode)");
  app.add_option("--warmup", job.warmup, "Warm-up steps or runs (child mode)");
  app.add_option("--steps", job.steps, "Timed steps or runs (child mode)");
  app.add_option("--state-dict", job.state_dict, "export: state dict output (child mode)");
  app.add_option("--reference", job.reference, "export: tokens and logits output (child mode)");
  app.add_option("--precision", job.precision, "train: fp32 or bf16 (mixed precision, as train.precision) (child mode)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  CLI11_PARSE(app, argc, argv);
  if (!job.job.empty()) {
    job.threads = b.threads;
    try {
      return RunChild(job);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "model_bench --one %s: %s\n", job.job.c_str(), e.what());
      return 1;
    }
  }
  std::stringstream ss(only);
  for (std::string s; std::getline(ss, s, ',');) {
    if (!s.empty()) b.only.insert(s);
  }
  b.self = fs::read_symlink("/proc/self/exe").string();
  if (b.quick) b.rounds = 1;
  return RunParent(b);
}
