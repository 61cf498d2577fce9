// Conversions between the cadenza.v1 protobuf messages and the coordinator's plain records, and Status <-> gRPC.
#pragma once

#include <grpcpp/support/status.h>

#include "cadenza/v1/client.pb.h"
#include "cadenza/v1/common.pb.h"
#include "cadenza/v1/worker.pb.h"
#include "coordinator/scheduler.h"
#include "coordinator/types.h"
#include "core/status.h"

namespace cadenza::coord {

grpc::Status ToGrpc(const Status& s);
// "train", "generate", "evaluate", "aggregate" (or "unknown") for log lines and errors.
const char* TaskKindName(v1::TaskKind k);
Status FromGrpc(const grpc::Status& s);

ExperimentSpec FromProto(const v1::ExperimentSpec& p);
SweepSpec FromProto(const v1::SweepSpec& p);
void ToProto(const ExperimentSpec& s, v1::ExperimentSpec* p);
void ToProto(const Assignment& a, int64_t lease_expires_unix_ms, v1::Task* p);
void ToProto(const JobView& v, v1::Job* p);
void ToProto(const ResultView& v, v1::ResultRow* p);
ResultFilter FromProto(const v1::QueryResultsRequest& p);

// Aggregates result rows: groups by the named fields, mean/stddev/min/max per metric. INVALID_ARGUMENT names an
// unknown group_by field.
StatusOr<v1::AggregateResultsResponse> Aggregate(const std::vector<ResultView>& rows, const std::vector<std::string>& group_by,
                                                 const std::vector<std::string>& metrics);

}  // namespace cadenza::coord
