// The `cadenza` command: ingest MIDI into datasets, inspect them, make synthetic corpora, show tokens.
#include <CLI/CLI.hpp>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cluster_commands.h"
#include "cli/commands.h"
#include "cli/evaluate_command.h"
#include "cli/model_options.h"
#include "core/audio.h"
#include "core/build_info.h"
#include "core/eval/evaluate.h"
#include "core/file_util.h"
#include "core/midi.h"
#include "core/synthetic.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"
#include "storage/dataset.h"
#include "storage/ingest.h"

namespace fs = std::filesystem;
using namespace cadenza;

namespace {
constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;
}  // namespace

// Declared in cli/commands.h (shared with the main job in cli/demo.cc); the rest is main()'s own.
namespace cadenza {

// The model commands live in `cadenza-model`, next to this binary, so that only they load LibTorch.
std::string ModelBinary() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ((ec ? fs::path(".") : self.parent_path()) / "cadenza-model").string();
}

// Runs cadenza-model with `args` (argv[1..]) and waits; returns its exit code.
int RunModelBinary(const std::vector<std::string>& args) {
  const std::string binary = ModelBinary();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::cout << std::flush;
  const pid_t pid = fork();
  if (pid == 0) {
    execv(binary.c_str(), argv.data());
    std::fprintf(stderr, "cadenza: error: cannot run %s: %s (build the cadenza-model target)\n", binary.c_str(), std::strerror(errno));
    _exit(kExitFailure);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return Fail(IoError("cannot start " + binary));
  return WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailure;
}

int RunIngest(IngestOptions options, bool quiet) {
  // A batch job that builds tens of MB: keep freed memory in the heap instead of returning it to the kernel
  // and taking fresh zeroed pages again (a quarter fewer page faults, 6% of an ingest's time).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
  options.progress = !quiet;
  IngestReport report;
  Status s = Ingest(options, &report);
  if (!s.ok()) return Fail(s);
  std::cout << report.Summary();
  std::cout << "dataset: " << options.out_dir << " (manifest.json, ingest_report.json)\n";
  return 0;
}

int RunInspect(const std::string& dir, bool verify, int64_t piece) {
  auto ds = Dataset::Open(dir, verify);
  if (!ds.ok()) return Fail(ds.status());
  const Manifest& m = (*ds)->manifest();
  if (piece >= 0) {
    if (piece >= (*ds)->num_pieces()) {
      return Fail(InvalidArgument("--piece " + std::to_string(piece) + ": the dataset has " +
                                  std::to_string((*ds)->num_pieces()) + " pieces"));
    }
    auto p = (*ds)->ReadPiece(piece);
    if (!p.ok()) return Fail(p.status());
    const PieceMeta& meta = m.pieces[piece];
    std::cout << "piece " << piece << ": " << meta.source << " (" << meta.id << ", " << SplitName(meta.split) << ")\n"
              << "  " << meta.tokens << " tokens, " << meta.bars << " bars, " << meta.notes << " notes, " << meta.seconds
              << " s\n";
    const Vocabulary& v = Vocabulary::Get();
    size_t bar = 0;
    for (size_t i = 0; i < p->tokens.size(); ++i) {
      if (bar < p->bar_offsets.size() && static_cast<int64_t>(i) == p->bar_offsets[bar]) std::cout << "\n  bar " << bar++ << ":";
      std::cout << " " << v.Name(p->tokens[i]);
    }
    std::cout << "\n";
    return 0;
  }
  int64_t tokens = 0, bars = 0, counts[3] = {0, 0, 0};
  double seconds = 0;
  for (const PieceMeta& p : m.pieces) {
    tokens += p.tokens;
    bars += p.bars;
    seconds += p.seconds;
    counts[static_cast<int>(p.split)]++;
  }
  std::cout << "dataset " << dir << "\n"
            << "  vocabulary   " << m.vocab_name << " v" << m.vocab_version << " (" << m.vocabulary.size() << " tokens, hash "
            << m.vocab_hash << ")\n"
            << "  pieces       " << m.pieces.size() << " (train " << counts[0] << ", val " << counts[1] << ", test " << counts[2]
            << ")\n"
            << "  shards       " << m.shards.size() << (verify ? " (checksums verified)" : "") << "\n"
            << "  tokens       " << tokens << "\n"
            << "  bars         " << bars << "\n"
            << "  music        " << seconds / 3600.0 << " hours\n";
  return 0;
}

int RunTokens(const std::string& path, bool json) {
  auto score = ReadMidiFile(path);
  if (!score.ok()) return Fail(score.status());
  auto enc = Tokenizer().Encode(*score);
  if (!enc.ok()) return Fail(enc.status().WithContext(path));
  const Vocabulary& v = Vocabulary::Get();
  if (json) {
    nlohmann::json j;
    j["file"] = path;
    j["tokens"] = enc->tokens;
    j["bar_token_offsets"] = enc->segmentation.BarTokenOffsets();
    j["beat_token_offsets"] = enc->segmentation.beat_token_offsets;
    std::cout << j.dump() << "\n";
    return 0;
  }
  const QuantizationStats& st = enc->stats;
  std::cout << path << ": " << enc->tokens.size() << " tokens, " << enc->num_bars << " bars, " << st.notes_out << " notes ("
            << st.duplicate_notes << " duplicates dropped), mean onset error " << st.mean_onset_error_ms << " ms\n";
  const Segmentation& seg = enc->segmentation;
  int64_t bar = -1;
  for (size_t i = 0; i < enc->tokens.size(); ++i) {
    if (seg.BarOf(i) != bar && v.Type(enc->tokens[i]) == TokenType::kBar) {
      bar = seg.BarOf(i);
      std::cout << "\nbar " << bar << " (beat " << seg.BeatOf(i) << "):";
    }
    std::cout << " " << v.Name(enc->tokens[i]);
  }
  std::cout << "\n";
  return 0;
}

int RunSynth(const std::string& out, int count, uint64_t seed) {
  SyntheticOptions o;
  o.count = count;
  o.seed = seed;
  Status s = WriteSyntheticCorpus(o, out);
  if (!s.ok()) return Fail(s);
  std::cout << "wrote " << count << " synthetic tunes to " << out << "\n";
  return 0;
}

}  // namespace cadenza

int main(int argc, char** argv) {
  cadenza::SetCommandLine(argc, argv);  // reports record the command that made them
  CLI::App app{"cadenza: train and compare attention-RNN and Transformer music generators on MIDI corpora.\n"
               "Run `cadenza <command> --help` for each command's options."};
  app.require_subcommand(1);

  IngestOptions ingest;
  bool quiet = false;
  auto* ingest_cmd = app.add_subcommand("ingest", "Tokenize a folder of MIDI files into a sharded HDF5 dataset with a manifest");
  ingest_cmd->add_option("midi_dir", ingest.input_dir, "Folder searched recursively for .mid/.midi files")->required()->check(CLI::ExistingDirectory);
  ingest_cmd->add_option("--out", ingest.out_dir, "Dataset folder to create (must not exist unless --overwrite)")->required();
  ingest_cmd->add_option("--shards", ingest.shards, "Number of HDF5 shard files")->capture_default_str()->check(CLI::Range(1, 4096));
  ingest_cmd->add_option("--val", ingest.val_fraction, "Fraction of pieces in the validation split (by content hash)")->capture_default_str()->check(CLI::Range(0.0, 0.9));
  ingest_cmd->add_option("--test", ingest.test_fraction, "Fraction of pieces in the test split (by content hash)")->capture_default_str()->check(CLI::Range(0.0, 0.9));
  ingest_cmd->add_option("--jobs,-j", ingest.jobs, "Parser threads")->capture_default_str()->check(CLI::Range(1, 256));
  ingest_cmd->add_flag("--overwrite", ingest.overwrite, "Replace an existing dataset folder (only once the new one is complete)");
  ingest_cmd->add_flag("--quiet,-q", quiet, "No progress line");

  std::string inspect_dir;
  bool verify = false;
  int64_t piece = -1;
  auto* inspect_cmd = app.add_subcommand("inspect", "Summarize a dataset, or print one piece's tokens bar by bar");
  inspect_cmd->add_option("dataset", inspect_dir, "Dataset folder written by `cadenza ingest`")->required();
  inspect_cmd->add_flag("--verify", verify, "Recompute every shard's SHA-256 against the manifest");
  inspect_cmd->add_option("--piece", piece, "Print the tokens of piece N (index in the manifest)");

  std::string tokens_file;
  bool tokens_json = false;
  auto* tokens_cmd = app.add_subcommand("tokens", "Show the beat-level tokens of one MIDI file, bar by bar");
  tokens_cmd->add_option("midi_file", tokens_file, "A .mid file")->required();
  tokens_cmd->add_flag("--json", tokens_json, "Print tokens and bar/beat offsets as JSON");

  std::string synth_out;
  int synth_count = 200;
  uint64_t synth_seed = 1;
  auto* synth_cmd = app.add_subcommand("synth", "Write a corpus of structured synthetic tunes (meters, chords, repeated sections)");
  synth_cmd->add_option("--out", synth_out, "Folder for the .mid files")->required();
  synth_cmd->add_option("--count", synth_count, "Number of tunes")->capture_default_str()->check(CLI::Range(1, 1000000));
  synth_cmd->add_option("--seed", synth_seed, "Seed: the same seed always gives the same corpus")->capture_default_str();

  DemoOptions demo;
  auto* demo_cmd = app.add_subcommand(
      "demo",
      "The main job end to end on one machine: corpus -> ingest -> train a Transformer and an attention LSTM of matched "
      "size -> generate MIDI/WAV -> evaluate against the test split -> probe latency/memory -> side-by-side table");
  demo_cmd->add_option("--data", demo.data, "A folder of MIDI files to use instead of the synthetic corpus")->check(CLI::ExistingDirectory);
  demo_cmd->add_option("--out", demo.out, "Folder for everything the job writes")->capture_default_str();
  demo_cmd->add_option("--jobs,-j", demo.jobs, "Parser and evaluation threads")->capture_default_str()->check(CLI::Range(1, 256));
  demo_cmd->add_option("--steps", demo.steps, "Training steps per model family (0 = stop after the dataset)")->capture_default_str()->check(CLI::Range(0, 1000000));
  demo_cmd->add_option("--samples", demo.samples, "Pieces generated per model family")->capture_default_str()->check(CLI::Range(2, 256));
  demo_cmd->add_flag("--cluster,!--single-process", demo.cluster,
                     "Train and generate through a local coordinator (free loopback port, temporary token) and a two-rank "
                     "worker group, mpirun -np 2 cadenza-worker --coordinator ... (the default); --single-process: in this "
                     "process and cadenza-model, as before. Same table either way");
  demo_cmd->add_flag("--sweep", demo.sweep,
                     "Run the study's default sweep instead of one pair: both families x 3 dataset fractions x 2 seeds "
                     "(a quarter of --steps each) through the local cluster, with a live page while it runs and "
                     "a report (figures, cells.csv) at the end in <out>/report");
  demo_cmd->add_option("--count", demo.count, "Synthetic tunes to make when no --data is given")->capture_default_str()->check(CLI::Range(1, 100000));

  int eval_exit = -1;
  // With --checkpoint the model's hidden states are needed: the run moves to cadenza-model (LibTorch).
  auto* eval_cmd = AddEvaluateCommand(app, [argc, argv](const EvaluateArgs& a) {
    return a.checkpoint.empty() ? RunEvaluate(a) : RunModelBinary(std::vector<std::string>(argv + 1, argv + argc));
  }, &eval_exit);

  int model_exit = -1;  // set by the callbacks of train / generate / params
  // Options are checked here (so --help and usage errors are instant); the work runs in cadenza-model.
  auto hand_over = [argc, argv](auto&&...) {
    return RunModelBinary(std::vector<std::string>(argv + 1, argv + argc));
  };
  AddModelCommands(app, {hand_over, hand_over, hand_over, hand_over, hand_over}, &model_exit);

  int cluster_exit = -1;  // set by coordinator / submit / status / results / cancel (cli/cluster_commands.cc)
  AddClusterCommands(app, &cluster_exit);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (model_exit >= 0) return model_exit;
  if (cluster_exit >= 0) return cluster_exit;
  if (*ingest_cmd) {
    if (ingest.val_fraction + ingest.test_fraction >= 1.0) {
      std::cerr << "cadenza: error: --val + --test must be below 1\n";
      return kExitUsage;
    }
    return RunIngest(ingest, quiet);
  }
  if (*inspect_cmd) return RunInspect(inspect_dir, verify, piece);
  if (*tokens_cmd) return RunTokens(tokens_file, tokens_json);
  if (*synth_cmd) return RunSynth(synth_out, synth_count, synth_seed);
  if (*eval_cmd) return eval_exit;
  if (*demo_cmd) return RunDemo(demo);
  return kExitUsage;
}
