// Sweep cell tables from AggregateResults rows (see cell_table.h).
#include "coordinator/cell_table.h"

#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

namespace cadenza::coord {
namespace {

// What a sweep's cell table shows by default: the study's quality figures (every metric is in csv/json).
const std::vector<std::string>& DefaultCellMetrics() {
  static const std::vector<std::string> m = {"val/nll_per_token", "test/nll_per_token", "test/nll_per_bar", "train/train_seconds"};
  return m;
}

}  // namespace

v1::AggregateResultsRequest CellRequest(int64_t sweep_id, const std::string& user, const std::string& dataset,
                                        const std::string& model_family) {
  v1::AggregateResultsRequest req;
  req.mutable_filter()->set_sweep_id(sweep_id);
  req.mutable_filter()->set_user(user);
  req.mutable_filter()->set_dataset(dataset);
  req.mutable_filter()->set_model_family(model_family);
  req.add_group_by("cell");
  req.set_per_job(true);
  return req;
}

std::string FormatNumber(double x) {
  std::ostringstream o;
  o << std::setprecision(x == std::floor(x) && std::fabs(x) < 1e15 ? 15 : 6) << x;
  return o.str();
}

CellTable CellTableOf(const v1::AggregateResultsResponse& resp, const std::vector<std::string>& metrics, bool mean_ci) {
  CellTable table;
  if (resp.rows_size() == 0) return table;
  // Group columns in the order the coordinator gives (family, parameters, dataset, model, fraction, context, grid).
  std::vector<std::string> axes;
  {
    std::set<std::string> have;
    for (const auto& r : resp.rows()) for (const auto& [k, v] : r.group()) have.insert(k);
    for (const char* k : {"model", "model_family", "parameters", "dataset", "dataset_fraction", "context_length"}) {
      if (have.erase(k)) axes.push_back(k);
    }
    for (const auto& k : have) axes.push_back(k);
  }
  std::set<std::string> all;
  for (const auto& r : resp.rows()) for (const auto& m : r.metrics()) all.insert(m.name());
  std::vector<std::string> names;
  if (!metrics.empty()) names = metrics;
  else if (mean_ci) {
    for (const auto& m : DefaultCellMetrics()) if (all.count(m)) names.push_back(m);
  } else {
    names.assign(all.begin(), all.end());
  }
  std::vector<std::string>& header = table.header;
  header = axes;
  header.push_back("n");
  header.push_back("train_tokens");
  for (const auto& n : names) {
    if (mean_ci) {
      header.push_back(n + " (mean ± 95% CI)");
    } else {
      for (const char* suffix : {"_mean", "_sd", "_ci95", "_n"}) header.push_back(n + suffix);
    }
  }
  for (const auto& r : resp.rows()) {
    std::vector<std::string> row;
    for (const auto& k : axes) row.push_back(r.group().count(k) ? r.group().at(k) : "");
    row.push_back(std::to_string(r.count()));
    std::map<std::string, const v1::MetricSummary*> by;
    for (const auto& m : r.metrics()) by[m.name()] = &m;
    row.push_back(by.count("data/train_tokens") ? FormatNumber(by["data/train_tokens"]->mean()) : "");
    for (const auto& n : names) {
      const v1::MetricSummary* m = by.count(n) ? by[n] : nullptr;
      if (mean_ci) {
        row.push_back(m ? FormatNumber(m->mean()) + (m->n() > 1 ? " ± " + FormatNumber(m->ci95()) : "") : "");
      } else {
        row.push_back(m ? FormatNumber(m->mean()) : "");
        row.push_back(m ? FormatNumber(m->stddev()) : "");
        row.push_back(m ? FormatNumber(m->ci95()) : "");
        row.push_back(m ? std::to_string(m->n()) : "");
      }
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

nlohmann::json RowsJson(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json o = nlohmann::json::object();
    for (size_t i = 0; i < header.size(); ++i) {
      char* end = nullptr;
      const long long n = std::strtoll(r[i].c_str(), &end, 10);
      if (!r[i].empty() && end && *end == '\0') {  // ids and counts stay integers
        o[header[i]] = n;
        continue;
      }
      const double v = std::strtod(r[i].c_str(), &end);
      if (!r[i].empty() && end && *end == '\0') o[header[i]] = v;
      else o[header[i]] = r[i];
    }
    out.push_back(o);
  }
  return out;
}

}  // namespace cadenza::coord
