#!/usr/bin/env bash
# The main job: the whole pipeline on the embedded default (Fashion-MNIST from its Debian
# package) as N ranks on this machine, then a summary of where everything went, the headline
# numbers and the wall time of each stage.
#   1. autoencoder  train-autoencoder, once per first-stage config in order
#   2. cache        precompute-latents with the last phase's frozen encoder (train + held out),
#                   then cache verify (every shard re-hashed and decoded)
#   3. classifier   train-classifier: the evaluation classifier (feature space of FD,
#                   precision/recall; sample accuracy); trained once, shared by the presets
#   4. ldm          train-ldm: the class-conditional LDM on that cache, with guidance dropout
#   5. sample       a grid with a row per class from the EMA weights (DDIM; guidance 3, budget 5)
#   6. evaluate     evaluate autoencoder (PSNR, SSIM, LPIPS, rFD) and evaluate ldm (held-out
#                   eps-MSE, FD, precision/recall, sample vs real class accuracy)
#
#   Launch/pipeline.sh [-n RANKS] [--preset quick|budget|quality] [--stage NAME]... [-c CONFIG]... [-l LDM_CONFIG]
#
# -n RANKS          data-parallel ranks (default 2)
# --preset quick    (default) about 20 minutes on 2 cores: Configs/*_quick.yaml, outputs
#                   under Checkpoints/quick/
# --preset budget   quality at a budget: a 20-minute first stage (8 latent channels, PSNR as
#                   the target) and a 20-minute LDM on its latents, about 50 minutes in all;
#                   a guidance sweep; outputs under Checkpoints/budget/
# --preset quality  the longer schedules: the two-phase first stage (L1 + LPIPS + PatchGAN,
#                   then a fine-tune; about 3 hours) and the 1150-step LDM, a guidance sweep
# --stage NAME      run only this stage (repeatable); the others' outputs must exist
# -c CONFIG         a first-stage config instead of the preset's; repeat for phases in order
# -l LDM_CONFIG     the diffusion stage's config instead of the preset's
# -k CLASSIFIER_CONFIG  the evaluation classifier's config (default Configs/classifier_fashion_mnist.yaml)
#
# Rerunning resumes or skips what is complete: a training stage whose final model exists is
# skipped, an interrupted one resumes from its latest checkpoint, the cache is completed. A
# stage stopped by a signal (SIGTERM to mpirun, as a scheduler sends it) checkpoints and
# stops the whole job; rerun the same command to continue.
set -euo pipefail
# shellcheck source=Launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ranks=2
preset=quick
stages=()
configs=()
ldm_config=""
classifier_config=Configs/classifier_fashion_mnist.yaml
while [ $# -gt 0 ]; do
  case "$1" in
    -n) [ $# -ge 2 ] || die "-n needs a value"; ranks="$2"; shift 2 ;;
    --preset) [ $# -ge 2 ] || die "--preset needs a value"; preset="$2"; shift 2 ;;
    --stage) [ $# -ge 2 ] || die "--stage needs a value"; stages+=("$2"); shift 2 ;;
    -c) [ $# -ge 2 ] || die "-c needs a value"; configs+=("$2"); shift 2 ;;
    -l) [ $# -ge 2 ] || die "-l needs a value"; ldm_config="$2"; shift 2 ;;
    -k) [ $# -ge 2 ] || die "-k needs a value"; classifier_config="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count "-n RANKS" "$ranks"
all_stages=(autoencoder cache classifier ldm sample evaluate)
for s in "${stages[@]+"${stages[@]}"}"; do
  [[ " ${all_stages[*]} " == *" $s "* ]] || die "unknown stage '$s' (one of: ${all_stages[*]})"
done
[ ${#stages[@]} -gt 0 ] || stages=("${all_stages[@]}")

case "$preset" in
  quick)
    [ ${#configs[@]} -gt 0 ] || configs=(Configs/autoencoder_kl_f4_fashion_mnist_quick.yaml)
    [ -n "$ldm_config" ] || ldm_config=Configs/ldm_class_fashion_mnist_quick.yaml
    ae_eval=(--limit 1000)
    ldm_eval=(--n 25 --steps 25 --guidance 3 --features classifier --heldout-samples 1000)
    sample_guidance=3
    ;;
  budget)
    [ ${#configs[@]} -gt 0 ] || configs=(Configs/autoencoder_kl_f4_fashion_mnist_budget.yaml)
    [ -n "$ldm_config" ] || ldm_config=Configs/ldm_class_fashion_mnist_budget.yaml
    ae_eval=(--limit 2000)
    ldm_eval=(--n 100 --steps 20 --guidance 3,5,7 --features classifier --heldout-samples 2000)
    sample_guidance=5
    ;;
  quality)
    [ ${#configs[@]} -gt 0 ] || configs=(Configs/autoencoder_kl_f4_fashion_mnist.yaml Configs/autoencoder_kl_f4_fashion_mnist_finetune.yaml)
    [ -n "$ldm_config" ] || ldm_config=Configs/ldm_class_fashion_mnist.yaml
    ae_eval=()
    ldm_eval=(--n 100 --steps 50 --guidance 1,2,3,5 --features classifier,vgg)
    sample_guidance=3
    ;;
  *) die "--preset $preset: use quick, budget or quality" ;;
esac

run_dir_of() {
  local dir
  dir=$(awk '/^[[:space:]]*run_dir:/ { print $2 }' "$1")
  [ -n "$dir" ] || die "$1 sets no trainer.run_dir"
  echo "$dir"
}
for config in "${configs[@]}" "$ldm_config" "$classifier_config"; do
  [ -f "$config" ] || die "no config file at $config"
  run_dir_of "$config" >/dev/null
done
ae_run=$(run_dir_of "${configs[-1]}")
cache="$ae_run/latents"
classifier_run=$(run_dir_of "$classifier_config")
ldm_run=$(run_dir_of "$ldm_config")
report_dir="$(dirname "$ldm_run")/pipeline"
mkdir -p "$report_dir"

# A signal to this script (Ctrl-C, or a scheduler's SIGTERM to the job) reaches the ranks
# too; they checkpoint and exit. Remember it, so no later stage starts.
stopped=0
trap 'stopped=1' TERM INT

timings=()
run_stage() {  # run_stage NAME COMMAND...: runs it, logs its output, records its wall time
  local name="$1"; shift
  local start=$SECONDS
  echo "pipeline: == $name =="
  "$@" 2>&1 | tee "$report_dir/$name.log"
  timings+=("$name $((SECONDS - start))")
  if [ "$stopped" -eq 1 ]; then
    echo "pipeline: stopped by a signal during '$name'; its checkpoint is written. Rerun the same command to resume." >&2
    exit 130
  fi
}

# A training stage: skipped when its final model exists, otherwise trained (resuming from
# the latest checkpoint); a run that stopped before the end stops the job.
train_stage() {  # train_stage NAME MODEL_FILE COMMAND...
  local name="$1" model="$2"; shift 2
  if [ -f "$model" ]; then
    echo "pipeline: == $name == done already ($model); delete its run directory to retrain"
    return
  fi
  run_stage "$name" "$LAUNCH_DIR/train.sh" -n "$ranks" -- "$@" --resume latest
  [ -f "$model" ] || {
    echo "pipeline: '$name' stopped before its last step (no $model); rerun the same command to resume." >&2
    exit 1
  }
}

wanted() { [[ " ${stages[*]} " == *" $1 "* ]]; }
total_start=$SECONDS

if wanted autoencoder; then
  for config in "${configs[@]}"; do
    dir=$(run_dir_of "$config")
    train_stage "autoencoder:$(basename "$config" .yaml)" "$dir/autoencoder.safetensors" train-autoencoder --config "$config"
  done
fi
if wanted cache; then
  run_stage cache bash -c "'$LAUNCH_DIR/train.sh' -n '$ranks' -- precompute-latents --autoencoder '$ae_run/autoencoder.safetensors' \
    --data-config '${configs[-1]}' --out '$cache' && '$LAUNCH_DIR/train.sh' -n 1 -- cache verify '$cache'"
fi
if wanted classifier; then
  train_stage classifier "$classifier_run/classifier.safetensors" train-classifier --config "$classifier_config"
fi
if wanted ldm; then
  train_stage ldm "$ldm_run/ldm.safetensors" train-ldm --config "$ldm_config" --cache "$cache"
fi
if wanted sample; then
  # A text model (-l Configs/ldm_text_fashion_mnist.yaml) is sampled with every Fashion-MNIST
  # class in a phrasing it never trained on.
  condition=(--classes all)
  if grep -Eq '^[[:space:]]*encoder:[[:space:]]*text' "$ldm_config"; then
    condition=()
    for name in "a t-shirt/top" "a trouser" "a pullover" "a dress" "a coat" "a sandal" "a shirt" "a sneaker" "a bag" "an ankle boot"; do
      condition+=(--prompt "a picture of $name")
    done
  fi
  run_stage sample "$LAUNCH_DIR/train.sh" -n "$ranks" -- sample --ldm "$ldm_run" "${condition[@]}" --n 8 --steps 50 \
    --guidance "$sample_guidance" --out "$ldm_run/samples"
fi
if wanted evaluate && grep -Eq '^[[:space:]]*encoder:[[:space:]]*text' "$ldm_config"; then
  echo "pipeline: evaluate ldm scores class-conditional models; for a text model only the first stage is evaluated"
  ldm_eval_skip=1
fi
if wanted evaluate; then
  run_stage evaluate:autoencoder "$LAUNCH_DIR/train.sh" -n "$ranks" -- evaluate autoencoder \
    --autoencoder "$ae_run/autoencoder.safetensors" --data-config "${configs[-1]}" \
    --classifier "$classifier_run/classifier.safetensors" --out "$report_dir/evaluation_autoencoder.json" \
    ${ae_eval[@]+"${ae_eval[@]}"}
  [ -n "${ldm_eval_skip:-}" ] || run_stage evaluate:ldm "$LAUNCH_DIR/train.sh" -n "$ranks" -- evaluate ldm --ldm "$ldm_run" --cache "$cache" \
    --data-config "${configs[-1]}" --classifier "$classifier_run/classifier.safetensors" \
    --out "$report_dir/evaluation_ldm.json" "${ldm_eval[@]}"
fi

# The summary: outputs, headline numbers (from the stages' own reports), wall times.
{
  echo "pipeline summary (preset $preset, $ranks rank(s))"
  echo "outputs:"
  echo "  first stage      $ae_run/autoencoder.safetensors"
  echo "  latent cache     $cache"
  echo "  classifier       $classifier_run/classifier.safetensors"
  echo "  diffusion model  $ldm_run/ldm.safetensors (held-out eps-MSE along the way: $ldm_run/heldout.jsonl)"
  echo "  samples          $ldm_run/samples/grid.png (a row per class)"
  echo "  reports          $report_dir/evaluation_autoencoder.json, $report_dir/evaluation_ldm.json"
  echo "  TensorBoard      tensorboard --logdir $(dirname "$ldm_run")"
  echo "numbers:"
  accuracy=$(grep -o '"mean" : [0-9.e-]*' "$classifier_run/evaluation.json" 2>/dev/null | awk '{ printf "%.2f %%", 100 * $3 }' || true)
  [ -z "$accuracy" ] || echo "  classifier       held-out accuracy $accuracy"
  grep -h "^evaluation of" "$report_dir/evaluate:autoencoder.log" 2>/dev/null | sed 's/^evaluation of [^ ]* /  first stage /' || true
  sed -n '/^held-out eps_mse/,/^report:/p' "$report_dir/evaluate:ldm.log" 2>/dev/null | grep -v '^report:' | sed 's/^/  /' || true
  echo "wall time per stage (this run; skipped stages take 0 s):"
  for t in "${timings[@]+"${timings[@]}"}"; do
    printf '  %-40s %4d s\n' "${t% *}" "${t##* }"
  done
  printf '  %-40s %4d s\n' total $((SECONDS - total_start))
} | tee "$report_dir/summary.txt"
