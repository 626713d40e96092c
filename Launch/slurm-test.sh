#!/usr/bin/env bash
# Preemption under a real Slurm (Debian's slurm-wlm + munge) on this one machine, on loopback:
# starts munged, slurmctld and slurmd with a minimal configuration in a scratch directory,
# runs Launch/slurm.sbatch as 2 tasks (srun --mpi=pmix) on a tiny autoencoder, and checks
#   1. the time-limit warning (SIGUSR1 to the batch script, as --signal=B:USR1@N sends it)
#      → a checkpoint at the current step → requeue → the rerun resumes from exactly that
#      step and finishes, exit 0;
#   2. scancel → a checkpoint at the current step, the job ends CANCELLED, no requeue.
# Then stops the daemons. Needs root (apt-get, daemons) and a built .build/release/ldm.
#
#   Launch/slurm-test.sh            # exit 0 when every check passes
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

say() { echo "slurm-test: $*"; }
fail() { say "FAIL: $*"; exit 1; }

for p in slurm-wlm munge; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    say "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge
    break
  fi
done
[ -x .build/release/ldm ] || fail "build first: swift build -c release"

work=$(mktemp -d /tmp/ldm-slurm-test.XXXXXX)
conf=$work/slurm.conf
export SLURM_CONF=$conf
# Ports of our own, so another Slurm on the machine is not disturbed.
ctld_port=${LDM_SLURM_TEST_PORT:-26817}
pids=()
cleanup() {
  scancel --quiet --full --signal=KILL --user=root 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [ -n "${LDM_SLURM_TEST_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# munge: own key and socket.
mkdir -p "$work/munge" "$work/state" "$work/spool" "$work/runs"
# A copy of the binary, so a rebuild while the test runs cannot change it under the jobs.
cp .build/release/ldm "$work/ldm"
export LDM_BINARY=$work/ldm
chmod 711 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$work/munge/munge.key"
munged --force --foreground --key-file="$work/munge/munge.key" --socket="$work/munge/munge.sock" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed" \
  >"$work/munge/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/munge/munge.sock" ] && break; sleep 0.1; done
[ -S "$work/munge/munge.sock" ] || fail "munged did not start ($work/munge/munged.log)"

cpus=$(nproc)
cat >"$conf" <<CONF
ClusterName=ldmtest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool/%n
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=30
MinJobAge=600
SchedulerType=sched/builtin
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF

slurmctld -D -i -f "$conf" >"$work/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$conf" >"$work/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed)' && break
  sleep 0.2
done
sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed)' || { tail -20 "$work/slurmctld.log" "$work/slurmd.log" || true; fail "slurm did not come up"; }
say "slurmctld and slurmd up on 127.0.0.1:$ctld_port ($(sinfo -V))"

# The tiny run: Fashion-MNIST padded to 32×32, a 2-level autoencoder, no LPIPS, no GAN,
# checkpoints every 1000 steps so that only the signals make the checkpoints checked here.
config() {
  cat >"$work/$1.yaml" <<YAML
model:
  base_learning_rate: 1.0e-3
  autoencoder: {ch: 32, ch_mult: [1, 2], num_res_blocks: 1, resolution: 32, in_channels: 1, z_channels: 4, embed_dim: 4}
  loss: {perceptual_weight: 0, disc_start: 100000, disc_ndf: 8, disc_num_layers: 2}
data: {dataset: fashion-mnist, path: /usr/share/datasets/fashion-mnist, resolution: 32, batch_size: 4}
trainer: {max_steps: $2, log_every: 1, image_every: 100000, checkpoint_every: 100000, evaluation_images: 8, run_dir: $work/runs/$1, seed: 3}
YAML
}

submit() {  # name, then sbatch options; prints the job id
  local name=$1; shift
  sbatch --parsable --job-name="$name" --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 \
    --time=30 --output="$work/$name-%j.out" --chdir="$repo" "$@" \
    Launch/slurm.sbatch train-autoencoder --config "$work/$name.yaml"
}
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
wait_for() {  # seconds, description, command...
  local limit=$1 what=$2; shift 2
  local t=0
  until "$@"; do
    sleep 1; t=$((t + 1))
    [ "$t" -lt "$limit" ] || fail "timed out after $limit s waiting for $what"
  done
}
job_state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
running_past_step() {  # job, run, step: fails the test at once if the job ended first
  case "$(job_state "$1")" in
    FAILED|CANCELLED|COMPLETED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)
      tail -20 "$work"/"$2"-*.out >&2 || true
      fail "job $1 ended ($(job_state "$1")) before step $3" ;;
  esac
  past_step "$2" "$3"
}
logged_step() { grep -ho '^step [0-9]*' "$work"/"$1"-*.out 2>/dev/null | tail -1 | awk '{print $2}'; }
past_step() { local s; s=$(logged_step "$1"); [ -n "$s" ] && [ "$s" -ge "$2" ]; }
checkpoints() { ls "$work/runs/$1/checkpoints" 2>/dev/null | grep -o '[0-9]*' | sed 's/^0*//' | tr '\n' ' '; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# 1. Time-limit warning.
config warn 40
job=$(submit warn)
say "job $job: training as 2 Slurm tasks"
wait_for 300 "job $job to pass step 5" running_past_step "$job" warn 5
say "job $job at step $(logged_step warn): sending the time-limit warning (SIGUSR1 to the batch script)"
scancel --batch --signal=USR1 "$job"
wait_for 120 "job $job to be requeued" bash -c "[ \"\$(scontrol show job $job | grep -o 'Restarts=[0-9]*')\" = Restarts=1 ]"
stopped=$(checkpoints warn)
[ "$(echo "$stopped" | wc -w)" -eq 1 ] || fail "expected one checkpoint after the warning, found: $stopped"
stopped=${stopped// /}
grep -q "stop requested: checkpoint of step $stopped written" "$work"/warn-*.out || fail "no checkpoint message for step $stopped"
say "checkpoint at step $stopped written; job requeued (Restarts=1)"
wait_for 900 "job $job to finish" bash -c "[ \"\$(scontrol show job $job | grep -o 'JobState=[A-Z]*')\" = JobState=COMPLETED ]"
grep -q "resume: step $stopped from $work/runs/warn/checkpoints" "$work"/warn-*.out || fail "the rerun did not resume from step $stopped"
[ "$(job_field "$job" ExitCode)" = "0:0" ] || fail "job $job exit code $(job_field "$job" ExitCode)"
grep -q "resubmit by hand" "$work"/warn-*.out && fail "the script asked to resubmit by hand"
[ "$(job_field "$job" Restarts)" = 1 ] || fail "job $job restarted $(job_field "$job" Restarts) times, expected 1"
say "rerun resumed from exactly step $stopped and finished 40 steps: COMPLETED, exit 0:0, one requeue"

# 2. scancel.
config cancel 400
job=$(submit cancel)
wait_for 300 "job $job to pass step 5" running_past_step "$job" cancel 5
say "job $job at step $(logged_step cancel): scancel"
scancel "$job"
wait_for 120 "job $job to end" bash -c "[ \"\$(scontrol show job $job | grep -o 'JobState=[A-Z]*')\" = JobState=CANCELLED ]"
sleep 5
stopped=$(checkpoints cancel)
[ "$(echo "$stopped" | wc -w)" -eq 1 ] || fail "expected one checkpoint after scancel, found: $stopped"
stopped=${stopped// /}
grep -q "stop requested: checkpoint of step $stopped written" "$work"/cancel-*.out || fail "no checkpoint message after scancel"
[ "$(job_field "$job" Restarts)" = 0 ] || fail "job $job was requeued after scancel"
[ "$(job_field "$job" JobState)" = CANCELLED ] || fail "job $job is $(job_field "$job" JobState) after scancel"
say "scancel: checkpoint at step $stopped, job CANCELLED, not requeued"
say "batch script messages:"
grep -h "slurm.sbatch" "$work"/warn-*.out "$work"/cancel-*.out | sed 's/^/  /'
say "PASS"
