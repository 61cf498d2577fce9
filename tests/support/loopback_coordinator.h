// What the tests of a coordinator on 127.0.0.1 share: a temporary folder, a client with a token (the client library
// `cadenza` and `cadenza-worker` use), and a worker group registered through it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "coordinator/client.h"

namespace cadenza::coord::loopback {

// A fresh folder under the system's temporary directory, removed with the object.
class Dir {
 public:
  Dir() : path_(std::filesystem::temp_directory_path() / ("cadenza-grpc-" + std::to_string(getpid()) + "-" + std::to_string(n_++))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~Dir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(File(name)) << text;
    return File(name);
  }

 private:
  static inline int n_ = 0;
  std::filesystem::path path_;
};

inline std::unique_ptr<CoordinatorClient> Client(const std::string& target, const std::string& token) {
  ClientOptions o;
  o.target = target;
  o.token = token;
  o.deadline_ms = 5000;
  return CoordinatorClient::Connect(o);
}

// Registers a group of `ranks` ranks through `c` (a worker or admin token); its id (a failure fails the test).
inline int64_t RegisterGroup(CoordinatorClient* c, int ranks) {
  v1::RegisterWorkerGroupRequest req;
  req.mutable_group()->set_host("localhost");
  req.mutable_group()->set_ranks(ranks);
  req.mutable_group()->set_threads_per_rank(1);
  req.mutable_group()->set_device("cpu");
  v1::RegisterWorkerGroupResponse resp;
  Status s = c->RegisterWorkerGroup(req, &resp);
  EXPECT_TRUE(s.ok()) << s.message();
  return resp.group_id();
}

}  // namespace cadenza::coord::loopback
