// eval_bench: `cadenza evaluate`'s work (read MIDI, quantise, all metrics, set comparison) on 1,000 pieces, pieces/s.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "core/eval/evaluate.h"
#include "core/synthetic.h"

namespace fs = std::filesystem;
using namespace cadenza;

int main(int argc, char** argv) {
  CLI::App app{"Evaluate N pieces (Nottingham MIDI files, or synthetic tunes when absent) and print pieces/s"};
  std::string input = (fs::path(CADENZA_SHARED_DATA) / "nottingham" / "MIDI").string();
  int count = 1000, jobs = 2, repeats = 3;
  std::string png_dir;
  app.add_option("--input", input, "Folder of MIDI files (recursive); synthetic tunes are written when it is absent")->capture_default_str();
  app.add_option("--count", count, "Pieces to evaluate")->capture_default_str()->check(CLI::Range(2, 1000000));
  app.add_option("--jobs,-j", jobs, "Worker threads")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--repeats", repeats, "Timed runs (the median is reported) after one warm-up")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--ssm-png", png_dir, "Also write the heatmaps here (measures PNG encoding too)");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> files;
  std::string source = input;
  fs::path synth_dir;
  if (fs::is_directory(input)) {
    for (const auto& e : fs::recursive_directory_iterator(input)) {
      if (e.is_regular_file() && (e.path().extension() == ".mid" || e.path().extension() == ".midi")) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
  }
  if (files.empty()) {
    synth_dir = fs::temp_directory_path() / ("cadenza_eval_bench_" + std::to_string(::getpid()));
    SyntheticOptions o;
    o.count = count;
    if (Status s = WriteSyntheticCorpus(o, synth_dir.string()); !s.ok()) {
      std::fprintf(stderr, "eval_bench: %s\n", s.message().c_str());
      return 1;
    }
    for (const auto& e : fs::directory_iterator(synth_dir)) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    source = "synthetic tunes (" + input + " absent)";
  }
  // Cycle through the files when the folder holds fewer than --count.
  std::vector<std::string> chosen;
  for (int i = 0; i < count; ++i) chosen.push_back(files[i % files.size()]);

  EvaluateRequest request;
  request.inputs = chosen;
  request.jobs = jobs;
  request.ssm_png_dir = png_dir;
  std::vector<double> eval_s, compare_s;
  EvaluationReport last;
  for (int r = 0; r <= repeats; ++r) {
    const double t0 = bench::Now();
    auto report = RunEvaluation(request);
    const double t1 = bench::Now();
    if (!report.ok()) {
      std::fprintf(stderr, "eval_bench: %s\n", report.status().message().c_str());
      return 1;
    }
    // Set comparison: the first half of the pieces against the second half as the reference (mgeval, all features).
    EvaluationReport& rep = *report;
    const size_t half = rep.pieces.size() / 2;
    rep.reference.assign(rep.pieces.begin() + half, rep.pieces.end());
    rep.pieces.resize(half);
    const double t2 = bench::Now();
    CompareSets(&rep);
    const std::string json = ReportJson(rep);
    const double t3 = bench::Now();
    if (r > 0) {  // run 0 warms the page cache
      eval_s.push_back(t1 - t0);
      compare_s.push_back(t3 - t2);
    }
    last = std::move(rep);
  }
  std::sort(eval_s.begin(), eval_s.end());
  std::sort(compare_s.begin(), compare_s.end());
  const double e = eval_s[eval_s.size() / 2], c = compare_s[compare_s.size() / 2];
  std::printf("eval_bench: %d pieces from %s, %d jobs, %u hardware threads, median of %d runs\n", count, source.c_str(), jobs,
              std::thread::hardware_concurrency(), repeats);
  std::printf("  %-44s %10s %12s\n", "stage", "seconds", "pieces/s");
  std::printf("  %-44s %10.3f %12.0f\n", "read + quantise + all per-piece metrics", e, count / e);
  std::printf("  %-44s %10.3f %12s\n", "set comparison (500 vs 500, 17 features) + JSON", c, "");
  std::printf("  %-44s %10.3f %12.0f\n", "total", e + c, count / (e + c));
  std::printf("  skipped inputs: %zu; target: 1,000 pieces in under 10 s on 2 cores: %s\n", last.skipped.size(),
              (e + c) * 1000.0 / count < 10.0 ? "met" : "MISSED");
  if (!synth_dir.empty()) fs::remove_all(synth_dir);
  return 0;
}
