// Loads the tokens file and checks `authorization: Bearer <token>` metadata and the caller's role.
#include "coordinator/auth.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/file_util.h"

namespace cadenza::coord {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kUser: return "user";
    case Role::kWorker: return "worker";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

StatusOr<TokenAuth> TokenAuth::Parse(const std::string& text, const std::string& path) {
  TokenAuth auth;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::istringstream ls(line);
    std::string token, user, role, extra;
    if (!(ls >> token) || token[0] == '#') continue;
    const std::string where = path + ": line " + std::to_string(n);
    if (!(ls >> user)) return InvalidArgument(where + ": expected '<token> <user> [role]'");
    Principal p;
    p.user = user;
    if (ls >> role) {
      if (role == "user") p.role = Role::kUser;
      else if (role == "worker") p.role = Role::kWorker;
      else if (role == "admin") p.role = Role::kAdmin;
      else return InvalidArgument(where + ": role: expected user, worker or admin, found '" + role + "'");
    }
    if (ls >> extra) return InvalidArgument(where + ": expected '<token> <user> [role]', found more fields");
    if (token.size() < 8) return InvalidArgument(where + ": token too short (expected >= 8 characters)");
    if (!auth.principals_.emplace(token, std::move(p)).second) return InvalidArgument(where + ": duplicate token");
  }
  if (auth.principals_.empty()) return InvalidArgument(path + ": no tokens (expected lines '<token> <user> [role]')");
  return auth;
}

StatusOr<TokenAuth> TokenAuth::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return NotFound(path + ": cannot read the tokens file (create it with lines '<token> <user> [user|worker|admin]', e.g. "
                    "(umask 077; echo \"$(openssl rand -hex 16) $USER user\" > " + path + "; echo \"$(openssl rand -hex 16) "
                    "$USER-workers worker\" >> " + path + "))");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  // Bearer tokens act as their users: say so when others on the machine can read them (the coordinator still starts).
  if (const std::string w = ReadableByOthersWarning(path, "tokens file"); !w.empty()) std::fprintf(stderr, "%s\n", w.c_str());
  auto auth = Parse(ss.str(), path);
  if (auth.ok() && !auth->AnyWorkerToken()) {  // a file from before roles: nobody could serve tasks, say so at start
    std::fprintf(stderr, "warning: %s has no token of role worker or admin: no worker group can register (add a line "
                 "'<token> <user> worker' and give cadenza-worker that token)\n", path.c_str());
  }
  return auth;
}

bool TokenAuth::AnyWorkerToken() const {
  for (const auto& [token, p] : principals_) {
    if (p.role != Role::kUser) return true;
  }
  return false;
}

StatusOr<Principal> TokenAuth::Authenticate(const std::string& header) const {
  static const std::string kBearer = "Bearer ";
  if (header.empty()) return Unauthenticated("missing metadata 'authorization: Bearer <token>'");
  if (header.compare(0, kBearer.size(), kBearer) != 0) return Unauthenticated("authorization: expected 'Bearer <token>'");
  auto it = principals_.find(header.substr(kBearer.size()));
  if (it == principals_.end()) return Unauthenticated("authorization: unknown token");
  return it->second;
}

Status RequireRole(const Principal& caller, std::initializer_list<Role> allowed, const std::string& what) {
  if (caller.role == Role::kAdmin) return Status::Ok();
  std::string needed;
  for (Role r : allowed) {
    if (r == caller.role) return Status::Ok();
    needed += std::string(RoleName(r)) + " or ";
  }
  needed += "admin";
  return PermissionDenied(what + " needs a " + needed + " token; this token (user '" + caller.user + "') has role " +
                          RoleName(caller.role));
}

}  // namespace cadenza::coord
