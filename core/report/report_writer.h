// `cadenza report`: writes a sweep's cells as a report folder (core/report draws, gnuplot renders).
#pragma once

#include <string>

#include "core/report/report.h"
#include "core/status.h"

namespace cadenza {

struct ReportFiles {
  std::string index;  // <out>/index.html
  int figures = 0;
  int cells = 0;
};

// Writes <out_dir>/index.html (self-contained), cells.csv, results.json (the cells as given) and
// figures/<id>.{gp,svg,png}. `cells_json` is the text of `cadenza results --sweep N --format json`. Each file is
// written atomically, index.html last. Fails naming gnuplot when it is missing or a figure does not render.
// `curves` (the runs' metrics.csv, may be empty) add the figures against the training step.
StatusOr<ReportFiles> WriteReport(const std::string& cells_json, const std::string& source_name,
                                  const std::vector<RunCurves>& curves, ReportContext context, const std::string& out_dir);

// The machine a report was made on: host name, cores, OS release ("host (2 cores, Linux 6.1.0)").
std::string MachineDescription();

}  // namespace cadenza
