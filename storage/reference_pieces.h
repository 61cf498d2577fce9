// A dataset split as evaluation's reference set: core/eval's ReferencePieces, read from storage's shards.
#pragma once

#include <memory>
#include <string>

#include "core/eval/evaluate.h"
#include "core/status.h"

namespace cadenza {

// Opens `dataset_dir` (a folder from `cadenza ingest`) and takes the pieces of `split` ("train", "val" or "test").
// Errors: an unknown split is InvalidArgument("--split: ..."), checked first; a missing or unreadable dataset is
// Dataset::Open's status; a split without pieces is FailedPrecondition naming the folder and the split.
// Tokens() reads one piece from its shard and may be called from several threads at once.
StatusOr<std::unique_ptr<ReferencePieces>> OpenReferenceSplit(const std::string& dataset_dir, const std::string& split);

}  // namespace cadenza
