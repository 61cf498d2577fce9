// The HTTP listener of the coordinator: cpp-httplib (Debian's libcpp-httplib) adapted to HttpApi, with TLS from
// the same certificate as gRPC when configured. Binding a port in use fails (no SO_REUSEPORT).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "coordinator/http_api.h"
#include "core/status.h"

namespace httplib {
class Server;
}

namespace cadenza::coord {

class HttpServer {
 public:
  // Serves `api` on `listen` ("host:port"; port 0 picks a free port) until Stop. `api` must outlive the server.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen, const std::string& tls_cert,
                                                     const std::string& tls_key, const HttpApi* api);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  bool tls() const { return tls_; }
  void Stop();

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  bool tls_ = false;
};

// Splits "host:port" ("[::1]:8080" too); INVALID_ARGUMENT naming `key` when it is not one.
Status SplitHostPort(const std::string& address, const std::string& key, std::string* host, int* port);

}  // namespace cadenza::coord
