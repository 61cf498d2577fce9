// Gradient buckets filled by per-parameter autograd hooks, reduced with non-blocking allreduces during backward.
#include "worker/gradient_reducer.h"

#include <cstdio>
#include <unordered_set>

namespace cadenza {

GradientReducer::GradientReducer(Communicator& comm, ReducerOptions options) : comm_(comm), options_(std::move(options)) {
  if (options_.bucket_bytes < sizeof(float)) options_.bucket_bytes = sizeof(float);
}

GradientReducer::~GradientReducer() {
  for (size_t i = 0; i < hooked_.size(); ++i) hooked_[i].remove_hook(hook_ids_[i]);
}

Status GradientReducer::Attach(torch::nn::Module& model) {
  if (attached_) return FailedPrecondition("GradientReducer::Attach: already attached to a model");
  // 1. Rank 0's parameters and buffers everywhere (same initial state even if the seeds differed).
  std::vector<torch::Tensor> state;
  for (auto& p : model.parameters()) state.push_back(p);
  for (auto& b : model.buffers()) state.push_back(b);
  std::unordered_set<const void*> seen_state;
  for (size_t i = 0; i < state.size(); ++i) {
    torch::Tensor& t = state[i];
    if (!seen_state.insert(t.unsafeGetTensorImpl()).second) continue;
    if (!t.is_contiguous()) return FailedPrecondition("GradientReducer: tensor " + std::to_string(i) + " is not contiguous");
    torch::NoGradGuard no_grad;
    Status s = comm_.Broadcast(t.data_ptr(), t.numel() * t.element_size(), 0,
                               "broadcast of parameter/buffer " + std::to_string(i) + " from rank 0");
    if (!s.ok()) return s;
  }
  // 2. Buckets: parameters in reverse registration order (backward produces the last layers' gradients
  //    first), each tensor once (a tied embedding is one parameter), filled up to bucket_bytes.
  std::vector<torch::Tensor> unique;
  std::unordered_set<const void*> seen;
  for (auto& p : model.parameters()) {
    if (p.requires_grad() && seen.insert(p.unsafeGetTensorImpl()).second) unique.push_back(p);
  }
  const size_t cap = std::max<size_t>(1, options_.bucket_bytes / sizeof(float));
  for (auto it = unique.rbegin(); it != unique.rend(); ++it) {
    if (it->scalar_type() != torch::kFloat32) {
      return FailedPrecondition("GradientReducer: only float32 parameters are supported (got " +
                                std::string(c10::toString(it->scalar_type())) + ")");
    }
    const size_t n = size_t(it->numel());
    if (buckets_.empty() || (buckets_.back().floats > 0 && buckets_.back().floats + n > cap)) buckets_.emplace_back();
    Bucket& b = buckets_.back();
    params_.push_back({*it, buckets_.size() - 1, b.floats, false});
    b.params.push_back(params_.size() - 1);
    b.floats += n;
    total_floats_ += n;
  }
  for (Bucket& b : buckets_) {
    b.flat = torch::zeros({int64_t(b.floats)}, params_[b.params.front()].tensor.options().requires_grad(false));
  }
  // Every rank must have the same layout, or the allreduces would mix unrelated tensors (or never match).
  int64_t layout[2] = {int64_t(total_floats_), int64_t(buckets_.size())}, root_layout[2] = {layout[0], layout[1]};
  Status s = comm_.Broadcast(root_layout, sizeof root_layout, 0, "broadcast of the gradient bucket layout");
  if (!s.ok()) return s;
  if (root_layout[0] != layout[0] || root_layout[1] != layout[1]) {
    return FailedPrecondition("rank " + std::to_string(comm_.rank()) + " has " + std::to_string(layout[0]) +
                              " gradient floats in " + std::to_string(layout[1]) + " buckets, rank 0 has " +
                              std::to_string(root_layout[0]) + " in " + std::to_string(root_layout[1]) +
                              ": every rank must train the same model config with the same --bucket-mb");
  }
  // 3. A hook per parameter: runs when autograd has the parameter's full gradient for this backward.
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::autograd::Variable v = params_[i].tensor;
    hook_ids_.push_back(v.register_hook([this, i](torch::Tensor grad) { OnGradient(i, grad); }));
    hooked_.push_back(v);
  }
  attached_ = true;
  return BeginStep(step_);
}

Status GradientReducer::BeginStep(int64_t step) {
  step_ = step;
  comm_.Heartbeat(step);  // "this rank has started step `step`"
  for (Bucket& b : buckets_) {
    b.pending = b.params.size();
    b.launched = b.done = false;
    b.request.reset();
  }
  for (Param& p : params_) p.seen = false;
  next_launch_ = 0;
  double_grad_ = false;
  return Status::Ok();
}

void GradientReducer::OnGradient(size_t index, const torch::Tensor& grad) {
  Param& p = params_[index];
  Bucket& b = buckets_[p.bucket];
  if (b.launched) {  // a second gradient after the bucket left: the result would be wrong; report it
    double_grad_ = true;
    return;
  }
  torch::NoGradGuard no_grad;
  torch::Tensor slot = b.flat.narrow(0, int64_t(p.offset), p.tensor.numel());
  if (!p.seen) {
    slot.copy_(grad.reshape({-1}));
    p.seen = true;
    --b.pending;
  } else {
    slot.add_(grad.reshape({-1}));
  }
  LaunchReady();
  Poll();
}

void GradientReducer::LaunchReady() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    Bucket& b = buckets_[next_launch_];
    b.launch_us = Timeline::NowMicros();
    b.request = comm_.StartAllreduceSum(b.flat.data_ptr<float>(), b.floats);
    b.launched = true;
    ++next_launch_;
  }
}

void GradientReducer::MarkDone(size_t i) {
  Bucket& b = buckets_[i];
  b.done = true;
  if (options_.timeline) {
    char name[64];
    std::snprintf(name, sizeof name, "allreduce bucket %zu (%.2f MB)", i, b.floats * 4.0 / 1e6);
    options_.timeline->Add(name, 2 + int(i), b.launch_us, Timeline::NowMicros());
  }
}

void GradientReducer::Poll() {
  for (size_t i = 0; i < next_launch_; ++i) {
    Bucket& b = buckets_[i];
    if (!b.done && b.request->Test()) MarkDone(i);
  }
}

Status GradientReducer::WaitAndWriteBack() {
  const float scale = 1.0f / float(comm_.world());
  for (size_t i = 0; i < buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    if (!b.done) {
      char what[128];
      std::snprintf(what, sizeof what, "allreduce of gradient bucket %zu of %zu (%.2f MB) at step %lld", i,
                    buckets_.size(), b.floats * 4.0 / 1e6, (long long)step_);
      Status s = comm_.Wait(*b.request, what);
      if (!s.ok()) return s;
      MarkDone(i);
    }
    torch::NoGradGuard no_grad;
    if (comm_.world() > 1) b.flat.mul_(scale);
    for (size_t pi : b.params) {
      Param& p = params_[pi];
      auto avg = b.flat.narrow(0, int64_t(p.offset), p.tensor.numel()).view(p.tensor.sizes());
      torch::Tensor& grad = p.tensor.mutable_grad();
      if (!grad.defined()) grad = avg.clone();
      else grad.copy_(avg);
    }
  }
  return Status::Ok();
}

Status GradientReducer::FinishGradients() {
  if (!attached_) return FailedPrecondition("GradientReducer: FinishGradients before Attach");
  if (double_grad_) {
    return Status(StatusCode::kInternal, "GradientReducer: a parameter received a gradient after its bucket was "
                                         "reduced (a second backward in one step?)");
  }
  // Parameters that took no part in this backward contribute zeros (the same on every rank, as the graph is).
  for (Bucket& b : buckets_) {
    if (b.pending == 0) continue;
    for (size_t pi : b.params) {
      Param& p = params_[pi];
      if (p.seen) continue;
      torch::NoGradGuard no_grad;
      b.flat.narrow(0, int64_t(p.offset), p.tensor.numel()).zero_();
      p.seen = true;
    }
    b.pending = 0;
  }
  LaunchReady();
  return WaitAndWriteBack();
}

Status GradientReducer::ReduceExistingGradients() {
  Status s = BeginStep(step_);
  if (!s.ok()) return s;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& g = params_[i].tensor.grad();
    if (g.defined()) OnGradient(i, g);
  }
  return FinishGradients();
}

Status GradientReducer::ReduceBucketsOnly(bool serial) {
  std::vector<std::unique_ptr<CollectiveRequest>> requests;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    requests.push_back(comm_.StartAllreduceSum(buckets_[i].flat.data_ptr<float>(), buckets_[i].floats));
    if (serial) {
      Status s = comm_.Wait(*requests.back(), "allreduce of gradient bucket " + std::to_string(i));
      if (!s.ok()) return s;
    }
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    Status s = comm_.Wait(*requests[i], "allreduce of gradient bucket " + std::to_string(i));
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status GradientReducer::SumAcrossRanks(double* values, int n) {
  return comm_.AllreduceSum(values, size_t(n), "allreduce of " + std::to_string(n) + " scalars at step " + std::to_string(step_));
}

void GradientReducer::RecordPhase(const char* name, int64_t begin_us, int64_t end_us) {
  if (options_.timeline) options_.timeline->Add(name, 1, begin_us, end_us);
}

std::vector<GradientReducer::BucketInfo> GradientReducer::buckets() const {
  std::vector<BucketInfo> out;
  for (const Bucket& b : buckets_) out.push_back({b.params.size(), b.floats});
  return out;
}

}  // namespace cadenza
