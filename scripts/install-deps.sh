#!/usr/bin/env bash
# Installs everything cadenza builds, tests and runs with: Debian's apt, then the report page's pinned npm packages
# (core/report/web/package-lock.json: the chart library embedded into the binaries, puppeteer-core for the browser
# test). Idempotent.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang libclang-rt-14-dev lld
  libtorch-dev libopenblas0-openmp libgloo-dev libdnnl-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libsqlite3-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libfluidsynth-dev fluidsynth fluid-soundfont-gm
  python3-torch python3-mido python3-h5py python3-numpy
  gnuplot-nox
  libcpp-httplib-dev chromium prometheus
  slurm-wlm munge  # the Slurm tests bring up a one-machine cluster (slurm/local-cluster.sh, tests/integration/slurm_test.cc)
)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)  # a nodejs that brings its own npm (nodesource) is kept

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
else
  echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt run (unattended upgrades, a parallel shell) instead of failing at once.
  apt_wait=(-o DPkg::Lock::Timeout=900)
  $SUDO apt-get "${apt_wait[@]}" update -qq
  $SUDO apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The page's npm packages, exactly as the lockfile pins them; again only when the lockfile changed.
web="$(cd "$(dirname "${BASH_SOURCE[0]}")/../core/report/web" && pwd)"
if ! cmp -s "$web/package-lock.json" "$web/node_modules/.cadenza-installed-lock.json"; then
  echo "install-deps: npm ci in core/report/web (uplot, puppeteer-core; pinned by package-lock.json)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$web/package-lock.json" "$web/node_modules/.cadenza-installed-lock.json"
fi
echo "install-deps: done"
