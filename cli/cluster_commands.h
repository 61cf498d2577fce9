// The cluster commands of `cadenza` (coordinator, submit, status, results, cancel, report): options and their actions.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/report/report_writer.h"
#include "coordinator/client.h"

namespace cadenza {

// `cadenza report --sweep N` on a connected client: the cell table, the runs' curves (their metrics.csv as this
// machine sees them), notes on unfinished runs, the sweep's axes and provenance -> a report folder at `out`.
// `coordinator` names the coordinator on the page.
// `job` > 0: that one run instead of the sweep (`cadenza report --job N`).
StatusOr<ReportFiles> WriteSweepReport(coord::CoordinatorClient& client, int64_t sweep, int64_t job, const std::string& coordinator,
                                       const std::string& out);

// Registers the commands on `app`; the one that runs stores its exit code in *exit_code (left alone otherwise).
void AddClusterCommands(CLI::App& app, int* exit_code);

}  // namespace cadenza
