#!/usr/bin/env bash
# The pipeline as far as it reaches today, end to end, as N ranks on this machine:
#   1. train-autoencoder: the first stage (resumes from its latest checkpoint if interrupted)
#   2. precompute-latents: the frozen encoder writes the zstd latent cache (train + held out)
#   3. cache verify: every shard re-hashed and decoded
#
#   Launch/pipeline.sh [-n RANKS] [-c CONFIG]
#
# -n RANKS   data-parallel ranks (default 2)
# -c CONFIG  first-stage config (default Configs/autoencoder_kl_f4_fashion_mnist.yaml)
# Outputs go to the config's trainer.run_dir; the cache to <run_dir>/latents.
set -euo pipefail
# shellcheck source=Launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ranks=2
config="Configs/autoencoder_kl_f4_fashion_mnist.yaml"
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || die "-n needs a value"; ranks="$2"; shift 2 ;;
    -c) [ $# -ge 2 ] || die "-c needs a value"; config="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count "-n RANKS" "$ranks"
[ -f "$config" ] || die "no config file at $config"
run_dir=$(awk '/^[[:space:]]*run_dir:/ { print $2 }' "$config")
[ -n "$run_dir" ] || die "$config sets no trainer.run_dir"

"$LAUNCH_DIR/train.sh" -n "$ranks" -- train-autoencoder --config "$config" --resume latest
"$LAUNCH_DIR/train.sh" -n "$ranks" -- precompute-latents --autoencoder "$run_dir/autoencoder.safetensors" \
  --data-config "$config" --out "$run_dir/latents"
"$LAUNCH_DIR/train.sh" -n 1 -- cache verify "$run_dir/latents"
