#include "core/build_info.h"

namespace cadenza {

extern const char kGitCommit[];  // build/core/git_commit.cc, written by scripts/git-commit.cmake

namespace {
std::string& StoredCommandLine() {
  static std::string line;
  return line;
}
}  // namespace

const char* GitCommit() { return kGitCommit; }

void SetCommandLine(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i] ? argv[i] : "";
    if (i > 0) line += ' ';
    if (!arg.empty() && arg.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos) {
      line += arg;
      continue;
    }
    line += '\'';
    for (char c : arg) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  StoredCommandLine() = line;
}

const std::string& CommandLine() { return StoredCommandLine(); }

}  // namespace cadenza
