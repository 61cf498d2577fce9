// cpp-httplib adapter of HttpApi (see http_server.h).
#include "coordinator/http_server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdlib>

namespace cadenza::coord {

Status SplitHostPort(const std::string& address, const std::string& key, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return InvalidArgument(key + ": expected host:port, found '" + address + "'");
  }
  *host = address.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  char* end = nullptr;
  const long p = std::strtol(address.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p < 0 || p > 65535) return InvalidArgument(key + ": bad port in '" + address + "'");
  *port = static_cast<int>(p);
  return Status::Ok();
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen, const std::string& tls_cert,
                                                        const std::string& tls_key, const HttpApi* api) {
  std::string host;
  int port = 0;
  CADENZA_RETURN_IF_ERROR(SplitHostPort(listen, "http.listen", &host, &port));
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->tls_ = !tls_cert.empty();
  if (s->tls_) {
    auto ssl = std::make_unique<httplib::SSLServer>(tls_cert.c_str(), tls_key.c_str());
    if (!ssl->is_valid()) return InvalidArgument("http: cannot use the TLS certificate " + tls_cert + " / key " + tls_key);
    s->server_ = std::move(ssl);
  } else {
    s->server_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& srv = *s->server_;
  // SO_REUSEADDR alone: a second coordinator on the same port must fail to bind, not share it (SO_REUSEPORT).
  // TCP_NODELAY (inherited by accepted sockets): httplib writes headers and body apart, and Nagle's algorithm with
  // the client's delayed ACK would hold each small answer back about 40 ms.
  srv.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  });
  srv.new_task_queue = [] { return new httplib::ThreadPool(4); };  // reads are short; dashboards are few
  srv.set_payload_max_length(64 << 10);                             // read-only: no request needs a body
  srv.set_read_timeout(10, 0);
  auto handle = [api](const httplib::Request& req, httplib::Response& res) {
    HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    r.query.insert(req.params.begin(), req.params.end());
    r.authorization = req.get_header_value("Authorization");
    HttpResponse out = api->Handle(r);
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(std::move(out.body), out.content_type);
  };
  srv.Get(R"(.*)", handle);
  srv.Post(R"(.*)", handle);  // answered 405 by the API: it is read-only
  srv.Put(R"(.*)", handle);
  srv.Delete(R"(.*)", handle);
  srv.Patch(R"(.*)", handle);
  s->port_ = port == 0 ? srv.bind_to_any_port(host) : (srv.bind_to_port(host, port) ? port : -1);
  if (s->port_ <= 0) {
    return Unavailable("http.listen " + listen + ": cannot bind (is another process, e.g. a second coordinator, on that port?)");
  }
  s->thread_ = std::thread([srv = s->server_.get()] { srv->listen_after_bind(); });
  return s;
}

void HttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace cadenza::coord
