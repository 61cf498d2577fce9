// Window sampling rate from an HDF5 dataset: cadenza's WindowSampler against a PyTorch-style h5py Dataset
// (bench/reference_windows.py) in the same run, plus a check that h5py, reading the documented schema, gets
// the very same windows.
//
//   window_bench [--data MIDI_DIR] [--windows 1000000] [--python-windows 50000]
//
// Two Python rows per length: the Dataset a PyTorch user writes over HDF5 (one h5py slice per window; slow, so
// --python-windows of them, at least one epoch shuffle included), and the same with every shard's tokens read
// into numpy once (cadenza's strategy, --windows of them, as many epoch shuffles as cadenza) to separate the
// language from the I/O strategy.
//
// Ingests the corpus (default POP909; 300 synthetic tunes when the folder is absent) into a temporary folder,
// then for window lengths 256 and 1024 times Epoch() (the shuffle) + Read() over --windows windows. Results:
// docs/PERFORMANCE.md.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/synthetic.h"
#include "storage/dataset.h"
#include "bench/bench_util.h"
#include "storage/ingest.h"
#include "core/process_memory.h"

namespace fs = std::filesystem;
using namespace cadenza;

namespace {

using bench::Capture;
using bench::Now;
using bench::Quote;

int Die(const std::string& what) {
  std::fprintf(stderr, "window_bench: %s\n", what.c_str());
  return 1;
}

nlohmann::json RunPython(const std::string& args) {
  const std::string cmd = "/usr/bin/python3 " + Quote(CADENZA_SOURCE_DIR "/bench/reference_windows.py") + " " + args;
  auto j = nlohmann::json::parse(Capture(cmd), nullptr, false);
  if (j.is_discarded() || j.contains("error")) {
    std::fprintf(stderr, "window_bench: the Python reference failed (needs /usr/bin/python3 with h5py): %s\n", cmd.c_str());
    std::exit(1);
  }
  return j;
}

struct Row {
  std::string impl, label;  // label: short, for the setup line
  int64_t length = 0, windows = 0;
  double setup_s = 0, seconds = 0;
  double rate() const { return windows / seconds; }
};

}  // namespace

int main(int argc, char** argv) {
  cadenza::KeepFreedMemory();  // as the cadenza command does (cli/main.cc)
  CLI::App app{"Windows/s sampled from an HDF5 dataset: cadenza vs an h5py reference"};
  std::string data = CADENZA_SHARED_DATA "/pop909";
  int64_t windows = 1000000, python_windows = 50000;
  app.add_option("--data", data, "MIDI folder to ingest (300 synthetic tunes when absent)")->capture_default_str();
  app.add_option("--windows", windows, "Windows cadenza samples per length")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--python-windows", python_windows, "Windows the h5py-per-window reference samples per length (the in-memory one does --windows)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const fs::path work = fs::temp_directory_path() / ("cadenza_window_bench_" + std::to_string(::getpid()));
  fs::create_directories(work);
  std::error_code ec;
  if (!fs::is_directory(data, ec)) {
    std::printf("%s is absent: using 300 synthetic tunes (core/synthetic.h)\n", data.c_str());
    data = (work / "midi").string();
    SyntheticOptions so;
    so.count = 300;
    if (Status s = WriteSyntheticCorpus(so, data); !s.ok()) return Die(s.message());
  } else {
    data = fs::weakly_canonical(data, ec).string();
  }
  IngestOptions o;
  o.input_dir = data;
  o.out_dir = (work / "dataset").string();
  o.jobs = 2;
  o.progress = false;
  IngestReport report;
  if (Status s = Ingest(o, &report); !s.ok()) return Die(s.message());
  auto dataset = Dataset::Open(o.out_dir);
  if (!dataset.ok()) return Die(dataset.status().message());
  std::printf("dataset: %s -> %lld pieces (train %lld), %lld tokens, %lld shards (gzip chunks of 65,536 tokens)\n",
              data.c_str(), (long long)report.pieces, (long long)report.split_counts[0], (long long)report.tokens,
              (long long)report.shards);
  std::fflush(stdout);

  std::vector<Row> rows;
  bool all_identical = true;
  std::string check_lines;
  double worst = 1e30;
  for (int64_t length : {256, 1024}) {
    WindowSamplerOptions wo;
    wo.length = length;
    wo.min_tokens = 32;
    wo.seed = 1;
    const double t_open = Now();
    auto sampler = WindowSampler::Create(**dataset, wo);
    if (!sampler.ok()) return Die(sampler.status().message());
    const double setup = Now() - t_open;
    if ((*sampler)->num_windows_total() == 0) return Die("no windows in the train split");
    std::fprintf(stderr, "length %lld: cadenza...\n", (long long)length);
    std::vector<int32_t> buf(length);
    int64_t done = 0, checksum = 0;
    const double t0 = Now();
    for (int64_t epoch = 0; done < windows; ++epoch) {
      for (const Window& w : (*sampler)->Epoch(epoch)) {  // the epoch shuffle is part of the cost
        (*sampler)->Read(w, buf.data());
        checksum += buf[0] + buf[length - 1];
        if (++done == windows) break;
      }
    }
    Row ours{"cadenza WindowSampler", "cadenza", length, done, setup, Now() - t0};
    worst = std::min(worst, ours.rate());

    // The same windows through h5py: 50 of epoch 0, plus the last window of 10 pieces (padded with PAD),
    // each written with where it lives; Python reads them from the shard files and compares.
    const fs::path check = work / "check.txt";
    {
      std::ofstream f(check);
      const std::vector<Window> epoch = (*sampler)->Epoch(0);
      std::vector<Window> picked(epoch.begin(), epoch.begin() + std::min<size_t>(50, epoch.size()));
      std::map<int64_t, Window> last;  // piece -> its last window
      for (const Window& w : epoch) {
        auto [it, inserted] = last.emplace(w.piece, w);
        if (!inserted && w.start_token > it->second.start_token) it->second = w;
      }
      for (auto it = last.begin(); it != last.end() && picked.size() < 60; ++it) picked.push_back(it->second);
      for (const Window& w : picked) {
        const PieceMeta& meta = (*dataset)->manifest().pieces[w.piece];
        (*sampler)->Read(w, buf.data());
        f << meta.shard << " " << meta.index_in_shard << " " << w.start_token;
        for (int32_t t : buf) f << " " << t;
        f << "\n";
      }
    }
    const std::string args = Quote(o.out_dir) + " --length " + std::to_string(length);
    auto verdict = RunPython(args + " --check " + Quote(check.string()));
    const int64_t same = verdict["identical"].get<int64_t>(), total = verdict["checked"].get<int64_t>();
    const int64_t py_total = verdict["windows_total"].get<int64_t>();
    const bool ok = same == total && py_total == (*sampler)->num_windows_total();
    all_identical = all_identical && ok;
    char line[256];
    std::snprintf(line, sizeof line, "length %lld: h5py reads %lld / %lld windows identically; windows in the train split: cadenza %lld, h5py %lld%s\n",
                  (long long)length, (long long)same, (long long)total, (long long)(*sampler)->num_windows_total(),
                  (long long)py_total, ok ? "" : "  <- MISMATCH");
    check_lines += line;

    std::fprintf(stderr, "length %lld: Python h5py...\n", (long long)length);
    auto h5 = RunPython(args + " --count " + std::to_string(python_windows));
    std::fprintf(stderr, "length %lld: Python in memory...\n", (long long)length);
    auto mem = RunPython(args + " --in-memory --count " + std::to_string(windows));  // as many as cadenza
    rows.push_back(ours);
    rows.push_back(Row{"Python h5py Dataset (slice per window)", "h5py", length, h5["windows"].get<int64_t>(),
                       h5["open_seconds"].get<double>(), h5["seconds"].get<double>()});
    rows.push_back(Row{"Python h5py, tokens read into numpy once", "numpy", length, mem["windows"].get<int64_t>(),
                       mem["open_seconds"].get<double>(), mem["seconds"].get<double>()});
    if (checksum == 42) std::printf(" ");  // keeps the reads observable
  }
  fs::remove_all(work);

  std::printf("\n| implementation | window length | windows | seconds | windows/s | ratio |\n|---|---:|---:|---:|---:|---:|\n");
  std::map<int64_t, double> reference;  // the h5py-per-window rate of each length
  for (const Row& r : rows) {
    if (r.impl.rfind("Python h5py Dataset", 0) == 0) reference[r.length] = r.rate();
  }
  for (const Row& r : rows) {
    std::printf("| %s | %lld | %lld | %.3f | %.0f | %.1fx |\n", r.impl.c_str(), (long long)r.length, (long long)r.windows,
                r.seconds, r.rate(), r.rate() / reference[r.length]);
  }
  std::printf("\nratio: windows/s over the Python h5py Dataset's at the same length. seconds: sampling only, epoch\n"
              "shuffles included; setup (open + index the windows; cadenza and in-memory also read every token) not included:");
  for (const Row& r : rows) std::printf(" %s %lld: %.2f s;", r.label.c_str(), (long long)r.length, r.setup_s);
  std::printf("\n\n%s", check_lines.c_str());
  std::printf("h5py reads the same windows as cadenza: %s\n", all_identical ? "yes" : "NO");
  std::printf("target >= 50,000 windows/s: %s (cadenza's slowest length: %.0f windows/s)\n", worst >= 50000 ? "met" : "MISSED", worst);
  return all_identical ? 0 : 1;
}
