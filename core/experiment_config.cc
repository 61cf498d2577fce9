// YAML parsing, validation and dumping of experiments and models, all driven by one field table per config (every
// key declared once, with its type, default, range and doc); every error names the file and the key.
#include "core/experiment_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "core/vocabulary.h"
#include "core/config_fields.h"
#include "core/yaml_reader.h"

namespace cadenza {
namespace {

using ExperimentTable = ConfigTable<ExperimentConfig>;
using ModelTable = ConfigTable<ModelConfig>;

// The keys of a model (a model YAML, or `model:` inline in an experiment), in the order they are dumped.
const ModelTable& ModelFields() {
  static const ModelTable table = [] {
    using M = ModelConfig;
    const auto transformer = [](const M& m) { return !m.is_rnn(); };
    const auto rnn = [](const M& m) { return m.is_rnn(); };
    ModelTable t;
    t.Text("family", Member(&M::family), "the model family", {"transformer", "lstm", "gru"});
    t.Number("d_model", Member(&M::d_model), Between(8, 8192), "token embedding width (the Transformer's model width)");
    t.Number("layers", Member(&M::layers), Between(1, 64), "Transformer blocks, or stacked LSTM/GRU layers");
    t.Number("heads", Member(&M::heads), NumberRange(), "attention heads; a divisor of d_model").OnlyFor("transformer", transformer);
    t.Number("ff_dim", Member(&M::ff_dim), AtLeast(1), "ReLU feed-forward width").OnlyFor("transformer", transformer);
    t.Number("max_len", Member(&M::max_len), Between(16, 65536), "longest context in tokens: the sinusoid table and the key/value cache")
        .OnlyFor("transformer", transformer);
    t.Number("hidden", Member(&M::hidden), Between(8, 8192), "LSTM/GRU state width").OnlyFor("lstm/gru", rnn);
    t.Text("attention", Member(&M::attention), "attention over the RNN's past states", {"dot", "general", "additive"})
        .OnlyFor("lstm/gru", rnn);
    t.Number("attention_window", Member(&M::attention_window), AtLeast(0, "0 = the whole history"),
             "attend to the last K states only").OnlyFor("lstm/gru", rnn);
    t.Number("dropout", Member(&M::dropout), Interval(0, 1, false, true), "dropout probability");
    t.Flag("tie_embeddings", Member(&M::tie_embeddings), "the output projection shares the embedding matrix");
    return t;
  }();
  return table;
}

// Every other key of an experiment, section by section, in the order they are dumped (`model:` between `out` and
// `train:`).
const ExperimentTable& ExperimentFields() {
  static const ExperimentTable table = [] {
    using E = ExperimentConfig;
    using T = TrainConfig;
    using G = GenerateConfig;
    ExperimentTable t;
    t.Text("name", Member(&E::name), "the experiment's name in results, reports and run lists");
    t.Text("dataset", Member(&E::dataset), "required: the dataset folder written by `cadenza ingest`");
    t.Text("out", Member(&E::out), "required: the run folder (checkpoints, metrics, samples, the effective config)");
    t.Number("train.seq_len", Member(&E::train, &T::seq_len), AtLeast(8), "tokens per window (windows start on bar lines); <= model.max_len");
    t.Number("train.batch_size", Member(&E::train, &T::batch_size), AtLeast(1), "windows per step on each rank");
    t.Number("train.steps", Member(&E::train, &T::steps), AtLeast(1), "optimizer steps (resolved from train.epochs when it is > 0)");
    t.Number("train.lr", Member(&E::train, &T::lr), Above(0), "peak learning rate (AdamW)");
    t.Number("train.warmup_steps", Member(&E::train, &T::warmup_steps), AtLeast(0), "linear warm-up from 0 to lr over these steps");
    t.Number("train.min_lr_ratio", Member(&E::train, &T::min_lr_ratio), Between(0, 1), "the cosine decays to lr * min_lr_ratio at the last step");
    t.Number("train.weight_decay", Member(&E::train, &T::weight_decay), AtLeast(0), "AdamW weight decay of matrices (not biases, norms or embeddings)");
    t.Number("train.beta1", Member(&E::train, &T::beta1), Interval(0, 1, false, true), "AdamW beta1");
    t.Number("train.beta2", Member(&E::train, &T::beta2), Interval(0, 1, false, true), "AdamW beta2");
    t.Number("train.grad_clip", Member(&E::train, &T::grad_clip), AtLeast(0, "0 disables clipping"), "largest global L2 norm of the gradients");
    t.Number("train.eval_every", Member(&E::train, &T::eval_every), AtLeast(1), "steps between validations (each writes a checkpoint)");
    t.Number("train.eval_windows", Member(&E::train, &T::eval_windows), AtLeast(0, "0 = all"), "validation windows per validation");
    t.Number("train.early_stopping_patience", Member(&E::train, &T::early_stopping_patience), AtLeast(0, "0 = never"),
             "stop after this many validations without improvement");
    t.Number("train.seed", Member(&E::train, &T::seed), NumberRange(), "seed of initialisation, window order and dropout");
    t.Number("train.threads", Member(&E::train, &T::threads), Between(0, kMaxThreads, "0 = the CPUs this process may use"),
             "LibTorch intra-op threads");
    t.Number("train.data_fraction", Member(&E::train, &T::data_fraction), Interval(0, 1, true, false, "the share of the train split's pieces"),
             "train on this nested subset of the train split (chosen by a hash of each piece's id)");
    t.Number("train.epochs", Member(&E::train, &T::epochs), AtLeast(0, "passes over the train split; 0 = use train.steps"),
             "> 0: steps = ceil(epochs * train tokens / (batch_size * seq_len)), resolved when training starts");
    t.Number("train.eval_samples", Member(&E::train, &T::eval_samples), Between(0, 256, "0 = off"),
             "pieces sampled at every validation to log their structure as sample/<metric>");
    t.Number("train.eval_sample_bars", Member(&E::train, &T::eval_sample_bars), Between(1, 256), "bars of each such sample");
    t.Text("train.precision", Member(&E::train, &T::precision), "bf16: mixed precision (refused on a CPU without bf16 support)",
           {"fp32", "bf16"});
    t.Number("generate.temperature", Member(&E::generate, &G::temperature), Between(0, 10, "0 = greedy"), "softmax temperature");
    t.Number("generate.top_k", Member(&E::generate, &G::top_k), AtLeast(0, "0 = all tokens"), "sample among the k most likely tokens");
    t.Number("generate.top_p", Member(&E::generate, &G::top_p), Interval(0, 1, true, false, "1 = off"), "nucleus mass");
    t.Number("generate.bars", Member(&E::generate, &G::bars), AtLeast(0, "0 = stop only at max_tokens"), "stop each sample after this many new bars");
    t.Number("generate.max_tokens", Member(&E::generate, &G::max_tokens), Between(1, 1 << 20), "hard cap on new tokens per sample");
    t.Text("generate.primer_split", Member(&E::generate, &G::primer_split),
           "continue the opening bars of a piece of this split of the dataset, chosen by the sample's seed",
           {"val", "test", "train"}, "start from BOS");
    t.Number("generate.primer_bars", Member(&E::generate, &G::primer_bars), Between(1, 256), "bars of primer");
    t.Flag("generate.keep_primer", Member(&E::generate, &G::keep_primer),
           "keep the primer's bars in front of the written and evaluated sample (false: the continuation alone)");
    t.TextList("score.splits", Member(&E::score, &ScoreConfig::splits), "splits of the dataset the score task measures NLL on",
               {"train", "val", "test"});
    t.TextList("score.on", Member(&E::score, &ScoreConfig::on), "other dataset folders, scored on their test split (on/<folder name>/...)");
    t.Text("score.windows", Member(&E::score, &ScoreConfig::windows),
           "tiled: each token scored about once; every_bar: a window at every bar line, as validation reads them",
           {"tiled", "every_bar"});
    t.NumberList("probe.lengths", Member(&E::probe, &ProbeConfig::lengths), Between(1, 1 << 20),
                 "context lengths in tokens of the probe task (latency, memory); empty = no probe task");
    t.NumberList("probe.batch_sizes", Member(&E::probe, &ProbeConfig::batch_sizes), Between(1, 1024), "one probe per batch size");
    t.Number("probe.repeats", Member(&E::probe, &ProbeConfig::repeats), Between(1, 1000), "timed runs per measurement (the median is reported)");
    return t;
  }();
  return table;
}

// The experiment's sections after `model:`, in file order.
const char* const kExperimentSections[] = {"train", "generate", "score", "probe"};

// Reads a model mapping at dotted `path` ("model" inline in an experiment, "" in a model file).
Status ParseModel(const YamlReader& r, const YAML::Node& n, const std::string& path, ModelConfig* m) {
  CADENZA_RETURN_IF_ERROR(ModelFields().Read("", r, n, path, m));
  m->vocab_size = Vocabulary::Get().size();
  // A key of the other family would be ignored silently (heads on an LSTM): refuse it, naming what this family reads.
  if (m->family == "lstm" || m->family == "gru" || m->family == "transformer") {
    const std::string prefix = path.empty() ? "" : path + ".";
    std::string reads;
    for (const auto& f : ModelFields().fields()) {
      if (!f.applies_to.empty() && f.AppliesTo(*m)) reads += (reads.empty() ? "" : ", ") + f.name;
    }
    reads = std::string(m->is_rnn() ? " (an RNN reads " : " (a transformer reads ") + reads + ")";
    CADENZA_RETURN_IF_ERROR(ModelFields().RefuseInapplicable(
        "", n, *m, [&](const std::string& key, const std::string& what) { return r.Error(prefix + key, what + reads); },
        "family is " + m->family));
  }
  return Status::Ok();
}

Status ModelRules(const ModelConfig& m, const std::function<Status(const std::string&, const std::string&)>& err) {
  CADENZA_RETURN_IF_ERROR(ModelFields().Check("", m, err));
  if (!m.is_rnn() && (m.heads < 1 || m.d_model % m.heads != 0)) {
    return err("heads", "expected a divisor of d_model (" + std::to_string(m.d_model) + ")");
  }
  return Status::Ok();
}

// The rules between keys of one section, after each key's own range.
Status SectionRules(const std::string& section, const ExperimentConfig& c, const YamlReader& r) {
  if (section == "train") {
    if (c.model.family == "transformer" && c.train.seq_len > c.model.max_len) {
      return r.Error("train.seq_len", "expected <= model.max_len (" + std::to_string(c.model.max_len) + ")");
    }
  } else if (section == "score") {
    std::set<std::string> seen;
    for (const std::string& split : c.score.splits) {
      if (!seen.insert(split).second) return r.Error("score.splits", "'" + split + "' is listed twice");
    }
    std::set<std::string> names;
    for (const std::string& dir : c.score.on) {
      if (dir.empty()) return r.Error("score.on", "expected dataset folders, found an empty entry");
      std::filesystem::path folder = std::filesystem::path(dir).lexically_normal();
      if (folder.filename().empty()) folder = folder.parent_path();  // "corpora/jsb/"
      const std::string name = folder.filename().string();
      if (!names.insert(name).second) {
        return r.Error("score.on", "two datasets are named '" + name + "' (metrics are named on/<folder name>/...)");
      }
    }
  } else if (section == "probe") {
    if (c.probe.batch_sizes.empty()) return r.Error("probe.batch_sizes", "expected at least one batch size");
  }
  return Status::Ok();
}

// A key given in the wrong section that another section has ("train: {temperature: ...}"): named with its place.
Status RefuseMisplacedKeys(const YamlReader& r, const YAML::Node& node, const std::string& section) {
  if (!node.IsMap()) return Status::Ok();
  const std::set<std::string> here = ExperimentFields().Names(section);
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (here.count(key) || (section.empty() && (key == "model" || key == "provenance" ||
                                                 std::count(std::begin(kExperimentSections), std::end(kExperimentSections), key)))) {
      continue;
    }
    const std::string at = (section.empty() ? "" : section + ".") + key;
    for (const auto& f : ExperimentFields().fields()) {
      if (f.section != section && f.name == key) {
        return r.Error(at, "unknown key here (did you mean " + f.key() + "? it belongs under " +
                               (f.section.empty() ? "the top level" : f.section + ":") + ")");
      }
    }
    if (ModelFields().Names("").count(key)) {
      return r.Error(at, "unknown key here (did you mean model." + key + "? it belongs under model:)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateModelConfig(const ModelConfig& m, const std::string& where) {
  return ModelRules(m, [&](const std::string& key, const std::string& what) { return InvalidArgument(where + ": " + key + ": " + what); });
}

StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return NotFound(path + ": cannot read the model config");
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  YamlReader r(path);
  ModelConfig m;
  CADENZA_RETURN_IF_ERROR(ParseModel(r, root, "", &m));
  CADENZA_RETURN_IF_ERROR(ValidateModelConfig(m, path));
  return m;
}

StatusOr<ExperimentConfig> ParseExperimentConfig(const std::string& text, const std::string& path, const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  YamlReader r(path);
  ExperimentConfig c;
  const ExperimentTable& fields = ExperimentFields();
  // provenance: written by the trainer into a run's config.yaml (commit, command line, dataset hash); read as
  // a record, never as settings, so a run's config.yaml can be trained from again.
  CADENZA_RETURN_IF_ERROR(RefuseMisplacedKeys(r, root, ""));
  std::set<std::string> sections = {"model", "provenance"};
  sections.insert(std::begin(kExperimentSections), std::end(kExperimentSections));
  CADENZA_RETURN_IF_ERROR(fields.Read("", r, root, "", &c, sections));
  if (c.dataset.empty()) return r.Error("dataset", "required: the dataset folder written by `cadenza ingest`");
  if (c.out.empty()) return r.Error("out", "required: the run folder for checkpoints and metrics");
  auto resolve = [&](const std::string& p) {
    return std::filesystem::path(p).is_absolute() ? p : (std::filesystem::path(base_dir) / p).lexically_normal().string();
  };
  const YAML::Node model = root["model"];
  if (!model) return r.Error("model", "required: a mapping or the path of a model YAML");
  if (model.IsScalar()) {
    auto m = LoadModelConfig(resolve(model.Scalar()));
    if (!m.ok()) return m.status().WithContext(path + ": model");
    c.model = *m;
  } else {
    CADENZA_RETURN_IF_ERROR(ParseModel(r, model, "model", &c.model));
    CADENZA_RETURN_IF_ERROR(ModelRules(c.model, [&](const std::string& key, const std::string& what) { return r.Error("model." + key, what); }));
  }
  for (const char* section : kExperimentSections) {
    const YAML::Node node = root[section];
    if (!node) continue;
    CADENZA_RETURN_IF_ERROR(RefuseMisplacedKeys(r, node, section));
    CADENZA_RETURN_IF_ERROR(fields.Read(section, r, node, section, &c));
    CADENZA_RETURN_IF_ERROR(fields.Check(section, c, [&](const std::string& key, const std::string& what) {
      return r.Error(std::string(section) + "." + key, what);
    }));
    CADENZA_RETURN_IF_ERROR(SectionRules(section, c, r));
  }
  return c;
}

std::vector<ConfigKeyDoc> ExperimentConfigKeys() {
  const ExperimentConfig defaults;
  std::vector<ConfigKeyDoc> keys = ExperimentFields().Docs(defaults);
  std::vector<ConfigKeyDoc> model = ModelFields().Docs(defaults.model, "model.");
  model.insert(model.begin(), ConfigKeyDoc{"model", "mapping or path", "(required)", "",
                               "the model.* keys below inline, or the path of a model YAML holding them (relative to the experiment file)"});
  const auto after_out = std::find_if(keys.begin(), keys.end(), [](const ConfigKeyDoc& k) { return k.key == "out"; }) + 1;
  keys.insert(after_out, model.begin(), model.end());
  return keys;
}

Status ResolveTrainSteps(ExperimentConfig* config, int64_t train_tokens) {
  TrainConfig& tr = config->train;
  if (!(tr.epochs > 0)) return Status::Ok();
  if (train_tokens < 1) return FailedPrecondition("train.epochs: the train split holds no tokens to count epochs over");
  const double per_step = double(tr.batch_size) * double(tr.seq_len);
  const double steps = std::ceil(tr.epochs * double(train_tokens) / per_step);
  if (!(steps <= 1e12)) return InvalidArgument("train.epochs: " + std::to_string(tr.epochs) + " epochs is too many steps");
  tr.steps = std::max<int64_t>(1, static_cast<int64_t>(steps));
  return Status::Ok();
}

StatusOr<ExperimentConfig> LoadExperimentConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound(path + ": cannot read the experiment config");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseExperimentConfig(ss.str(), path, std::filesystem::path(path).parent_path().string());
}

std::string ExperimentConfig::ToYaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  ExperimentFields().Emit("", *this, e);
  e << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  ModelFields().Emit("", model, e);
  e << YAML::EndMap;
  for (const char* section : kExperimentSections) {
    e << YAML::Key << section << YAML::Value << YAML::BeginMap;
    ExperimentFields().Emit(section, *this, e);
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

std::string RunConfigYaml(const ExperimentConfig& config, const RunProvenance& provenance) {
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "provenance" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "git_commit" << YAML::Value << provenance.git_commit;
  e << YAML::Key << "command_line" << YAML::Value << provenance.command_line;
  e << YAML::Key << "dataset_manifest_sha256" << YAML::Value << provenance.dataset_manifest_sha256;
  e << YAML::EndMap << YAML::EndMap;
  return config.ToYaml() + "# Where this run came from (written by the trainer; ignored when the file is read as a config).\n" +
         e.c_str() + "\n";
}

}  // namespace cadenza
