// LibTorch's fp32 matrix products on the CPU through oneDNN instead of the BLAS it was built with.
//
// Debian's LibTorch hands every fp32 GEMM (Linear, matmul, bmm, the LSTM and GRU recurrences, their backward) to
// the Fortran BLAS symbol sgemm_, which is OpenBLAS. oneDNN, which the same LibTorch already links for bf16, runs
// those products 1.8-2.8x faster on this project's AVX-512 machines (docs/PERFORMANCE.md, "oneDNN for fp32 GEMMs").
// cpu_matmul.cc defines sgemm_ in every program that links it, and the dynamic linker binds LibTorch's calls to the
// program's definition ahead of libblas. CADENZA_MATMUL=openblas hands them back to the BLAS (for comparisons).
#pragma once

namespace cadenza {

// "oneDNN" or "OpenBLAS": the library that runs LibTorch's fp32 matrix products in this process.
const char* CpuMatmulLibrary();

}  // namespace cadenza
