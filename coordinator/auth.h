// Bearer-token authentication: a tokens file maps tokens to user names and roles; every RPC presents one.
#pragma once

#include <initializer_list>
#include <string>
#include <unordered_map>

#include "core/status.h"

namespace cadenza::coord {

// What a token may do (docs/coordinator.md "Security"):
//   user   - the client RPCs (submit, cancel, status, results, ...) and the HTTP API, for its own jobs;
//   worker - the worker RPCs (register a group, lease, heartbeat, progress, complete, fail) for groups it registered;
//   admin  - both, and acts for any user (cancels or resubmits another user's job, acts for any worker group).
enum class Role { kUser, kWorker, kAdmin };
const char* RoleName(Role role);

// Who called: the token's user and role.
struct Principal {
  std::string user;
  Role role = Role::kUser;
  bool admin() const { return role == Role::kAdmin; }
};

class TokenAuth {
 public:
  // Lines "<token> <user> [role]" with role user (the default: the old two-column form), worker or admin; blank
  // lines and lines starting with '#' are skipped. Tokens need >= 8 characters.
  static StatusOr<TokenAuth> Load(const std::string& path);
  static StatusOr<TokenAuth> Parse(const std::string& text, const std::string& path_for_errors);
  // `header` is the value of the `authorization` metadata ("Bearer <token>"); returns the caller or UNAUTHENTICATED.
  StatusOr<Principal> Authenticate(const std::string& header) const;
  size_t size() const { return principals_.size(); }
  // Whether some token may serve as a worker group (role worker or admin); Load warns when none does.
  bool AnyWorkerToken() const;

 private:
  std::unordered_map<std::string, Principal> principals_;  // token -> user and role
};

// OK when `caller`'s role is admin or one of `allowed`; else PERMISSION_DENIED naming `what` (the RPC or endpoint),
// the roles it needs and the caller's role.
Status RequireRole(const Principal& caller, std::initializer_list<Role> allowed, const std::string& what);

}  // namespace cadenza::coord
