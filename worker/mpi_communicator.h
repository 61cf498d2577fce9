// Open MPI collectives on host buffers (non-blocking MPI_I* calls, completed by Test/Wait with a deadline).
#pragma once

#include <memory>

#include "worker/communicator.h"

namespace cadenza {

// Initialises MPI (MPI_THREAD_MULTIPLE) on first use; fails if the library cannot provide it.
// The communicator works on a duplicate of MPI_COMM_WORLD.
StatusOr<std::unique_ptr<Communicator>> MakeMpiCommunicator(int* argc, char*** argv);

// True when this process was started by mpirun/srun as one of several ranks (environment check, no MPI call).
bool LaunchedAsMpiJob();

// Ends the job: MPI_Abort(MPI_COMM_WORLD, code) if MPI is up, else _exit(code). Never returns.
[[noreturn]] void AbortJob(int code);

// MPI_Finalize if MPI was initialised and not finalised.
void FinalizeMpi();

}  // namespace cadenza
