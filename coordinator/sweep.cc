// Validates experiment specs against core/experiment_config and expands sweeps into experiment specs.
#include "coordinator/sweep.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <filesystem>

#include "core/experiment_config.h"

namespace cadenza::coord {
namespace {

Status Field(const std::string& where, const std::string& field, const std::string& what) {
  return InvalidArgument(where + "." + field + ": " + what);
}

bool KnownFamily(const std::string& f) { return f == "transformer" || f == "lstm" || f == "gru"; }

bool SafeName(const std::string& n) {
  if (n.empty() || n.size() > 200 || n == "." || n == "..") return false;
  for (char c : n) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  return true;
}

// core's parser says "<where>: model.family: expected ..."; the API says "<where>.model.family: expected ...".
Status FromConfigError(const Status& s, const std::string& where) {
  const std::string prefix = where + ": ";
  std::string m = s.message();
  if (m.rfind(prefix, 0) == 0) {
    const std::string rest = m.substr(prefix.size());
    const size_t colon = rest.find(": ");
    const bool key_path = colon != std::string::npos && rest.find(' ') >= colon && rest.rfind("line ", 0) != 0;
    m = key_path ? where + "." + rest : where + ".experiment_yaml: " + rest;
  }
  return InvalidArgument(m);
}

}  // namespace

StatusOr<Experiment> ValidateExperiment(const ExperimentSpec& spec, const std::string& where) {
  if (spec.experiment_yaml.empty()) return Field(where, "experiment_yaml", "required: the experiment YAML text");
  try {
    const YAML::Node root = YAML::Load(spec.experiment_yaml);
    if (root.IsMap() && root["model"] && !root["model"].IsMap()) {
      return Field(where, "model", "expected a mapping (`cadenza submit` inlines model files; the coordinator reads no files)");
    }
  } catch (const YAML::Exception& e) {
    return Field(where, "experiment_yaml", "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  auto parsed = ParseExperimentConfig(spec.experiment_yaml, where, "/");
  if (!parsed.ok()) return FromConfigError(parsed.status(), where);
  ExperimentConfig c = std::move(parsed).value();
  if (!spec.name.empty()) c.name = spec.name;
  if (!spec.dataset.empty()) c.dataset = spec.dataset;
  if (!spec.output_dir.empty()) c.out = spec.output_dir;
  if (!spec.model_family.empty()) {
    if (!KnownFamily(spec.model_family)) {
      return Field(where, "model_family", "expected transformer, lstm or gru, found '" + spec.model_family + "'");
    }
    c.model.family = spec.model_family;
  }
  if (spec.seed != 0) c.train.seed = spec.seed;
  if (!SafeName(c.name)) return Field(where, "name", "expected 1-200 characters of A-Z a-z 0-9 . _ -, found '" + c.name + "'");
  if (Status s = ValidateModelConfig(c.model, where + ".model"); !s.ok()) return s;
  Experiment e;
  e.name = c.name;
  e.dataset = c.dataset;
  e.output_dir = c.out;
  e.model_family = c.model.family;
  e.seed = c.train.seed;
  e.samples = spec.samples == 0 ? 8 : spec.samples;
  if (e.samples < 1 || e.samples > 100000) return Field(where, "samples", "expected 1..100000, found " + std::to_string(spec.samples));
  e.samples_per_task = spec.samples_per_task;
  if (e.samples_per_task < 0) return Field(where, "samples_per_task", "expected >= 0 (0 = one task per live rank)");
  e.reference_split = spec.reference_split.empty() ? "test" : spec.reference_split;
  if (e.reference_split != "train" && e.reference_split != "val" && e.reference_split != "test") {
    return Field(where, "reference_split", "expected train, val or test, found '" + e.reference_split + "'");
  }
  e.experiment_yaml = c.ToYaml();
  return e;
}

StatusOr<std::vector<ExperimentSpec>> ExpandSweep(const SweepSpec& sweep, int max_experiments) {
  const ExperimentSpec& base = sweep.base;
  for (size_t i = 0; i < sweep.model_families.size(); ++i) {
    if (!KnownFamily(sweep.model_families[i])) {
      return InvalidArgument("sweep.model_families[" + std::to_string(i) + "]: expected transformer, lstm or gru, found '" +
                             sweep.model_families[i] + "'");
    }
  }
  for (size_t i = 0; i < sweep.datasets.size(); ++i) {
    if (sweep.datasets[i].empty()) return InvalidArgument("sweep.datasets[" + std::to_string(i) + "]: expected a dataset folder");
  }
  for (size_t i = 0; i < sweep.seeds.size(); ++i) {
    if (sweep.seeds[i] == 0) return InvalidArgument("sweep.seeds[" + std::to_string(i) + "]: expected a seed >= 1");
  }
  // The base resolves the defaults (name, output folder, the YAML's dataset/family/seed).
  auto resolved = ValidateExperiment(base, "sweep.base");
  if (!resolved.ok()) return resolved.status();
  const std::vector<std::string> datasets = sweep.datasets.empty() ? std::vector<std::string>{resolved->dataset} : sweep.datasets;
  const std::vector<std::string> families =
      sweep.model_families.empty() ? std::vector<std::string>{resolved->model_family} : sweep.model_families;
  const std::vector<uint64_t> seeds = sweep.seeds.empty() ? std::vector<uint64_t>{resolved->seed} : sweep.seeds;
  const double total = static_cast<double>(datasets.size()) * families.size() * seeds.size();
  if (total > max_experiments) {
    return InvalidArgument("sweep: " + std::to_string(static_cast<int64_t>(total)) + " experiments exceed the limit of " +
                           std::to_string(max_experiments) + " (coordinator.yaml: limits.max_sweep_experiments)");
  }
  const std::string name = sweep.name.empty() ? resolved->name : sweep.name;
  if (!SafeName(name)) return InvalidArgument("sweep.name: expected 1-200 characters of A-Z a-z 0-9 . _ -, found '" + name + "'");
  std::vector<ExperimentSpec> out;
  for (const std::string& d : datasets) {
    std::string dname = std::filesystem::path(d).lexically_normal().filename().string();
    if (dname.empty()) dname = std::filesystem::path(d).lexically_normal().parent_path().filename().string();
    if (!SafeName(dname)) dname = "dataset";
    for (const std::string& f : families) {
      for (uint64_t seed : seeds) {
        ExperimentSpec s = base;
        s.dataset = d;
        s.model_family = f;
        s.seed = seed;
        s.name = name + "-" + dname + "-" + f + "-s" + std::to_string(seed);
        s.output_dir = (std::filesystem::path(resolved->output_dir) / s.name).string();
        out.push_back(std::move(s));
      }
    }
  }
  return out;
}

}  // namespace cadenza::coord
