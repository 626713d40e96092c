#!/usr/bin/env bash
# Fault injection under mpirun: kill -9 one rank at a random point of a training step, of a
# checkpoint write and of a latent precompute, N times each, and check every time that
#   - the job exits non-zero within a bound, mpirun naming the killed rank;
#   - no process of the job is left behind;
#   - rerunning the same command (--resume latest / precompute's skip of complete shards)
#     ends in exactly the state of an uninterrupted run: the same XXH64 for every file of the
#     final checkpoint (weights, optimizer moments, every rank's generators and cursor) or of
#     the cache (the manifest lists every shard's XXH64).
#
#   Launch/fault-injection.sh            # 20 kills of each kind (a job that ends first is rerun)
#   Launch/fault-injection.sh 5          # 5 of each
# Needs a built .build/release/ldm and the Fashion-MNIST package (Launch/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-20}
ldm=$PWD/.build/release/ldm
[ -x "$ldm" ] || { echo "fault-injection: build first (swift build -c release)" >&2; exit 2; }
work=$(mktemp -d /tmp/ldm-faults.XXXXXX)
trap '[ -n "${LDM_FAULTS_KEEP:-}" ] || rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LDM_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mpi=(mpirun -np 2 --oversubscribe --bind-to none --allow-run-as-root)
bound=120   # seconds a killed job may take to end
steps=12

config() {  # run name → config path; a checkpoint every 3 steps
  cat >"$work/$1.yaml" <<YAML
model:
  base_learning_rate: 1.0e-3
  autoencoder: {ch: 32, ch_mult: [1, 2], num_res_blocks: 1, resolution: 32, in_channels: 1, z_channels: 4, embed_dim: 4}
  loss: {perceptual_weight: 0, disc_start: 6, disc_ndf: 8, disc_num_layers: 2}
data: {dataset: fashion-mnist, resolution: 32, batch_size: 2}
trainer: {max_steps: $steps, log_every: 1, image_every: 100000, checkpoint_every: 3, evaluation_images: 4, run_dir: $work/runs/$1, seed: 5}
YAML
  echo "$work/$1.yaml"
}
# Every file of the final checkpoint but those naming the run directory, with its XXH64.
final_state() {
  python3 - "$1" <<'PY' 2>/dev/null || sed -n 's/.*"name" : "\(.*\)".*/\1/p' "$1"
import json, sys
m = json.load(open(sys.argv[1]))
print("\n".join(f"{f['name']} {f['xxh64']}" for f in m["files"] if f["name"] not in ("trainer_state.json", "config.yaml")))
PY
}
train() { "${mpi[@]}" "$ldm" train-autoencoder --config "$1" --resume latest >"$2" 2>&1; }
precompute() {
  "${mpi[@]}" "$ldm" precompute-latents --autoencoder "$work/runs/reference/autoencoder.safetensors" \
    --dataset fashion-mnist --resolution 32 --limit 48 --shard-size 4 --batch-size 4 --out "$1" >"$2" 2>&1
}
left_behind() { pgrep -f "$1" >/dev/null; }
completed() {  # kind name log: the run did all its work (final checkpoint, or the manifest line)
  case "$1" in
    precompute) grep -q "shards written" "$3" ;;
    *) [ -f "$work/runs/$2/checkpoints/step-$(printf %08d $steps)/manifest.json" ] ;;
  esac
}

echo "fault-injection: reference runs (uninterrupted)"
t0=$(date +%s.%N)
train "$(config reference)" "$work/reference.log" || { cat "$work/reference.log"; exit 1; }
t1=$(date +%s.%N)
final_state "$work/runs/reference/checkpoints/step-$(printf %08d $steps)/manifest.json" >"$work/reference.state"
precompute "$work/cache-reference" "$work/cache-reference.log" || { cat "$work/cache-reference.log"; exit 1; }
t2=$(date +%s.%N)
# Kill moments: uniformly within the uninterrupted runs' durations (10 % to 90 %).
moment() { awk -v a="$1" -v b="$2" -v s=$RANDOM 'BEGIN { printf "%.2f", (b - a) * (0.1 + 0.8 * (s % 1000) / 1000) }'; }

runs=0 early=0 kills=0 nonzero=0 named=0 clean=0 bounded=0 equal=0 failures=()
# kind i: start the job, kill -9 one rank at the chosen moment, then check and rerun.
inject() {
  local kind=$1 i=$2 name="$1-$2" log="$work/$1-$2.log" cfg target marker pid rank start end status=0
  case "$kind" in
    precompute) target="$work/cache-$i"; marker=$target; precompute "$target" "$log" & ;;
    *) cfg=$(config "$name"); marker=$cfg; train "$cfg" "$log" & ;;
  esac
  local job=$!
  runs=$((runs + 1))
  case "$kind" in
    step) sleep "$(moment "$t0" "$t1")" ;;
    checkpoint)  # the moment a rank has a checkpoint file under its temporary name
      for _ in $(seq 3000); do
        ls -a "$work/runs/$name/checkpoints"/step-* 2>/dev/null | grep -q '\.tmp-' && break
        sleep 0.01
      done ;;
    precompute) sleep "$(moment "$t1" "$t2")" ;;
  esac
  rank=$((RANDOM % 2))
  pid=$(pgrep -f -- "$marker" | while read -r p; do
          [ -r "/proc/$p/environ" ] && tr '\0' '\n' <"/proc/$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$rank" && echo "$p"
        done | head -1 || true)
  start=$(date +%s)
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || pid=""; fi
  wait "$job" || status=$?
  end=$(date +%s)
  # A job that finished before its moment came was not a fault: count it, do not fail on it.
  # So is a kill that reached a rank already past its work and leaving (exit 0, the work
  # complete): the moment fell after the end.
  if [ -z "$pid" ] || { [ "$status" -eq 0 ] && completed "$kind" "$name" "$log"; }; then early=$((early + 1)); return 2; fi
  kills=$((kills + 1))
  [ "$status" -ne 0 ] && nonzero=$((nonzero + 1)) || failures+=("$name: exit 0 after kill -9 of rank $rank")
  grep -Eq "rank $rank .*(signal 9|Killed)|process rank $rank " "$log" && named=$((named + 1)) ||
    failures+=("$name: output does not name rank $rank")
  sleep 1
  left_behind "$marker" && failures+=("$name: processes left behind") || clean=$((clean + 1))
  [ $((end - start)) -le $bound ] && bounded=$((bounded + 1)) || failures+=("$name: took $((end - start)) s to end")
  # Rerun the same command; it must finish in the uninterrupted run's state.
  case "$kind" in
    precompute)
      precompute "$target" "$log.rerun" || { failures+=("$name: rerun failed"); return; }
      cmp -s "$target/manifest.json" "$work/cache-reference/manifest.json" && equal=$((equal + 1)) ||
        failures+=("$name: resumed cache differs from the uninterrupted one") ;;
    *)
      train "$cfg" "$log.rerun" || { failures+=("$name: rerun failed"); return; }
      final_state "$work/runs/$name/checkpoints/step-$(printf %08d $steps)/manifest.json" | cmp -s - "$work/reference.state" &&
        equal=$((equal + 1)) || failures+=("$name: resumed state differs from the uninterrupted one")
      rm -rf "$work/runs/$name" ;;
  esac
}
# From here on a failed check is counted, not fatal.
set +e
# A job that finished before its moment is run again with a new moment, so that each kind gets
# its N kills (up to 3N runs: on a loaded machine the uninterrupted durations are only a guide).
for kind in step checkpoint precompute; do
  echo "fault-injection: $count × kill -9 of a rank during a $kind"
  killed=0 attempt=0
  while [ "$killed" -lt "$count" ] && [ "$attempt" -lt $((3 * count)) ]; do
    attempt=$((attempt + 1))
    inject "$kind" "$attempt" && killed=$((killed + 1))
  done
  [ "$killed" -eq "$count" ] || failures+=("$kind: $killed kills in $attempt runs (the job kept finishing before its moment)")
done
echo "fault-injection: runs $runs, kills $kills (finished before the kill: $early), exit non-zero $nonzero, rank named $named, nothing left behind $clean," \
  "ended within ${bound}s $bounded, rerun equal to uninterrupted $equal"
if [ ${#failures[@]} -gt 0 ]; then printf '  FAIL %s\n' "${failures[@]}"; exit 1; fi
echo "fault-injection: PASS"
