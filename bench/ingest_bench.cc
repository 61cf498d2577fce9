// Ingest throughput: cadenza's full ingest (parse, tokenize, segment, dedupe, HDF5 shards, checksums) against
// the Python reference (bench/reference_ingest.py: mido + the same tokens in plain Python), in the same run,
// with 1 and 2 jobs each. Then checks that both produce identical tokens for every file (sha256 of the token
// ids as little-endian int32, compared per file). Before that, a parse table: every file read into memory first,
// then cadenza's ParseMidi of all of them against mido parsing the same bytes (reference_ingest.py --parse).
//
//   ingest_bench [--data DIR ...] [--repeat N] [--only parse|ingest]
//
// Results and how to read them: docs/PERFORMANCE.md.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "core/midi.h"
#include "core/tokenizer.h"
#include "bench/bench_util.h"
#include "storage/ingest.h"
#include "storage/sha256.h"
#include "core/process_memory.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the token digest hashes int32 ids in memory order, which must be little-endian as in the Python reference"
#endif

namespace fs = std::filesystem;
using namespace cadenza;

namespace {

const char* const kCadenza = "cadenza (C++)";
const char* const kFresh = "cadenza, new process";
const char* const kPython = "Python mido";

struct Row {
  std::string corpus, impl;
  int jobs = 1;
  int64_t files = 0, notes = 0;
  double seconds = 0;        // wall, best of --repeat
  double inner_seconds = 0;  // Python only: as measured inside the script (no interpreter start-up, no imports)
  std::vector<double> runs;  // wall of every run, in order
};

using bench::Capture;
using bench::Now;
using bench::Quote;

Row RunCadenza(const std::string& name, const std::string& dir, int jobs, int repeat, const fs::path& work,
               IngestReport* last) {
  Row r;
  r.corpus = name;
  r.impl = kCadenza;
  r.jobs = jobs;
  r.seconds = 1e30;
  for (int i = 0; i < repeat; ++i) {
    IngestOptions o;
    o.input_dir = dir;
    o.out_dir = (work / "dataset").string();
    o.jobs = jobs;
    o.overwrite = true;
    o.progress = false;
    fs::remove_all(o.out_dir);  // untimed: every run writes a fresh dataset, none replaces an old one
    IngestReport report;
    const double t0 = Now();
    Status s = Ingest(o, &report);
    const double t = Now() - t0;
    if (!s.ok()) {
      std::fprintf(stderr, "ingest failed: %s\n", s.message().c_str());
      std::exit(1);
    }
    r.files = report.files_found;
    r.notes = report.notes;  // replaced by the notes of every file (as Python counts them) after the token check
    r.seconds = std::min(r.seconds, t);
    r.runs.push_back(t);
    *last = report;
  }
  return r;
}

// `cadenza ingest` itself in a new process, timed from here like the Python one: process start, dynamic
// loading, a fresh heap, progress off, and exit included; the files count comes from its ingest_report.json.
Row RunFreshProcess(const std::string& name, const std::string& dir, int jobs, int repeat, const fs::path& work) {
  Row r;
  r.corpus = name;
  r.impl = kFresh;
  r.jobs = jobs;
  r.seconds = 1e30;
  const std::string out = (work / "dataset").string();
  for (int i = 0; i < repeat; ++i) {
    fs::remove_all(out);
    const std::string cmd = Quote(CADENZA_CLI) + " ingest " + Quote(dir) + " --out " + Quote(out) + " --quiet --jobs " +
                            std::to_string(jobs) + " 2>&1";
    const double t0 = Now();
    const std::string reply = Capture(cmd);
    const double t = Now() - t0;
    std::ifstream report_file(out + "/ingest_report.json");
    auto j = nlohmann::json::parse(report_file, nullptr, false);
    if (j.is_discarded() || !j.contains("files_found")) {
      std::fprintf(stderr, "cadenza ingest failed: %s\n%s\n", cmd.c_str(), reply.c_str());
      std::exit(1);
    }
    r.files = j["files_found"].get<int64_t>();
    r.seconds = std::min(r.seconds, t);
    r.runs.push_back(t);
  }
  return r;
}

Row RunPython(const std::string& name, const std::string& dir, int jobs, int repeat, const std::string& digest) {
  Row r;
  r.corpus = name;
  r.impl = kPython;
  r.jobs = jobs;
  r.seconds = r.inner_seconds = 1e30;
  for (int i = 0; i < repeat; ++i) {
    const std::string cmd = "/usr/bin/python3 " + Quote(CADENZA_SOURCE_DIR "/bench/reference_ingest.py") + " " + Quote(dir) +
                            " --jobs " + std::to_string(jobs) + (digest.empty() ? "" : " --digest " + Quote(digest));
    const double t0 = Now();
    const std::string out = Capture(cmd);
    const double t = Now() - t0;  // interpreter start-up and `import mido` included: the user waits for them too
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.contains("files")) {
      std::fprintf(stderr, "python reference failed: %s\n%s\n", cmd.c_str(), out.c_str());
      std::exit(1);
    }
    r.files = j["files"].get<int64_t>();
    r.notes = j["notes"].get<int64_t>();
    r.seconds = std::min(r.seconds, t);
    r.runs.push_back(t);
    r.inner_seconds = std::min(r.inner_seconds, j["seconds"].get<double>());
  }
  return r;
}

// The reader alone: every file of a corpus in memory, bytes -> Score (notes paired), best of `repeat` rounds.
struct ParseRow {
  std::string corpus, impl;
  int64_t files = 0, notes = 0, refused = 0, bytes = 0;
  double seconds = 0;  // best round
  std::vector<double> runs;
};

std::vector<std::string> MidiFilesSorted(const fs::path& dir) {  // as reference_ingest.py walks: no symlinked folders
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (e.is_regular_file() && (ext == ".mid" || ext == ".midi")) files.push_back(e.path().lexically_relative(dir).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

ParseRow ParseCadenza(const std::string& name, const fs::path& dir, int repeat) {
  ParseRow r;
  r.corpus = name;
  r.impl = kCadenza;
  std::vector<std::vector<uint8_t>> blobs;
  std::vector<std::string> paths;
  for (const std::string& rel : MidiFilesSorted(dir)) {
    paths.push_back((dir / rel).string());
    auto bytes = ReadFileBytes(paths.back());
    if (!bytes.ok()) {
      std::fprintf(stderr, "%s\n", bytes.status().message().c_str());
      std::exit(1);
    }
    r.bytes += static_cast<int64_t>(bytes->size());
    blobs.push_back(std::move(*bytes));
  }
  r.files = static_cast<int64_t>(blobs.size());
  r.seconds = 1e30;
  for (int i = 0; i < repeat; ++i) {
    int64_t notes = 0, refused = 0;
    const double t0 = Now();
    for (size_t f = 0; f < blobs.size(); ++f) {
      auto score = ParseMidi(blobs[f].data(), blobs[f].size(), paths[f]);
      if (score.ok()) {
        notes += static_cast<int64_t>(score->notes.size());
      } else {
        ++refused;
      }
    }
    const double t = Now() - t0;
    r.notes = notes;
    r.refused = refused;
    r.seconds = std::min(r.seconds, t);
    r.runs.push_back(t);
  }
  return r;
}

ParseRow ParsePython(const std::string& name, const fs::path& dir, int repeat, int64_t bytes) {
  ParseRow r;
  r.corpus = name;
  r.impl = kPython;
  r.bytes = bytes;
  const std::string cmd = "/usr/bin/python3 " + Quote(CADENZA_SOURCE_DIR "/bench/reference_ingest.py") + " " +
                          Quote(dir.string()) + " --parse --repeat " + std::to_string(repeat);
  const std::string out = Capture(cmd);
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.contains("notes")) {
    std::fprintf(stderr, "python reference failed: %s\n%s\n", cmd.c_str(), out.c_str());
    std::exit(1);
  }
  r.files = j["files"].get<int64_t>();
  r.notes = j["notes"].get<int64_t>();
  r.refused = j["skipped"].get<int64_t>();
  r.seconds = j["seconds"].get<double>();
  r.runs = j["runs"].get<std::vector<double>>();
  return r;
}

void PrintParseTable(const std::vector<ParseRow>& rows, int repeat) {
  std::map<std::string, double> python;
  for (const ParseRow& r : rows) {
    if (r.impl == kPython) python[r.corpus] = r.notes / r.seconds;
  }
  std::printf("\nMIDI parse in memory (files read first; bytes -> notes paired; best of %d round(s)):\n\n", repeat);
  std::printf("| corpus | implementation | files | refused | notes | MB | best s | notes/s | MB/s | vs mido |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const ParseRow& r : rows) {
    std::printf("| %s | %s | %lld | %lld | %lld | %.1f | %.4f | %.0f | %.2f | %.1fx |\n", r.corpus.c_str(), r.impl.c_str(),
                (long long)r.files, (long long)r.refused, (long long)r.notes, r.bytes / 1e6, r.seconds, r.notes / r.seconds,
                r.bytes / 1e6 / r.seconds, r.notes / r.seconds / python[r.corpus]);
  }
  std::printf("every round, in order (s):");
  for (const ParseRow& r : rows) {
    std::printf("\n  %s, %s:", r.corpus.c_str(), r.impl.c_str());
    for (double t : r.runs) std::printf(" %.4f", t);
  }
  std::printf("\nsymusic (the fastest public library, issue 17: 19.8M notes/s on Nottingham, 19.1M on POP909, quiet machine)\n"
              "is not in this table: pip cannot reach its registry here.\n");
  std::printf("\ntargets (issue 17):\n");
  for (const ParseRow& r : rows) {
    if (r.impl != kCadenza) continue;
    const double rate = r.notes / r.seconds, x = rate / python[r.corpus];
    std::printf("  %s: parse %.2fM notes/s (target >= 20M): %s; %.0fx mido (target >= 175x): %s\n", r.corpus.c_str(), rate / 1e6,
                rate >= 20e6 ? "met" : "MISSED", x, x >= 175 ? "met" : "MISSED");
  }
}

struct Identity {
  int64_t files = 0;         // lines in the Python digest (every MIDI file of the folder)
  int64_t identical = 0;     // both parsed it, same tokens
  int64_t both_skipped = 0;  // neither could parse it
  int64_t notes = 0;         // cadenza's notes_out summed over every file it encodes
  double seconds = 0;        // ReadMidiFile + Encode of every file, one thread (not a benchmark row)
  std::vector<std::string> differing;  // "path: why"
};

// Compares cadenza's tokens of every file with the Python digest ("relative/path sha256", "-" when Python failed).
Identity CompareTokens(const std::string& dir, const std::string& digest_path) {
  Identity id;
  std::ifstream in(digest_path);
  std::string line;
  const Tokenizer tokenizer;
  while (std::getline(in, line)) {
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const std::string rel = line.substr(0, space), python = line.substr(space + 1);
    ++id.files;
    const double t0 = Now();
    std::string ours = "-", why;
    auto score = ReadMidiFile((fs::path(dir) / rel).string());
    if (!score.ok()) {
      why = score.status().message();
    } else {
      auto enc = tokenizer.Encode(*score);
      if (!enc.ok()) {
        why = enc.status().message();
      } else {
        ours = Sha256Hex(enc->tokens.data(), enc->tokens.size() * sizeof(int32_t));
        id.notes += enc->stats.notes_out;
      }
    }
    id.seconds += Now() - t0;
    if (ours == "-" && python == "-") {
      ++id.both_skipped;
    } else if (ours == python) {
      ++id.identical;
    } else {
      id.differing.push_back(rel + ": " + (ours == "-" ? "cadenza refuses it (" + why + ")"
                                           : python == "-" ? "the Python reference refuses it"
                                                           : "different tokens"));
    }
  }
  return id;
}

std::string CorpusName(const fs::path& dir) {
  const std::string leaf = dir.filename().string(), parent = dir.parent_path().filename().string();
  return parent == "data" || parent.empty() ? leaf : parent + "/" + leaf;
}

}  // namespace

int main(int argc, char** argv) {
  cadenza::KeepFreedMemory();  // as `cadenza ingest` does (RunIngest in cli/main.cc)

  CLI::App app{"Ingest throughput of cadenza vs a Python mido reference, with a token identity check"};
  std::vector<std::string> dirs = {CADENZA_SHARED_DATA "/nottingham/MIDI", CADENZA_SHARED_DATA "/pop909"};
  int repeat = 1;
  std::string only;
  app.add_option("--data", dirs, "MIDI folders to ingest, one table block each")->capture_default_str();
  app.add_option("--repeat", repeat, "Best of N runs per row")->capture_default_str()->check(CLI::Range(1, 20));
  app.add_option("--only", only, "Run only the parse table or only the ingest table")->check(CLI::IsMember({"parse", "ingest"}));
  CLI11_PARSE(app, argc, argv);

  const fs::path work = fs::temp_directory_path() / ("cadenza_ingest_bench_" + std::to_string(::getpid()));
  fs::create_directories(work);
  std::vector<Row> rows;
  std::vector<ParseRow> parse_rows;
  std::vector<std::pair<std::string, Identity>> identity;
  std::map<std::string, IngestReport> reports;
  for (const std::string& given : dirs) {
    std::error_code ec;
    const fs::path dir = fs::weakly_canonical(fs::path(given), ec).lexically_normal();
    if (!fs::is_directory(dir, ec)) {
      std::printf("skipping %s: no such folder\n", given.c_str());
      continue;
    }
    const std::string name = CorpusName(dir);
    const std::string digest = (work / "digest.txt").string();
    std::printf("%s: %s\n", name.c_str(), dir.c_str());
    std::fflush(stdout);
    if (only != "ingest") {
      std::fprintf(stderr, "%s: parse in memory, cadenza then mido...\n", name.c_str());
      parse_rows.push_back(ParseCadenza(name, dir, repeat));
      parse_rows.push_back(ParsePython(name, dir, repeat, parse_rows.back().bytes));
    }
    if (only == "parse") continue;
    std::fprintf(stderr, "%s: Python 1 job...\n", name.c_str());
    rows.push_back(RunPython(name, dir, 1, repeat, digest));  // the 1-job run also writes the digest
    std::fprintf(stderr, "%s: Python 2 jobs...\n", name.c_str());
    rows.push_back(RunPython(name, dir, 2, repeat, ""));
    std::fprintf(stderr, "%s: cadenza 1 and 2 jobs...\n", name.c_str());
    rows.push_back(RunCadenza(name, dir, 1, repeat, work, &reports[name]));
    rows.push_back(RunCadenza(name, dir, 2, repeat, work, &reports[name]));
    if (fs::exists(CADENZA_CLI)) {
      std::fprintf(stderr, "%s: cadenza in a new process, 1 and 2 jobs...\n", name.c_str());
      rows.push_back(RunFreshProcess(name, dir, 1, repeat, work));
      rows.push_back(RunFreshProcess(name, dir, 2, repeat, work));
    } else {  // a bench linked by hand, without building `cadenza`, still measures the rest
      std::printf("%s: no %s (not built): the new-process rows are left out\n", name.c_str(), CADENZA_CLI);
    }
    std::fprintf(stderr, "%s: token check...\n", name.c_str());
    identity.emplace_back(name, CompareTokens(dir, digest));
    for (Row& r : rows) {
      if (r.corpus == name && r.impl != kPython) r.notes = identity.back().second.notes;
    }
  }
  fs::remove_all(work);
  if (rows.empty() && parse_rows.empty()) {
    std::printf("no corpus found: nothing measured\n");
    return 1;
  }
  if (!parse_rows.empty()) PrintParseTable(parse_rows, repeat);
  if (rows.empty()) return 0;

  std::map<std::string, double> python1;
  for (const Row& r : rows) {
    if (r.impl == kPython && r.jobs == 1) python1[r.corpus] = r.seconds;
  }
  std::printf("\n| corpus | implementation | jobs | files | notes | wall s | files/s | notes/s | speed-up vs Python 1 job |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %s | %d | %lld | %lld | %.2f | %.0f | %.0f | %.1fx |\n", r.corpus.c_str(), r.impl.c_str(), r.jobs,
                (long long)r.files, (long long)r.notes, r.seconds, r.files / r.seconds, r.notes / r.seconds,
                python1[r.corpus] / r.seconds);
  }
  std::printf("\nbest of %d run(s) per row. Python wall includes interpreter start-up and `import mido`; measured inside\n"
              "the script instead:",
              repeat);
  for (const Row& r : rows) {
    if (r.impl == kPython) std::printf(" %s %d job(s) %.2f s;", r.corpus.c_str(), r.jobs, r.inner_seconds);
  }
  std::printf("\nevery run, in order (the first cadenza run of a corpus is also the first Ingest() on a fresh heap):");
  for (const Row& r : rows) {
    std::printf("\n  %s, %s, %d job(s):", r.corpus.c_str(), r.impl.c_str(), r.jobs);
    for (double t : r.runs) std::printf(" %.2f", t);
  }
  std::printf("\ncadenza's wall is the whole Ingest(): parse + tokenize + segment + dedupe + HDF5 shards + sha256 + manifest;\n"
              "\"cadenza (C++)\" calls it in this process, \"cadenza, new process\" runs `cadenza ingest --quiet` timed from here\n"
              "(start-up, loading, a fresh heap and exit included), the way the Python rows are timed.\n");
  std::printf("notes = notes tokenized over every file, for both (cadenza's dataset keeps duplicates once:");
  for (const auto& [name, rep] : reports) {
    std::printf(" %s %lld duplicate files, %lld notes stored;", name.c_str(), (long long)rep.duplicates, (long long)rep.notes);
  }
  std::printf(")\n\n");

  bool all_identical = true;
  for (const auto& [name, id] : identity) {
    std::printf("%s: identical tokens: %lld / %lld files", name.c_str(), (long long)id.identical, (long long)id.files);
    if (id.both_skipped > 0) std::printf(" (%lld refused by both parsers)", (long long)id.both_skipped);
    std::printf("; cadenza ReadMidiFile + Encode alone, 1 thread, untimed row: %.2f s\n", id.seconds);
    for (size_t i = 0; i < id.differing.size() && i < 10; ++i) std::printf("  differs: %s\n", id.differing[i].c_str());
    if (id.differing.size() > 10) std::printf("  ... and %zu more\n", id.differing.size() - 10);
    all_identical = all_identical && id.differing.empty();
  }

  std::printf("\ntargets:\n");
  for (const Row& r : rows) {
    const char* how = r.impl == kCadenza ? "Ingest() in this process" : "in a new process";
    if (r.impl != kPython && r.jobs == 1) {
      const double x = python1[r.corpus] / r.seconds, target = r.impl == kFresh ? 50 : 30;  // issue 17 raised the command's
      std::printf("  %s: cadenza 1 job, %s, is %.1fx Python 1 job (target >= %.0fx): %s\n", r.corpus.c_str(), how, x, target,
                  x >= target ? "met" : "MISSED");
    }
    if (r.impl != kPython && r.jobs == 2 && r.corpus.find("pop909") != std::string::npos) {
      std::printf("  %s: %lld songs in %.2f s with 2 jobs, %s (target < 10 s): %s\n", r.corpus.c_str(),
                  (long long)r.files, r.seconds, how, r.seconds < 10 ? "met" : "MISSED");
    }
  }
  return all_identical ? 0 : 1;
}
