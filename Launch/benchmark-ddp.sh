#!/usr/bin/env bash
# Data-parallel scaling of the trainers on this machine: steps/s for the same global batch
# split three ways:
#
#   1 rank  x 1 thread     the baseline of the ideal speedup
#   1 rank  x 2 threads    one process on both cores
#   2 ranks x 1 thread     data parallel (mpirun -np 2)
#   2 independent x 1      (-p 2x1i) two single processes started together, each on half the
#                          global batch, with no communication: the machine's own bound for
#                          2 ranks (the cores' shared cache, memory bandwidth and clock, and
#                          the kernels' rate at half the batch), against which the 2-rank
#                          run's cost of communication and synchronisation shows
#   2 independent, full    (-p 2x1f) the same with the whole global batch each, i.e. 1x1's
#                          work twice at once: what running beside another process costs by
#                          itself, the ceiling of any 2-rank scaling on this machine
#
# and, for 2 ranks, the share of the step spent in collectives: the gradient allreduce (every
# MPI call for its buckets, timed by GradientSynchronizer), the part of it left waiting after
# backward when it is overlapped with backward, and (autoencoder) the synchronised-BatchNorm
# and adaptive-weight collectives.
#
#   Launch/benchmark-ddp.sh [-m MODEL] [-c CACHE] [-s STEPS] [-r REPEATS] [-b GLOBAL_BATCH]
#                           [-o on|off|both] [-x MPIRUN_OPTIONS] [-p SETUPS] [-k BUCKET_MIB]
#
# -m MODEL     autoencoder (default): the default Fashion-MNIST autoencoder
#              (Configs/autoencoder_kl_f4_fashion_mnist.yaml, discriminator on from step 0,
#              LPIPS on); ldm: the 10.07 M-parameter class-conditional UNet
#              (Configs/ldm_class_fashion_mnist.yaml, no sampling or evaluation in the timed
#              steps) on the latent cache CACHE.
# -c CACHE     the latent cache for -m ldm (a precompute-latents directory).
# -s STEPS     steps per run (default 30); the first log window (5 steps) is warm-up and
#              is not timed.
# -r REPEATS   runs of each configuration (default 3): the machine may be shared, so every
#              run is printed and the range is reported.
# -b GLOBAL_BATCH  samples per step over all ranks (default 32 = 2 ranks x 16).
# -o on|off|both   2-rank runs with the gradient allreduce overlapped with backward
#              (trainer.overlap_allreduce: true), blocking after it (the trainers' default), or both (default).
# -x MPIRUN_OPTIONS  extra mpirun options for the 2-rank runs, e.g. "--mca btl self,tcp" to
#              send the collectives over TCP (loopback here) as between machines.
# -k BUCKET_MIB  gradient bucket size (trainer.bucket_mib, default the config's: 25).
# -p SETUPS    which configurations to run, e.g. "2x1" (default "1x1 1x2 2x1"; 2x1i and
#              2x1f on request); the speedup lines need 1x1. Each repeat runs every
#              configuration once, so that a machine whose speed drifts shifts all of them
#              alike, and the medians pair the runs of each repeat.
#
# Environment: LDM_BINARY (as Launch/train.sh), LPIPS_WEIGHTS (default
# Checkpoints/pretrained/lpips_vgg16.safetensors), KEEP=1 keeps the run directories.
set -euo pipefail
# shellcheck source=Launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

steps=30
repeats=3
global=32
model=autoencoder
cache=""
overlap=both
mpirun_options=""
setups="1x1 1x2 2x1"
bucket=""
while [ $# -gt 0 ]; do
  case "$1" in
    -m) model="$2"; shift 2 ;;
    -c) cache="$2"; shift 2 ;;
    -s) steps="$2"; shift 2 ;;
    -r) repeats="$2"; shift 2 ;;
    -b) global="$2"; shift 2 ;;
    -o) overlap="$2"; shift 2 ;;
    -x) mpirun_options="$2"; shift 2 ;;
    -p) setups="$2"; shift 2 ;;
    -k) bucket="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count "-s STEPS" "$steps"
require_count "-r REPEATS" "$repeats"
require_count "-b GLOBAL_BATCH" "$global"
[ $((global % 2)) -eq 0 ] || die "-b GLOBAL_BATCH must be even (it is split over 2 ranks)"
[ -z "$bucket" ] || require_count "-k BUCKET_MIB" "$bucket"
[ "$steps" -gt 5 ] || die "-s STEPS must be more than the 5 warm-up steps"
case "$overlap" in on) overlaps=true ;; off) overlaps=false ;; both) overlaps="true false" ;;
  *) die "-o must be on, off or both, got '$overlap'" ;; esac
for setup in $setups; do
  case "$setup" in 1x1|1x2|2x1|2x1i|2x1f) ;; *) die "-p: unknown configuration '$setup' (use 1x1, 1x2, 2x1, 2x1i, 2x1f)" ;; esac
done
case "$model" in
  autoencoder)
    weights="${LPIPS_WEIGHTS:-$REPO_DIR/Checkpoints/pretrained/lpips_vgg16.safetensors}"
    [ -f "$weights" ] || die "LPIPS weights $weights are missing (Launch/fetch_lpips_weights.sh, or set LPIPS_WEIGHTS)" ;;
  ldm)
    [ -n "$cache" ] || die "-m ldm needs -c CACHE (a latent cache written by ldm precompute-latents)"
    [ -f "$cache/manifest.json" ] || die "-c $cache is not a latent cache (no manifest.json)" ;;
  *) die "-m must be autoencoder or ldm, got '$model'" ;;
esac
resolve_binary
export LDM_BINARY="$LDM_BIN"

work=$(mktemp -d "${TMPDIR:-/tmp}/ldm-benchmark-ddp.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

# config RANKS OVERLAP: the model's config with this run's batch per rank, the overlap
# setting, and no images, checkpoints, samples or held-out evaluation in the timed steps (the
# LDM's grid and evaluation after the last step are cut to a token size: not timed, but not
# worth waiting for).
config() {
  local ranks=$1 file="$work/config-$1-$2.yaml"
  if [ "$model" = autoencoder ]; then
    sed -e "s/^\( *disc_start:\).*/\1 0/" \
        -e "s/^\( *batch_size:\).*/\1 $((global / ranks))/" \
        -e "s/^\( *log_every:\).*/\1 5/" \
        -e "s/^\( *image_every:\).*/\1 100000/" \
        -e "s/^\( *checkpoint_every:\).*/\1 100000/" \
        -e "s/^trainer:.*/&\n  overlap_allreduce: $2${bucket:+\\n  bucket_mib: $bucket}/" \
        "$REPO_DIR/Configs/autoencoder_kl_f4_fashion_mnist.yaml" > "$file"
    printf '  evaluation_images: 2\n' >> "$file"
  else
    sed -e "s|^\( *cache:\).*|\1 $cache|" \
        -e "s/^\( *batch_size:\).*/\1 $((global / ranks))/" \
        -e "s/^\( *log_every:\).*/\1 5/" \
        -e "s/^\( *checkpoint_every:\).*/\1 100000/" \
        -e "s/^\( *every:\).*/\1 100000/" \
        -e "s/^\( *steps:\).*/\1 2/" -e "s/^\( *per_class:\).*/\1 1/" -e "s/^\( *samples:\).*/\1 64/" \
        -e "s/^trainer:.*/&\n  overlap_allreduce: $2${bucket:+\\n  bucket_mib: $bucket}/" \
        "$REPO_DIR/Configs/ldm_class_fashion_mnist.yaml" > "$file"
  fi
  echo "$file"
}

# training_args RANKS OVERLAP: sets the caller's `args` to the ldm command of one run.
training_args() {
  if [ "$model" = autoencoder ]; then
    args=(train-autoencoder --config "$(config "$1" "$2")" --lpips-weights "$weights")
  else
    args=(train-ldm --config "$(config "$1" "$2")")
  fi
}

# Mean steps/s of a run directory's log windows after the first (warm-up).
steps_per_second() {
  awk -F'"seconds_per_step":' 'NR > 1 { split($2, v, /[,}]/); t += v[1]; n++ } END { if (n) printf "%.4f", n / t }' \
      "$1/metrics.jsonl"
}

# run_independent INDEX SHARE: two single processes at once, each on half the global batch
# (SHARE 2) or on all of it (SHARE 1); prints the steps/s of the pair (one step each) as the
# run's first field.
run_independent() {
  local dir="$work/run-2x1i-$1-$2" args a b
  training_args "$2" false
  "$LAUNCH_DIR/train.sh" -n 1 -t 1 -- "${args[@]}" --max-steps "$steps" --run-dir "$dir-a" >"$dir-a.log" 2>&1 &
  a=$!
  "$LAUNCH_DIR/train.sh" -n 1 -t 1 -- "${args[@]}" --max-steps "$steps" --run-dir "$dir-b" >"$dir-b.log" 2>&1 &
  b=$!
  wait "$a" || { cat "$dir-a.log" >&2; die "run failed"; }
  wait "$b" || { cat "$dir-b.log" >&2; die "run failed"; }
  # The pair finishes a global step when its slower process does.
  awk -v a="$(steps_per_second "$dir-a")" -v b="$(steps_per_second "$dir-b")" \
      'BEGIN { printf "%.4f - - -\n", (a < b ? a : b) }'
}

# run RANKS THREADS INDEX OVERLAP: prints "<steps/s> <allreduce %> <wait %> <collective %>".
run() {
  local ranks=$1 threads=$2 dir="$work/run-$1x$2-$3-$4" out args
  training_args "$ranks" "$4"
  out=$(LDM_MPIRUN_ARGS="$([ "$ranks" -gt 1 ] && echo "$mpirun_options")" \
        "$LAUNCH_DIR/train.sh" -n "$ranks" -t "$threads" -- "${args[@]}" --max-steps "$steps" --run-dir "$dir" 2>&1) \
    || { echo "$out" >&2; die "run failed"; }
  local sps
  sps=$(steps_per_second "$dir")
  local line allreduce wait collectives
  line=$(grep '^communication:' <<<"$out" || true)
  allreduce=$(sed -n 's/.*gradient allreduce [0-9.]* s (\([0-9.]*\) %).*/\1/p' <<<"$line")
  wait=$(sed -n 's/.*waiting after it [0-9.]* s (\([0-9.]*\) %).*/\1/p' <<<"$line")
  collectives=$(sed -n 's/.*adaptive weight) [0-9.]* s (\([0-9.]*\) %).*/\1/p' <<<"$line")
  echo "$sps ${allreduce:--} ${wait:--} ${collectives:--}"
}

echo "$model: global batch $global, $steps steps per run (5 warm-up), $repeats runs each, $(core_count) cores," \
     "bucket_mib ${bucket:-25}, 2-rank mpirun options: ${mpirun_options:-none}; load: $(uptime | sed 's/.*load average: //')"
declare -A best worst rate
for i in $(seq "$repeats"); do
  for setup in $setups; do
    ranks=${setup%x*} threads=${setup#*x}
    modes=true
    [ "$setup" != 2x1i ] && [ "$setup" != 2x1f ] && [ "$ranks" -gt 1 ] && modes=$overlaps
    for mode in $modes; do
      # A failed run ends the benchmark (its error is printed), not a summary of empty numbers.
      if [ "$setup" = 2x1i ]; then
        result=$(run_independent "$i" 2) || exit 1
        key=2x1-independent
      elif [ "$setup" = 2x1f ]; then
        result=$(run_independent "$i" 1) || exit 1
        key=2x1-full-batch-each
      else
        result=$(run "$ranks" "$threads" "$i" "$mode") || exit 1
        key="${ranks}x${threads}"
        [ "$ranks" -gt 1 ] && key="$key-$([ "$mode" = true ] && echo overlapped || echo blocking)"
      fi
      read -r sps allreduce wait collectives <<<"$result"
      printf '%s, run %d: %s steps/s' "$key" "$i" "$sps"
      if [ "$ranks" -gt 1 ] && [ "$setup" != 2x1i ] && [ "$setup" != 2x1f ]; then
        printf ', gradient allreduce %s %% of step time' "$allreduce"
        [ "$mode" = true ] && printf ' (waiting after backward %s %%)' "$wait"
        [ "$model" = autoencoder ] && printf ', BatchNorm/d_weight collectives %s %%' "$collectives"
      fi
      printf '\n'
      rate[$key,$i]=$sps
      best[$key]=$(awk -v a="${best[$key]:-0}" -v b="$sps" 'BEGIN { print (b > a ? b : a) }')
      worst[$key]=$(awk -v a="${worst[$key]:-1e9}" -v b="$sps" 'BEGIN { print (b < a ? b : a) }')
    done
  done
done
for key in "${!best[@]}"; do
  printf 'steps/s %-16s: %s .. %s\n' "$key" "${worst[$key]}" "${best[$key]}"
done | sort
if [ -n "${best[1x1]:-}" ]; then
  for key in 2x1-overlapped 2x1-blocking 1x2 2x1-independent; do
    [ -n "${best[$key]:-}" ] || continue
    awk -v key="$key" -v b1="${best[1x1]}" -v w1="${worst[1x1]}" -v b="${best[$key]}" -v w="${worst[$key]}" 'BEGIN {
      printf "speedup of %s over 1x1 (ideal 2): %.2f .. %.2f (%.0f .. %.0f %% of ideal)\n", key, w / b1, b / w1, 50 * w / b1, 50 * b / w1
    }'
  done
fi
# Paired by repeat (runs of one repeat are neighbours in time, so a drifting machine moves
# both alike): the median of the speedups.
if [ -n "${best[1x1]:-}" ]; then
  for key in 2x1-overlapped 2x1-blocking 1x2 2x1-independent; do
    [ -n "${best[$key]:-}" ] || continue
    for i in $(seq "$repeats"); do echo "${rate[$key,$i]} ${rate[1x1,$i]}"; done |
      awk '{ print $1 / $2 }' | sort -g |
      awk -v key="$key" '{ r[NR] = $1 } END { m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
        printf "speedup of %s over 1x1, median paired by repeat: %.2f (%.0f %% of ideal)\n", key, m, 50 * m }'
  done
fi
# Two processes at once, each with 1x1's work: how fast each runs beside the other, against
# 1x1 alone (the cores' shared cache, memory bandwidth and clock). Scaling over 1x1 cannot
# beat 2 times this, however little the ranks communicate.
if [ -n "${best[1x1]:-}" ] && [ -n "${best[2x1-full-batch-each]:-}" ]; then
  for i in $(seq "$repeats"); do echo "${rate[2x1-full-batch-each,$i]} ${rate[1x1,$i]}"; done |
    awk '{ print $1 / $2 }' | sort -g |
    awk '{ r[NR] = $1 } END { m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
      printf "two processes at once with 1x1'"'"'s work each run %.0f .. %.0f %% of its speed (median %.0f %%, paired by repeat): the machine'"'"'s bound on 2-rank scaling\n", 100 * r[1], 100 * r[NR], 100 * m }'
fi
# Paired by repeat: a 2-rank run against the two independent processes of the same repeat,
# i.e. the share of the machine's bound it reaches.
for key in 2x1-blocking 2x1-overlapped; do
  [ -n "${best[$key]:-}" ] && [ -n "${best[2x1-independent]:-}" ] || continue
  for i in $(seq "$repeats"); do echo "${rate[$key,$i]} ${rate[2x1-independent,$i]}"; done |
    awk -v key="$key" '{ r = $1 / $2; lo = (NR == 1 || r < lo) ? r : lo; hi = (NR == 1 || r > hi) ? r : hi }
      END { printf "%s against 2 independent processes on the same half batches, paired by repeat: %.0f .. %.0f %%\n", key, 100 * lo, 100 * hi }'
done
