// The commands' one way to end on an error: "cadenza: error: <message>" on stderr and exit code 1. Shared by
// `cadenza` and `cadenza-model` (inline: the two binaries link no common cli library).
#pragma once

#include <iostream>

#include "core/status.h"

namespace cadenza {

inline int Fail(const Status& s) {
  std::cerr << "cadenza: error: " << s.message() << "\n";
  return 1;
}

}  // namespace cadenza
