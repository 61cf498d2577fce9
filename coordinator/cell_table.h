// A sweep's cell table (one row per cell: every axis but the seed, n, train tokens, each metric's statistics over
// seeds): what `cadenza results --sweep N` prints, `cadenza report` draws and GET /api/v1/sweeps/N/cells serves.
// One builder for all three, so that the page, the files and the CLI show the same numbers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cadenza/v1/client.pb.h"

namespace cadenza::coord {

struct CellTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

// The AggregateResults request of a sweep's cells (group_by cell, merged per job); filters may be empty.
v1::AggregateResultsRequest CellRequest(int64_t sweep_id, const std::string& user = "", const std::string& dataset = "",
                                        const std::string& model_family = "");

// Rows from the aggregate. `mean_ci`: one "mean ± 95% CI" column per metric (the default metrics unless `metrics`
// names some); else four columns (_mean, _sd, _ci95, _n) per metric, every metric unless `metrics` names some.
CellTable CellTableOf(const v1::AggregateResultsResponse& aggregate, const std::vector<std::string>& metrics, bool mean_ci);

// A number as the tables print it: whole numbers (token counts) in full, others with 6 significant digits.
std::string FormatNumber(double x);

// Rows as a JSON list of objects: numbers as numbers (ids and counts as integers), the rest as strings.
nlohmann::json RowsJson(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace cadenza::coord
