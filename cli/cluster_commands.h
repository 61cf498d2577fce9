// The cluster commands of `cadenza` (coordinator, submit, status, results, cancel): options and their actions.
#pragma once

#include <CLI/CLI.hpp>

namespace cadenza {

// Registers the commands on `app`; the one that runs stores its exit code in *exit_code (left alone otherwise).
void AddClusterCommands(CLI::App& app, int* exit_code);

}  // namespace cadenza
