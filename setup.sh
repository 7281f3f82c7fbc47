#!/usr/bin/env bash
# setup.sh: get chainrule's dependencies (Debian 12), build it into build/ (Release), run it.
#
#   ./setup.sh run [args...]  build, then run the main example build/examples/lecture with args
#   ./setup.sh test           build everything, then run the whole test suite through ctest
#   ./setup.sh build          only install what is missing and build everything (also the default)
#
# Every mode first apt-get installs whichever of PACKAGES is missing (nothing when all are there),
# then configures and builds in build/. Re-running is cheap: build/ is kept and only what changed is
# rebuilt. Runs as root, or through sudo for apt-get when that is needed.
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config libfmt-dev catch2 libopenblas-dev graphviz)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="$ROOT/build"

usage() {
  sed -n '2,10s/^# \{0,1\}//p' "$0"
}

# shellcheck source=cmake/debian_packages.sh
source "$ROOT/cmake/debian_packages.sh"

build() {  # build [cmake --build args...]
  # Configuring an existing build/ again is quick and leaves unchanged files alone, so nothing is
  # rebuilt needlessly; the build type is pinned so an old cache cannot silently change it.
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
  cmake --build "$BUILD_DIR" --parallel "$(nproc)" "$@"
}

# No cd: the example runs in the caller's directory, so paths in its arguments mean what they say.
mode="${1:-build}"
case "$mode" in
  run)
    shift
    if [[ ! -f "$ROOT/examples/lecture.cpp" ]]; then
      echo "setup.sh: examples/lecture.cpp does not exist yet, nothing to run" >&2
      exit 1
    fi
    install_missing_packages setup.sh "${PACKAGES[@]}"
    build --target lecture
    exec "$BUILD_DIR/examples/lecture" "$@"
    ;;
  test)
    install_missing_packages setup.sh "${PACKAGES[@]}"
    build
    exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j2
    ;;
  build)
    install_missing_packages setup.sh "${PACKAGES[@]}"
    build
    ;;
  -h | --help | help)
    usage
    ;;
  *)
    echo "setup.sh: unknown mode '$mode'" >&2
    usage >&2
    exit 2
    ;;
esac
