// gemm_bench: the fp32 matrix products of the models' training step, OpenBLAS's sgemm_ (what Debian's LibTorch and
// PyTorch call) against the oneDNN sgemm_ the programs define (core/model/cpu_matmul.h), side by side in one run.
// Usage: build/bench/gemm_bench [--threads N] [--seconds S]
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/model/cpu_matmul.h"

extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace {

using Sgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
                       const float*, const int*, const float*, float*, const int*);

// One product as LibTorch issues it (column-major BLAS arguments), named by the model step it belongs to.
struct Shape {
  const char* what;
  char ta, tb;
  int m, n, k;
};

// Best of 3 rounds of `seconds` each: microseconds per call.
double Time(Sgemm f, const Shape& s, double seconds) {
  const int lda = s.ta == 'N' ? s.m : s.k, ldb = s.tb == 'N' ? s.k : s.n;
  std::vector<float> a(size_t(s.m) * s.k, 0.01f), b(size_t(s.k) * s.n, 0.02f), c(size_t(s.m) * s.n);
  const float alpha = 1.0f, beta = 0.0f;
  double best = 1e300;
  for (int round = 0; round < 3; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    int calls = 0;
    double elapsed = 0;
    do {
      f(&s.ta, &s.tb, &s.m, &s.n, &s.k, &alpha, a.data(), &lda, b.data(), &ldb, &beta, c.data(), &s.m);
      ++calls;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (elapsed < seconds);
    best = std::min(best, elapsed * 1e6 / calls);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gemm_bench: OpenBLAS sgemm_ vs cadenza's oneDNN sgemm_ on the models' training shapes"};
  int threads = 1;
  double seconds = 0.3;
  app.add_option("--threads", threads, "OpenMP threads of both libraries")->capture_default_str();
  app.add_option("--seconds", seconds, "Time per round (best of 3 rounds)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  // The BLAS's own definition is the next one after this program's (cpu_matmul.cc's).
  const auto blas = reinterpret_cast<Sgemm>(dlsym(RTLD_NEXT, "sgemm_"));
  if (blas == nullptr) {
    std::fprintf(stderr, "gemm_bench: no BLAS sgemm_ found after this program's\n");
    return 1;
  }
  if (std::string(cadenza::CpuMatmulLibrary()) != "oneDNN") {
    std::fprintf(stderr, "gemm_bench: unset CADENZA_MATMUL (this program's sgemm_ must run oneDNN)\n");
    return 2;
  }
  // lstm-base (d_model 256, hidden 448, gates 1792) and transformer-base (d_model 256, FFN 1024) at T=256, B=16.
  const Shape shapes[] = {
      {"LSTM recurrence, forward: h W_hh^T (per step)", 'T', 'N', 1792, 16, 448},
      {"LSTM recurrence, backward: dG W_hh (per step)", 'N', 'N', 448, 16, 1792},
      {"LSTM input projection, all steps", 'T', 'N', 1792, 4096, 256},
      {"LSTM weight gradient, all steps", 'N', 'T', 1792, 448, 4096},
      {"Transformer QKV projection", 'T', 'N', 768, 4096, 256},
      {"Transformer FFN up", 'T', 'N', 1024, 4096, 256},
      {"Transformer FFN down, input gradient", 'N', 'N', 1024, 4096, 256},
      {"Transformer FFN weight gradient", 'N', 'T', 1024, 256, 4096},
  };
  std::printf("# gemm_bench: fp32 sgemm_, %d thread(s), best of 3 x %.1f s per cell\n\n", threads, seconds);
  std::printf("| product | m x n x k | OpenBLAS GFLOP/s | oneDNN GFLOP/s | oneDNN / OpenBLAS |\n|---|---|---:|---:|---:|\n");
  for (const Shape& s : shapes) {
    const double flop = 2.0 * s.m * s.n * s.k;
    const double us_blas = Time(blas, s, seconds), us_dnnl = Time(&sgemm_, s, seconds);
    std::printf("| %s | %d x %d x %d | %.1f | %.1f | %.2fx |\n", s.what, s.m, s.n, s.k, flop / us_blas / 1e3, flop / us_dnnl / 1e3,
                us_blas / us_dnnl);
  }
  return 0;
}
