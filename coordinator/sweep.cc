// Validates experiment specs against core/experiment_config and expands sweeps into validated experiments.
#include "coordinator/sweep.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include "core/experiment_config.h"
#include "core/model_size.h"
#include "core/yaml_path.h"

namespace cadenza::coord {
namespace {

// The old `model_families` form: the base's model with another family. Keys only the other family reads (heads on
// an LSTM) would be refused by the model config, so they go; the sizes then differ and the matched-size check says
// to use `models:`.
void SwapFamily(YAML::Node model, const std::string& family) {
  const bool rnn = family == "lstm" || family == "gru";
  for (const char* key : rnn ? std::vector<const char*>{"heads", "ff_dim", "max_len"}
                             : std::vector<const char*>{"hidden", "attention", "attention_window"}) {
    model.remove(key);
  }
  model["family"] = family;
}

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

// A name part made of the safe characters only ("1e-3" stays, "a/b" becomes "a_b").
std::string NamePart(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return o.empty() ? "x" : o;
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

std::string Shortest(double x) {
  std::ostringstream o;
  o << x;
  return o.str();
}

// One value of every axis: the point of the product an experiment is made from.
struct Point {
  std::string dataset;
  const NamedModel* model = nullptr;  // null: the base's model (with `family` swapped in when set)
  std::string family;
  double fraction = 0;                // 0: the base's
  int context = 0;                    // 0: the base's
  std::vector<std::string> grid;      // one value per grid axis
  uint64_t seed = 0;
};

// The spec's YAML parsed and checked (the first half of ValidateExperiment; a sweep parses each point once).
StatusOr<ExperimentConfig> ParseSpec(const ExperimentSpec& spec, const std::string& where) {
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
  return parsed;
}

// A sweep point's effective YAML with markers for what each seed changes (name, out, seed), filled by string
// replacement: yaml-cpp's emitter spends ~100 us a run checking every string scalar, most of a 10,000-run expansion.
struct SeedTemplate {
  static constexpr const char* kName = "cadenzaNameMarker";
  static constexpr const char* kOut = "cadenzaOutMarker";
  static constexpr uint64_t kSeed = 8765432109876543ull;
  std::string text;
};

// True when `s` emits as the same plain YAML scalar (so it can replace a marker verbatim).
bool PlainScalar(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '/')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '/' || c == '-')) return false;
  }
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::set<std::string> words = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf"};
  return !words.count(lower);
}

// Replaces the one occurrence of `marker` in `text`; false when it is not there exactly once.
bool ReplaceOnce(std::string* text, const std::string& marker, const std::string& value) {
  const size_t at = text->find(marker);
  if (at == std::string::npos || text->find(marker, at + 1) != std::string::npos) return false;
  text->replace(at, marker.size(), value);
  return true;
}

// The second half: the spec's fields applied to the parsed config `c`, every field checked, the effective YAML
// (from `tpl` when given and the values are plain scalars).
StatusOr<Experiment> Resolve(ExperimentConfig c, const ExperimentSpec& spec, const std::string& where, const SeedTemplate* tpl = nullptr) {
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
  auto params = CountModelParameters(c.model);
  if (!params.ok()) return FromConfigError(params.status(), where);
  e.parameters = *params;
  e.axes = spec.axes;
  e.probe = !c.probe.lengths.empty();
  if (tpl && PlainScalar(c.name) && PlainScalar(c.out)) {
    e.experiment_yaml = tpl->text;
    if (ReplaceOnce(&e.experiment_yaml, SeedTemplate::kName, c.name) && ReplaceOnce(&e.experiment_yaml, SeedTemplate::kOut, c.out) &&
        ReplaceOnce(&e.experiment_yaml, "seed: " + std::to_string(SeedTemplate::kSeed), "seed: " + std::to_string(c.train.seed))) {
      return e;
    }
  }
  e.experiment_yaml = c.ToYaml();
  return e;
}

}  // namespace

StatusOr<Experiment> ValidateExperiment(const ExperimentSpec& spec, const std::string& where) {
  auto c = ParseSpec(spec, where);
  if (!c.ok()) return c.status();
  return Resolve(std::move(c).value(), spec, where);
}

StatusOr<std::vector<Experiment>> ExpandSweep(const SweepSpec& sweep, int max_experiments) {
  const ExperimentSpec& base = sweep.base;
  const auto index = [](const char* list, size_t i) { return std::string("sweep.") + list + "[" + std::to_string(i) + "]"; };
  for (size_t i = 0; i < sweep.model_families.size(); ++i) {
    if (!KnownFamily(sweep.model_families[i])) {
      return InvalidArgument(index("model_families", i) + ": expected transformer, lstm or gru, found '" + sweep.model_families[i] + "'");
    }
  }
  if (!sweep.models.empty() && !sweep.model_families.empty()) {
    return InvalidArgument("sweep: give `models` (whole model configs) or `model_families`, not both");
  }
  for (size_t i = 0; i < sweep.datasets.size(); ++i) {
    if (sweep.datasets[i].empty()) return InvalidArgument(index("datasets", i) + ": expected a dataset folder");
  }
  for (size_t i = 0; i < sweep.seeds.size(); ++i) {
    if (sweep.seeds[i] == 0) return InvalidArgument(index("seeds", i) + ": expected a seed >= 1");
  }
  std::set<std::string> model_names;
  for (size_t i = 0; i < sweep.models.size(); ++i) {
    const std::string& n = sweep.models[i].name;
    if (!SafeName(n)) return InvalidArgument(index("models", i) + ".name: expected 1-200 characters of A-Z a-z 0-9 . _ -, found '" + n + "'");
    if (!model_names.insert(n).second) return InvalidArgument(index("models", i) + ".name: '" + n + "' is given twice");
  }
  for (size_t i = 0; i < sweep.dataset_fractions.size(); ++i) {
    const double f = sweep.dataset_fractions[i];
    if (!(f > 0 && f <= 1)) return InvalidArgument(index("dataset_fractions", i) + ": expected a fraction in (0, 1], found " + Shortest(f));
  }
  for (size_t i = 0; i < sweep.context_lengths.size(); ++i) {
    if (sweep.context_lengths[i] < 2) {
      return InvalidArgument(index("context_lengths", i) + ": expected a train.seq_len >= 2, found " + std::to_string(sweep.context_lengths[i]));
    }
  }
  for (size_t i = 0; i < sweep.grid.size(); ++i) {
    const GridAxis& g = sweep.grid[i];
    if (g.key.empty() || g.key.find("..") != std::string::npos || g.key.front() == '.' || g.key.back() == '.') {
      return InvalidArgument(index("grid", i) + ".key: expected a dotted experiment key such as train.lr, found '" + g.key + "'");
    }
    static const std::set<std::string> owned = {"name", "out", "dataset", "model", "model.family", "train.seed", "train.seq_len",
                                                "train.data_fraction"};
    for (const NamedModel& m : sweep.models) {
      if (m.set.count(g.key)) return InvalidArgument(index("grid", i) + ".key: " + g.key + " is also set by models." + m.name + ".set");
    }
    if (owned.count(g.key)) {
      return InvalidArgument(index("grid", i) + ".key: " + g.key + " has its own sweep key (models, datasets, seeds, context_lengths, dataset_fractions)");
    }
    if (g.values.empty()) return InvalidArgument(index("grid", i) + ".values: expected at least one value");
  }
  const Budget& b = sweep.budget;
  if (b.tokens < 0 || b.steps < 0 || b.epochs < 0 || !std::isfinite(b.epochs)) return InvalidArgument("sweep.budget: expected values >= 0");
  if ((b.tokens > 0) + (b.steps > 0) + (b.epochs > 0) > 1) {
    return InvalidArgument("sweep.budget: give one of tokens, epochs or steps (runs of different sizes are compared at one budget)");
  }
  if (sweep.random < 0) return InvalidArgument("sweep.random: expected >= 0");

  // The base resolves the defaults (name, output folder, the YAML's dataset/family/seed/seq_len).
  auto resolved = ValidateExperiment(base, "sweep.base");
  if (!resolved.ok()) return resolved.status();
  YAML::Node base_yaml = YAML::Load(resolved->experiment_yaml);
  const int base_seq_len = base_yaml["train"]["seq_len"].as<int>();
  const int base_batch = base_yaml["train"]["batch_size"].as<int>();

  // Matched sizes: every model of the comparison within the tolerance of the largest.
  std::vector<int64_t> model_params;
  std::vector<std::string> model_labels;
  if (!sweep.models.empty() || sweep.model_families.size() > 1) {
    const size_t n = sweep.models.empty() ? sweep.model_families.size() : sweep.models.size();
    for (size_t i = 0; i < n; ++i) {
      YAML::Node y = YAML::Clone(base_yaml);
      std::string label;
      if (!sweep.models.empty()) {
        YAML::Node m;
        try {
          m = YAML::Load(sweep.models[i].model_yaml);
        } catch (const YAML::Exception& e) {
          return InvalidArgument(index("models", i) + ".model_yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
        }
        if (!m.IsMap()) return InvalidArgument(index("models", i) + ".model_yaml: expected a model mapping (family, d_model, ...)");
        y["model"] = m;
        label = sweep.models[i].name;
      } else {
        SwapFamily(y["model"], sweep.model_families[i]);
        label = sweep.model_families[i];
      }
      std::ostringstream text;
      text << y;
      ExperimentSpec s;
      s.experiment_yaml = text.str();
      auto e = ValidateExperiment(s, sweep.models.empty() ? index("model_families", i) : index("models", i));
      if (!e.ok()) return e.status();
      model_params.push_back(e->parameters);
      model_labels.push_back(label);
    }
    const double tol = sweep.match_tolerance > 0 ? sweep.match_tolerance : 0.10;
    if (sweep.match_tolerance < 0 || sweep.match_tolerance >= 1) return InvalidArgument("sweep.match_tolerance: expected a share in [0, 1)");
    const int64_t lo = *std::min_element(model_params.begin(), model_params.end());
    const int64_t hi = *std::max_element(model_params.begin(), model_params.end());
    if (!sweep.allow_unmatched && hi > 0 && static_cast<double>(hi - lo) > tol * static_cast<double>(hi)) {
      std::string counts;
      for (size_t i = 0; i < model_params.size(); ++i) counts += (i ? ", " : "") + model_labels[i] + " " + std::to_string(model_params[i]);
      return InvalidArgument("sweep.models: parameter counts differ by " + Shortest(std::round(1000.0 * (hi - lo) / hi) / 10) +
                             "% (" + counts + "), more than match_tolerance " + Shortest(tol * 100) +
                             "%: give size-matched model configs (`cadenza params` counts them)" +
                             (sweep.model_families.empty() ? "" : "; `model_families` keeps the base's model keys, so use `models:` with a config per family") +
                             ", or set allow_unmatched: true");
    }
  }

  // The product's axes (an empty list is one point: the base's value).
  const std::vector<std::string> datasets = sweep.datasets.empty() ? std::vector<std::string>{resolved->dataset} : sweep.datasets;
  const size_t n_models = sweep.models.empty() ? std::max<size_t>(1, sweep.model_families.size()) : sweep.models.size();
  const std::vector<double> fractions = sweep.dataset_fractions.empty() ? std::vector<double>{0} : sweep.dataset_fractions;
  const std::vector<int> contexts = sweep.context_lengths.empty() ? std::vector<int>{0} : sweep.context_lengths;
  const std::vector<uint64_t> seeds = sweep.seeds.empty() ? std::vector<uint64_t>{resolved->seed} : sweep.seeds;
  double grid_points = 1;
  for (const GridAxis& g : sweep.grid) grid_points *= static_cast<double>(g.values.size());
  std::vector<int64_t> chosen;  // grid point indexes, in order
  if (sweep.random > 0 && sweep.random < grid_points) {
    std::mt19937_64 rng(sweep.random_seed);
    std::set<int64_t> picked;
    while (static_cast<int>(picked.size()) < sweep.random) picked.insert(static_cast<int64_t>(rng() % static_cast<uint64_t>(grid_points)));
    chosen.assign(picked.begin(), picked.end());
  } else if (grid_points <= 1e7) {
    for (int64_t i = 0; i < static_cast<int64_t>(grid_points); ++i) chosen.push_back(i);
  }
  const double total = static_cast<double>(datasets.size()) * n_models * fractions.size() * contexts.size() *
                        static_cast<double>(sweep.random > 0 ? std::min<double>(sweep.random, grid_points) : grid_points) * seeds.size();
  if (total > max_experiments) {
    return InvalidArgument("sweep: " + std::to_string(static_cast<int64_t>(total)) + " experiments exceed the limit of " +
                           std::to_string(max_experiments) + " (coordinator.yaml: limits.max_sweep_experiments)");
  }
  const std::string name = sweep.name.empty() ? resolved->name : sweep.name;
  if (!SafeName(name)) return InvalidArgument("sweep.name: expected 1-200 characters of A-Z a-z 0-9 . _ -, found '" + name + "'");

  // Model mappings parsed once.
  std::vector<YAML::Node> model_nodes;
  for (const NamedModel& m : sweep.models) model_nodes.push_back(YAML::Load(m.model_yaml));

  std::vector<Experiment> out;
  out.reserve(static_cast<size_t>(total));
  for (const std::string& d : datasets) {
    std::string dname = std::filesystem::path(d).lexically_normal().filename().string();
    if (dname.empty()) dname = std::filesystem::path(d).lexically_normal().parent_path().filename().string();
    if (!SafeName(dname)) dname = "dataset";
    for (size_t mi = 0; mi < n_models; ++mi) {
      for (double fraction : fractions) {
        for (int context : contexts) {
          for (int64_t gp : chosen) {
            // The grid point's values, last axis fastest.
            std::vector<std::string> values(sweep.grid.size());
            int64_t rest = gp;
            for (size_t k = sweep.grid.size(); k-- > 0;) {
              const int64_t nv = static_cast<int64_t>(sweep.grid[k].values.size());
              values[k] = sweep.grid[k].values[static_cast<size_t>(rest % nv)];
              rest /= nv;
            }
            YAML::Node y = YAML::Clone(base_yaml);
            std::map<std::string, std::string> axes;
            std::string cell_name = name + "-" + dname;
            axes["dataset"] = dname;
            if (!sweep.models.empty()) {
              y["model"] = YAML::Clone(model_nodes[mi]);
              axes["model"] = sweep.models[mi].name;
              cell_name += "-" + sweep.models[mi].name;
              for (const auto& [key, value] : sweep.models[mi].set) {
                try {
                  if (Status set = SetYamlPath(y, key, YAML::Load(value)); !set.ok()) {
                    return InvalidArgument(index("models", mi) + ".set." + key + ": " + set.message());
                  }
                  axes[key] = value;  // shown with the cell (e.g. each family's own learning rate)
                } catch (const YAML::Exception& e) {
                  return InvalidArgument(index("models", mi) + ".set." + key + ": '" + value + "' is not a YAML value: " + e.msg);
                }
              }
            } else if (!sweep.model_families.empty()) {
              SwapFamily(y["model"], sweep.model_families[mi]);
              axes["model"] = sweep.model_families[mi];
              cell_name += "-" + sweep.model_families[mi];
            } else {
              axes["model"] = resolved->model_family;
              cell_name += "-" + resolved->model_family;
            }
            if (fraction > 0) {
              y["train"]["data_fraction"] = fraction;
              cell_name += "-f" + Shortest(fraction);
            }
            axes["dataset_fraction"] = Shortest(fraction > 0 ? fraction : y["train"]["data_fraction"] ? y["train"]["data_fraction"].as<double>() : 1.0);
            const int seq_len = context > 0 ? context : base_seq_len;
            if (context > 0) {
              y["train"]["seq_len"] = context;
              cell_name += "-T" + std::to_string(context);
            }
            axes["context_length"] = std::to_string(seq_len);
            for (size_t k = 0; k < sweep.grid.size(); ++k) {
              YAML::Node v;
              try {
                v = YAML::Load(values[k]);
              } catch (const YAML::Exception& e) {
                return InvalidArgument(index("grid", k) + ".values: '" + values[k] + "' is not a YAML value: " + e.msg);
              }
              if (Status set = SetYamlPath(y, sweep.grid[k].key, v); !set.ok()) {
                return InvalidArgument(index("grid", k) + ".key: " + set.message());
              }
              axes[sweep.grid[k].key] = values[k];
              cell_name += "-" + NamePart(values[k]);
            }
            if (b.tokens > 0) {
              const int batch = y["train"]["batch_size"] ? y["train"]["batch_size"].as<int>() : base_batch;
              const int64_t per_step = static_cast<int64_t>(batch) * seq_len;
              y["train"]["steps"] = (b.tokens + per_step - 1) / per_step;
            } else if (b.steps > 0) {
              y["train"]["steps"] = b.steps;
            } else if (b.epochs > 0) {
              y["train"]["epochs"] = b.epochs;
            }
            std::ostringstream text;
            text << y;
            // Parsed once per point; each seed only sets its seed, name and folder on a copy.
            ExperimentSpec point = base;
            point.experiment_yaml = text.str();
            const std::string where = "sweep.experiments[" + std::to_string(out.size()) + "] (" + cell_name + ")";
            StatusOr<ExperimentConfig> parsed = ParseSpec(point, where);
            SeedTemplate tpl;
            if (parsed.ok()) {
              ExperimentConfig marked = *parsed;
              marked.dataset = d;
              marked.name = SeedTemplate::kName;
              marked.out = SeedTemplate::kOut;
              marked.train.seed = SeedTemplate::kSeed;
              tpl.text = marked.ToYaml();
            }
            for (uint64_t seed : seeds) {
              ExperimentSpec s = point;
              s.dataset = d;
              s.model_family.clear();  // the YAML's model decides
              s.seed = seed;
              s.name = cell_name + "-s" + std::to_string(seed);
              if (!SafeName(s.name)) s.name = s.name.substr(0, 200);
              s.output_dir = (std::filesystem::path(resolved->output_dir) / s.name).string();
              s.axes = axes;
              s.axes["seed"] = std::to_string(seed);
              auto e = parsed.ok() ? Resolve(*parsed, s, where, &tpl) : StatusOr<Experiment>(parsed.status());
              if (!e.ok()) {
                // A grid value the experiment refuses is the grid's fault: say which axis.
                std::string m = e.status().message();
                for (size_t k = 0; k < sweep.grid.size(); ++k) {
                  if (m.find("." + sweep.grid[k].key + ":") != std::string::npos) {
                    return InvalidArgument(index("grid", k) + " (" + sweep.grid[k].key + " = " + values[k] + "): " + m);
                  }
                }
                return e.status();
              }
              out.push_back(std::move(e).value());
            }
          }
        }
      }
    }
  }
  return out;
}

}  // namespace cadenza::coord
