// sgemm_ (the Fortran BLAS entry LibTorch calls for fp32 GEMMs) served by oneDNN's dnnl_sgemm; see cpu_matmul.h.
#include "core/model/cpu_matmul.h"

#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cadenza {
namespace {

using FortranSgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                              const int*, const float*, const int*, const float*, float*, const int*);

// The BLAS's own sgemm_ (the next definition after this program's), when CADENZA_MATMUL=openblas asks for it.
FortranSgemm BlasSgemm() {
  static const FortranSgemm blas = [] {
    const char* want = std::getenv("CADENZA_MATMUL");
    if (want == nullptr || std::strcmp(want, "openblas") != 0) return FortranSgemm(nullptr);
    auto next = reinterpret_cast<FortranSgemm>(dlsym(RTLD_NEXT, "sgemm_"));
    if (next == nullptr) std::fprintf(stderr, "note: CADENZA_MATMUL=openblas: no BLAS sgemm_ found; oneDNN runs fp32 GEMMs\n");
    return next;
  }();
  return blas;
}

// C = beta * C for a column-major m x n C (what a GEMM with nothing to multiply leaves); beta 0 writes zeros, as
// BLAS does, whatever C held (NaN included).
void ScaleOnly(int m, int n, float beta, float* c, int ldc) {
  for (int j = 0; j < n; ++j) {
    float* col = c + static_cast<long>(j) * ldc;
    for (int i = 0; i < m; ++i) col[i] = beta == 0.0f ? 0.0f : beta * col[i];
  }
}

// BLAS's op letter as oneDNN takes it: N or T ('C', the conjugate transpose, is T for real matrices).
char Op(char blas) { return blas == 'N' || blas == 'n' ? 'N' : 'T'; }

}  // namespace

const char* CpuMatmulLibrary() { return BlasSgemm() != nullptr ? "OpenBLAS" : "oneDNN"; }

}  // namespace cadenza

// Column-major C = alpha * op(A) op(B) + beta * C, as BLAS defines it. A column-major matrix is the row-major
// transpose, so this is oneDNN's row-major C^T = alpha * op(B)^T op(A)^T + beta * C^T: the operands swap.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c, const int* ldc) {
  if (const auto blas = cadenza::BlasSgemm()) return blas(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (*m <= 0 || *n <= 0) return;
  if (*k <= 0 || *alpha == 0.0f) return cadenza::ScaleOnly(*m, *n, *beta, c, *ldc);
  const dnnl_status_t s = dnnl_sgemm(cadenza::Op(*transb), cadenza::Op(*transa), *n, *m, *k, *alpha, b, *ldb, a, *lda, *beta, c, *ldc);
  if (s != dnnl_success) {  // only for arguments BLAS would also refuse (xerbla): say so and stop, as BLAS does
    std::fprintf(stderr, "sgemm_: oneDNN refused %c%c m=%d n=%d k=%d lda=%d ldb=%d ldc=%d (status %d)\n", *transa, *transb, *m, *n,
                 *k, *lda, *ldb, *ldc, static_cast<int>(s));
    std::abort();
  }
}
