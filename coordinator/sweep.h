// Experiment validation (errors name the field at fault) and sweep expansion (cartesian product over lists).
#pragma once

#include <string>
#include <vector>

#include "coordinator/types.h"
#include "core/status.h"

namespace cadenza::coord {

// Resolves a submitted spec against its YAML: overrides applied, every field checked, the effective YAML rendered.
// Errors are INVALID_ARGUMENT naming the field, prefixed with `where` ("experiment.model.family: expected ...").
StatusOr<Experiment> ValidateExperiment(const ExperimentSpec& spec, const std::string& where = "experiment");

// One spec per (dataset, model family, seed) of the sweep's non-empty lists (the base's value where a list is
// empty); each named <name>-<dataset folder>-<family>-s<seed> with output <base output>/<that name>.
// More than `max_experiments` is INVALID_ARGUMENT.
StatusOr<std::vector<ExperimentSpec>> ExpandSweep(const SweepSpec& sweep, int max_experiments);

}  // namespace cadenza::coord
