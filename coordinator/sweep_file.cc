// Sweep files: YAML -> SweepSpec, model files inlined, unknown keys refused with the nearest known one.
#include "coordinator/sweep_file.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/yaml_reader.h"

namespace cadenza::coord {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string>& Keys() {
  static const std::vector<std::string> keys = {
      "name",      "models",        "match_tolerance", "allow_unmatched", "model_families", "datasets", "dataset_fractions",
      "context_lengths", "seeds",   "grid",            "random",          "random_seed",    "budget",   "probe_lengths",
      "probe_batch_sizes", "score_on"};
  return keys;
}

std::string Absolute(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

std::string Emit(const YAML::Node& n) {
  std::ostringstream o;
  o << n;
  return o.str();
}

}  // namespace

StatusOr<SweepSpec> LoadSweepFile(const std::string& path, const ExperimentSpec& base) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return NotFound(path + ": cannot read the sweep file");
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return InvalidArgument(path + ": expected a mapping of sweep keys (configs/sweeps/README.yaml documents them)");
  const std::set<std::string> known(Keys().begin(), Keys().end());
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (!known.count(k)) {
      const std::string near = NearestKey(k, known);
      return InvalidArgument(path + ": " + k + ": unknown key" + (near.empty() ? "" : " (did you mean " + near + "?)"));
    }
  }
  const fs::path dir = fs::path(path).parent_path();
  SweepSpec s;
  s.base = base;
  std::string at;  // the key being read, for errors of yaml-cpp's conversions
  try {
    auto list = [&](const char* key) -> YAML::Node {
      at = key;
      const YAML::Node n = root[key];
      if (n && !n.IsSequence()) throw std::invalid_argument("expected a list");
      return n;
    };
    if (root["name"]) s.name = (at = "name", root["name"].as<std::string>());
    for (const auto& d : list("datasets")) s.datasets.push_back(Absolute(d.as<std::string>()));
    for (const auto& f : list("model_families")) s.model_families.push_back(f.as<std::string>());
    for (const auto& x : list("seeds")) s.seeds.push_back(x.as<uint64_t>());
    for (const auto& x : list("dataset_fractions")) s.dataset_fractions.push_back(x.as<double>());
    for (const auto& x : list("context_lengths")) s.context_lengths.push_back(x.as<int>());
    if (const YAML::Node m = root["models"]) {
      at = "models";
      if (!m.IsMap()) throw std::invalid_argument("expected a mapping of name: model file (or model mapping)");
      for (const auto& kv : m) {
        const std::string name = kv.first.as<std::string>();
        at = "models." + name;
        NamedModel nm;
        nm.name = name;
        YAML::Node spec = kv.second;
        if (spec.IsMap() && spec["file"]) {  // {file: ../models/x.yaml, set: {train.lr: 0.002}}
          for (const auto& e : spec) {
            const std::string k = e.first.as<std::string>();
            if (k != "file" && k != "set") throw std::invalid_argument(k + ": unknown key (expected file and set)");
          }
          if (const YAML::Node set = spec["set"]) {
            if (!set.IsMap()) throw std::invalid_argument("set: expected a mapping of experiment key: value");
            for (const auto& e : set) nm.set[e.first.as<std::string>()] = e.second.IsScalar() ? e.second.Scalar() : Emit(e.second);
          }
          spec = spec["file"];
        }
        if (spec.IsMap()) {
          nm.model_yaml = Emit(spec);
        } else {
          const fs::path file = dir / spec.as<std::string>();
          std::ifstream in(file);
          if (!in) return InvalidArgument(path + ": models." + name + ": cannot read " + file.string());
          std::stringstream text;
          text << in.rdbuf();
          YAML::Node parsed;
          try {
            parsed = YAML::Load(text.str());
          } catch (const YAML::Exception& e) {
            return InvalidArgument(file.string() + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
          }
          if (!parsed.IsMap()) return InvalidArgument(path + ": models." + name + ": " + file.string() + " is not a model mapping");
          nm.model_yaml = text.str();
        }
        s.models.push_back(std::move(nm));
      }
    }
    if (root["match_tolerance"]) s.match_tolerance = (at = "match_tolerance", root["match_tolerance"].as<double>());
    if (root["allow_unmatched"]) s.allow_unmatched = (at = "allow_unmatched", root["allow_unmatched"].as<bool>());
    if (const YAML::Node g = root["grid"]) {
      at = "grid";
      if (!g.IsMap()) throw std::invalid_argument("expected a mapping of experiment key: [values]");
      for (const auto& kv : g) {
        GridAxis a;
        a.key = kv.first.as<std::string>();
        at = "grid." + a.key;
        if (!kv.second.IsSequence()) throw std::invalid_argument("expected a list of values");
        for (const auto& v : kv.second) a.values.push_back(v.IsScalar() ? v.Scalar() : Emit(v));
        s.grid.push_back(std::move(a));
      }
    }
    if (root["random"]) s.random = (at = "random", root["random"].as<int>());
    if (root["random_seed"]) s.random_seed = (at = "random_seed", root["random_seed"].as<uint64_t>());
    if (const YAML::Node b = root["budget"]) {
      at = "budget";
      if (!b.IsMap()) throw std::invalid_argument("expected a mapping with one of tokens, epochs, steps");
      for (const auto& kv : b) {
        const std::string k = kv.first.as<std::string>();
        at = "budget." + k;
        if (k == "tokens") s.budget.tokens = kv.second.as<int64_t>();
        else if (k == "epochs") s.budget.epochs = kv.second.as<double>();
        else if (k == "steps") s.budget.steps = kv.second.as<int64_t>();
        else throw std::invalid_argument("unknown key (expected tokens, epochs or steps)");
      }
    }
    // Probe and score settings go into the base experiment (probe.*, score.on), so every run carries them.
    YAML::Node probe_lengths = list("probe_lengths"), probe_batches = list("probe_batch_sizes"), score_on = list("score_on");
    if (probe_lengths || probe_batches || score_on) {
      YAML::Node y = YAML::Load(s.base.experiment_yaml);
      if (probe_lengths) y["probe"]["lengths"] = probe_lengths;
      if (probe_batches) y["probe"]["batch_sizes"] = probe_batches;
      if (score_on) {
        YAML::Node abs(YAML::NodeType::Sequence);
        for (const auto& d : score_on) abs.push_back(Absolute(d.as<std::string>()));
        y["score"]["on"] = abs;
      }
      s.base.experiment_yaml = Emit(y);
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ": " + at + ": " + e.msg);
  } catch (const std::invalid_argument& e) {
    return InvalidArgument(path + ": " + at + ": " + e.what());
  }
  return s;
}

}  // namespace cadenza::coord
