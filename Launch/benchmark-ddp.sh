#!/usr/bin/env bash
# Data-parallel scaling of the first-stage trainer on this machine: steps/s of the default
# Fashion-MNIST autoencoder (Configs/autoencoder_kl_f4_fashion_mnist.yaml, discriminator on
# from step 0, LPIPS on) for the same global batch split three ways:
#
#   1 rank  x 1 thread     the baseline of the ideal speedup
#   1 rank  x 2 threads    one process on both cores
#   2 ranks x 1 thread     data parallel (mpirun -np 2)
#
# and, for 2 ranks, the share of the step spent in collectives (the gradient allreduce timed
# by GradientSynchronizer; the synchronised-BatchNorm and adaptive-weight collectives).
#
#   Launch/benchmark-ddp.sh [-s STEPS] [-r REPEATS] [-b GLOBAL_BATCH]
#
# -s STEPS     steps per run (default 30); the first log window (5 steps) is warm-up and
#              is not timed.
# -r REPEATS   runs of each configuration (default 3): the machine may be shared, so every
#              run is printed and the range is reported.
# -b GLOBAL_BATCH  samples per step over all ranks (default 32 = 2 ranks x data.batch_size 16).
#
# Environment: LDM_BINARY (as Launch/train.sh), LPIPS_WEIGHTS (default
# Checkpoints/pretrained/lpips_vgg16.safetensors), KEEP=1 keeps the run directories.
set -euo pipefail
# shellcheck source=Launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

steps=30
repeats=3
global=32
while [ $# -gt 0 ]; do
  case "$1" in
    -s) steps="$2"; shift 2 ;;
    -r) repeats="$2"; shift 2 ;;
    -b) global="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count "-s STEPS" "$steps"
require_count "-r REPEATS" "$repeats"
require_count "-b GLOBAL_BATCH" "$global"
[ $((global % 2)) -eq 0 ] || die "-b GLOBAL_BATCH must be even (it is split over 2 ranks)"
[ "$steps" -gt 5 ] || die "-s STEPS must be more than the 5 warm-up steps"
weights="${LPIPS_WEIGHTS:-$REPO_DIR/Checkpoints/pretrained/lpips_vgg16.safetensors}"
[ -f "$weights" ] || die "LPIPS weights $weights are missing (Launch/fetch_lpips_weights.sh, or set LPIPS_WEIGHTS)"
resolve_binary
export LDM_BINARY="$LDM_BIN"

work=$(mktemp -d "${TMPDIR:-/tmp}/ldm-benchmark-ddp.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

# config RANKS: the default config with the discriminator on from the start, this run's
# batch per rank, no images, checkpoints or held-out evaluation in the timed steps.
config() {
  local ranks=$1 file="$work/config-$1.yaml"
  sed -e "s/^\( *disc_start:\).*/\1 0/" \
      -e "s/^\( *batch_size:\).*/\1 $((global / ranks))/" \
      -e "s/^\( *log_every:\).*/\1 5/" \
      -e "s/^\( *image_every:\).*/\1 100000/" \
      -e "s/^\( *checkpoint_every:\).*/\1 100000/" \
      "$REPO_DIR/Configs/autoencoder_kl_f4_fashion_mnist.yaml" > "$file"
  printf '  evaluation_images: 2\n' >> "$file"
  echo "$file"
}

# run RANKS THREADS INDEX: prints "<steps/s> <collective %> <allreduce %>" for one run.
run() {
  local ranks=$1 threads=$2 dir="$work/run-$1x$2-$3" out
  out=$("$LAUNCH_DIR/train.sh" -n "$ranks" -t "$threads" -- train-autoencoder --config "$(config "$ranks")" \
        --max-steps "$steps" --run-dir "$dir" --lpips-weights "$weights" 2>&1) || { echo "$out" >&2; die "run failed"; }
  # Mean seconds per step over the windows after the first (warm-up).
  local sps
  sps=$(awk -F'"seconds_per_step":' 'NR > 1 { split($2, v, /[,}]/); t += v[1]; n++ } END { if (n) printf "%.4f", n / t }' \
        "$dir/metrics.jsonl")
  local line allreduce collectives
  line=$(grep '^communication:' <<<"$out" || true)
  allreduce=$(sed -n 's/.*gradient allreduce [0-9.]* s (\([0-9.]*\) %).*/\1/p' <<<"$line")
  collectives=$(sed -n 's/.*adaptive weight) [0-9.]* s (\([0-9.]*\) %).*/\1/p' <<<"$line")
  echo "$sps ${allreduce:--} ${collectives:--}"
}

echo "global batch $global, $steps steps per run (5 warm-up), $repeats runs each, $(core_count) cores"
declare -A best worst
for setup in "1 1" "1 2" "2 1"; do
  read -r ranks threads <<<"$setup"
  for i in $(seq "$repeats"); do
    read -r sps allreduce collectives <<<"$(run "$ranks" "$threads" "$i")"
    key="${ranks}x${threads}"
    printf '%s ranks x %s threads, run %d: %s steps/s' "$ranks" "$threads" "$i" "$sps"
    [ "$ranks" -gt 1 ] && printf ', gradient allreduce %s %% of step time, BatchNorm/d_weight collectives %s %%' "$allreduce" "$collectives"
    printf '\n'
    best[$key]=$(awk -v a="${best[$key]:-0}" -v b="$sps" 'BEGIN { print (b > a ? b : a) }')
    worst[$key]=$(awk -v a="${worst[$key]:-1e9}" -v b="$sps" 'BEGIN { print (b < a ? b : a) }')
  done
done
for key in 1x1 1x2 2x1; do
  printf 'steps/s %-4s: %s .. %s\n' "$key" "${worst[$key]}" "${best[$key]}"
done
awk -v b1="${best[1x1]}" -v w1="${worst[1x1]}" -v b12="${best[1x2]}" -v w12="${worst[1x2]}" \
    -v b21="${best[2x1]}" -v w21="${worst[2x1]}" 'BEGIN {
  printf "speedup over 1x1 (ideal 2): 2 ranks x 1 thread %.2f .. %.2f (%.0f .. %.0f %% of ideal), 1 rank x 2 threads %.2f .. %.2f\n",
         w21 / b1, b21 / w1, 50 * w21 / b1, 50 * b21 / w1, w12 / b1, b12 / w1
}'
