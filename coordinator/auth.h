// Bearer-token authentication: a tokens file maps tokens to user names; every RPC presents one.
#pragma once

#include <string>
#include <unordered_map>

#include "core/status.h"

namespace cadenza::coord {

class TokenAuth {
 public:
  // Lines "<token> <user>"; blank lines and lines starting with '#' are skipped. Tokens need >= 8 characters.
  static StatusOr<TokenAuth> Load(const std::string& path);
  static StatusOr<TokenAuth> Parse(const std::string& text, const std::string& path_for_errors);
  // `header` is the value of the `authorization` metadata ("Bearer <token>"); returns the user or UNAUTHENTICATED.
  StatusOr<std::string> Authenticate(const std::string& header) const;
  size_t size() const { return users_.size(); }

 private:
  std::unordered_map<std::string, std::string> users_;  // token -> user
};

}  // namespace cadenza::coord
