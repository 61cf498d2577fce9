// NCCL collectives on CUDA device buffers, bootstrapped over MPI. Built only where CUDA and NCCL exist.
#pragma once

#include <memory>

#include "worker/communicator.h"

namespace cadenza {

// `bootstrap` (an MPI communicator) carries rank 0's ncclUniqueId; `device` is this rank's CUDA device
// (usually the node-local rank). Buffers given to the returned communicator must be device memory.
StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(Communicator& bootstrap, int device);

}  // namespace cadenza
