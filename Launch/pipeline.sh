#!/usr/bin/env bash
# The pipeline as far as it reaches today, end to end, as N ranks on this machine:
#   1. train-autoencoder, once per first-stage config in order (each resumes from its latest
#      checkpoint if interrupted); by default two phases of the KL f=4 autoencoder: L1 +
#      LPIPS + PatchGAN, then a fine-tune from its weights without the PatchGAN and with the
#      learning rate annealed (see the configs' headers)
#   2. precompute-latents: the last phase's frozen encoder writes the zstd latent cache
#      (train + held out)
#   3. cache verify: every shard re-hashed and decoded
#   4. train-ldm: the class-conditional latent diffusion model on that cache (resumes from its
#      latest checkpoint), with held-out eps-MSE and sample grids along the way
#   5. sample: a grid with a row per class (DDIM 50 steps, guidance 3) from the EMA weights
#      (for a text model, -l Configs/ldm_text_fashion_mnist.yaml: a row per "a picture of <class>")
#
#   Launch/pipeline.sh [-n RANKS] [-c CONFIG]... [-l LDM_CONFIG]
#
# -n RANKS   data-parallel ranks (default 2)
# -c CONFIG  a first-stage config; repeat for phases run in order (default
#            Configs/autoencoder_kl_f4_fashion_mnist.yaml then
#            Configs/autoencoder_kl_f4_fashion_mnist_finetune.yaml)
# -l LDM_CONFIG  the diffusion stage's config (default Configs/ldm_class_fashion_mnist.yaml);
#            its data.cache is replaced by the first stage's cache
# Outputs go to each config's trainer.run_dir; the cache to the last one's <run_dir>/latents;
# the samples to the LDM run_dir's samples/.
set -euo pipefail
# shellcheck source=Launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ranks=2
configs=()
ldm_config=Configs/ldm_class_fashion_mnist.yaml
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || die "-n needs a value"; ranks="$2"; shift 2 ;;
    -c) [ $# -ge 2 ] || die "-c needs a value"; configs+=("$2"); shift 2 ;;
    -l) [ $# -ge 2 ] || die "-l needs a value"; ldm_config="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count "-n RANKS" "$ranks"
if [ ${#configs[@]} -eq 0 ]; then
  configs=(Configs/autoencoder_kl_f4_fashion_mnist.yaml Configs/autoencoder_kl_f4_fashion_mnist_finetune.yaml)
fi
for config in "${configs[@]}" "$ldm_config"; do
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
cache="$run_dir/latents"
ldm_run=$(awk '/^[[:space:]]*run_dir:/ { print $2 }' "$ldm_config")
"$LAUNCH_DIR/train.sh" -n "$ranks" -- train-ldm --config "$ldm_config" --cache "$cache" --resume latest
# A text model is sampled with every Fashion-MNIST class in a phrasing it never trained on.
condition=(--classes all)
if grep -Eq '^[[:space:]]*encoder:[[:space:]]*text' "$ldm_config"; then
  condition=()
  for name in "a t-shirt/top" "a trouser" "a pullover" "a dress" "a coat" "a sandal" "a shirt" "a sneaker" "a bag" "an ankle boot"; do
    condition+=(--prompt "a picture of $name")
  done
fi
"$LAUNCH_DIR/train.sh" -n "$ranks" -- sample --ldm "$ldm_run" "${condition[@]}" --n 8 --steps 50 --guidance 3 \
  --out "$ldm_run/samples"
echo "pipeline: first stage $run_dir/autoencoder.safetensors ($run_dir/evaluation.json), cache $cache,"
echo "pipeline: diffusion model $ldm_run/ldm.safetensors (held-out eps-MSE in $ldm_run/heldout.jsonl),"
echo "pipeline: samples $ldm_run/samples/grid.png"
