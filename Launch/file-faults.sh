#!/usr/bin/env bash
# File-system faults around checkpoints, each checked against an uninterrupted run:
#   - the disk fills up during a checkpoint write (the run directory on a small tmpfs):
#     a clear error naming the file, the previous checkpoint intact, and resuming from it
#     elsewhere ends bit-equal to the uninterrupted run;
#   - the run directory is read-only (a read-only bind mount; root ignores file modes):
#     a clear error naming the path, nothing written;
#   - --resume given a checkpoint of another run (another config): refused, naming it.
# Needs root (mount), a built .build/release/ldm and the Fashion-MNIST package.
set -euo pipefail
cd "$(dirname "$0")/.."
ldm=$PWD/.build/release/ldm
[ -x "$ldm" ] || { echo "file-faults: build first (swift build -c release)" >&2; exit 2; }
work=$(mktemp -d /tmp/ldm-file-faults.XXXXXX)
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
  [ -n "${LDM_FILE_FAULTS_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
export LDM_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
steps=6
failures=()
check() { if eval "$2"; then echo "  ok: $1"; else echo "  FAIL: $1"; failures+=("$1"); fi; }

config() {  # name, run directory, seed
  cat >"$work/$1.yaml" <<YAML
model:
  base_learning_rate: 1.0e-3
  autoencoder: {ch: 32, ch_mult: [1, 2], num_res_blocks: 1, resolution: 32, in_channels: 1, z_channels: 4, embed_dim: 4}
  loss: {perceptual_weight: 0, disc_start: 100, disc_ndf: 8, disc_num_layers: 2}
data: {dataset: fashion-mnist, resolution: 32, batch_size: 2}
trainer: {max_steps: $steps, log_every: 1, image_every: 100000, checkpoint_every: 3, keep_last: 5, evaluation_images: 4, run_dir: $2, seed: ${3:-5}}
YAML
  echo "$work/$1.yaml"
}
state() {  # the final checkpoint's files (but those naming the run directory) with XXH64
  grep -E '"(name|xxh64)"' "$1/checkpoints/step-$(printf %08d $steps)/manifest.json" | paste - - |
    grep -v -e trainer_state.json -e config.yaml
}

echo "file-faults: reference run"
"$ldm" train-autoencoder --config "$(config reference "$work/reference")" >"$work/reference.log" 2>&1 ||
  { cat "$work/reference.log"; exit 1; }
size=$(du -sk "$work/reference/checkpoints/step-00000003" | cut -f1)

echo "file-faults: disk full during the second checkpoint (tmpfs of 1.5 checkpoints)"
mkdir -p "$work/small"
mount -t tmpfs -o size=$((size * 3 / 2))k tmpfs "$work/small"; mounts+=("$work/small")
status=0
"$ldm" train-autoencoder --config "$(config full "$work/small/run")" >"$work/full.log" 2>&1 || status=$?
check "exit non-zero ($status)" '[ "$status" -ne 0 ]'
check "error names the file and the cause" 'grep -q "step-00000006.*No space left on device\|No space left on device.*step-00000006" "$work/full.log"'
check "the step-6 checkpoint is not committed" '[ ! -e "$work/small/run/checkpoints/step-00000006/manifest.json" ]'
mkdir -p "$work/moved"
cp -r "$work/small/run" "$work/moved/run"
umount "$work/small"; mounts=()
status=0
"$ldm" train-autoencoder --config "$(config moved "$work/moved/run")" --resume latest >"$work/moved.log" 2>&1 || status=$?
check "resume after the full disk succeeds" '[ "$status" -eq 0 ]'
check "it resumed from the intact step-3 checkpoint" 'grep -q "resume: step 3 from" "$work/moved.log"'
check "and ends bit-equal to the uninterrupted run" '[ "$(state "$work/moved/run")" = "$(state "$work/reference")" ]'

echo "file-faults: read-only run directory"
mkdir -p "$work/ro"
cp -r "$work/reference" "$work/ro/run"
mount --bind "$work/ro" "$work/ro"; mounts+=("$work/ro")
mount -o remount,bind,ro "$work/ro"
before=$(find "$work/ro" -type f | xargs md5sum | sort)
status=0
"$ldm" train-autoencoder --config "$(config ro "$work/ro/run")" --max-steps 9 --resume latest >"$work/ro.log" 2>&1 || status=$?
check "exit non-zero ($status)" '[ "$status" -ne 0 ]'
check "error names the run directory and the cause" 'grep -q "$work/ro/run.*Read-only file system\|Read-only file system.*$work/ro/run" "$work/ro.log"'
check "before any step was trained" '! grep -q "^step " "$work/ro.log"'
check "nothing changed" '[ "$(find "$work/ro" -type f | xargs md5sum | sort)" = "$before" ]'
umount "$work/ro"; mounts=()

echo "file-faults: --resume with another run's checkpoint"
status=0
"$ldm" train-autoencoder --config "$(config other "$work/other" 9)" --resume "$work/reference/checkpoints/step-00000003" \
  >"$work/other.log" 2>&1 || status=$?
check "exit non-zero ($status)" '[ "$status" -ne 0 ]'
check "refusal names the checkpoint and what differs" 'grep -q "step-00000003" "$work/other.log" && grep -qi "seed\|config" "$work/other.log"'
check "nothing was trained" '[ ! -e "$work/other/checkpoints/step-00000006" ]'

if [ ${#failures[@]} -gt 0 ]; then
  echo "file-faults: ${#failures[@]} check(s) failed"; for f in full ro other; do echo "--- $f.log"; tail -5 "$work/$f.log"; done; exit 1
fi
echo "file-faults: PASS"
