// The `cadenza` command: ingest MIDI into datasets, inspect them, make synthetic corpora, show tokens.
#include <CLI/CLI.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cluster_commands.h"
#include "cli/commands.h"
#include "cli/evaluate_command.h"
#include "cli/fail.h"
#include "cli/model_options.h"
#include "coordinator/config.h"
#include "core/audio.h"
#include "core/build_info.h"
#include "core/config_keys.h"
#include "core/eval/evaluate.h"
#include "core/file_util.h"
#include "core/midi.h"
#include "core/synthetic.h"
#include "core/tokenizer.h"
#include "core/vocabulary.h"
#include "storage/dataset.h"
#include "storage/ingest.h"
#include "core/process_memory.h"

namespace fs = std::filesystem;
using namespace cadenza;

// Declared in cli/commands.h (shared with the main job in cli/demo.cc); the rest is main()'s own.
namespace cadenza {

int RunIngest(IngestOptions options, bool quiet) {
  // A batch job that builds tens of MB: keep freed memory in the heap instead of returning it to the kernel
  // and taking fresh zeroed pages again (a quarter fewer page faults, 6% of an ingest's time).
  cadenza::KeepFreedMemory();
  options.progress = !quiet;
  IngestReport report;
  Status s = Ingest(options, &report);
  if (!s.ok()) return Fail(s);
  std::cout << report.Summary();
  std::cout << "dataset: " << options.out_dir << " (manifest.json, ingest_report.json)\n";
  return 0;
}

// The losses block of a dataset's ingest_report.json (absent in datasets of older builds).
nlohmann::json ReadLosses(const std::string& dir) {
  auto bytes = ReadFileBytes((fs::path(dir) / "ingest_report.json").string());
  if (!bytes.ok()) return nullptr;
  nlohmann::json j = nlohmann::json::parse(bytes->begin(), bytes->end(), nullptr, false);
  return j.is_object() ? j : nlohmann::json();
}

void PrintLosses(const nlohmann::json& report) {
  if (!report.is_object() || !report.contains("losses") || !report["losses"].is_object()) {
    std::cout << "  losses       not recorded (ingest_report.json of an older build, or missing)\n";
    return;
  }
  const nlohmann::json& l = report["losses"];
  auto num = [&l](const char* key) { return l.contains(key) && l[key].is_number() ? l[key].get<int64_t>() : int64_t{0}; };
  std::cout << "  grid         " << report.value("grid_per_quarter", 12) << " steps per quarter note; sustain pedal "
            << report.value("sustain_pedal", std::string("?")) << "\n"
            << "  losses       of " << num("notes_in") << " notes read: " << num("off_grid_onsets")
            << " onsets moved to the grid, " << num("clipped_durations") << " durations clipped, "
            << num("merged_duplicates") << " duplicates merged, " << num("cut_overlaps") << " overlaps cut\n"
            << "               " << num("clamped_tempos") << " of " << num("tempo_changes") << " tempo changes clamped, "
            << num("skipped_meters") << " meters skipped, " << num("moved_meters") << " meter changes moved to a bar line\n"
            << "               sustain pedal: " << num("sustain_presses_applied") << " presses applied, "
            << num("sustained_notes") << " notes lengthened";
  if (report.value("pedal", std::string()) == "tokens") {
    std::cout << "; " << num("pedal_tokens") << " pedal tokens written, " << num("pedal_presses_lost")
              << " presses without one of their own (shorter than a step, or joined with an overlapping one)";
  }
  std::cout << "\n";
  if (l.contains("max_time_drift") && l["max_time_drift"].is_number()) {
    std::cout << "               playing time from the tokens within " << 100 * l["max_time_drift"].get<double>()
              << "% of the files' (largest: " << l.value("max_time_drift_file", std::string()) << ")\n";
  }
}

int RunInspect(const std::string& dir, bool verify, int64_t piece) {
  auto ds = Dataset::Open(dir, verify, /*any_grid=*/true);
  if (!ds.ok()) return Fail(ds.status());
  const Manifest& m = (*ds)->manifest();
  const nlohmann::json report = ReadLosses(dir);
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
    if (report.is_object() && report.contains("pieces_with_losses") && report["pieces_with_losses"].is_array()) {
      bool found = false;
      for (const nlohmann::json& pl : report["pieces_with_losses"]) {
        if (!pl.is_object() || pl.value("path", std::string()) != meta.source) continue;
        found = true;
        std::cout << "  losses:";
        for (auto it = pl.begin(); it != pl.end(); ++it) {
          if (it.key() == "path") continue;
          std::cout << " " << it.key() << "=" << it.value().dump();
        }
        std::cout << "\n";
      }
      if (!found) std::cout << "  losses: none (on the grid, nothing merged, cut, clipped, clamped or skipped)\n";
    }
    const Vocabulary& v = (*ds)->vocabulary();
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
  PrintLosses(report);
  return 0;
}

int RunTokens(const std::string& path, bool json, const TokenizerOptions& options) {
  auto score = ReadMidiFile(path);
  if (!score.ok()) return Fail(score.status());
  const Tokenizer tokenizer(options);
  auto enc = tokenizer.Encode(*score);
  if (!enc.ok()) return Fail(enc.status().WithContext(path));
  const Vocabulary& v = tokenizer.vocabulary();
  const QuantizationStats& st = enc->stats;
  if (json) {
    nlohmann::json j;
    j["file"] = path;
    j["vocabulary"] = v.name();
    j["vocabulary_version"] = Vocabulary::kVersion;
    j["tokens"] = enc->tokens;
    j["bar_token_offsets"] = enc->segmentation.BarTokenOffsets();
    j["beat_token_offsets"] = enc->segmentation.beat_token_offsets;
    j["losses"] = {{"notes_in", st.notes_in},
                   {"off_grid_onsets", st.off_grid_onsets},
                   {"clipped_durations", st.clipped_durations},
                   {"merged_duplicates", st.duplicate_notes},
                   {"cut_overlaps", st.cut_overlaps},
                   {"tempo_changes", st.tempo_changes},
                   {"clamped_tempos", st.clamped_tempos},
                   {"skipped_meters", st.skipped_meters},
                   {"skipped_meter_reasons", st.skipped_meter_reasons},
                   {"moved_meters", st.moved_meters},
                   {"sustain_presses_applied", st.sustain_presses},
                   {"sustained_notes", st.sustained_notes},
                   {"pedal_tokens", st.pedal_tokens},
                   {"pedal_presses_lost", st.lost_pedal_presses},
                   {"seconds", st.seconds_in},
                   {"seconds_from_tokens", st.seconds_out}};
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << path << ": " << enc->tokens.size() << " tokens (" << v.name() << "), " << enc->num_bars << " bars, "
            << st.notes_out << " notes, mean onset error " << st.mean_onset_error_ms << " ms\n"
            << "  losses: " << st.off_grid_onsets << " onsets moved to the grid, " << st.clipped_durations
            << " durations clipped, " << st.duplicate_notes << " duplicates merged, " << st.cut_overlaps
            << " overlaps cut, " << st.clamped_tempos << " tempos clamped, " << st.skipped_meters << " meters skipped, "
            << st.moved_meters << " meter changes moved; sustain pedal (" << SustainPedalName(options.pedal)
            << "): " << st.sustain_presses << " presses lengthened " << st.sustained_notes << " notes, "
            << st.pedal_tokens << " pedal tokens, " << st.lost_pedal_presses << " presses lost\n"
            << "  playing time " << st.seconds_in << " s, from the tokens " << st.seconds_out << " s\n";
  for (const std::string& r : st.skipped_meter_reasons) std::cout << "  skipped meter: " << r << "\n";
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

// Token ids from a token file: `cadenza tokens --json` output ({"vocabulary": ..., "tokens": [ids]}), a JSON array
// of ids, or text of token names and/or ids separated by white space. Sets *vocab_name when the file names one.
StatusOr<std::vector<int32_t>> ReadTokenFile(const std::string& path, const Vocabulary& v, std::string* vocab_name) {
  auto bytes = ReadFileBytes(path);
  if (!bytes.ok()) return bytes.status();
  const std::string text(bytes->begin(), bytes->end());
  std::vector<int32_t> out;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return InvalidArgument(path + ": not valid JSON");
    if (j.is_object()) {
      if (j.contains("vocabulary") && j["vocabulary"].is_string()) *vocab_name = j["vocabulary"].get<std::string>();
      if (!j.contains("tokens")) return InvalidArgument(path + ": expected a \"tokens\" array");
      j = j["tokens"];
    }
    if (!j.is_array()) return InvalidArgument(path + ": tokens: expected an array of token ids");
    for (size_t i = 0; i < j.size(); ++i) {
      if (!j[i].is_number_integer()) return InvalidArgument(path + ": tokens[" + std::to_string(i) + "]: expected an integer id");
      out.push_back(j[i].get<int32_t>());
    }
    return out;
  }
  std::map<std::string, int32_t> by_name;
  for (int id = 0; id < v.size(); ++id) by_name[v.Name(id)] = id;
  size_t pos = 0, index = 0;
  while ((pos = text.find_first_not_of(" \t\r\n,", pos)) != std::string::npos) {
    const size_t end = text.find_first_of(" \t\r\n,", pos);
    const std::string word = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end;
    auto it = by_name.find(word);
    if (it != by_name.end()) {
      out.push_back(it->second);
    } else if (!word.empty() && word.find_first_not_of("0123456789") == std::string::npos && word.size() < 10) {
      out.push_back(static_cast<int32_t>(std::stol(word)));
    } else {
      return InvalidArgument(path + ": token " + std::to_string(index) + " (\"" + word + "\"): not a token name of " +
                             v.name() + " nor an id" +
                             (!v.pedal_tokens() && word.rfind("Pedal_", 0) == 0 ? " (pedal tokens: pass --pedal-tokens)" : ""));
    }
    ++index;
  }
  return out;
}

int RunDetokenize(const std::string& source, int64_t piece, const std::string& out, int grid, bool pedal_tokens) {
  std::vector<int32_t> tokens;
  const Vocabulary* v = Vocabulary::ForGrid(grid, pedal_tokens);
  if (!v) return Fail(InvalidArgument("--grid must be 12, 24 or 48, got " + std::to_string(grid)));
  std::error_code ec;
  if (fs::is_directory(source, ec)) {
    auto ds = Dataset::Open(source, false, /*any_grid=*/true);
    if (!ds.ok()) return Fail(ds.status());
    if (piece < 0 || piece >= (*ds)->num_pieces()) {
      return Fail(InvalidArgument("--piece " + std::to_string(piece) + ": give a piece index below " +
                                  std::to_string((*ds)->num_pieces()) + " of dataset " + source));
    }
    auto p = (*ds)->ReadPiece(piece);
    if (!p.ok()) return Fail(p.status());
    tokens = std::move(p->tokens);
    v = &(*ds)->vocabulary();
  } else {
    if (piece >= 0) return Fail(InvalidArgument("--piece is for a dataset folder; " + source + " is a token file"));
    std::string named;
    auto read = ReadTokenFile(source, *v, &named);
    if (!read.ok()) return Fail(read.status());
    if (!named.empty()) {
      const Vocabulary* found = Vocabulary::Find(named, Vocabulary::kVersion);
      if (!found) {
        return Fail(InvalidArgument(source + ": vocabulary " + named + " is not one this build knows (" +
                                    Vocabulary::Get().name() + " v" + std::to_string(Vocabulary::kVersion) +
                                    ", its -g24 / -g48 grids, and their -pedal variants)"));
      }
      v = found;
    }
    tokens = std::move(*read);
  }
  auto score = Tokenizer(TokenizerOptions::For(*v)).Decode(tokens);
  if (!score.ok()) return Fail(score.status().WithContext(source));
  Status s = WriteMidiFile(*score, out);
  if (!s.ok()) return Fail(s);
  std::cout << "wrote " << out << ": " << score->notes.size() << " notes, " << score->Seconds() << " s (" << v->name()
            << ", " << tokens.size() << " tokens)\n";
  return 0;
}

// --pedal apply|tokens|ignore on `cmd`, and the older spellings --sustain-pedal / --no-sustain-pedal (apply / ignore).
void AddPedalOption(CLI::App* cmd, std::string* mode) {
  CLI::Option* pedal =
      cmd->add_option("--pedal", *mode,
                      "Sustain pedal (CC 64): apply = notes released while it is down end at its release (as "
                      "pretty_midi/MidiTok users do); tokens = kept as Pedal_Down/Pedal_Up tokens at their grid "
                      "positions, notes end at the key release (vocabulary cadenza-remi-beat-g<grid>-pedal: inspect, "
                      "detokenize and the token grammar read it; models train on the default vocabulary); ignore = dropped")
          ->capture_default_str()
          ->check(CLI::IsMember({"apply", "tokens", "ignore"}));
  CLI::Option* on = cmd->add_flag_callback("--sustain-pedal", [mode] { *mode = "apply"; }, "Older spelling of --pedal apply");
  CLI::Option* off = cmd->add_flag_callback("--no-sustain-pedal", [mode] { *mode = "ignore"; }, "Older spelling of --pedal ignore");
  pedal->excludes(on)->excludes(off);
  on->excludes(off);
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
  // Inherited by cadenza-model and the worker ranks it starts, before their OpenMP runtime reads it (core/threads.h).
  setenv("OMP_WAIT_POLICY", "passive", 0);
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
  ingest_cmd->add_option("--grid", ingest.grid, "Grid steps per quarter note: 12 (sixteenths, triplets), 24 (adds 32nds), 48 (adds 64ths); the vocabulary's name says which, and training needs 12")->capture_default_str()->check(CLI::IsMember({12, 24, 48}));
  std::string ingest_pedal = SustainPedalName(ingest.pedal);
  AddPedalOption(ingest_cmd, &ingest_pedal);
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
  tokens_cmd->add_flag("--json", tokens_json, "Print tokens, bar/beat offsets and what encoding lost as JSON");
  TokenizerOptions tokens_options;
  tokens_cmd->add_option("--grid", tokens_options.grid, "Grid steps per quarter note (12, 24, 48)")->capture_default_str()->check(CLI::IsMember({12, 24, 48}));
  std::string tokens_pedal = SustainPedalName(tokens_options.pedal);
  AddPedalOption(tokens_cmd, &tokens_pedal);

  std::string detok_source, detok_out;
  int64_t detok_piece = -1;
  int detok_grid = kGridPerQuarter;
  auto* detok_cmd = app.add_subcommand("detokenize", "Tokens -> MIDI: a dataset's piece (DATASET --piece N) or a token file, to hear what a model sees");
  detok_cmd->add_option("source", detok_source, "A dataset folder (with --piece), or a token file: `cadenza tokens --json` output, a JSON array of ids, or token names/ids separated by spaces")->required();
  detok_cmd->add_option("--piece", detok_piece, "Piece index in the dataset's manifest");
  detok_cmd->add_option("--out", detok_out, "MIDI file to write")->required();
  detok_cmd->add_option("--grid", detok_grid, "Grid of a token file that does not name its vocabulary (12, 24, 48)")->capture_default_str()->check(CLI::IsMember({12, 24, 48}));
  bool detok_pedal_tokens = false;
  detok_cmd->add_flag("--pedal-tokens", detok_pedal_tokens, "A token file that does not name its vocabulary holds pedal tokens (the grid's -pedal vocabulary, as `ingest --pedal tokens` writes)");

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

  std::string config_kind = "experiment";
  auto* config_cmd = app.add_subcommand("config", "What configuration files may hold");
  config_cmd->require_subcommand(1);
  auto* config_keys_cmd = config_cmd->add_subcommand(
      "keys", "Every key of a config with its type, default, allowed values and meaning. experiment (the default): an "
              "experiment YAML (cadenza train, submit, sweep files); its model.* keys also make a model YAML, without "
              "the prefix. coordinator: the coordinator's YAML (cadenza coordinator --config, configs/coordinator.yaml)");
  config_keys_cmd->add_option("config", config_kind, "Which config: experiment or coordinator")
      ->capture_default_str()
      ->check(CLI::IsMember({"experiment", "coordinator"}));

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
    ParseSustainPedal(ingest_pedal, &ingest.pedal);  // checked by CLI11 against the three names
    if (ingest.val_fraction + ingest.test_fraction >= 1.0) {
      std::cerr << "cadenza: error: --val + --test must be below 1\n";
      return kExitUsage;
    }
    return RunIngest(ingest, quiet);
  }
  if (*inspect_cmd) return RunInspect(inspect_dir, verify, piece);
  if (*tokens_cmd) {
    ParseSustainPedal(tokens_pedal, &tokens_options.pedal);
    return RunTokens(tokens_file, tokens_json, tokens_options);
  }
  if (*detok_cmd) return RunDetokenize(detok_source, detok_piece, detok_out, detok_grid, detok_pedal_tokens);
  if (*synth_cmd) return RunSynth(synth_out, synth_count, synth_seed);
  if (*config_keys_cmd) {
    std::cout << FormatConfigKeys(config_kind == "coordinator" ? coord::CoordinatorConfigKeys() : ExperimentConfigKeys());
    return 0;
  }
  if (*eval_cmd) return eval_exit;
  if (*demo_cmd) return RunDemo(demo);
  return kExitUsage;
}
