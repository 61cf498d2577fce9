// train.precision (fp32 | bf16): which CPUs can run bf16 GEMMs, and the refusal where one cannot. Torch-free.
#pragma once

#include <string>

#include "core/status.h"

namespace cadenza {

// What bf16 mixed precision needs from the machine.
struct CpuFeatures {
  bool avx512_bf16 = false;  // AVX512_BF16 (vdpbf16ps): oneDNN's bf16 GEMM kernels
  bool amx_bf16 = false;     // AMX-BF16 tiles (also enough for oneDNN's bf16 GEMMs)
  bool onednn = false;       // this LibTorch was built with oneDNN (at::hasMKLDNN()): the bf16 GEMMs live there
  std::string cpu;           // the CPU's model name (/proc/cpuinfo), for messages
};

// Asks CPUID (leaf 7, subleaf 1: EAX bit 5 AVX512_BF16; subleaf 0: EDX bit 22 AMX-BF16; AVX-512 state enabled by the
// OS through XGETBV) and LibTorch.
CpuFeatures DetectCpuFeatures();

// What the trainer and the inference paths check: DetectCpuFeatures() (once), or what a test installed.
CpuFeatures CurrentCpuFeatures();

// Makes CurrentCpuFeatures() return `features` while it lives (tests of the refusal on a CPU that has the feature).
class ScopedCpuFeaturesForTesting {
 public:
  explicit ScopedCpuFeaturesForTesting(const CpuFeatures& features);
  ~ScopedCpuFeaturesForTesting();
  ScopedCpuFeaturesForTesting(const ScopedCpuFeaturesForTesting&) = delete;
  ScopedCpuFeaturesForTesting& operator=(const ScopedCpuFeaturesForTesting&) = delete;
};

// OK for "fp32" everywhere and for "bf16" where `cpu` runs bf16 GEMMs natively; otherwise FailedPrecondition that
// names `field` (e.g. "nottingham: train.precision"), what is missing and the way out:
//   "nottingham: train.precision: bf16 needs a CPU with AVX512_BF16 or AMX-BF16 (bf16 GEMMs at fp32 accumulation);
//    this CPU (Intel Xeon ...) has neither: use train.precision: fp32"
// An unknown value is InvalidArgument (config parsing refuses it first).
Status CheckPrecision(const std::string& precision, const CpuFeatures& cpu, const std::string& field);

}  // namespace cadenza
