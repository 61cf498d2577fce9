// Experiment validation (errors name the field at fault) and sweep expansion (cartesian product over the sweep's axes).
#pragma once

#include <string>
#include <vector>

#include "coordinator/types.h"
#include "core/status.h"

namespace cadenza::coord {

// Resolves a submitted spec against its YAML: overrides applied, every field checked, the parameter count computed,
// the effective YAML rendered. Errors are INVALID_ARGUMENT naming the field, prefixed with `where`
// ("experiment.model.family: expected ...").
StatusOr<Experiment> ValidateExperiment(const ExperimentSpec& spec, const std::string& where = "experiment");

// One validated experiment per point of the sweep's product, in this order: dataset, model (or family), dataset
// fraction, context length, grid point, seed (an empty list keeps the base's value and adds no axis). Each is named
// <name>-<dataset folder>-<model or family>[-f<fraction>][-T<context>][-<grid values>]-s<seed> with output
// <base out>/<that name>,
// and carries its cell in `axes`. Models whose parameter counts differ by more than the tolerance are refused with
// the counts unless `allow_unmatched`. More than `max_experiments` is INVALID_ARGUMENT. docs/sweeps.md.
StatusOr<std::vector<Experiment>> ExpandSweep(const SweepSpec& sweep, int max_experiments);

}  // namespace cadenza::coord
