// The `cadenza` command as a user runs it: help texts, errors that name the input, and synth -> ingest -> inspect.
#include <gtest/gtest.h>

#include "tests/support/shell.h"
#include <sstream>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/midi.h"

namespace {

using cadenza::Shell;
using cadenza::ShellRun;

namespace fs = std::filesystem;

using CliRun = ShellRun;
using cadenza::Cadenza;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cadenza_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CliTest, HelpExplainsEveryCommandAndOption) {
  CliRun top = Cadenza("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"ingest", "inspect", "tokens", "synth", "demo", "train", "generate", "params", "probe", "score"}) EXPECT_NE(top.output.find(cmd), std::string::npos) << cmd;
  CliRun ingest = Cadenza("ingest --help");
  EXPECT_EQ(ingest.exit_code, 0);
  for (const char* opt : {"--out", "--shards", "--val", "--test", "--jobs", "--overwrite"}) {
    EXPECT_NE(ingest.output.find(opt), std::string::npos) << opt;
  }
  EXPECT_EQ(Cadenza("").exit_code, 2);
  EXPECT_EQ(Cadenza("frobnicate").exit_code, 2);
}

// `cadenza config keys` lists every experiment key from the field table that parses them; `train --help` points to it.
TEST_F(CliTest, ConfigKeysListsEveryExperimentKeyWithItsDefault) {
  CliRun keys = Cadenza("config keys");
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
  for (const char* want : {"train.warmup_steps", "default 100; >= 0", "model.heads", "(transformer only)", "generate.top_p",
                           "probe.repeats", "fp32 | bf16", "linear warm-up"}) {
    EXPECT_NE(keys.output.find(want), std::string::npos) << want << " missing from\n" << keys.output;
  }
  CliRun train_help = Cadenza("train --help");
  EXPECT_EQ(train_help.exit_code, 0);
  EXPECT_NE(train_help.output.find("cadenza config keys"), std::string::npos) << train_help.output;
  EXPECT_EQ(Cadenza("config").exit_code, 2) << "a subcommand is required";
  CliRun experiment = Cadenza("config keys experiment");
  EXPECT_EQ(experiment.exit_code, 0);
  EXPECT_EQ(experiment.output, keys.output) << "experiment is the default";
  EXPECT_EQ(Cadenza("config keys kubernetes").exit_code, 2);
}

// `cadenza config keys coordinator` lists the coordinator's keys from its own field table.
TEST_F(CliTest, ConfigKeysCoordinatorListsTheCoordinatorsKeys) {
  CliRun keys = Cadenza("config keys coordinator");
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
  for (const char* want : {"launch.idle_timeout_s", "seconds", "default 300; >= 0", "launch.slurm.sbatch_args", "launch.worker_args",
                           "heartbeat.period_ms", "none | local | slurm"}) {
    EXPECT_NE(keys.output.find(want), std::string::npos) << want << " missing from\n" << keys.output;
  }
  EXPECT_EQ(keys.output.find("train.warmup_steps"), std::string::npos) << "no experiment key";
  CliRun help = Cadenza("config keys --help");
  EXPECT_NE(help.output.find("coordinator"), std::string::npos) << help.output;
  // The effective config: the shipped file with a flag applied, every key dumped, nothing started.
  CliRun dump = Cadenza("coordinator --config " CADENZA_SOURCE_DIR "/configs/coordinator.yaml --launcher slurm --print-config");
  ASSERT_EQ(dump.exit_code, 0) << dump.output;
  EXPECT_NE(dump.output.find("launcher: slurm\n"), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("sbatch_args:"), std::string::npos) << dump.output;
  EXPECT_EQ(dump.output.find("listening"), std::string::npos) << "--print-config starts no server:\n" << dump.output;
}

TEST_F(CliTest, BadInputIsNamed) {
  CliRun missing = Cadenza("ingest /nonexistent/midi --out " + (dir_ / "ds").string());
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("/nonexistent/midi"), std::string::npos) << missing.output;

  const fs::path bad = dir_ / "notes.mid";
  std::ofstream(bad) << "this is not midi";
  CliRun tokens = Cadenza("tokens " + bad.string());
  EXPECT_EQ(tokens.exit_code, 1);
  EXPECT_NE(tokens.output.find(bad.string() + ": byte 0: expected 'MThd'"), std::string::npos) << tokens.output;

  CliRun shards = Cadenza("ingest " + dir_.string() + " --out " + (dir_ / "ds").string() + " --shards 0");
  EXPECT_EQ(shards.exit_code, 2);
  EXPECT_NE(shards.output.find("--shards"), std::string::npos) << shards.output;

  CliRun inspect = Cadenza("inspect " + (dir_ / "no-dataset").string());
  EXPECT_EQ(inspect.exit_code, 1);
  EXPECT_NE(inspect.output.find("no-dataset"), std::string::npos) << inspect.output;
}

TEST_F(CliTest, SynthIngestInspectEndToEnd) {
  const std::string midi = (dir_ / "midi").string(), ds = (dir_ / "ds").string();
  CliRun synth = Cadenza("synth --out " + midi + " --count 30 --seed 5");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  int files = 0;
  for (auto& e : fs::directory_iterator(midi)) files += e.path().extension() == ".mid";
  EXPECT_EQ(files, 30);

  CliRun ingest = Cadenza("ingest " + midi + " --out " + ds + " --shards 3 --jobs 2 --quiet");
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  EXPECT_NE(ingest.output.find("30"), std::string::npos) << ingest.output;
  EXPECT_TRUE(fs::exists(fs::path(ds) / "manifest.json"));
  EXPECT_TRUE(fs::exists(fs::path(ds) / "ingest_report.json"));
  EXPECT_FALSE(fs::exists(ds + ".partial"));

  CliRun again = Cadenza("ingest " + midi + " --out " + ds + " --quiet");
  EXPECT_EQ(again.exit_code, 1) << "an existing dataset must not be overwritten silently";
  EXPECT_NE(again.output.find(ds), std::string::npos) << again.output;

  CliRun inspect = Cadenza("inspect " + ds + " --verify");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("pieces       30"), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("checksums verified"), std::string::npos) << inspect.output;

  CliRun piece = Cadenza("inspect " + ds + " --piece 0");
  ASSERT_EQ(piece.exit_code, 0) << piece.output;
  EXPECT_NE(piece.output.find("bar 0: Bar TimeSig_"), std::string::npos) << piece.output;
  EXPECT_NE(piece.output.find("losses:"), std::string::npos) << piece.output;
  EXPECT_NE(inspect.output.find("sustain pedal"), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("tempo changes clamped"), std::string::npos) << inspect.output;

  // detokenize: a dataset piece -> MIDI; its tokens -> a token file -> MIDI again: the same tokens both ways.
  const std::string p0 = (dir_ / "p0.mid").string(), p1 = (dir_ / "p1.mid").string(), tf = (dir_ / "p0.json").string();
  CliRun detok = Cadenza("detokenize " + ds + " --piece 0 --out " + p0);
  ASSERT_EQ(detok.exit_code, 0) << detok.output;
  EXPECT_NE(detok.output.find("cadenza-remi-beat-g12"), std::string::npos) << detok.output;
  CliRun tokens = Cadenza("tokens " + p0 + " --json");
  ASSERT_EQ(tokens.exit_code, 0) << tokens.output;
  std::ofstream(tf) << tokens.output;
  const nlohmann::json first = nlohmann::json::parse(tokens.output);
  EXPECT_EQ(first["vocabulary"], "cadenza-remi-beat-g12");
  EXPECT_TRUE(first["losses"].contains("sustained_notes"));
  ASSERT_EQ(Cadenza("detokenize " + tf + " --out " + p1).exit_code, 0);
  CliRun again_tokens = Cadenza("tokens " + p1 + " --json");
  ASSERT_EQ(again_tokens.exit_code, 0) << again_tokens.output;
  EXPECT_EQ(nlohmann::json::parse(again_tokens.output)["tokens"], first["tokens"]);
  CliRun bad = Cadenza("detokenize " + ds + " --out " + p1);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--piece"), std::string::npos) << bad.output;
}

// --pedal tokens: the pedal vocabulary's dataset, its counts in the report and in inspect, the pedal tokens of a
// piece, and back to MIDI with the pedal as CC 64; the older --no-sustain-pedal still works, and not with --pedal.
TEST_F(CliTest, PedalTokensIngestInspectDetokenize) {
  const std::string midi = (dir_ / "midi").string(), ds = (dir_ / "ds").string();
  ASSERT_EQ(Cadenza("synth --out " + midi + " --count 4 --seed 3").exit_code, 0);
  cadenza::Score s;
  s.ticks_per_quarter = 480;
  s.tracks = {cadenza::Track{"piano"}};
  for (int i = 0; i < 8; ++i) {
    cadenza::Note n;
    n.start = 480 * i;
    n.end = n.start + 240;
    n.pitch = static_cast<uint8_t>(60 + i);
    n.velocity = 80;
    s.notes.push_back(n);
  }
  s.sustain = {{480, 0, true}, {1920, 0, false}, {1930, 0, true}, {3600, 0, false}};
  s.Sort();
  const std::vector<uint8_t> bytes = cadenza::SerializeMidi(s);
  std::ofstream(midi + "/pedal.mid", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());

  CliRun help = Cadenza("ingest --help");
  EXPECT_NE(help.output.find("--pedal"), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("Pedal_Down"), std::string::npos) << help.output;
  CliRun both = Cadenza("ingest " + midi + " --out " + ds + " --pedal tokens --no-sustain-pedal --quiet");
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_NE(both.output.find("--no-sustain-pedal"), std::string::npos) << both.output;
  CliRun odd = Cadenza("ingest " + midi + " --out " + ds + " --pedal on --quiet");
  EXPECT_EQ(odd.exit_code, 2) << odd.output;

  CliRun ingest = Cadenza("ingest " + midi + " --out " + ds + " --pedal tokens --quiet");
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  EXPECT_NE(ingest.output.find("kept as Pedal_Down/Pedal_Up tokens"), std::string::npos) << ingest.output;
  // Presses at steps 12 and 48 (a pedal change at 1920/1930: a release and a press on one step), releases at 48, 90.
  EXPECT_NE(ingest.output.find("pedal tokens    4 written; 0 presses"), std::string::npos) << ingest.output;
  CliRun inspect = Cadenza("inspect " + ds);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("cadenza-remi-beat-g12-pedal v2 (1433 tokens"), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("4 pedal tokens written, 0 presses"), std::string::npos) << inspect.output;

  // The pedal piece: its tokens, then MIDI with the pedal as CC 64 within half a step (20 ticks) of the file's.
  const nlohmann::json manifest = nlohmann::json::parse(std::ifstream(ds + "/manifest.json"));
  int piece = -1;
  for (size_t i = 0; i < manifest["pieces"].size(); ++i) {
    if (manifest["pieces"][i]["source"] == "pedal.mid") piece = static_cast<int>(i);
  }
  ASSERT_GE(piece, 0);
  CliRun shown = Cadenza("inspect " + ds + " --piece " + std::to_string(piece));
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("Pos_0 Pedal_Up Pedal_Down"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("pedal_tokens=4"), std::string::npos) << shown.output;
  const std::string out = (dir_ / "pedal-back.mid").string(), tf = (dir_ / "pedal.json").string();
  CliRun detok = Cadenza("detokenize " + ds + " --piece " + std::to_string(piece) + " --out " + out);
  ASSERT_EQ(detok.exit_code, 0) << detok.output;
  EXPECT_NE(detok.output.find("cadenza-remi-beat-g12-pedal"), std::string::npos) << detok.output;
  std::ifstream in(out, std::ios::binary);
  const std::vector<uint8_t> back_bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto back = cadenza::ParseMidi(back_bytes.data(), back_bytes.size(), out);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->sustain.size(), s.sustain.size());
  for (size_t i = 0; i < s.sustain.size(); ++i) {
    EXPECT_EQ(back->sustain[i].down, s.sustain[i].down) << i;
    EXPECT_LE(std::abs(back->sustain[i].tick - s.sustain[i].tick), 20) << i;
  }
  for (const cadenza::Note& n : back->notes) EXPECT_EQ(n.end - n.start, 240) << "notes end at the key release";
  // Its tokens again, as a token file naming the pedal vocabulary, and back: the same tokens.
  CliRun tokens = Cadenza("tokens " + out + " --pedal tokens --json");
  ASSERT_EQ(tokens.exit_code, 0) << tokens.output;
  const nlohmann::json first = nlohmann::json::parse(tokens.output);
  EXPECT_EQ(first["vocabulary"], "cadenza-remi-beat-g12-pedal");
  EXPECT_EQ(first["losses"]["pedal_tokens"], 4);
  std::ofstream(tf) << tokens.output;
  const std::string again = (dir_ / "pedal-again.mid").string();
  ASSERT_EQ(Cadenza("detokenize " + tf + " --out " + again).exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(Cadenza("tokens " + again + " --pedal tokens --json").output)["tokens"], first["tokens"]);

  // The older spelling: --no-sustain-pedal is --pedal ignore.
  const std::string dsi = (dir_ / "dsi").string();
  ASSERT_EQ(Cadenza("ingest " + midi + " --out " + dsi + " --no-sustain-pedal --quiet").exit_code, 0);
  const nlohmann::json report = nlohmann::json::parse(std::ifstream(dsi + "/ingest_report.json"));
  EXPECT_EQ(report["pedal"], "ignore");
  EXPECT_EQ(report["losses"]["sustained_notes"], 0);
}

TEST_F(CliTest, TrainThenGenerateMidiAndWav) {
  const std::string midi = (dir_ / "midi").string(), ds = (dir_ / "ds").string(), run = (dir_ / "run").string();
  ASSERT_EQ(Cadenza("synth --out " + midi + " --count 30 --seed 2").exit_code, 0);
  ASSERT_EQ(Cadenza("ingest " + midi + " --out " + ds + " --val 0.2 --quiet").exit_code, 0);
  const fs::path exp = dir_ / "exp.yaml";
  std::ofstream(exp) << "name: cli\ndataset: " << ds << "\nout: " << run
                     << "\nmodel: {family: lstm, d_model: 32, layers: 1, hidden: 48, attention: additive}\n"
                        "train: {seq_len: 64, batch_size: 4, steps: 6, eval_every: 3, eval_windows: 8, threads: 1}\n";
  CliRun train = Cadenza("train " + exp.string() + " --quiet");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("steps          6 of 6"), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("best NLL/token"), std::string::npos) << train.output;
  CliRun again = Cadenza("train " + exp.string() + " --quiet");
  EXPECT_EQ(again.exit_code, 1) << "a second run into the same folder must ask for --resume";
  EXPECT_NE(again.output.find("--resume"), std::string::npos) << again.output;
  // key=value overrides: applied and recorded in the run's config.yaml; a bad key is named.
  CliRun over = Cadenza("train " + exp.string() + " train.steps=4 out=" + run + "-over model.dropout=0.2 --quiet");
  ASSERT_EQ(over.exit_code, 0) << over.output;
  EXPECT_NE(over.output.find("steps          4 of 4"), std::string::npos) << over.output;
  {
    std::stringstream config;
    config << std::ifstream(run + "-over/config.yaml").rdbuf();
    EXPECT_NE(config.str().find("dropout: 0.2"), std::string::npos) << config.str();
  }
  CliRun bad = Cadenza("train " + exp.string() + " train.stepz=4 --quiet");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("train.stepz"), std::string::npos) << bad.output;

  // Scoring the checkpoint on the val split: a table row per split, and the JSON report with --out.
  CliRun help = Cadenza("score --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("negative log-likelihood per token and per bar over a whole"), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("--windows"), std::string::npos) << help.output;
  const std::string report = (dir_ / "score.json").string();
  CliRun score = Cadenza("score " + run + "/checkpoints/best.pt --dataset " + ds + " --split val --threads 1 --out " + report);
  ASSERT_EQ(score.exit_code, 0) << score.output;
  EXPECT_NE(score.output.find("NLL/token"), std::string::npos) << score.output;
  EXPECT_NE(score.output.find("\nval "), std::string::npos) << score.output;
  {
    std::ifstream in(report);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << report;
    EXPECT_EQ(j["results"][0]["name"], "val");
    EXPECT_GT(j["results"][0]["tokens"].get<int64_t>(), 0);
  }
  CliRun bad_split = Cadenza("score " + run + "/checkpoints/best.pt --dataset " + ds + " --split valid");
  EXPECT_EQ(bad_split.exit_code, 2) << bad_split.output;

  const std::string samples = (dir_ / "samples").string();
  const std::string wav = fs::exists("/usr/share/sounds/sf2/FluidR3_GM.sf2") ? " --wav" : "";
  CliRun gen = Cadenza("generate --checkpoint " + run + "/checkpoints/best.pt --out " + samples + " --count 2 --bars 2 --tokens 400 --seed 3" + wav);
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  EXPECT_NE(gen.output.find("sample-001"), std::string::npos) << gen.output;
  for (const char* f : {"sample-000.mid", "sample-000.json", "sample-001.mid"}) EXPECT_TRUE(fs::exists(fs::path(samples) / f)) << f;
  if (!wav.empty()) {
    EXPECT_GT(fs::file_size(fs::path(samples) / "sample-000.wav"), 44u);
  }
  CliRun inspect = Cadenza("tokens " + samples + "/sample-000.mid");
  EXPECT_EQ(inspect.exit_code, 0) << "generated MIDI must read back: " << inspect.output;

  // The same samples with the model's own hidden states as SSM segment embeddings (runs in cadenza-model).
  const std::string builtin = (dir_ / "builtin.json").string(), hidden = (dir_ / "hidden.json").string();
  CliRun e1 = Cadenza("evaluate " + midi + " --out " + builtin + " --quiet --jobs 1");
  ASSERT_EQ(e1.exit_code, 0) << e1.output;
  CliRun e2 = Cadenza("evaluate " + midi + " --out " + hidden + " --quiet --jobs 2 --checkpoint " + run + "/checkpoints/best.pt");
  ASSERT_EQ(e2.exit_code, 0) << e2.output;
  EXPECT_NE(e2.output.find("with hidden states of " + run + "/checkpoints/best.pt (lstm, step 6) as segment embeddings"),
            std::string::npos) << e2.output;
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in, nullptr, false);
  };
  const nlohmann::json a = read(builtin), b = read(hidden);
  ASSERT_FALSE(a.is_discarded() || b.is_discarded());
  EXPECT_EQ(a["options"]["embeddings"], "built-in");
  EXPECT_NE(b["options"]["embeddings"].get<std::string>().find("hidden states of"), std::string::npos);
  ASSERT_EQ(a["pieces"].size(), 30u);
  ASSERT_EQ(b["pieces"].size(), 30u);
  int structure_differs = 0;
  for (size_t i = 0; i < 30; ++i) {
    // Melody and rhythm do not depend on the embeddings; the SSM does.
    EXPECT_EQ(a["pieces"][i]["melody"], b["pieces"][i]["melody"]) << i;
    EXPECT_EQ(a["pieces"][i]["rhythm"], b["pieces"][i]["rhythm"]) << i;
    structure_differs += a["pieces"][i]["structure"]["mean_similarity"] != b["pieces"][i]["structure"]["mean_similarity"];
  }
  EXPECT_GT(structure_differs, 20);
  CliRun junk = Cadenza("evaluate " + midi + " --out " + (dir_ / "x.json").string() + " --checkpoint " + exp.string());
  EXPECT_EQ(junk.exit_code, 1) << junk.output;
  EXPECT_NE(junk.output.find(exp.string() + ": not a cadenza checkpoint"), std::string::npos) << junk.output;
}

TEST_F(CliTest, ModelCommandErrorsAreNamed) {
  const fs::path exp = dir_ / "bad.yaml";
  std::ofstream(exp) << "name: x\ndataset: d\nout: o\nmodel: {family: transformer, d_model: 30, heads: 4}\n";
  CliRun train = Cadenza("train " + exp.string());
  EXPECT_EQ(train.exit_code, 1);
  EXPECT_NE(train.output.find(exp.string() + ": model.heads: expected a divisor of d_model (30)"), std::string::npos) << train.output;
  const fs::path junk = dir_ / "junk.pt";
  std::ofstream(junk) << "junk";
  CliRun gen = Cadenza("generate " + junk.string() + " --out " + (dir_ / "s").string());
  EXPECT_EQ(gen.exit_code, 1);
  EXPECT_NE(gen.output.find(junk.string() + ": not a cadenza checkpoint"), std::string::npos) << gen.output;
  CliRun params = Cadenza("params " CADENZA_SOURCE_DIR "/configs/models/transformer-base.yaml " CADENZA_SOURCE_DIR
                          "/configs/models/lstm-base.yaml");
  EXPECT_EQ(params.exit_code, 0) << params.output;
  EXPECT_NE(params.output.find("parameters  (lstm 2x448 attention=general)"), std::string::npos) << params.output;
}

// libgomp's default spins idle threads (GOMP_SPINCOUNT 300000), which steals a shared node's other cores: the
// programs make idle threads sleep themselves unless the user chose a policy (core/threads.h).
TEST_F(CliTest, IdleOpenMpThreadsSleepUnlessTheUserChoseAPolicy) {
  const std::string model_binary = (fs::path(CADENZA_CLI).parent_path() / "cadenza-model").string();
  const std::string params = " params " CADENZA_SOURCE_DIR "/configs/models/transformer-tiny.yaml 2>&1";
  const auto last_spin_count = [](const std::string& output) {
    const size_t at = output.rfind("GOMP_SPINCOUNT = '");
    return at == std::string::npos ? std::string("(not shown)") : output.substr(at + 18, output.find('\'', at + 18) - at - 18);
  };
  for (const std::string& program : {model_binary, std::string(CADENZA_CLI)}) {
    CliRun unset = Shell("env -u OMP_WAIT_POLICY OMP_DISPLAY_ENV=verbose " + program + params);
    EXPECT_EQ(unset.exit_code, 0) << unset.output;
    EXPECT_EQ(last_spin_count(unset.output), "0") << program << ":\n" << unset.output;
    EXPECT_NE(unset.output.find("parameters"), std::string::npos) << unset.output;
    CliRun chosen = Shell("env OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose " + program + params);
    EXPECT_EQ(chosen.exit_code, 0) << chosen.output;
    EXPECT_EQ(last_spin_count(chosen.output), "30000000000") << program << ":\n" << chosen.output;
  }
}

TEST_F(CliTest, ProbeWritesOneCsvRowPerModelAndLength) {
  const fs::path csv = dir_ / "probe.csv";
  CliRun probe = Cadenza("probe --model " CADENZA_SOURCE_DIR "/configs/models/transformer-tiny.yaml --model " CADENZA_SOURCE_DIR
                         "/configs/models/lstm-tiny.yaml --lengths 16,48 --repeats 2 --warmup 1 --threads 1 --out " +
                         csv.string());
  ASSERT_EQ(probe.exit_code, 0) << probe.output;
  EXPECT_NE(probe.output.find("probe: 4 rows -> " + csv.string()), std::string::npos) << probe.output;
  std::ifstream in(csv);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_NE(lines[1].find(",transformer,"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find(",16,1,"), std::string::npos) << lines[1];
  EXPECT_NE(lines[4].find(",lstm,"), std::string::npos) << lines[4];
  EXPECT_NE(lines[4].find(",48,1,"), std::string::npos) << lines[4];

  CliRun nothing = Cadenza("probe --out " + (dir_ / "x.csv").string());
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_NE(nothing.output.find("give at least one --checkpoint or --model"), std::string::npos) << nothing.output;
  EXPECT_FALSE(fs::exists(dir_ / "x.csv"));
}

// A synthetic corpus too small for a val split is refused after ingest, before any model trains.
TEST_F(CliTest, DemoRefusesACorpusWithoutAValSplitBeforeTraining) {
  const fs::path out = dir_ / "demo";
  CliRun demo = Cadenza("demo --single-process --out " + out.string() + " --count 60 --steps 5");
  EXPECT_NE(demo.exit_code, 0) << demo.output;
  EXPECT_NE(demo.output.find("the val split holds no piece (60 pieces in all, val fraction 0.05), and training "
                             "validates on it: make more tunes (--count 120 or more)"),
            std::string::npos)
      << demo.output;
  EXPECT_EQ(demo.output.find("== 4."), std::string::npos) << "nothing trained\n" << demo.output;
  EXPECT_FALSE(fs::exists(out / "runs"));
}

}  // namespace
