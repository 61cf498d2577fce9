// Window sampling rate from an HDF5 dataset: cadenza's WindowSampler against a PyTorch-style h5py Dataset
// (bench/reference_windows.py) in the same run, plus a check that h5py reads the very same windows.
#include <CLI/CLI.hpp>
#include <malloc.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/synthetic.h"
#include "storage/dataset.h"
#include "storage/ingest.h"

namespace fs = std::filesystem;
using namespace cadenza;

namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string Capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  return out;
}

int Die(const Status& s) {
  std::fprintf(stderr, "window_bench: %s\n", s.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_MAX, 0);  // as the cadenza command does (cli/main.cc)
  mallopt(M_TRIM_THRESHOLD, -1);
  CLI::App app{"Windows/s sampled from an HDF5 dataset: cadenza vs an h5py reference"};
  std::string data = CADENZA_SHARED_DATA "/pop909";
  int64_t windows = 1000000, python_windows = 20000;
  app.add_option("--data", data, "MIDI folder to ingest (synthetic tunes when absent)")->capture_default_str();
  app.add_option("--windows", windows, "Windows cadenza samples per length")->capture_default_str();
  app.add_option("--python-windows", python_windows, "Windows the Python reference samples per length")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const fs::path work = fs::temp_directory_path() / ("cadenza_window_bench_" + std::to_string(::getpid()));
  fs::create_directories(work);
  if (!fs::is_directory(data)) {
    std::printf("%s is absent: using 300 synthetic tunes\n", data.c_str());
    data = (work / "midi").string();
    SyntheticOptions so;
    so.count = 300;
    if (Status s = WriteSyntheticCorpus(so, data); !s.ok()) return Die(s);
  }
  IngestOptions o;
  o.input_dir = data;
  o.out_dir = (work / "ds").string();
  o.jobs = 2;
  o.progress = false;
  IngestReport report;
  if (Status s = Ingest(o, &report); !s.ok()) return Die(s);
  auto dataset = Dataset::Open(o.out_dir);
  if (!dataset.ok()) return Die(dataset.status());
  std::printf("dataset: %s, %lld pieces, %lld tokens\n\n", data.c_str(), (long long)report.pieces, (long long)report.tokens);

  std::printf("| implementation | window length | windows | open s | sample s | windows/s | ratio |\n|---|---|---|---|---|---|---|\n");
  bool all_identical = true;
  double worst = 1e30;
  for (int64_t length : {256, 1024}) {
    WindowSamplerOptions wo;
    wo.length = length;
    wo.min_tokens = 32;
    wo.seed = 1;
    const double t_open = Now();
    auto sampler = WindowSampler::Create(**dataset, wo);
    if (!sampler.ok()) return Die(sampler.status());
    const double open_s = Now() - t_open;
    std::vector<int32_t> buf(length);
    int64_t done = 0, checksum = 0;
    const double t0 = Now();
    for (int64_t epoch = 0; done < windows; ++epoch) {
      for (const Window& w : (*sampler)->Epoch(epoch)) {  // the epoch shuffle is part of the cost
        (*sampler)->Read(w, buf.data());
        checksum += buf[0];
        if (++done == windows) break;
      }
    }
    const double ours = done / (Now() - t0);
    worst = std::min(worst, ours);

    // The same windows through h5py: write 50 of them with where they live, let Python read and compare.
    const fs::path check = work / "check.txt";
    {
      std::ofstream f(check);
      const std::vector<Window> epoch = (*sampler)->Epoch(0);
      for (size_t i = 0; i < epoch.size() && i < 50; ++i) {
        const PieceMeta& meta = (*dataset)->manifest().pieces[epoch[i].piece];
        (*sampler)->Read(epoch[i], buf.data());
        f << meta.shard << " " << meta.index_in_shard << " " << epoch[i].start_token;
        for (int32_t t : buf) f << " " << t;
        f << "\n";
      }
    }
    const std::string py = "/usr/bin/python3 " CADENZA_SOURCE_DIR "/bench/reference_windows.py " + o.out_dir +
                           " --length " + std::to_string(length);
    auto verdict = nlohmann::json::parse(Capture(py + " --check " + check.string()), nullptr, false);
    auto timing = nlohmann::json::parse(Capture(py + " --count " + std::to_string(python_windows)), nullptr, false);
    if (verdict.is_discarded() || timing.is_discarded()) {
      std::fprintf(stderr, "window_bench: the Python reference failed (needs /usr/bin/python3 with h5py)\n");
      return 1;
    }
    const double theirs = timing["windows"].get<double>() / timing["seconds"].get<double>();
    std::printf("| cadenza WindowSampler | %lld | %lld | %.2f | %.2f | %.0f | %.1fx |\n", (long long)length, (long long)done,
                open_s, done / ours, ours, ours / theirs);
    std::printf("| Python h5py Dataset | %lld | %lld | %.2f | %.2f | %.0f | 1.0x |\n", (long long)length,
                (long long)timing["windows"].get<int64_t>(), timing["open_seconds"].get<double>(),
                timing["seconds"].get<double>(), theirs);
    const int64_t same = verdict["identical"].get<int64_t>(), total = verdict["checked"].get<int64_t>();
    all_identical = all_identical && same == total;
    if (same != total) std::printf("h5py read %lld / %lld windows identically at length %lld\n", (long long)same, (long long)total, (long long)length);
    if (checksum == 42) std::printf(" ");  // keeps the reads observable
  }
  fs::remove_all(work);
  std::printf("\nh5py reads the same windows as cadenza: %s\n", all_identical ? "yes (50 per length)" : "NO");
  std::printf("target >= 50,000 windows/s: %s (slowest length %.0f windows/s)\n", worst >= 50000 ? "met" : "MISSED", worst);
  return all_identical ? 0 : 1;
}
