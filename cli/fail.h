// The commands' one way to end on an error: "cadenza: error: <message>" on stderr and exit code 1. Shared by
// `cadenza` and `cadenza-model` (inline: the two binaries link no common cli library).
#pragma once

#include <iostream>

#include "core/status.h"

namespace cadenza {

constexpr int kExitFailure = 1;  // the command failed (the message says why)
constexpr int kExitUsage = 2;    // bad command line (CLI11's own usage errors exit 2 too)

inline int Fail(const Status& s) {
  std::cerr << "cadenza: error: " << s.message() << "\n";
  return kExitFailure;
}

}  // namespace cadenza
