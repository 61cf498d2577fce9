// The main job (`cadenza demo`): the single-machine comparison of the two model families, end to end.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cluster_commands.h"
#include "cli/commands.h"
#include "cli/local_cluster.h"
#include "coordinator/convert.h"
#include "coordinator/sweep_file.h"
#include "core/audio.h"
#include "core/experiment_config.h"
#include "core/run_layout.h"
#include "core/eval/evaluate.h"
#include "core/file_util.h"
#include "storage/manifest.h"
#include "storage/reference_pieces.h"

namespace cadenza {
namespace {

namespace fs = std::filesystem;
const char* const kFamilies[] = {"transformer", "lstm"};

// Matched size (140,288 vs 146,880 parameters, 4.7% apart; checked by a test), small enough for two cores.
std::string DemoModel(const std::string& family) {
  return family == "transformer"
             ? "{family: transformer, d_model: 64, layers: 2, heads: 4, ff_dim: 256, max_len: 1024, dropout: 0.1}"
             : "{family: lstm, d_model: 64, layers: 1, hidden: 112, attention: general, dropout: 0.1}";
}

std::string DemoExperiment(const std::string& family, const std::string& dataset, const std::string& run, int steps) {
  return "# Written by `cadenza demo`: train it again with `cadenza train <this file>`.\n"
         "name: demo-" + family + "\ndataset: " + dataset + "\nout: " + run + "\nmodel: " + DemoModel(family) +
         "\ntrain: {seq_len: 128, batch_size: 8, steps: " + std::to_string(steps) +
         ", lr: " + std::string(family == "transformer" ? "0.002" : "0.01") +  // RNNs want larger steps
         ", warmup_steps: 20, eval_every: " + std::to_string(std::max(1, steps / 3)) +
         ", eval_windows: 32, threads: 0}\n";
}

// What the training run logged (metrics.jsonl): best validation NLL per token and the last tokens/s.
struct RunFigures {
  double best_val_nll = NAN, best_val_perplexity = NAN, tokens_per_second = NAN;
};
RunFigures ReadRunFigures(const fs::path& run) {
  RunFigures f;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("tag") || !j["value"].is_number()) continue;
    const std::string tag = j["tag"];
    const double v = j["value"];
    if (tag == "val/nll_per_token" && !(v >= f.best_val_nll)) {
      f.best_val_nll = v;
      f.best_val_perplexity = std::exp(v);
    }
    if (tag == "train/tokens_per_second") f.tokens_per_second = v;
  }
  return f;
}

// The probe CSV as rows of column -> text; quoted cells may hold commas (doubled quotes are not unescaped).
std::vector<std::map<std::string, std::string>> ReadCsv(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::string cell;
    bool quoted = false;
    for (char c : l) {
      if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        out.push_back(cell);
        cell.clear();
      } else {
        cell += c;
      }
    }
    out.push_back(cell);
    return out;
  };
  if (std::getline(in, line)) header = split(line);
  while (std::getline(in, line)) {
    const auto cells = split(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}

std::string Fixed(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A plain text table: the first column left-aligned, the rest too (they are already formatted).
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) line += (c ? "  " : "") + row[c] + std::string(widths[c] - row[c].size(), ' ');
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

// `cadenza demo --sweep`: the study's default sweep on the dataset (matched tiny models of both families x 3
// dataset fractions x 2 seeds, scored on val and test, probed at 3 context lengths) through a local coordinator
// and a 2-rank worker group; prints the live page's address while it runs and ends with the report.
int RunDemoSweep(const DemoOptions& d, const std::string& dataset, int stage) {
  std::error_code ec;
  const fs::path dir = fs::absolute(fs::path(d.out) / "sweep");
  fs::remove_all(dir / "runs", ec);  // the demo always starts its runs afresh
  fs::create_directories(dir / "models", ec);
  if (ec) return Fail(IoError((dir / "models").string() + ": cannot create: " + ec.message()));
  const int steps = std::max(1, d.steps / 4);  // 12 runs: a quarter of the pair demo's steps each
  Status s;
  for (const std::string family : kFamilies) {
    s = WriteFileAtomic((dir / "models" / (family + ".yaml")).string(),
                        "# Written by `cadenza demo --sweep`: the " + family + " of the demo (matched size).\n" + DemoModel(family) + "\n");
    if (!s.ok()) return Fail(s);
  }
  const std::string experiment =
      "# Written by `cadenza demo --sweep`: the experiment the sweep varies (its model and lr come from sweep.yaml).\n"
      "name: demo-study\ndataset: " + fs::absolute(dataset).string() + "\nout: " + (dir / "runs").string() +
      "\nmodel: " + DemoModel("transformer") +
      "\ntrain: {seq_len: 128, batch_size: 8, steps: " + std::to_string(steps) + ", lr: 0.002, warmup_steps: 20, eval_every: " +
      std::to_string(std::max(1, steps / 3)) + ", eval_windows: 32, eval_samples: 2, eval_sample_bars: 4, threads: 1}\n"
      "generate: {top_p: 0.95, bars: 8, max_tokens: 1500}\n"
      "score: {splits: [val, test]}\n";
  const std::string sweep =
      "# Written by `cadenza demo --sweep`: submit it again with\n"
      "#   cadenza submit " + (dir / "experiment.yaml").string() + " --sweep " + (dir / "sweep.yaml").string() + "\n"
      "name: demo-study\n"
      "models:                              # matched size (checked at submit, 10% tolerance); each family's own rate\n"
      "  transformer: {file: models/transformer.yaml, set: {train.lr: 0.002}}\n"
      "  lstm: {file: models/lstm.yaml, set: {train.lr: 0.01}}\n"
      "dataset_fractions: [0.25, 0.5, 1.0]  # nested subsets of the train split; val and test fixed\n"
      "seeds: [1, 2]                        # mean and 95% CI over these\n"
      "budget: {steps: " + std::to_string(steps) + "}\n"
      "probe_lengths: [64, 128, 256]        # latency and memory against context length\n"
      "probe_batch_sizes: [1]\n";
  if (!(s = WriteFileAtomic((dir / "experiment.yaml").string(), experiment)).ok()) return Fail(s);
  if (!(s = WriteFileAtomic((dir / "sweep.yaml").string(), sweep)).ok()) return Fail(s);
  auto config = ParseExperimentConfig(experiment, (dir / "experiment.yaml").string());
  if (!config.ok()) return Fail(config.status());
  coord::ExperimentSpec base;
  base.experiment_yaml = config->ToYaml();
  base.samples = std::max(2, d.samples / 2);
  auto spec = coord::LoadSweepFile((dir / "sweep.yaml").string(), base);
  if (!spec.ok()) return Fail(spec.status());

  std::cout << "== " << stage++ << ". sweep " << (dir / "sweep.yaml").string() << ": 2 families x 3 dataset fractions x 2 seeds, "
            << steps << " steps each, through a local coordinator and a 2-rank worker group\n" << std::flush;
  LocalClusterOptions o;
  o.work_dir = (fs::path(d.out) / "cluster").string();
  auto cluster = LocalCluster::Start(o);
  if (!cluster.ok()) return Fail(cluster.status());
  v1::SubmitSweepRequest req;
  coord::ToProto(*spec, req.mutable_sweep());
  v1::SubmitResponse resp;
  if (!(s = (*cluster)->client().SubmitSweep(req, &resp)).ok()) return Fail(s);
  if (!(*cluster)->http_url().empty()) {
    std::cout << "live page: " << (*cluster)->http_url() << "/?sweep=" << resp.sweep_id() << "#token=" << (*cluster)->token()
              << "\n  (the figures fill in as runs finish; the token after # stays in the browser)\n" << std::flush;
  }
  if (!(s = (*cluster)->Follow({resp.job_ids().begin(), resp.job_ids().end()})).ok()) return Fail(s);
  std::cout << "== " << stage++ << ". report\n" << std::flush;
  auto files = WriteSweepReport((*cluster)->client(), resp.sweep_id(), /*job=*/0, (*cluster)->target(), (fs::path(d.out) / "report").string());
  if (!files.ok()) return Fail(files.status());
  std::cout << "report: " << files->cells << " cell(s), " << files->figures << " figure(s) -> " << fs::absolute(files->index).string()
            << "\n  (the same numbers: report/cells.csv, report/results.json; figures as SVG and PNG in report/figures/)\n";
  return 0;
}

}  // namespace

int RunDemo(const DemoOptions& d) {
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  std::error_code ec;
  fs::create_directories(d.out, ec);
  if (ec) return Fail(IoError(d.out + ": cannot create: " + ec.message()));
  std::string corpus = d.data;
  if (corpus.empty()) {
    corpus = (fs::path(d.out) / "synthetic-midi").string();
    fs::remove_all(corpus, ec);
    std::cout << "== 1. corpus: " << d.count << " synthetic tunes (no --data given) -> " << corpus << "\n";
    if (int rc = RunSynth(corpus, d.count, 1)) return rc;
  } else {
    std::cout << "== 1. corpus: " << corpus << "\n";
  }
  IngestOptions o;
  o.input_dir = corpus;
  o.out_dir = (fs::path(d.out) / "dataset").string();
  o.shards = 4;
  o.jobs = d.jobs;
  o.overwrite = true;
  std::cout << "== 2. ingest -> " << o.out_dir << "\n";
  if (int rc = RunIngest(o, false)) return rc;
  std::cout << "== 3. dataset\n";
  if (int rc = RunInspect(o.out_dir, true, -1)) return rc;
  if (d.steps == 0) return 0;
  // Training validates on the val split: a corpus too small for one is refused now, not after a model trained.
  auto manifest = Manifest::Load((fs::path(o.out_dir) / "manifest.json").string());
  if (!manifest.ok()) return Fail(manifest.status());
  const auto val_pieces = std::count_if(manifest->pieces.begin(), manifest->pieces.end(),
                                        [](const PieceMeta& p) { return p.split == Split::kVal; });
  if (val_pieces == 0) {
    return Fail(InvalidArgument(o.out_dir + ": the val split holds no piece (" + std::to_string(manifest->pieces.size()) +
                                " pieces in all, val fraction " + Fixed(manifest->val_fraction, 2) +
                                "), and training validates on it: " +
                                (d.data.empty() ? "make more tunes (--count 120 or more)" : "give a larger --data folder")));
  }
  if (d.sweep) {
    const int rc = RunDemoSweep(d, o.out_dir, 4);
    if (rc == 0) std::cout << "done in " << Fixed(elapsed(), 1) << " s\n";
    return rc;
  }

  int stage = 4;
  const bool wav = fs::exists(DefaultSoundfont());
  for (const std::string family : kFamilies) {
    const fs::path run = fs::path(d.out) / "runs" / family;
    const fs::path experiment = fs::path(d.out) / "experiments" / (family + ".yaml");
    fs::remove_all(run, ec);  // the demo always starts its runs afresh
    fs::create_directories(experiment.parent_path(), ec);
    Status s = WriteFileAtomic(experiment.string(), DemoExperiment(family, o.out_dir, run.string(), d.steps));
    if (!s.ok()) return Fail(s);
    if (d.cluster) continue;  // trained and sampled by the cluster below
    std::cout << "== " << stage++ << ". train " << family << " (" << experiment.string() << ")\n" << std::flush;
    if (int rc = RunModelBinary({"train", experiment.string()})) return rc;
    const fs::path samples = fs::path(d.out) / "samples" / family;
    fs::remove_all(samples, ec);
    std::cout << "== " << stage++ << ". generate " << d.samples << " pieces of 8 bars from " << family
              << (wav ? " (MIDI and WAV)" : " (MIDI; no soundfont for WAV)") << "\n" << std::flush;
    std::vector<std::string> generate = {"generate", run_layout::BestCheckpoint(run.string()), "--out",
                                         samples.string(), "--count", std::to_string(d.samples), "--bars", "8",
                                         "--tokens", "1500", "--top-p", "0.95"};
    if (wav) generate.push_back("--wav");
    if (int rc = RunModelBinary(generate)) return rc;
  }

  if (d.cluster) {
    std::vector<std::string> families, files;
    for (const std::string family : kFamilies) {
      families.push_back(family);
      files.push_back((fs::path(d.out) / "experiments" / (family + ".yaml")).string());
    }
    std::cout << "== " << stage++ << ". train both families and generate " << d.samples << " pieces of 8 bars each"
              << (wav ? " (MIDI and WAV)" : " (MIDI; no soundfont for WAV)")
              << " through a local coordinator and a 2-rank worker group\n" << std::flush;
    if (Status s = RunDemoStagesOnCluster(d.out, families, files, d.samples, wav); !s.ok()) return Fail(s);
  }

  // Both families' samples against the test split: structure, melody, rhythm, and mgeval overlap.
  std::cout << "== " << stage++ << ". evaluate the samples against the test split\n" << std::flush;
  std::vector<std::string> names;
  std::vector<EvaluationReport> reports;
  const fs::path eval_dir = fs::path(d.out) / "evaluation";
  fs::create_directories(eval_dir, ec);
  const auto reference = OpenReferenceSplit(o.out_dir, "test");  // read by both families' evaluations
  for (const std::string family : kFamilies) {
    EvaluateRequest request;
    request.inputs = {(fs::path(d.out) / "samples" / family).string()};
    request.ssm_png_dir = (eval_dir / (family + "-ssm")).string();
    request.jobs = d.jobs;
    if (reference.ok()) {
      request.reference = reference->get();
    } else {  // e.g. a corpus too small for a test split: evaluate without the comparison
      std::cout << family << ": " << reference.status().message() << " (evaluated without a reference)\n";
    }
    auto report = RunEvaluation(request);
    if (!report.ok()) return Fail(report.status());
    const std::string path = (eval_dir / (family + ".json")).string();
    if (Status s = WriteFileAtomic(path, ReportJson(*report)); !s.ok()) return Fail(s);
    names.push_back(family);
    reports.push_back(std::move(report).value());
  }

  // Latency and memory against context length (the paper's efficiency figures), on the trained checkpoints.
  std::cout << "== " << stage++ << ". probe latency and memory at contexts of 128 and 512 tokens\n" << std::flush;
  const std::string probe_csv = (fs::path(d.out) / "probe.csv").string();
  if (int rc = RunModelBinary({"probe", "--checkpoint", run_layout::BestCheckpoint((fs::path(d.out) / "runs/transformer").string()),
                               "--checkpoint", run_layout::BestCheckpoint((fs::path(d.out) / "runs/lstm").string()),
                               "--lengths", "128,512", "--repeats", "5", "--out", probe_csv, "--quiet"})) {
    return rc;
  }
  const auto probe = ReadCsv(probe_csv);
  auto probe_cell = [&](const std::string& family, const std::string& length, const std::string& column, int digits) {
    for (const auto& row : probe) {
      if (row.count("family") && row.at("family") == family && row.at("length") == length) {
        return Fixed(std::atof(row.at(column).c_str()), digits);
      }
    }
    return std::string("-");
  };

  std::vector<std::vector<std::string>> model_rows = {{"model", "transformer", "lstm"}};
  auto add = [&](const std::string& label, const std::function<std::string(const std::string&)>& value) {
    std::vector<std::string> row = {label};
    for (const std::string family : kFamilies) row.push_back(value(family));
    model_rows.push_back(row);
  };
  std::map<std::string, RunFigures> runs;
  for (const std::string family : kFamilies) runs[family] = ReadRunFigures(fs::path(d.out) / "runs" / family);
  add("parameters", [&](const std::string& f) { return probe_cell(f, "128", "parameters", 0); });
  add("validation NLL per token", [&](const std::string& f) { return Fixed(runs[f].best_val_nll, 3); });
  add("validation perplexity", [&](const std::string& f) { return Fixed(runs[f].best_val_perplexity, 2); });
  add("training tokens/s", [&](const std::string& f) { return Fixed(runs[f].tokens_per_second, 0); });
  add("generation ms/token at context 128", [&](const std::string& f) { return probe_cell(f, "128", "step_ms", 3); });
  add("generation ms/token at context 512", [&](const std::string& f) { return probe_cell(f, "512", "step_ms", 3); });
  add("forward ms, 512 tokens", [&](const std::string& f) { return probe_cell(f, "512", "forward_ms", 2); });
  add("forward peak MiB, 512 tokens", [&](const std::string& f) { return probe_cell(f, "512", "forward_peak_mb", 1); });
  add("generation state MiB at 512", [&](const std::string& f) { return probe_cell(f, "512", "state_mb", 2); });

  const std::string models = Table(model_rows);
  const std::string metrics = SideBySideTable(names, reports);
  std::ostringstream summary;
  summary << "# cadenza demo: Transformer vs attention LSTM\n\n"
          << "Training, speed and memory (validation on the dataset's val split; probe: " << probe_csv << "):\n\n"
          << models << "\nGenerated pieces (" << d.samples << " per family) against the test split, mean ± sd per piece;"
          << " overlap = mgeval overlap of intra-reference and inter-set distances (1 = indistinguishable):\n\n"
          << metrics;
  const std::string table_path = (fs::path(d.out) / "comparison.txt").string();
  if (Status s = WriteFileAtomic(table_path, summary.str()); !s.ok()) return Fail(s);
  std::cout << "\n" << summary.str() << "\nfiles: " << d.out << "/{runs,samples,evaluation,probe.csv,comparison.txt}"
            << " (metrics: docs/evaluation.md, probe: docs/models.md)\n";
  std::cout << "done in " << Fixed(elapsed(), 1) << " s\n";
  return 0;
}

}  // namespace cadenza
