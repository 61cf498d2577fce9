// Where a result came from: the build's git commit and this process's command line (recorded with every run).
#pragma once

#include <string>

namespace cadenza {

// `git describe --always --dirty` of the source tree at build time ("unknown" outside a checkout).
const char* GitCommit();

// Main() records argv once; a run's config.yaml then names the command that made it. Arguments holding a space
// or quote are single-quoted, so the line can be pasted back into a shell.
void SetCommandLine(int argc, char** argv);
const std::string& CommandLine();  // "" when main() did not record it (tests)

}  // namespace cadenza
