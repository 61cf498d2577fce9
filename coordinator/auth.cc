// Loads the tokens file and checks `authorization: Bearer <token>` metadata.
#include "coordinator/auth.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/file_util.h"

namespace cadenza::coord {

StatusOr<TokenAuth> TokenAuth::Parse(const std::string& text, const std::string& path) {
  TokenAuth auth;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::istringstream ls(line);
    std::string token, user, extra;
    if (!(ls >> token) || token[0] == '#') continue;
    const std::string where = path + ": line " + std::to_string(n);
    if (!(ls >> user)) return InvalidArgument(where + ": expected '<token> <user>'");
    if (ls >> extra) return InvalidArgument(where + ": expected '<token> <user>', found more fields");
    if (token.size() < 8) return InvalidArgument(where + ": token too short (expected >= 8 characters)");
    if (!auth.users_.emplace(token, user).second) return InvalidArgument(where + ": duplicate token");
  }
  if (auth.users_.empty()) return InvalidArgument(path + ": no tokens (expected lines '<token> <user>')");
  return auth;
}

StatusOr<TokenAuth> TokenAuth::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return NotFound(path + ": cannot read the tokens file (create it with lines '<token> <user>', e.g. "
                    "echo \"$(openssl rand -hex 16) $USER\" > " + path + ")");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  // Bearer tokens act as their users: say so when others on the machine can read them (the coordinator still starts).
  if (const std::string w = ReadableByOthersWarning(path, "tokens file"); !w.empty()) std::fprintf(stderr, "%s\n", w.c_str());
  return Parse(ss.str(), path);
}

StatusOr<std::string> TokenAuth::Authenticate(const std::string& header) const {
  static const std::string kBearer = "Bearer ";
  if (header.empty()) return Unauthenticated("missing metadata 'authorization: Bearer <token>'");
  if (header.compare(0, kBearer.size(), kBearer) != 0) return Unauthenticated("authorization: expected 'Bearer <token>'");
  auto it = users_.find(header.substr(kBearer.size()));
  if (it == users_.end()) return Unauthenticated("authorization: unknown token");
  return it->second;
}

}  // namespace cadenza::coord
