// CPU probe and refusal for train.precision (precision.h).
#include "core/model/precision.h"

#include <ATen/Context.h>
#include <cpuid.h>

#include <fstream>
#include <mutex>
#include <optional>

namespace cadenza {
namespace {

std::mutex g_override_mutex;
std::optional<CpuFeatures> g_override;

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

}  // namespace

CpuFeatures DetectCpuFeatures() {
  CpuFeatures f;
  f.cpu = CpuModelName();
  f.onednn = at::hasMKLDNN();
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_cpu_supports("avx512f") is false unless the OS saves the AVX-512 state (XGETBV), so the bits below
  // are only believed with it.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
      f.amx_bf16 = (edx >> 22) & 1u;
      if (eax >= 1 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) f.avx512_bf16 = (eax >> 5) & 1u;
    }
  }
#endif
  return f;
}

CpuFeatures CurrentCpuFeatures() {
  {
    std::lock_guard<std::mutex> lock(g_override_mutex);
    if (g_override) return *g_override;
  }
  static const CpuFeatures detected = DetectCpuFeatures();
  return detected;
}

ScopedCpuFeaturesForTesting::ScopedCpuFeaturesForTesting(const CpuFeatures& features) {
  std::lock_guard<std::mutex> lock(g_override_mutex);
  g_override = features;
}

ScopedCpuFeaturesForTesting::~ScopedCpuFeaturesForTesting() {
  std::lock_guard<std::mutex> lock(g_override_mutex);
  g_override.reset();
}

Status CheckPrecision(const std::string& precision, const CpuFeatures& cpu, const std::string& field) {
  if (precision == "fp32") return Status::Ok();
  if (precision != "bf16") return InvalidArgument(field + ": expected fp32 or bf16, found '" + precision + "'");
  if (!cpu.avx512_bf16 && !cpu.amx_bf16) {
    return FailedPrecondition(field + ": bf16 needs a CPU with AVX512_BF16 or AMX-BF16 (bf16 GEMMs with fp32 "
                              "accumulation); this CPU (" + cpu.cpu + ") has neither: use train.precision: fp32");
  }
  if (!cpu.onednn) {
    return FailedPrecondition(field + ": bf16 needs a LibTorch built with oneDNN (its bf16 GEMMs); this one has none "
                              "(at::hasMKLDNN() is false): use train.precision: fp32");
  }
  return Status::Ok();
}

}  // namespace cadenza
