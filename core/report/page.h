// One page for the study's comparison: the report's index.html (its data embedded, opens from disk) and the
// coordinator's live page (the same page polling /api/v1). The page draws the figures' data with uPlot (npm,
// embedded at build time: web/) and writes every value it draws to #plotted, for tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/report/report.h"

namespace cadenza {

// A figure as the page draws it: id, title, xlabel, ylabel, logx, series [{label, x, y, lo, hi}], missing.
nlohmann::json FigureJson(const Figure& figure);

// What the page shows: {title, facts: [[name, value]...], notes, cells (the rows of `cadenza results --sweep N
// --format json`, as given), figures, images [{title, file, caption}] (SSM heatmaps beside the page), files (whether
// figures/<id>.svg|png sit beside the page)}.
// GET /api/v1/sweeps/N/report answers this object; `cadenza report` embeds it.
nlohmann::json ReportData(const nlohmann::json& cells, const std::vector<Figure>& figures, const ReportContext& context,
                          bool files);

// The page. `data`: embedded (a report file); null: live (the page asks for a token once and polls the API).
std::string PageHtml(const nlohmann::json& data);

}  // namespace cadenza
