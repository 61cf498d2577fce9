// The coordinator process: store + registry + scheduler behind thin gRPC adapters, a reaper thread, health service.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "coordinator/auth.h"
#include "coordinator/config.h"
#include "coordinator/http_api.h"
#include "coordinator/http_server.h"
#include "coordinator/launch_controller.h"
#include "coordinator/metrics.h"
#include "coordinator/registry.h"
#include "coordinator/result_query.h"
#include "coordinator/scheduler.h"
#include "coordinator/store.h"
#include "core/status.h"

namespace grpc {
class Server;
}

namespace cadenza::coord {

class ClientServiceImpl;
class WorkerServiceImpl;

class CoordinatorServer {
 public:
  // Opens the database (recovering jobs, tasks, leases and worker groups), loads the tokens, binds and serves.
  static StatusOr<std::unique_ptr<CoordinatorServer>> Start(const CoordinatorConfig& config);
  ~CoordinatorServer();

  int port() const { return port_; }  // the bound port (useful with listen port 0)
  int http_port() const { return http_ ? http_->port() : 0; }  // 0: no HTTP listener (http.listen: off)
  void Wait();      // until Shutdown
  void Shutdown();  // stops serving (in-flight calls get a short deadline) and the reaper

  Scheduler& scheduler() { return *scheduler_; }
  WorkerRegistry& registry() { return *registry_; }
  ResultQuery& results() { return *results_; }
  CoordinatorMetrics& metrics() { return *metrics_; }
  // The launcher whose groups and decisions ListJobs reports (`cadenza status`); null: none. Not owned.
  void AttachLauncher(LaunchController* launcher) { launcher_.store(launcher); }

 private:
  CoordinatorServer() = default;
  void ReaperLoop();

  CoordinatorConfig config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ResultQuery> results_;  // QueryResults and the HTTP API's reads, on their own connections (outlives the writers)
  std::unique_ptr<WorkerRegistry> registry_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<TokenAuth> auth_;
  std::unique_ptr<CoordinatorMetrics> metrics_;
  std::unique_ptr<HttpApi> http_api_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<ClientServiceImpl> client_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  std::thread reaper_;
  std::atomic<bool> stopping_{false};
  std::atomic<LaunchController*> launcher_{nullptr};
  std::mutex shutdown_mu_;
  int port_ = 0;
};

// Wall-clock milliseconds since the Unix epoch (leases and timestamps).
int64_t NowUnixMs();

}  // namespace cadenza::coord
