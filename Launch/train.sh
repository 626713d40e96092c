#!/usr/bin/env bash
# Runs ldm on one machine as N data-parallel ranks under mpirun (or as one plain process).
#
#   Launch/train.sh [-n RANKS] [-t THREADS_PER_RANK] -- <ldm subcommand and arguments>
#
#   Launch/train.sh -n 2 -- train-autoencoder --config Configs/autoencoder-kl-f4.yaml
#   Launch/train.sh -n 2 -- train-autoencoder --config Configs/autoencoder-kl-f4.yaml --resume latest
#   Launch/train.sh -- sample --config Configs/ldm.yaml          # one process, all cores
#
# -n RANKS             number of ranks (default 1). With 1, or when mpirun is not installed,
#                      the binary runs directly as a single process (world size 1).
# -t THREADS_PER_RANK  threads each rank uses for BLAS and our own kernels
#                      (default: cores / ranks, at least 1).
#
# Environment:
#   LDM_BINARY       run this executable instead of .build/release/ldm (another build, a test
#                    harness); the default binary is built if it is missing.
#   LDM_MPIRUN_ARGS  extra mpirun options, split on spaces.
#   OPENBLAS_CORETYPE  passed on to every rank when set.
# Everything after `--` is passed to the binary unchanged.
set -euo pipefail
# shellcheck source=Launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"


ranks=1
threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || die "-n needs a value"; ranks="$2"; shift 2 ;;
    -t) [ $# -ge 2 ] || die "-t needs a value"; threads="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (ldm's own arguments go after --; see --help)" ;;
  esac
done
[ $# -gt 0 ] || die "no ldm arguments: put the subcommand after --, e.g. -- train-autoencoder --config FILE"
require_count "-n RANKS" "$ranks"
[ -z "$threads" ] || require_count "-t THREADS_PER_RANK" "$threads"

resolve_binary

if [ "$ranks" -gt 1 ] && ! command -v mpirun >/dev/null 2>&1; then
  echo "${0##*/}: WARNING: mpirun is not installed (apt install openmpi-bin): running ONE process instead of $ranks ranks" >&2
  ranks=1
fi

# Default: split the cores evenly between ranks.
if [ -z "$threads" ]; then
  threads=$(( $(core_count) / ranks ))
  [ "$threads" -ge 1 ] || threads=1
fi
export_thread_counts "$threads"

if [ "$ranks" -eq 1 ]; then
  # No MPI at all: the binary sees no launcher variables and uses a single-process world.
  exec "$LDM_BIN" "$@"
fi

mpirun_common_options
echo "${0##*/}: $ranks ranks × $threads threads: $LDM_BIN ${*@Q}" >&2
exec mpirun -np "$ranks" "${MPIRUN_OPTS[@]}" "$LDM_BIN" "$@"
