// MPI implementation of Communicator: Iallreduce/Ibcast/Ibarrier on a duplicated world, step heartbeats.
#include "worker/mpi_communicator.h"

#include <mpi.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

namespace cadenza {
namespace {

constexpr int kHeartbeatTag = 7;

class MpiRequest : public CollectiveRequest {
 public:
  bool Test() override {
    if (done_) return true;
    int flag = 0;
    MPI_Test(&request_, &flag, MPI_STATUS_IGNORE);
    done_ = flag != 0;
    return done_;
  }
  ~MpiRequest() override {
    // A request abandoned after a timeout cannot be completed; the job is being aborted anyway.
    if (!done_ && request_ != MPI_REQUEST_NULL) MPI_Request_free(&request_);
  }
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool done_ = false;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_dup(MPI_COMM_WORLD, &heartbeat_comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &world_);
    peer_step_.assign(world_, -1);
    sent_.assign(world_, 0);
    send_requests_.assign(world_, MPI_REQUEST_NULL);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    for (auto& r : send_requests_)
      if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
    DrainHeartbeats();
    MPI_Comm_free(&heartbeat_comm_);
    MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string name() const override { return "mpi"; }

  std::unique_ptr<CollectiveRequest> StartAllreduceSum(float* data, size_t count) override {
    auto r = std::make_unique<MpiRequest>();
    if (count > size_t(INT_MAX)) std::abort();  // buckets are far smaller; never silently truncate
    MPI_Iallreduce(MPI_IN_PLACE, data, int(count), MPI_FLOAT, MPI_SUM, comm_, &r->request_);
    return r;
  }
  std::unique_ptr<CollectiveRequest> StartAllreduceSum(double* data, size_t count) override {
    auto r = std::make_unique<MpiRequest>();
    if (count > size_t(INT_MAX)) std::abort();
    MPI_Iallreduce(MPI_IN_PLACE, data, int(count), MPI_DOUBLE, MPI_SUM, comm_, &r->request_);
    return r;
  }
  std::unique_ptr<CollectiveRequest> StartBroadcast(void* data, size_t bytes, int root) override {
    auto r = std::make_unique<MpiRequest>();
    if (bytes > size_t(INT_MAX)) std::abort();
    MPI_Ibcast(data, int(bytes), MPI_BYTE, root, comm_, &r->request_);
    return r;
  }
  std::unique_ptr<CollectiveRequest> StartBarrier() override {
    auto r = std::make_unique<MpiRequest>();
    MPI_Ibarrier(comm_, &r->request_);
    return r;
  }

  void Heartbeat(int64_t step) override {
    DrainHeartbeats();
    step_ = step;
    for (int peer = 0; peer < world_; ++peer) {
      if (peer == rank_) continue;
      if (send_requests_[peer] != MPI_REQUEST_NULL) {
        int flag = 0;
        MPI_Test(&send_requests_[peer], &flag, MPI_STATUS_IGNORE);
        if (!flag) continue;  // the peer has not taken the last one yet: skip rather than queue
      }
      sent_[peer] = step;
      MPI_Isend(&sent_[peer], 1, MPI_INT64_T, peer, kHeartbeatTag, heartbeat_comm_, &send_requests_[peer]);
    }
  }

  std::string DescribePeers() override {
    DrainHeartbeats();
    std::string behind, ok;
    for (int peer = 0; peer < world_; ++peer) {
      if (peer == rank_) continue;
      const std::string item = "rank " + std::to_string(peer) + " last at step " + std::to_string(peer_step_[peer]);
      std::string& list = peer_step_[peer] < step_ ? behind : ok;
      if (!list.empty()) list += ", ";
      list += item;
    }
    std::string out = "this rank is at step " + std::to_string(step_);
    if (!behind.empty()) out += "; behind: " + behind;
    if (!ok.empty()) out += "; up to date: " + ok;
    return out;
  }

 private:
  void DrainHeartbeats() {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      MPI_Iprobe(MPI_ANY_SOURCE, kHeartbeatTag, heartbeat_comm_, &flag, &st);
      if (!flag) return;
      int64_t step = 0;
      MPI_Recv(&step, 1, MPI_INT64_T, st.MPI_SOURCE, kHeartbeatTag, heartbeat_comm_, MPI_STATUS_IGNORE);
      peer_step_[st.MPI_SOURCE] = step;
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL, heartbeat_comm_ = MPI_COMM_NULL;
  int rank_ = 0, world_ = 1;
  int64_t step_ = -1;
  std::vector<int64_t> peer_step_, sent_;
  std::vector<MPI_Request> send_requests_;
};

}  // namespace

bool LaunchedAsMpiJob() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "SLURM_NTASKS"}) {
    if (std::getenv(v)) return true;
  }
  return false;
}

StatusOr<std::unique_ptr<Communicator>> MakeMpiCommunicator(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // Open MPI's non-blocking allreduce picks a binomial tree by default here: 2.3 GB/s for the gradient
    // buckets against 3.5-4 GB/s for a blocking MPI_Allreduce. The ring (reduce-scatter + allgather) reaches
    // 4-4.7 GB/s and gives every rank the same sums. An explicit setting in the environment wins.
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
      return Status(StatusCode::kInternal, "MPI_Init_thread failed");
    }
    if (provided < MPI_THREAD_MULTIPLE) {
      return FailedPrecondition("MPI: this MPI library does not provide MPI_THREAD_MULTIPLE (got level " +
                                std::to_string(provided) + ")");
    }
  }
  // Errors come back as codes (and become timeouts or statuses) instead of killing the job without a word.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  return std::unique_ptr<Communicator>(new MpiCommunicator());
}

void AbortJob(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  _exit(code);
}

void FinalizeMpi() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

}  // namespace cadenza
