# shellcheck shell=bash
# Shared by Launch/train.sh and Launch/train-multinode.sh (sourced, not run).
# Resolves the binary, counts cores, and builds the mpirun options every launch needs.

# The repository root, whatever the caller's working directory (paths in the ldm arguments,
# like --config, stay relative to the caller's directory: we never cd).
LAUNCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LAUNCH_DIR/.." && pwd)"

die() {
  echo "${0##*/}: $*" >&2
  exit 2
}

# Prints the calling script's header comment (after the #! line, up to the first line that
# is not a comment): each script documents its usage once, there.
usage() {
  awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0"
}

# require_count NAME VALUE: VALUE must be a whole number ≥ 1.
require_count() {
  if ! [[ "$2" =~ ^[0-9]+$ ]] || [ "$2" -lt 1 ]; then die "$1 must be a whole number ≥ 1, got '$2'"; fi
}

# Cores this process may use (nproc honours CPU affinity and cgroup cpusets).
core_count() {
  nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1
}

# Sets LDM_BIN to the program to launch: $LDM_BINARY when set (any executable, e.g. a test
# harness or a build elsewhere), else the release build of ldm, built here if it is missing.
resolve_binary() {
  if [ -n "${LDM_BINARY:-}" ]; then
    [ -x "$LDM_BINARY" ] || die "LDM_BINARY=$LDM_BINARY is not an executable file"
    LDM_BIN="$LDM_BINARY"
    return
  fi
  LDM_BIN="$REPO_DIR/.build/release/ldm"
  if [ ! -x "$LDM_BIN" ]; then
    echo "${0##*/}: $LDM_BIN is missing, building it (swift build -c release --product ldm)" >&2
    (cd "$REPO_DIR" && swift build -c release --product ldm) >&2
    [ -x "$LDM_BIN" ] || die "the build did not produce $LDM_BIN"
  fi
}

# Exports the thread counts every rank reads: LDM_NUM_THREADS sizes our own parallel loops
# (Parallel.threadCount), OPENBLAS_NUM_THREADS sizes OpenBLAS's pool. Both equal the cores a
# rank owns, so ranks × threads ≈ cores and nobody oversubscribes the machine.
export_thread_counts() {
  export LDM_NUM_THREADS="$1" OPENBLAS_NUM_THREADS="$1"
}

# Fills MPIRUN_OPTS with the options common to every mpirun launch (Open MPI syntax).
mpirun_common_options() {
  MPIRUN_OPTS=(
    # Each rank runs several threads; Open MPI's default binds a rank to one core (or
    # socket), which would squeeze all of a rank's threads onto it. Let the kernel schedule.
    --bind-to none
    # Allow more ranks than Open MPI counts slots (useful on small machines and for tests).
    --oversubscribe
    # Forward the thread counts to every rank (remote ranks do not inherit our environment).
    -x LDM_NUM_THREADS -x OPENBLAS_NUM_THREADS
  )
  # OpenBLAS picks kernels by CPU type; when it is pinned (e.g. on CPUs it misdetects),
  # every rank must use the same setting.
  if [ -n "${OPENBLAS_CORETYPE:-}" ]; then MPIRUN_OPTS+=(-x OPENBLAS_CORETYPE); fi
  # The compute backend, its convolution algorithm and the allreduce's transport, when
  # forced, are forced on every rank.
  if [ -n "${LDM_BACKEND:-}" ]; then MPIRUN_OPTS+=(-x LDM_BACKEND); fi
  if [ -n "${LDM_CONV_ALGORITHM:-}" ]; then MPIRUN_OPTS+=(-x LDM_CONV_ALGORITHM); fi
  if [ -n "${LDM_ALLREDUCE:-}" ]; then MPIRUN_OPTS+=(-x LDM_ALLREDUCE); fi
  # Open MPI refuses to start as root without this (containers often run as root).
  if [ "$(id -u)" -eq 0 ]; then MPIRUN_OPTS+=(--allow-run-as-root); fi
  # Anything else for mpirun, e.g. LDM_MPIRUN_ARGS="--mca btl_tcp_if_include eth0".
  if [ -n "${LDM_MPIRUN_ARGS:-}" ]; then
    local extra
    read -r -a extra <<<"$LDM_MPIRUN_ARGS"
    MPIRUN_OPTS+=("${extra[@]}")
  fi
}
