// Ingest throughput: cadenza's full ingest (parse, tokenize, segment, dedupe, HDF5 shards, checksums) against
// the Python reference (bench/reference_ingest.py: mido + the same tokens), in the same run, 1 and 2 jobs.
// Also checks that both produce identical tokens for every file.
#include <CLI/CLI.hpp>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/midi.h"
#include "core/tokenizer.h"
#include "storage/ingest.h"
#include "storage/sha256.h"

namespace fs = std::filesystem;
using namespace cadenza;

namespace {

struct Row {
  std::string corpus, impl;
  int jobs = 1;
  int64_t files = 0, notes = 0;
  double seconds = 0;
};

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

Row RunCadenza(const std::string& name, const std::string& dir, int jobs, int repeat, const fs::path& work) {
  Row r{name, "cadenza (C++)", jobs};
  r.seconds = 1e30;
  for (int i = 0; i < repeat; ++i) {
    IngestOptions o;
    o.input_dir = dir;
    o.out_dir = (work / ("ds-" + name)).string();
    o.jobs = jobs;
    o.overwrite = true;
    o.progress = false;
    IngestReport report;
    const double t0 = Now();
    Status s = Ingest(o, &report);
    const double t = Now() - t0;
    if (!s.ok()) {
      std::fprintf(stderr, "ingest failed: %s\n", s.message().c_str());
      std::exit(1);
    }
    r.files = report.files_found;
    r.notes = report.notes;
    r.seconds = std::min(r.seconds, t);
  }
  return r;
}

Row RunPython(const std::string& name, const std::string& dir, int jobs, int repeat, const std::string& digest) {
  Row r{name, "Python mido", jobs};
  r.seconds = 1e30;
  for (int i = 0; i < repeat; ++i) {
    const std::string cmd = "/usr/bin/python3 " CADENZA_SOURCE_DIR "/bench/reference_ingest.py '" + dir + "' --jobs " +
                            std::to_string(jobs) + (digest.empty() ? "" : " --digest '" + digest + "'");
    const double t0 = Now();
    const std::string out = Capture(cmd);
    const double t = Now() - t0;  // interpreter start-up included, as the user waits for it
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded()) {
      std::fprintf(stderr, "python reference failed: %s\n%s\n", cmd.c_str(), out.c_str());
      std::exit(1);
    }
    r.files = j["files"].get<int64_t>();
    r.notes = j["notes"].get<int64_t>();
    r.seconds = std::min(r.seconds, t);
  }
  return r;
}

// Compares cadenza's tokens of every file with the Python digest; returns (identical, compared).
std::pair<int64_t, int64_t> CompareTokens(const std::string& dir, const std::string& digest_path) {
  std::ifstream in(digest_path);
  std::string rel, digest;
  int64_t same = 0, total = 0, shown = 0;
  Tokenizer tok;
  while (in >> rel >> digest) {
    ++total;
    auto score = ReadMidiFile((fs::path(dir) / rel).string());
    if (!score.ok()) continue;
    auto enc = tok.Encode(*score);
    if (!enc.ok()) continue;
    if (Sha256Hex(enc->tokens.data(), enc->tokens.size() * sizeof(int32_t)) == digest) {
      ++same;
    } else if (shown++ < 10) {
      std::printf("  tokens differ: %s\n", rel.c_str());
    }
  }
  return {same, total};
}

}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_MAX, 0);  // as the cadenza command does (cli/main.cc)
  mallopt(M_TRIM_THRESHOLD, -1);
  CLI::App app{"Ingest throughput of cadenza vs a Python mido reference, with a token identity check"};
  std::vector<std::string> dirs = {CADENZA_SHARED_DATA "/nottingham/MIDI", CADENZA_SHARED_DATA "/pop909"};
  int repeat = 1;
  app.add_option("--data", dirs, "MIDI folders to ingest")->capture_default_str();
  app.add_option("--repeat", repeat, "Best of N runs per row")->capture_default_str()->check(CLI::Range(1, 20));
  CLI11_PARSE(app, argc, argv);

  const fs::path work = fs::temp_directory_path() / ("cadenza_ingest_bench_" + std::to_string(::getpid()));
  fs::create_directories(work);
  std::vector<Row> rows;
  std::map<std::string, std::pair<int64_t, int64_t>> identity;
  for (const std::string& dir : dirs) {
    if (!fs::is_directory(dir)) {
      std::printf("skipping %s: absent\n", dir.c_str());
      continue;
    }
    const std::string name = fs::path(dir).parent_path().filename().string() == "data"
                                 ? fs::path(dir).filename().string()
                                 : fs::path(dir).parent_path().filename().string() + "/" + fs::path(dir).filename().string();
    const std::string digest = (work / "digest.txt").string();
    std::fprintf(stderr, "%s: python 1 job...\n", name.c_str());
    rows.push_back(RunPython(name, dir, 1, repeat, digest));
    std::fprintf(stderr, "%s: python 2 jobs...\n", name.c_str());
    rows.push_back(RunPython(name, dir, 2, repeat, ""));
    std::fprintf(stderr, "%s: cadenza 1 and 2 jobs...\n", name.c_str());
    rows.push_back(RunCadenza(name, dir, 1, repeat, work));
    rows.push_back(RunCadenza(name, dir, 2, repeat, work));
    identity[name] = CompareTokens(dir, digest);
  }
  fs::remove_all(work);

  std::printf("\n| corpus | implementation | jobs | files | notes | wall s | files/s | notes/s | vs Python 1 job |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  std::map<std::string, double> python1;
  for (const Row& r : rows) {
    if (r.impl == "Python mido" && r.jobs == 1) python1[r.corpus] = r.seconds;
  }
  for (const Row& r : rows) {
    std::printf("| %s | %s | %d | %lld | %lld | %.2f | %.0f | %.0f | %.1fx |\n", r.corpus.c_str(), r.impl.c_str(), r.jobs,
                (long long)r.files, (long long)r.notes, r.seconds, r.files / r.seconds, r.notes / r.seconds,
                python1[r.corpus] / r.seconds);
  }
  std::printf("\n");
  for (const auto& [name, id] : identity) {
    std::printf("%s: identical tokens for %lld / %lld files\n", name.c_str(), (long long)id.first, (long long)id.second);
  }
  std::printf("\ntargets:\n");
  for (const Row& r : rows) {
    if (r.impl == "cadenza (C++)" && r.jobs == 1) {
      const double x = python1[r.corpus] / r.seconds;
      std::printf("  %s: cadenza 1 job is %.1fx Python 1 job (target >= 30x): %s\n", r.corpus.c_str(), x, x >= 30 ? "met" : "MISSED");
    }
    if (r.impl == "cadenza (C++)" && r.jobs == 2 && r.corpus == "pop909") {
      std::printf("  pop909: %lld songs in %.2f s with 2 jobs (target < 10 s): %s\n", (long long)r.files, r.seconds,
                  r.seconds < 10 ? "met" : "MISSED");
    }
  }
  return 0;
}
