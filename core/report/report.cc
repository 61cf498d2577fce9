#include "core/report/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/stats.h"

namespace cadenza {
namespace {

std::string NumberText(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", x);
  return buf;
}

// Strips a statistic suffix: "test/nll_per_token_ci95" -> ("test/nll_per_token", "ci95").
bool SplitStatKey(const std::string& key, std::string* metric, std::string* stat) {
  for (const char* suffix : {"_mean", "_sd", "_ci95", "_n"}) {
    const std::string s = suffix;
    if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) {
      *metric = key.substr(0, key.size() - s.size());
      *stat = s.substr(1);
      return true;
    }
  }
  return false;
}

// Axis columns in the order `cadenza results` prints them, then the rest by name.
std::vector<std::string> AxisOrder(const std::vector<ReportCell>& cells) {
  std::set<std::string> have;
  for (const ReportCell& c : cells) for (const auto& [k, v] : c.axes) have.insert(k);
  std::vector<std::string> order;
  for (const char* k : {"model", "model_family", "parameters", "dataset", "dataset_fraction", "context_length"}) {
    if (have.erase(k)) order.push_back(k);
  }
  order.insert(order.end(), have.begin(), have.end());
  return order;
}

double AxisNumber(const ReportCell& c, const std::string& axis) {
  auto it = c.axes.find(axis);
  if (it == c.axes.end()) return std::nan("");
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  return end && *end == '\0' && !it->second.empty() ? v : std::nan("");
}

std::string DatasetOf(const ReportCell& c) {
  auto it = c.axes.find("dataset");
  return it == c.axes.end() ? "" : it->second;
}

// "out/nottingham/" -> "nottingham": datasets are named by their folder in titles and file names.
std::string ShortName(const std::string& dataset) {
  std::string d = dataset;
  while (!d.empty() && d.back() == '/') d.pop_back();
  const size_t slash = d.rfind('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

// Axes that tell runs of one model apart in a figure besides its x (e.g. train.lr in a learning-rate search,
// context_length across contexts): those with more than one value among `axes_of`.
// Axes that vary within one model's runs (besides the fixed ones): they split its series. An axis set per model
// (each family's own train.lr in a study) varies only between models and names nothing new.
std::vector<std::string> VaryingAxes(const std::vector<const std::map<std::string, std::string>*>& axes_of) {
  static const std::set<std::string> fixed = {"model", "model_family", "parameters", "dataset", "dataset_fraction", "seed"};
  std::map<std::pair<std::string, std::string>, std::set<std::string>> values;  // (model, axis) -> values
  for (const auto* axes : axes_of) {
    auto model = axes->find("model");
    if (model == axes->end()) model = axes->find("model_family");
    const std::string m = model == axes->end() ? "" : model->second;
    for (const auto& [k, v] : *axes) if (!fixed.count(k)) values[{m, k}].insert(v);
  }
  std::set<std::string> out;
  for (const auto& [key, v] : values) if (v.size() > 1) out.insert(key.second);
  return {out.begin(), out.end()};
}

// A series' name: the model, then any varying axis as key=value ("lstm train.lr=0.008").
std::string SeriesLabel(const std::string& model, const std::map<std::string, std::string>& axes,
                        const std::vector<std::string>& varying) {
  std::string label = model;
  for (const std::string& k : varying) {
    auto it = axes.find(k);
    label += " " + k + "=" + (it == axes.end() ? "?" : it->second);
  }
  return label;
}

std::vector<std::string> VaryingAxesOf(const std::vector<ReportCell>& cells) {
  std::vector<const std::map<std::string, std::string>*> axes;
  for (const ReportCell& c : cells) axes.push_back(&c.axes);
  return VaryingAxes(axes);
}

void AddPoint(Series* s, double x, const CellStat& m) {
  s->x.push_back(x);
  s->y.push_back(m.mean);
  const double half = m.n > 1 && std::isfinite(m.ci95) ? m.ci95 : 0.0;
  s->lo.push_back(m.mean - half);
  s->hi.push_back(m.mean + half);
}

void SortByX(Series* s) {
  std::vector<size_t> order(s->x.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s->x[a] < s->x[b]; });
  Series sorted;
  sorted.label = s->label;
  for (size_t i : order) {
    sorted.x.push_back(s->x[i]);
    sorted.y.push_back(s->y[i]);
    sorted.lo.push_back(s->lo[i]);
    sorted.hi.push_back(s->hi[i]);
  }
  *s = std::move(sorted);
}

// One series per model of `dataset`: `metric` against the dataset fraction.
Figure AgainstFraction(const std::vector<ReportCell>& cells, const std::string& dataset, const std::string& metric,
                       const std::string& id, const std::string& title, const std::string& ylabel) {
  Figure f;
  f.id = id;
  f.title = title;
  f.xlabel = "share of the train split (nested subsets; val and test fixed)";
  f.ylabel = ylabel;
  std::map<std::string, Series> by_model;
  std::vector<std::string> order;
  const std::vector<std::string> varying = VaryingAxesOf(cells);
  for (const ReportCell& c : cells) {
    if (DatasetOf(c) != dataset) continue;
    const double x = AxisNumber(c, "dataset_fraction");
    if (!std::isfinite(x)) continue;
    const std::string model = SeriesLabel(c.Model(), c.axes, varying);
    if (!by_model.count(model)) order.push_back(model);
    Series& s = by_model[model];
    s.label = model;
    const CellStat* m = c.Metric(metric);
    if (!m || !std::isfinite(m->mean)) {
      f.missing.push_back(model + " at fraction " + NumberText(x) + ": no " + metric);
      continue;
    }
    AddPoint(&s, x, *m);
  }
  for (const std::string& model : order) {
    Series& s = by_model[model];
    if (s.x.empty()) continue;
    SortByX(&s);
    f.series.push_back(std::move(s));
  }
  return f;
}

// Probe lengths measured for any model: "probe/L<length>/b1/<what>".
std::set<int64_t> ProbeLengths(const std::vector<ReportCell>& cells) {
  std::set<int64_t> lengths;
  for (const ReportCell& c : cells) {
    for (const auto& [name, stat] : c.metrics) {
      if (name.rfind("probe/L", 0) != 0) continue;
      const size_t slash = name.find('/', 7);
      if (slash == std::string::npos || name.compare(slash, 4, "/b1/") != 0) continue;
      lengths.insert(std::strtoll(name.c_str() + 7, nullptr, 10));
    }
  }
  return lengths;
}

// Speed and memory do not depend on the data: per model, the probed cell trained on the most data (the first such).
Figure AgainstLength(const std::vector<ReportCell>& cells, const std::string& dataset, const std::string& what,
                     const std::string& id, const std::string& title, const std::string& ylabel) {
  Figure f;
  f.id = id;
  f.title = title;
  f.xlabel = "context length (tokens)";
  f.ylabel = ylabel;
  f.logx = true;
  std::map<std::string, const ReportCell*> pick;
  std::vector<std::string> order;
  auto probed = [](const ReportCell& c) {
    for (const auto& [name, stat] : c.metrics) if (name.rfind("probe/", 0) == 0) return true;
    return false;
  };
  const std::vector<std::string> varying = VaryingAxesOf(cells);
  for (const ReportCell& c : cells) {
    if (DatasetOf(c) != dataset || !probed(c)) continue;
    const std::string model = SeriesLabel(c.Model(), c.axes, varying);
    auto it = pick.find(model);
    if (it == pick.end()) {
      order.push_back(model);
      pick[model] = &c;
    } else if (AxisNumber(c, "dataset_fraction") > AxisNumber(*it->second, "dataset_fraction")) {
      it->second = &c;
    }
  }
  const std::set<int64_t> lengths = ProbeLengths(cells);
  for (const std::string& model : order) {
    Series s;
    s.label = model;
    for (int64_t length : lengths) {
      const CellStat* m = pick[model]->Metric("probe/L" + std::to_string(length) + "/b1/" + what);
      if (!m) {
        f.missing.push_back(model + ": no " + what + " at length " + std::to_string(length) +
                            " (beyond its context, or not probed)");
        continue;
      }
      AddPoint(&s, double(length), *m);
    }
    if (!s.x.empty()) f.series.push_back(std::move(s));
  }
  return f;
}

std::string GnuplotString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Formatted(double x) {
  if (!std::isfinite(x)) return "";
  char buf[32];
  if (x == std::floor(x) && std::fabs(x) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", x);
  else std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

// A colour per series, the same in every figure for the same position (matplotlib's first ten).
const char* Colour(size_t i) {
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return colours[i % 10];
}

}  // namespace

std::string FileSafe(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '-';
  return out;
}

std::string AxesSummary(const std::vector<std::map<std::string, std::string>>& runs) {
  std::map<std::string, std::set<std::string>> values;
  for (const auto& axes : runs) for (const auto& [k, v] : axes) values[k].insert(v);
  std::string out;
  for (const auto& [axis, set] : values) {
    std::vector<std::string> sorted(set.begin(), set.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](const std::string& a, const std::string& b) {
      char *ea = nullptr, *eb = nullptr;
      const double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
      const bool na = !a.empty() && *ea == '\0', nb = !b.empty() && *eb == '\0';
      return na && nb ? x < y : (na != nb ? na : a < b);
    });
    out += (out.empty() ? "" : "; ") + axis + ":";
    for (size_t i = 0; i < sorted.size(); ++i) out += (i ? ", " : " ") + sorted[i];
  }
  return out;
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string ReportCell::Model() const {
  auto it = axes.find("model");
  if (it != axes.end() && !it->second.empty()) return it->second;
  it = axes.find("model_family");
  return it == axes.end() ? "model" : it->second;
}

const CellStat* ReportCell::Metric(const std::string& name) const {
  auto it = metrics.find(name);
  return it == metrics.end() ? nullptr : &it->second;
}

StatusOr<std::vector<ReportCell>> ParseCells(const std::string& json_text, const std::string& path) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(path + ": not JSON: " + e.what());
  }
  if (!doc.is_array()) {
    return InvalidArgument(path + ": expected a list of cells (the output of `cadenza results --sweep N --format json`)");
  }
  std::vector<ReportCell> cells;
  for (size_t i = 0; i < doc.size(); ++i) {
    const nlohmann::json& row = doc[i];
    const std::string where = path + ": cell " + std::to_string(i);
    if (!row.is_object()) return InvalidArgument(where + ": expected an object");
    ReportCell c;
    for (const auto& [key, value] : row.items()) {
      std::string metric, stat;
      if (key == "n") {
        if (!value.is_number()) return InvalidArgument(where + ": n: expected a number");
        c.runs = value.get<int>();
      } else if (key == "train_tokens") {
        continue;  // the mean of data/train_tokens, which the metrics hold too
      } else if (SplitStatKey(key, &metric, &stat)) {
        if (value.is_string() && value.get<std::string>().empty()) continue;  // a metric this cell lacks
        if (!value.is_number()) return InvalidArgument(where + ": " + key + ": expected a number");
        CellStat& s = c.metrics[metric];
        const double v = value.get<double>();
        if (stat == "mean") s.mean = v;
        else if (stat == "sd") s.sd = v;
        else if (stat == "ci95") s.ci95 = v;
        else s.n = static_cast<int>(v);
      } else {
        c.axes[key] = value.is_string() ? value.get<std::string>() : value.is_number() ? NumberText(value.get<double>()) : value.dump();
      }
    }
    cells.push_back(std::move(c));
  }
  return cells;
}

std::vector<Figure> StudyFigures(const std::vector<ReportCell>& cells) {
  std::vector<std::string> datasets;
  for (const ReportCell& c : cells) {
    if (std::find(datasets.begin(), datasets.end(), DatasetOf(c)) == datasets.end()) datasets.push_back(DatasetOf(c));
  }
  std::vector<Figure> figures;
  auto keep = [&](Figure f) {
    if (!f.series.empty()) figures.push_back(std::move(f));
  };
  for (const std::string& d : datasets) {
    const std::string name = ShortName(d).empty() ? "results" : ShortName(d);
    const std::string on = name == "results" ? "" : " on " + name;
    keep(AgainstFraction(cells, d, "test/nll_per_token", "quality-test-nll-" + FileSafe(name),
                         "Test NLL against dataset size" + on, "test NLL per token (nats), mean and 95% CI"));
    keep(AgainstFraction(cells, d, "val/nll_per_token", "quality-val-nll-" + FileSafe(name),
                         "Validation NLL against dataset size" + on, "val NLL per token (nats)"));
    std::set<std::string> cross;  // other corpora the runs were scored on: on/<name>/nll_per_token
    for (const ReportCell& c : cells) {
      for (const auto& [metric, s] : c.metrics) {
        if (metric.rfind("on/", 0) == 0 && metric.size() > 17 && metric.compare(metric.size() - 14, 14, "/nll_per_token") == 0) {
          cross.insert(metric.substr(3, metric.size() - 17));
        }
      }
    }
    for (const std::string& other : cross) {
      keep(AgainstFraction(cells, d, "on/" + other + "/nll_per_token", "cross-nll-" + FileSafe(name) + "-on-" + FileSafe(other),
                           "Trained" + on + ", scored on " + other + " (test split)", "NLL per token on " + other));
    }
    keep(AgainstLength(cells, d, "forward_ms", "latency-forward-" + FileSafe(name), "Forward latency against input length",
                       "forward pass, ms (batch 1)"));
    keep(AgainstLength(cells, d, "step_ms", "latency-generation-" + FileSafe(name),
                       "Generation latency per token against context length", "one generation step, ms (batch 1)"));
    keep(AgainstLength(cells, d, "train_peak_mb", "memory-training-" + FileSafe(name),
                       "Training memory against input size", "peak of one training step, MiB"));
    keep(AgainstLength(cells, d, "forward_peak_mb", "memory-inference-" + FileSafe(name),
                       "Inference memory against input size", "peak of one forward pass, MiB"));
    keep(AgainstLength(cells, d, "state_mb", "memory-generation-state-" + FileSafe(name),
                       "Generation state against context length", "cache / recurrent state, MiB"));
    const std::pair<const char*, const char*> samples[] = {
        {"structureness/mean", "SSM structureness of samples"},
        {"repetition/mean", "repetition of samples (share of bar pairs)"},
        {"avg_pitch_deviation/mean", "pitch deviation of samples (semitones)"},
        {"syncopation/mean", "syncopation of samples (per bar)"},
        {"pitch_class_entropy/overlap", "pitch-class entropy: overlap with the test split"}};
    for (const auto& [metric, label] : samples) {
      std::string stem = metric;
      std::replace(stem.begin(), stem.end(), '/', '-');
      keep(AgainstFraction(cells, d, metric, "samples-" + FileSafe(stem) + "-" + FileSafe(name),
                           std::string(label) + " against dataset size" + on, label));
    }
  }
  return figures;
}

RunCurves RunCurvesOf(const std::map<std::string, std::string>& axes, const std::string& model_family, const std::string& dataset) {
  RunCurves run;
  auto model = axes.find("model");
  run.model = model != axes.end() ? model->second : model_family;
  run.dataset = dataset;
  auto fraction = axes.find("dataset_fraction");
  run.fraction = fraction != axes.end() ? std::atof(fraction->second.c_str()) : 1.0;
  run.axes = axes;
  return run;
}

Status ParseMetricsCsv(const std::string& text, const std::string& path, RunCurves* curves) {
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || (number == 1 && line.rfind("step,", 0) == 0)) continue;
    const size_t a = line.find(','), b = line.rfind(',');
    char* end = nullptr;
    const long long step = a == std::string::npos ? 0 : std::strtoll(line.c_str(), &end, 10);
    if (a == std::string::npos || b == a || end != line.c_str() + a) {
      return DataLoss(path + ": line " + std::to_string(number) + ": expected step,tag,value");
    }
    const std::string tag = line.substr(a + 1, b - a - 1), value = line.substr(b + 1);
    const double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || tag.find(',') != std::string::npos) {
      return DataLoss(path + ": line " + std::to_string(number) + ": expected step,tag,value");
    }
    curves->tags[tag][step] = v;
  }
  return Status::Ok();
}

std::vector<Figure> CurveFigures(const std::vector<RunCurves>& runs) {
  std::vector<std::string> datasets;
  for (const RunCurves& r : runs) {
    if (std::find(datasets.begin(), datasets.end(), r.dataset) == datasets.end()) datasets.push_back(r.dataset);
  }
  const std::pair<const char*, const char*> tags[] = {
      {"val/nll_per_token", "validation NLL per token"},
      {"sample/structureness", "SSM structureness of samples drawn at validation"},
      {"sample/repetition", "repetition of samples drawn at validation"}};
  std::vector<Figure> figures;
  for (const std::string& d : datasets) {
    const std::string name = ShortName(d).empty() ? "results" : ShortName(d);
    std::vector<const std::map<std::string, std::string>*> axes_of;
    for (const RunCurves& r : runs) axes_of.push_back(&r.axes);
    const std::vector<std::string> varying = VaryingAxes(axes_of);
    auto key = [&](const RunCurves& r) { return SeriesLabel(r.model, r.axes, varying); };
    std::map<std::string, double> largest;  // series -> its largest fraction
    std::vector<std::string> order;
    for (const RunCurves& r : runs) {
      if (r.dataset != d) continue;
      auto it = largest.find(key(r));
      if (it == largest.end()) {
        order.push_back(key(r));
        largest[key(r)] = r.fraction;
      } else {
        it->second = std::max(it->second, r.fraction);
      }
    }
    for (const auto& [tag, label] : tags) {
      Figure f;
      std::string stem = tag;
      std::replace(stem.begin(), stem.end(), '/', '-');
      f.id = "curve-" + FileSafe(stem) + "-" + FileSafe(name);
      f.title = std::string(label) + " against the training step" + (name == "results" ? "" : " on " + name);
      f.xlabel = "training step";
      f.ylabel = label;
      for (const std::string& model : order) {
        std::map<int64_t, std::vector<double>> at;  // step -> the runs' values
        int members = 0;
        for (const RunCurves& r : runs) {
          if (r.dataset != d || key(r) != model || r.fraction != largest[model]) continue;
          ++members;
          auto it = r.tags.find(tag);
          if (it == r.tags.end()) continue;
          for (const auto& [step, v] : it->second) {
            if (std::isfinite(v)) at[step].push_back(v);
          }
        }
        Series s;
        s.label = model + " (fraction " + NumberText(largest[model]) + ", " + std::to_string(members) + " runs)";
        for (const auto& [step, values] : at) {
          const MetricStats m = SummarizeRuns(values);
          s.x.push_back(double(step));
          s.y.push_back(m.mean);
          s.lo.push_back(m.mean - m.ci95);
          s.hi.push_back(m.mean + m.ci95);
        }
        if (s.x.empty()) {
          f.missing.push_back(model + ": no " + std::string(tag) + " in its runs' metrics.csv");
        } else {
          f.series.push_back(std::move(s));
        }
      }
      if (!f.series.empty()) figures.push_back(std::move(f));
    }
  }
  return figures;
}

std::string GnuplotScript(const Figure& f, const std::string& svg, const std::string& png) {
  std::ostringstream g;
  g << "# " << f.title << " (cadenza report; edit and run `gnuplot " << f.id << ".gp` to restyle)\n";
  g << "set terminal svg size 640,400 dynamic noenhanced font \"sans,11\" background \"white\"\n";
  g << "set output " << GnuplotString(svg) << "\n";
  g << "set title " << GnuplotString(f.title) << "\n";
  g << "set xlabel " << GnuplotString(f.xlabel) << "\n";
  g << "set ylabel " << GnuplotString(f.ylabel) << "\n";
  {  // every value equal (a metric at 0 for all cells): gnuplot would warn and pick [-1:1] itself; say it here
    double lo = INFINITY, hi = -INFINITY;
    for (const Series& s : f.series) {
      for (double v : s.lo) lo = std::min(lo, v);
      for (double v : s.hi) hi = std::max(hi, v);
    }
    if (std::isfinite(lo) && std::isfinite(hi) && hi - lo <= 1e-12 * std::max(1.0, std::fabs(hi))) {
      const double pad = std::max(1.0, std::fabs(hi) * 0.1);
      g << "set yrange [" << NumberText(lo - pad) << ":" << NumberText(hi + pad) << "]\n";
    }
  }
  g << "set grid\nset key below\nset style fill transparent solid 0.18 noborder\n";
  if (f.logx) g << "set logscale x 2\n";
  std::set<double> xs;
  for (const Series& s : f.series) xs.insert(s.x.begin(), s.x.end());
  if (!xs.empty() && xs.size() <= 12) {  // ticks at the measured x values, so sweep points read off directly
    g << "set xtics (";
    size_t i = 0;
    for (double x : xs) g << (i++ ? ", " : "") << GnuplotString(Formatted(x)) << " " << NumberText(x);
    g << ")\n";
    const double lo = *xs.begin(), hi = *xs.rbegin();
    if (f.logx) g << "set xrange [" << NumberText(lo / 1.3) << ":" << NumberText(hi * 1.3) << "]\n";
    else g << "set xrange [" << NumberText(lo - 0.05 * std::max(hi - lo, 1e-9)) << ":" << NumberText(hi + 0.05 * std::max(hi - lo, 1e-9)) << "]\n";
  }
  for (size_t i = 0; i < f.series.size(); ++i) {
    const Series& s = f.series[i];
    g << "$s" << i << " << EOD\n";
    for (size_t k = 0; k < s.x.size(); ++k) {
      g << NumberText(s.x[k]) << " " << NumberText(s.y[k]) << " " << NumberText(s.lo[k]) << " " << NumberText(s.hi[k]) << "\n";
    }
    g << "EOD\n";
  }
  g << "plot ";
  for (size_t i = 0; i < f.series.size(); ++i) {
    const std::string c = Colour(i);
    g << (i ? ", \\\n     " : "") << "$s" << i << " using 1:3:4 with filledcurves lc rgb \"" << c << "\" notitle, "
      << "$s" << i << " using 1:2 with linespoints lw 2 pt 7 ps 0.8 lc rgb \"" << c << "\" title " << GnuplotString(f.series[i].label);
  }
  g << "\nset terminal pngcairo size 960,600 noenhanced font \"sans,12\" background \"white\"\n";
  g << "set output " << GnuplotString(png) << "\nreplot\nunset output\n";
  return g.str();
}

std::string CellsCsv(const std::vector<ReportCell>& cells) {
  const std::vector<std::string> axes = AxisOrder(cells);
  std::set<std::string> metrics;
  for (const ReportCell& c : cells) for (const auto& [m, s] : c.metrics) metrics.insert(m);
  std::ostringstream o;
  for (const std::string& a : axes) o << CsvField(a) << ",";
  o << "n";
  for (const std::string& m : metrics) {
    for (const char* s : {"_mean", "_sd", "_ci95", "_n"}) o << "," << CsvField(m + s);
  }
  o << "\n";
  for (const ReportCell& c : cells) {
    for (const std::string& a : axes) {
      auto it = c.axes.find(a);
      o << (it == c.axes.end() ? "" : CsvField(it->second)) << ",";
    }
    o << c.runs;
    for (const std::string& m : metrics) {
      const CellStat* s = c.Metric(m);
      if (!s) {
        o << ",,,,";
        continue;
      }
      o << "," << NumberText(s->mean) << "," << NumberText(s->sd) << "," << NumberText(s->ci95) << "," << s->n;
    }
    o << "\n";
  }
  return o.str();
}

}  // namespace cadenza
