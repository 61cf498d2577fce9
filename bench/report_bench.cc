// report_bench: the study's report and live page at scale. A database holding a 1,000-experiment sweep (2 models x
// 4 dataset fractions x 125 seeds; each run with train, score, probe and aggregate results and a metrics.csv of
// 3 tags x 20 steps) is read the three ways a lab reads it, each timed against its target in one table:
//   1. GET /api/v1/sweeps/1/report (what the live page polls: cells, figures and curves from 1,000 metrics.csv),
//   2. the report folder (the same data, every figure rendered by gnuplot as SVG and PNG, index.html),
//   3. the page with those 1,000 experiments opened in headless Chromium until it has drawn (when node, chromium and
//      puppeteer-core are installed: scripts/install-deps.sh).
// Reference in the same run: the cells alone (GET /api/v1/sweeps/1/cells), the floor any report pays.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "bench/bench_util.h"
#include "core/report/report_writer.h"
#include "coordinator/http_api.h"
#include "coordinator/store.h"
#include "coordinator/sweep.h"
#include "core/report/page.h"

namespace fs = std::filesystem;
using namespace cadenza;
using namespace cadenza::coord;

namespace {

std::string Fmt(double v, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
std::string Row(const std::string& name, const std::string& value, const std::string& target, const std::string& verdict) {
  char buf[320];
  std::snprintf(buf, sizeof buf, "| %-56s | %10s | %9s | %-7s |\n", name.c_str(), value.c_str(), target.c_str(), verdict.c_str());
  return buf;
}

// Median of `repeats` timings of f(), in seconds.
template <typename F>
double Median(int repeats, F f) {
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const double t0 = bench::Now();
    f();
    t.push_back(bench::Now() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Status Fill(Store* store, const fs::path& runs, int experiments) {
  const char* models[] = {"transformer", "lstm"};
  const double fractions[] = {0.1, 0.25, 0.5, 1.0};
  const int seeds = std::max(1, experiments / 8);
  ExperimentSpec spec;
  spec.experiment_yaml = "name: bench\ndataset: /data/ds\nout: /runs/bench\nmodel: {family: lstm, d_model: 32, layers: 1, hidden: 32}\n"
                         "train: {seq_len: 32, steps: 10}\n";
  auto base = ValidateExperiment(spec);
  if (!base.ok()) return base.status();
  return store->Transaction([&]() -> Status {
    int64_t n = 0;
    for (const char* model : models) {
      for (double fraction : fractions) {
        for (int seed = 1; seed <= seeds; ++seed, ++n) {
          JobRecord j;
          j.user = "bench";
          j.sweep_id = 1;
          j.state = JobState::kSucceeded;
          j.experiment = *base;
          j.experiment.model_family = model;
          j.experiment.seed = seed;
          j.experiment.name = std::string(model) + "-f" + Fmt(fraction, 2) + "-s" + std::to_string(seed);
          j.experiment.axes = {{"model", model}, {"dataset_fraction", Fmt(fraction, 2)}, {"seed", std::to_string(seed)}};
          j.experiment.parameters = 100000;
          if (Status s = store->InsertJob(&j); !s.ok()) return s;
          const double q = (std::string(model) == "lstm" ? 0.9 : 1.1) + 0.2 * (1 - fraction) + 0.01 * (seed % 7);
          const fs::path run = runs / std::to_string(j.id);
          fs::create_directories(run);
          std::ofstream csv(run / "metrics.csv");
          csv << "step,tag,value\n";
          for (int step = 10; step <= 200; step += 10) {
            csv << step << ",val/nll_per_token," << q + 2.0 / step << "\n" << step << ",sample/structureness," << 0.01 * step / 200 << "\n"
                << step << ",sample/repetition," << 0.1 << "\n";
          }
          auto add = [&](TaskKind kind, std::map<std::string, double> metrics, std::vector<std::string> artifacts) -> Status {
            TaskRecord t;
            t.job_id = j.id;
            t.kind = kind;
            t.state = TaskState::kSucceeded;
            if (Status s = store->InsertTask(&t); !s.ok()) return s;
            ResultRecord r;
            r.task_id = t.id;
            r.attempt = 1;
            r.job_id = j.id;
            r.kind = kind;
            r.metrics = std::move(metrics);
            r.artifacts = std::move(artifacts);
            return store->InsertResult(r);
          };
          if (Status s = add(TaskKind::kTrain, {{"val_nll", q}, {"data/train_tokens", 500000 * fraction}}, {(run / "metrics.csv").string()}); !s.ok()) return s;
          if (Status s = add(TaskKind::kScore, {{"val/nll_per_token", q}, {"test/nll_per_token", q + 0.03}}, {}); !s.ok()) return s;
          std::map<std::string, double> probe;
          for (int length : {64, 256, 1024}) {
            const std::string p = "probe/L" + std::to_string(length) + "/b1/";
            probe[p + "forward_ms"] = length * (std::string(model) == "lstm" ? 0.02 : 0.005);
            probe[p + "step_ms"] = 0.2;
            probe[p + "train_peak_mb"] = length * 0.1;
            probe[p + "forward_peak_mb"] = length * 0.05;
            probe[p + "state_mb"] = std::string(model) == "lstm" ? 1.7 : length * 0.008;
          }
          if (Status s = add(TaskKind::kProbe, probe, {}); !s.ok()) return s;
          if (Status s = add(TaskKind::kAggregate, {{"structureness/mean", 0.1}, {"repetition/mean", 0.2}, {"syncopation/mean", 1.0},
                                                    {"avg_pitch_deviation/mean", 5.0}, {"pitch_class_entropy/overlap", 0.8}}, {});
              !s.ok()) {
            return s;
          }
        }
      }
    }
    return Status::Ok();
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The report and the live page of a large sweep: API, report folder and page drawing times against their targets"};
  int experiments = 1000, repeats = 5;
  std::string dir = "out/report-bench";
  bool browser = true;
  app.add_option("--experiments", experiments, "Runs in the sweep (2 models x 4 fractions x experiments/8 seeds)")->capture_default_str();
  app.add_option("--repeats", repeats, "Timings per row (the median is shown)")->capture_default_str();
  app.add_option("--dir", dir, "Folder for the database, the runs' metrics.csv and the report (wiped first)")->capture_default_str();
  app.add_flag("--browser,!--no-browser", browser, "Also time the page in headless Chromium (needs node, chromium, puppeteer-core)");
  CLI11_PARSE(app, argc, argv);

  fs::remove_all(dir);
  fs::create_directories(dir);
  auto store = Store::Open(dir + "/c.db");
  if (!store.ok()) {
    std::cerr << "report_bench: " << store.status().message() << "\n";
    return 1;
  }
  const double f0 = bench::Now();
  if (Status s = Fill(store->get(), fs::path(dir) / "runs", experiments); !s.ok()) {
    std::cerr << "report_bench: " << s.message() << "\n";
    return 1;
  }
  const double fill_s = bench::Now() - f0;
  auto reads = ResultQuery::Open((*store)->path());
  auto auth = TokenAuth::Parse("bench-token-0001 bench\n", "tokens");
  if (!reads.ok() || !auth.ok()) return 1;
  CoordinatorMetrics metrics;
  HttpApiOptions o;
  o.source = "report_bench";
  HttpApi::Live live;
  live.task_counts = [] { return std::vector<TaskCount>(); };
  live.workers = [] { return std::make_pair(0, 0); };
  HttpApi api(&*auth, reads->get(), &metrics, live, o);
  auto get = [&](const std::string& path) {
    HttpRequest r;
    r.path = path;
    r.authorization = "Bearer bench-token-0001";
    return api.Handle(r);
  };
  HttpResponse cells = get("/api/v1/sweeps/1/cells"), report = get("/api/v1/sweeps/1/report");
  if (cells.status != 200 || report.status != 200) {
    std::cerr << "report_bench: " << cells.body.substr(0, 300) << " " << report.body.substr(0, 300) << "\n";
    return 1;
  }
  const nlohmann::json data = nlohmann::json::parse(report.body);
  const double cells_s = Median(repeats, [&] { get("/api/v1/sweeps/1/cells"); });
  const double report_s = Median(repeats, [&] { get("/api/v1/sweeps/1/report"); });
  std::string files_error;
  const double files_s = Median(repeats, [&] {  // as `cadenza report --sweep` does: the cells, every run's curves, gnuplot
    std::vector<RunCurves> curves;
    for (const auto& e : fs::directory_iterator(fs::path(dir) / "runs")) {
      std::ifstream in(e.path() / "metrics.csv");
      std::stringstream text;
      text << in.rdbuf();
      RunCurves run = RunCurvesOf({{"model", "lstm"}, {"dataset_fraction", "1.00"}}, "lstm", "/data/ds");
      if (ParseMetricsCsv(text.str(), (e.path() / "metrics.csv").string(), &run).ok()) curves.push_back(std::move(run));
    }
    ReportContext context;
    context.title = "report_bench";
    auto files = WriteReport(cells.body, "bench", curves, context, dir + "/report");
    if (!files.ok()) files_error = files.status().message();
  });
  // The page itself, with the live report's data (figures and curves of all 1,000 runs) embedded.
  const std::string page = dir + "/page.html";
  std::ofstream(page) << PageHtml(data);
  double draw_ms = -1;
  std::string browser_note = "not run (--no-browser)";
  if (browser) {
    const std::string node_modules = std::string(CADENZA_SOURCE_DIR) + "/core/report/web/node_modules";
    if (std::system("command -v node >/dev/null && command -v chromium >/dev/null") != 0 || !fs::exists(node_modules + "/puppeteer-core")) {
      browser_note = "skipped: needs node, chromium and puppeteer-core (scripts/install-deps.sh)";
    } else {
      const std::string out = bench::Capture("node " + std::string(CADENZA_SOURCE_DIR) + "/bench/page_draw_time.cjs " + node_modules +
                                             " " + bench::Quote(fs::absolute(page).string()) + " " + std::to_string(repeats) + " 2>&1");
      draw_ms = std::atof(out.c_str());
      browser_note = draw_ms > 0 ? "" : "failed: " + out;
    }
  }

  char host[256] = "?";
  gethostname(host, sizeof host);
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 0) load[0] = -1;
  std::cout << "report_bench: " << experiments << " experiments (" << data["cells"].size() << " cells, " << data["figures"].size()
            << " figures, database filled in " << Fmt(fill_s, 1) << " s); median of " << repeats << "; " << std::thread::hardware_concurrency()
            << " cores (" << host << "), load average " << Fmt(load[0]) << "\n\n";
  std::cout << Row("what", "seconds", "target", "verdict") << "|" << std::string(58, '-') << "|" << std::string(12, '-') << "|"
            << std::string(11, '-') << "|" << std::string(9, '-') << "|\n";
  std::cout << Row("reference: GET /api/v1/sweeps/1/cells (cells alone)", Fmt(cells_s, 3), "", "");
  std::cout << Row("GET /api/v1/sweeps/1/report (+ figures, 1,000 curves)", Fmt(report_s, 3), "< 2", report_s < 2 ? "met" : "MISSED");
  std::cout << Row("report folder (1,000 metrics.csv, gnuplot SVG+PNG, html)", files_error.empty() ? Fmt(files_s, 3) : "error", "< 2",
                   files_error.empty() && files_s < 2 ? "met" : "MISSED");
  if (draw_ms > 0) {
    std::cout << Row("page drawn in headless Chromium (load -> drawn)", Fmt(draw_ms / 1000, 3), "< 1", draw_ms < 1000 ? "met" : "MISSED");
  } else {
    std::cout << "page in headless Chromium: " << browser_note << "\n";
  }
  std::cout << "\nratios: report / cells " << Fmt(report_s / cells_s, 1) << "x";
  if (!files_error.empty()) std::cout << "\nreport folder: " << files_error;
  std::cout << "\n";
  return 0;
}
