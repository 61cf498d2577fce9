// The coordinator's read-only HTTP API as a plain class: a request (method, path, query, Authorization header) in,
// a response (status, content type, body) out. No sockets here (http_server.h adapts cpp-httplib to it), so every
// endpoint is tested without a network. Reads go through ResultQuery's own SQLite connections: never the
// scheduler's lock (docs/dashboard.md).
//
//   GET /                      the live page (the report's page, polling the API; it holds no data itself)
//   GET /healthz               {"status":"ok"} when the database answers, else 503
//   GET /metrics               Prometheus text (CoordinatorMetrics)
//   GET /api/v1/sweeps         every sweep with its jobs by state
//   GET /api/v1/sweeps/N/cells the cell table: exactly `cadenza results --sweep N --format json`
//   GET /api/v1/sweeps/N/report what the page draws: cells, figures (page.h ReportData), notes on unfinished runs
//   GET /api/v1/jobs           ?sweep=&user=&limit=&offset=  jobs with task counts and progress
//   GET /api/v1/jobs/N         one job
//   GET /api/v1/jobs/N/series  ?tag=...  the run's metric series (step, value) from its metrics.csv
//   GET /api/v1/results        ?sweep=&job=&kind=&limit=&offset=  result rows (kind=probe: the probes)
//   GET /api/v1/artifact       ?task=&index=  a PNG a result lists (the SSM heatmaps the page shows), nothing else
// Every /api/v1 and (unless public_metrics) /metrics and /healthz request needs a bearer token of the gRPC side, of
// role user or admin (401 without a known token; 403 for a worker token: worker groups do not read).
// Errors are JSON: {"error": {"code": 4xx, "message": "..."}}.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <utility>

#include "coordinator/auth.h"
#include "coordinator/metrics.h"
#include "coordinator/result_query.h"

namespace cadenza::coord {

struct HttpRequest {
  std::string method = "GET";
  std::string path;                               // without the query string
  std::multimap<std::string, std::string> query;  // decoded parameters
  std::string authorization;                      // the Authorization header ("Bearer <token>"), may be empty
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;
};

struct HttpApiOptions {
  bool public_metrics = false;  // /metrics and /healthz without a token
  std::string source;           // "the coordinator at host:port", shown on the page
  int max_page = 1000;          // the largest `limit` a list accepts
};

class HttpApi {
 public:
  // What /metrics reads besides `metrics`, without the scheduler's lock: tasks by kind and state
  // (Scheduler::TaskCounts), and (groups, ranks) alive now. Pointers must outlive the object.
  struct Live {
    std::function<std::vector<TaskCount>()> task_counts;
    std::function<std::pair<int, int>()> workers;
  };
  HttpApi(const TokenAuth* auth, ResultQuery* reads, CoordinatorMetrics* metrics, Live live, HttpApiOptions options);

  // Thread-safe: every call reads through its own connection.
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  HttpResponse Route(const HttpRequest& r) const;
  HttpResponse Metrics() const;
  HttpResponse Healthz() const;
  HttpResponse Sweeps(const HttpRequest& r) const;
  HttpResponse Cells(int64_t sweep) const;
  // The cell table's rows (what Cells answers), without checking that the sweep exists.
  StatusOr<nlohmann::json> CellRows(int64_t sweep) const;
  HttpResponse Report(int64_t sweep) const;
  HttpResponse Jobs(const HttpRequest& r) const;
  HttpResponse Job(int64_t job) const;
  HttpResponse Series(int64_t job, const HttpRequest& r) const;
  HttpResponse Results(const HttpRequest& r) const;
  HttpResponse Artifact(const HttpRequest& r) const;

  const TokenAuth* auth_;
  ResultQuery* reads_;
  CoordinatorMetrics* metrics_;
  Live live_;
  HttpApiOptions options_;
};

}  // namespace cadenza::coord
