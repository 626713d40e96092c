#!/usr/bin/env bash
# Runs ldm as data-parallel ranks spread over several machines (Open MPI, ssh).
#
#   Launch/train-multinode.sh -f HOSTFILE [-n RANKS] [-t THREADS_PER_RANK] -- <ldm subcommand and arguments>
#
#   Launch/train-multinode.sh -f Launch/hostfile -- train-autoencoder --config Configs/ae.yaml --resume latest
#
# -f HOSTFILE          Open MPI hostfile, `host slots=N` per line (see Launch/hostfile.example).
# -n RANKS             number of ranks (default: the sum of the hostfile's slots).
# -t THREADS_PER_RANK  threads per rank (default: this machine's cores / the first host's
#                      slots, at least 1; machines are assumed alike).
#
# Environment:
#   LDM_BINARY             run this executable instead of .build/release/ldm.
#   LDM_NETWORK_INTERFACE  network interface (or CIDR) for MPI traffic, e.g. eth0 or
#                          10.0.0.0/24: becomes --mca btl_tcp_if_include / oob_tcp_if_include.
#                          Set it when machines have several interfaces (docker0, virbr0,
#                          a slow management network): Open MPI may otherwise pick one the
#                          other machines cannot reach, and the job hangs at startup.
#   LDM_MPIRUN_ARGS        extra mpirun options, split on spaces.
#   OPENBLAS_CORETYPE, LD_LIBRARY_PATH  forwarded to every rank when set.
#
# Every path (the binary, --config, the data, Checkpoints/) must be valid on every machine:
# run from a shared filesystem (NFS, Lustre, ...) mounted at the same path everywhere: all
# ranks read the data, and a resumed job must find the checkpoints every rank wrote.
set -euo pipefail
# shellcheck source=Launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"


hostfile=""
ranks=""
threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    -f) [ $# -ge 2 ] || die "-f needs a value"; hostfile="$2"; shift 2 ;;
    -n) [ $# -ge 2 ] || die "-n needs a value"; ranks="$2"; shift 2 ;;
    -t) [ $# -ge 2 ] || die "-t needs a value"; threads="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (ldm's own arguments go after --; see --help)" ;;
  esac
done
[ -n "$hostfile" ] || die "-f HOSTFILE is required (see Launch/hostfile.example)"
[ -r "$hostfile" ] || die "cannot read hostfile $hostfile"
[ $# -gt 0 ] || die "no ldm arguments: put the subcommand after --, e.g. -- train-autoencoder --config FILE"
command -v mpirun >/dev/null 2>&1 || die "mpirun is not installed (apt install openmpi-bin)"

# Slots per host line, ignoring comments and blank lines; a host without slots= counts 1.
mapfile -t slots < <(sed -e 's/#.*//' "$hostfile" | awk 'NF { n = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { sub(/^slots=/, "", $i); n = $i } print n }')
[ ${#slots[@]} -gt 0 ] || die "hostfile $hostfile lists no hosts"
for s in "${slots[@]}"; do require_count "slots in $hostfile" "$s"; done

if [ -z "$ranks" ]; then
  ranks=0
  for s in "${slots[@]}"; do ranks=$(( ranks + s )); done
fi
require_count "-n RANKS" "$ranks"
if [ -z "$threads" ]; then
  threads=$(( $(core_count) / slots[0] ))
  [ "$threads" -ge 1 ] || threads=1
fi
require_count "-t THREADS_PER_RANK" "$threads"

resolve_binary
export_thread_counts "$threads"
mpirun_common_options
if [ -n "${LD_LIBRARY_PATH:-}" ]; then MPIRUN_OPTS+=(-x LD_LIBRARY_PATH); fi
if [ -n "${LDM_NETWORK_INTERFACE:-}" ]; then
  MPIRUN_OPTS+=(--mca btl_tcp_if_include "$LDM_NETWORK_INTERFACE" --mca oob_tcp_if_include "$LDM_NETWORK_INTERFACE")
fi

echo "${0##*/}: $ranks ranks × $threads threads on ${#slots[@]} hosts ($hostfile): $LDM_BIN ${*@Q}" >&2
# --wdir: remote ranks start in the same directory, so relative paths resolve alike.
exec mpirun --hostfile "$hostfile" -np "$ranks" --wdir "$PWD" "${MPIRUN_OPTS[@]}" "$LDM_BIN" "$@"
