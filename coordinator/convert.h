// Conversions between the cadenza.v1 protobuf messages and the coordinator's plain records, and Status <-> gRPC.
#pragma once

#include <grpcpp/support/status.h>

#include "cadenza/v1/client.pb.h"
#include "cadenza/v1/common.pb.h"
#include "cadenza/v1/worker.pb.h"
#include "coordinator/types.h"  // records and views only: nothing of the server (store, scheduler, queries)
#include "core/stats.h"  // MetricStats, SummarizeRuns, StudentT95
#include "core/status.h"

namespace cadenza::coord {

grpc::Status ToGrpc(const Status& s);
// "train", "generate", "evaluate", "aggregate" (or "unknown") for log lines and errors.
const char* TaskKindName(v1::TaskKind k);
Status FromGrpc(const grpc::Status& s);

ExperimentSpec FromProto(const v1::ExperimentSpec& p);
SweepSpec FromProto(const v1::SweepSpec& p);
void ToProto(const ExperimentSpec& s, v1::ExperimentSpec* p);
void ToProto(const SweepSpec& s, v1::SweepSpec* p);
void ToProto(const Assignment& a, int64_t lease_expires_unix_ms, v1::Task* p);
void ToProto(const JobView& v, v1::Job* p);
void ToProto(const ResultView& v, v1::ResultRow* p);
// A page of rows (ordered by job); `compact`: each job's fields once, in p->jobs (QueryResultsRequest.compact).
void ToProto(const std::vector<ResultView>& rows, bool compact, v1::QueryResultsResponse* p);
ResultFilter FromProto(const v1::QueryResultsRequest& p);

// The query an AggregateResults request needs (every kind when it merges per job).
ResultFilter FilterOf(const v1::AggregateResultsRequest& p);

// One row per succeeded job: its train, score, probe and aggregate metrics together (train's unprefixed names get
// `train/`, e.g. train/val_nll); generate and evaluate shard rows are left out.
std::vector<ResultView> MergePerJob(const std::vector<ResultView>& rows);

// Aggregates result rows (merged per job first with `per_job`): groups by the named fields (see
// AggregateResultsRequest.group_by; `cell` expands to every axis but the seed), n/mean/sd/min/max/ci95 per metric,
// groups in the order of their first row. INVALID_ARGUMENT names a malformed group_by field.
StatusOr<v1::AggregateResultsResponse> Aggregate(const std::vector<ResultView>& rows, const std::vector<std::string>& group_by,
                                                 const std::vector<std::string>& metrics, bool per_job = false);

}  // namespace cadenza::coord
