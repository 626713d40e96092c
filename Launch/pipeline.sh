#!/usr/bin/env bash
# The pipeline as far as it reaches today, end to end, as N ranks on this machine:
#   1. train-autoencoder, once per first-stage config in order (each resumes from its latest
#      checkpoint if interrupted); by default two phases of the KL f=4 autoencoder: L1 +
#      LPIPS + PatchGAN, then a fine-tune from its weights without the PatchGAN and with the
#      learning rate annealed (see the configs' headers)
#   2. precompute-latents: the last phase's frozen encoder writes the zstd latent cache
#      (train + held out)
#   3. cache verify: every shard re-hashed and decoded
#
#   Launch/pipeline.sh [-n RANKS] [-c CONFIG]...
#
# -n RANKS   data-parallel ranks (default 2)
# -c CONFIG  a first-stage config; repeat for phases run in order (default
#            Configs/autoencoder_kl_f4_fashion_mnist.yaml then
#            Configs/autoencoder_kl_f4_fashion_mnist_finetune.yaml)
# Outputs go to each config's trainer.run_dir; the cache to the last one's <run_dir>/latents.
set -euo pipefail
# shellcheck source=Launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ranks=2
configs=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || die "-n needs a value"; ranks="$2"; shift 2 ;;
    -c) [ $# -ge 2 ] || die "-c needs a value"; configs+=("$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count "-n RANKS" "$ranks"
if [ ${#configs[@]} -eq 0 ]; then
  configs=(Configs/autoencoder_kl_f4_fashion_mnist.yaml Configs/autoencoder_kl_f4_fashion_mnist_finetune.yaml)
fi
for config in "${configs[@]}"; do
  [ -f "$config" ] || die "no config file at $config"
  run_dir=$(awk '/^[[:space:]]*run_dir:/ { print $2 }' "$config")
  [ -n "$run_dir" ] || die "$config sets no trainer.run_dir"
done

for config in "${configs[@]}"; do
  "$LAUNCH_DIR/train.sh" -n "$ranks" -- train-autoencoder --config "$config" --resume latest
done
# The last phase's model and data.
run_dir=$(awk '/^[[:space:]]*run_dir:/ { print $2 }' "$config")
"$LAUNCH_DIR/train.sh" -n "$ranks" -- precompute-latents --autoencoder "$run_dir/autoencoder.safetensors" \
  --data-config "$config" --out "$run_dir/latents"
"$LAUNCH_DIR/train.sh" -n 1 -- cache verify "$run_dir/latents"
