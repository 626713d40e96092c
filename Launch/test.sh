#!/usr/bin/env bash
# The test suite: unit and numeric tests in release mode (numeric tests are slow in debug),
# including the MPI tests, which launch themselves under `mpirun -np 2`.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Every reuse of a reordered convolution weight is checked against the weight's values when
# it was reordered (WeightLayoutCache): a stale copy stops the test that used it.
export LDM_CHECK_WEIGHT_CACHE=1
# `swift test` builds the executables the MPI tests launch, too.
swift test -c release -Xswiftc -enable-testing "$@"
