// YAML parsing and validation for experiments; every error names the file and the key.
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
#include "core/yaml_reader.h"

namespace cadenza {
namespace {

Status ParseModel(const YamlReader& r, const YAML::Node& n, const std::string& prefix, ModelConfig* m) {
  CADENZA_RETURN_IF_ERROR(r.OnlyKeys(n, prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1),
                                     {"family", "d_model", "layers", "heads", "ff_dim", "max_len", "hidden", "attention",
                                      "attention_window", "dropout", "tie_embeddings"}));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "family", &m->family));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "d_model", &m->d_model));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "layers", &m->layers));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "heads", &m->heads));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "ff_dim", &m->ff_dim));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "max_len", &m->max_len));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "hidden", &m->hidden));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "attention", &m->attention));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "attention_window", &m->attention_window));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "dropout", &m->dropout));
  CADENZA_RETURN_IF_ERROR(r.Get(n, prefix, "tie_embeddings", &m->tie_embeddings));
  m->vocab_size = Vocabulary::Get().size();
  // A key of the other family would be ignored silently (heads on an LSTM): refuse it, naming what this family reads.
  static const std::set<std::string> kTransformerOnly = {"heads", "ff_dim", "max_len"};
  static const std::set<std::string> kRnnOnly = {"hidden", "attention", "attention_window"};
  const bool rnn = m->family == "lstm" || m->family == "gru";
  if (rnn || m->family == "transformer") {
    for (const auto& kv : n) {
      const std::string key = kv.first.as<std::string>();
      if ((rnn && kTransformerOnly.count(key)) || (!rnn && kRnnOnly.count(key))) {
        return r.Error(prefix + key, "a " + std::string(rnn ? "transformer" : "lstm/gru") + " key, but family is " +
                                         m->family + (rnn ? " (an RNN reads hidden, attention, attention_window)"
                                                          : " (a transformer reads heads, ff_dim, max_len)"));
      }
    }
  }
  return Status::Ok();
}

Status ModelRules(const ModelConfig& m, const std::function<Status(const std::string&, const std::string&)>& err) {
  if (m.family != "transformer" && m.family != "lstm" && m.family != "gru") return err("family", "expected transformer, lstm or gru, found '" + m.family + "'");
  if (m.d_model < 8 || m.d_model > 8192) return err("d_model", "expected 8..8192");
  if (m.layers < 1 || m.layers > 64) return err("layers", "expected 1..64");
  if (m.dropout < 0 || m.dropout >= 1) return err("dropout", "expected 0 <= dropout < 1");
  if (m.family == "transformer") {
    if (m.heads < 1 || m.d_model % m.heads != 0) return err("heads", "expected a divisor of d_model (" + std::to_string(m.d_model) + ")");
    if (m.ff_dim < 1) return err("ff_dim", "expected >= 1");
    if (m.max_len < 16 || m.max_len > 65536) return err("max_len", "expected 16..65536");
  } else {
    if (m.hidden < 8 || m.hidden > 8192) return err("hidden", "expected 8..8192");
    if (m.attention != "dot" && m.attention != "general" && m.attention != "additive") {
      return err("attention", "expected dot, general or additive, found '" + m.attention + "'");
    }
    if (m.attention_window < 0) return err("attention_window", "expected >= 0 (0 = the whole history)");
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
  // provenance: written by the trainer into a run's config.yaml (commit, command line, dataset hash); read as
  // a record, never as settings, so a run's config.yaml can be trained from again.
  CADENZA_RETURN_IF_ERROR(r.OnlyKeys(root, "", {"name", "dataset", "out", "model", "train", "generate", "score", "probe", "provenance"}));
  CADENZA_RETURN_IF_ERROR(r.Get(root, "", "name", &c.name));
  CADENZA_RETURN_IF_ERROR(r.Get(root, "", "dataset", &c.dataset));
  CADENZA_RETURN_IF_ERROR(r.Get(root, "", "out", &c.out));
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
    CADENZA_RETURN_IF_ERROR(ParseModel(r, model, "model.", &c.model));
    CADENZA_RETURN_IF_ERROR(ModelRules(c.model, [&](const std::string& key, const std::string& what) { return r.Error("model." + key, what); }));
  }
  if (const YAML::Node t = root["train"]) {
    TrainConfig& tr = c.train;
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(t, "train", {"seq_len", "batch_size", "steps", "lr", "warmup_steps", "min_lr_ratio", "weight_decay",
                                                    "beta1", "beta2", "grad_clip", "eval_every", "eval_windows", "early_stopping_patience",
                                                    "seed", "threads", "data_fraction", "epochs", "eval_samples",
                                                    "eval_sample_bars", "precision"}));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "seq_len", &tr.seq_len));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "batch_size", &tr.batch_size));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "steps", &tr.steps));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "lr", &tr.lr));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "warmup_steps", &tr.warmup_steps));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "min_lr_ratio", &tr.min_lr_ratio));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "weight_decay", &tr.weight_decay));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "beta1", &tr.beta1));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "beta2", &tr.beta2));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "grad_clip", &tr.grad_clip));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "eval_every", &tr.eval_every));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "eval_windows", &tr.eval_windows));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "early_stopping_patience", &tr.early_stopping_patience));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "seed", &tr.seed));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "threads", &tr.threads));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "data_fraction", &tr.data_fraction));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "epochs", &tr.epochs));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "eval_samples", &tr.eval_samples));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "eval_sample_bars", &tr.eval_sample_bars));
    CADENZA_RETURN_IF_ERROR(r.Get(t, "train.", "precision", &tr.precision));
    if (tr.seq_len < 8) return r.Error("train.seq_len", "expected >= 8");
    if (c.model.family == "transformer" && tr.seq_len > c.model.max_len) {
      return r.Error("train.seq_len", "expected <= model.max_len (" + std::to_string(c.model.max_len) + ")");
    }
    if (tr.batch_size < 1) return r.Error("train.batch_size", "expected >= 1");
    if (tr.steps < 1) return r.Error("train.steps", "expected >= 1");
    if (!(tr.lr > 0)) return r.Error("train.lr", "expected > 0");
    if (tr.warmup_steps < 0) return r.Error("train.warmup_steps", "expected >= 0");
    if (tr.min_lr_ratio < 0 || tr.min_lr_ratio > 1) return r.Error("train.min_lr_ratio", "expected 0..1");
    if (tr.weight_decay < 0) return r.Error("train.weight_decay", "expected >= 0");
    if (tr.beta1 < 0 || tr.beta1 >= 1 || tr.beta2 < 0 || tr.beta2 >= 1) return r.Error("train.beta1/beta2", "expected 0 <= beta < 1");
    if (tr.grad_clip < 0) return r.Error("train.grad_clip", "expected >= 0 (0 disables clipping)");
    if (tr.eval_every < 1) return r.Error("train.eval_every", "expected >= 1");
    if (tr.eval_windows < 0) return r.Error("train.eval_windows", "expected >= 0 (0 = all)");
    if (tr.early_stopping_patience < 0) return r.Error("train.early_stopping_patience", "expected >= 0");
    if (tr.threads < 0 || tr.threads > kMaxThreads) {
      return r.Error("train.threads", "expected 0.." + std::to_string(kMaxThreads) + " (0 = the CPUs this process may use)");
    }
    if (!(tr.data_fraction > 0 && tr.data_fraction <= 1)) {
      return r.Error("train.data_fraction", "expected 0 < data_fraction <= 1 (the share of the train split's pieces)");
    }
    if (!(tr.epochs >= 0) || !std::isfinite(tr.epochs)) {
      return r.Error("train.epochs", "expected >= 0 (passes over the train split; 0 = use train.steps)");
    }
    if (tr.eval_samples < 0 || tr.eval_samples > 256) return r.Error("train.eval_samples", "expected 0..256 (0 = off)");
    if (tr.eval_sample_bars < 1 || tr.eval_sample_bars > 256) return r.Error("train.eval_sample_bars", "expected 1..256");
    if (tr.precision != "fp32" && tr.precision != "bf16") {
      return r.Error("train.precision", "expected fp32 or bf16, found '" + tr.precision + "'");
    }
  }
  if (const YAML::Node g = root["generate"]) {
    GenerateConfig& gc = c.generate;
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(g, "generate", {"temperature", "top_k", "top_p", "bars", "max_tokens", "primer_split",
                                                       "primer_bars", "keep_primer"}));
    CADENZA_RETURN_IF_ERROR(r.Get(g, "generate.", "temperature", &gc.temperature));
    CADENZA_RETURN_IF_ERROR(r.Get(g, "generate.", "top_k", &gc.top_k));
    CADENZA_RETURN_IF_ERROR(r.Get(g, "generate.", "top_p", &gc.top_p));
    CADENZA_RETURN_IF_ERROR(r.Get(g, "generate.", "bars", &gc.bars));
    CADENZA_RETURN_IF_ERROR(r.Get(g, "generate.", "max_tokens", &gc.max_tokens));
    CADENZA_RETURN_IF_ERROR(r.Get(g, "generate.", "primer_split", &gc.primer_split));
    CADENZA_RETURN_IF_ERROR(r.Get(g, "generate.", "primer_bars", &gc.primer_bars));
    CADENZA_RETURN_IF_ERROR(r.Get(g, "generate.", "keep_primer", &gc.keep_primer));
    if (!(gc.temperature >= 0 && gc.temperature <= 10)) return r.Error("generate.temperature", "expected 0..10 (0 = greedy)");
    if (gc.top_k < 0) return r.Error("generate.top_k", "expected >= 0 (0 = all tokens)");
    if (!(gc.top_p > 0 && gc.top_p <= 1)) return r.Error("generate.top_p", "expected 0 < top_p <= 1 (1 = off)");
    if (gc.bars < 0) return r.Error("generate.bars", "expected >= 0 (0 = stop only at max_tokens)");
    if (gc.max_tokens < 1 || gc.max_tokens > (1 << 20)) return r.Error("generate.max_tokens", "expected 1..1048576");
    if (!gc.primer_split.empty() && gc.primer_split != "val" && gc.primer_split != "test" && gc.primer_split != "train") {
      return r.Error("generate.primer_split", "expected val, test or train (or empty: start from BOS), found '" +
                                                  gc.primer_split + "'");
    }
    if (gc.primer_bars < 1 || gc.primer_bars > 256) return r.Error("generate.primer_bars", "expected 1..256");
  }
  if (const YAML::Node sc = root["score"]) {
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(sc, "score", {"splits", "on", "windows"}));
    CADENZA_RETURN_IF_ERROR(r.Get(sc, "score.", "windows", &c.score.windows));
    if (c.score.windows != "tiled" && c.score.windows != "every_bar") {
      return r.Error("score.windows", "expected tiled or every_bar, found '" + c.score.windows + "'");
    }
    CADENZA_RETURN_IF_ERROR(r.GetList(sc, "score.", "splits", &c.score.splits));
    CADENZA_RETURN_IF_ERROR(r.GetList(sc, "score.", "on", &c.score.on));
    std::set<std::string> seen;
    for (const std::string& split : c.score.splits) {
      if (split != "train" && split != "val" && split != "test") {
        return r.Error("score.splits", "expected train, val or test, found '" + split + "'");
      }
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
  }
  if (const YAML::Node p = root["probe"]) {
    CADENZA_RETURN_IF_ERROR(r.OnlyKeys(p, "probe", {"lengths", "batch_sizes", "repeats"}));
    CADENZA_RETURN_IF_ERROR(r.GetList(p, "probe.", "lengths", &c.probe.lengths));
    CADENZA_RETURN_IF_ERROR(r.GetList(p, "probe.", "batch_sizes", &c.probe.batch_sizes));
    CADENZA_RETURN_IF_ERROR(r.Get(p, "probe.", "repeats", &c.probe.repeats));
    for (int64_t l : c.probe.lengths) {
      if (l < 1 || l > (1 << 20)) return r.Error("probe.lengths", "expected token counts 1..1048576, found " + std::to_string(l));
    }
    if (c.probe.batch_sizes.empty()) return r.Error("probe.batch_sizes", "expected at least one batch size");
    for (int64_t b : c.probe.batch_sizes) {
      if (b < 1 || b > 1024) return r.Error("probe.batch_sizes", "expected 1..1024, found " + std::to_string(b));
    }
    if (c.probe.repeats < 1 || c.probe.repeats > 1000) return r.Error("probe.repeats", "expected 1..1000");
  }
  return c;
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
  e << YAML::Key << "name" << YAML::Value << name;
  e << YAML::Key << "dataset" << YAML::Value << dataset;
  e << YAML::Key << "out" << YAML::Value << out;
  e << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "family" << YAML::Value << model.family;
  e << YAML::Key << "d_model" << YAML::Value << model.d_model;
  e << YAML::Key << "layers" << YAML::Value << model.layers;
  if (model.is_rnn()) {
    e << YAML::Key << "hidden" << YAML::Value << model.hidden;
    e << YAML::Key << "attention" << YAML::Value << model.attention;
    e << YAML::Key << "attention_window" << YAML::Value << model.attention_window;
  } else {
    e << YAML::Key << "heads" << YAML::Value << model.heads;
    e << YAML::Key << "ff_dim" << YAML::Value << model.ff_dim;
    e << YAML::Key << "max_len" << YAML::Value << model.max_len;
  }
  e << YAML::Key << "dropout" << YAML::Value << model.dropout;
  e << YAML::Key << "tie_embeddings" << YAML::Value << model.tie_embeddings;
  e << YAML::EndMap;
  e << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "seq_len" << YAML::Value << train.seq_len;
  e << YAML::Key << "batch_size" << YAML::Value << train.batch_size;
  e << YAML::Key << "steps" << YAML::Value << train.steps;
  e << YAML::Key << "lr" << YAML::Value << train.lr;
  e << YAML::Key << "warmup_steps" << YAML::Value << train.warmup_steps;
  e << YAML::Key << "min_lr_ratio" << YAML::Value << train.min_lr_ratio;
  e << YAML::Key << "weight_decay" << YAML::Value << train.weight_decay;
  e << YAML::Key << "beta1" << YAML::Value << train.beta1;
  e << YAML::Key << "beta2" << YAML::Value << train.beta2;
  e << YAML::Key << "grad_clip" << YAML::Value << train.grad_clip;
  e << YAML::Key << "eval_every" << YAML::Value << train.eval_every;
  e << YAML::Key << "eval_windows" << YAML::Value << train.eval_windows;
  e << YAML::Key << "early_stopping_patience" << YAML::Value << train.early_stopping_patience;
  e << YAML::Key << "seed" << YAML::Value << train.seed;
  e << YAML::Key << "threads" << YAML::Value << train.threads;
  e << YAML::Key << "data_fraction" << YAML::Value << train.data_fraction;
  e << YAML::Key << "epochs" << YAML::Value << train.epochs;
  e << YAML::Key << "eval_samples" << YAML::Value << train.eval_samples;
  e << YAML::Key << "eval_sample_bars" << YAML::Value << train.eval_sample_bars;
  e << YAML::Key << "precision" << YAML::Value << train.precision;
  e << YAML::EndMap;
  e << YAML::Key << "generate" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "temperature" << YAML::Value << generate.temperature;
  e << YAML::Key << "top_k" << YAML::Value << generate.top_k;
  e << YAML::Key << "top_p" << YAML::Value << generate.top_p;
  e << YAML::Key << "bars" << YAML::Value << generate.bars;
  e << YAML::Key << "max_tokens" << YAML::Value << generate.max_tokens;
  e << YAML::Key << "primer_split" << YAML::Value << generate.primer_split;
  e << YAML::Key << "primer_bars" << YAML::Value << generate.primer_bars;
  e << YAML::Key << "keep_primer" << YAML::Value << generate.keep_primer;
  e << YAML::EndMap;
  e << YAML::Key << "score" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "splits" << YAML::Value << YAML::Flow << score.splits;
  e << YAML::Key << "on" << YAML::Value << YAML::Flow << score.on;
  e << YAML::Key << "windows" << YAML::Value << score.windows;
  e << YAML::EndMap;
  e << YAML::Key << "probe" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "lengths" << YAML::Value << YAML::Flow << probe.lengths;
  e << YAML::Key << "batch_sizes" << YAML::Value << YAML::Flow << probe.batch_sizes;
  e << YAML::Key << "repeats" << YAML::Value << probe.repeats;
  e << YAML::EndMap;
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
