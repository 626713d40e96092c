#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (address sanitizer + libFuzzer with coverage
# instrumentation, through the Swift toolchain's -sanitize=fuzzer,address) and runs them, one
# after another, at low priority.
#
#   Launch/fuzz.sh                       # every target, 60 s each
#   Launch/fuzz.sh FuzzSafeTensors --runs 1000000
#   Launch/fuzz.sh all --seconds 1800
#   Launch/fuzz.sh --list
#
# Each target starts from its seed corpus (Fuzz/Corpus/<target>, small files the project
# writes or reads) and grows a working corpus in .build-fuzz/corpus/<target>, which is not
# part of the repository. A crash, a hang (-timeout) or an allocation over -malloc_limit_mb
# stops that target with its input saved as .build-fuzz/artifacts/<target>-crash-…; turn it
# into a regression test next to the reader's tests. The summary gives executions, seconds,
# final coverage (cov: edges, ft: features) and corpus size per target; the exit status is
# non-zero if any target failed, or if a target's code carries no coverage counters.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(FuzzSafeTensors FuzzLatentShard FuzzShardSidecar FuzzCacheManifest FuzzCheckpointManifest
         FuzzTrainerState FuzzIDX FuzzPNG FuzzConfig FuzzDiffusersConfig FuzzTokenizer)
selected=()
limit=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) limit+=("-runs=$2"); shift 2 ;;
    --seconds) limit+=("-max_total_time=$2"); shift 2 ;;
    --list) printf '%s\n' "${targets[@]}"; exit 0 ;;
    all) selected=("${targets[@]}"); shift ;;
    Fuzz*) selected+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (a target, all, --runs N, --seconds S, --list)" >&2; exit 2 ;;
  esac
done
[ ${#selected[@]} -gt 0 ] || selected=("${targets[@]}")
# Both limits may be given: the target stops at whichever comes first.
[ ${#limit[@]} -gt 0 ] || limit=(-max_total_time=60)

echo "fuzz: building ${#selected[@]} target(s) with -sanitize=fuzzer,address"
# SwiftPM passes --sanitize=fuzzer --sanitize=address to swiftc as two options, and swiftc
# keeps only the last -sanitize= it is given: the Swift code would get ASan but no coverage
# counters, and libFuzzer would mutate blind. -Xswiftc adds the combined option after them.
# (The linker's warning about __asan_extra_spill_area is harmless.)
sanitize=(--sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address)
mkdir -p .build-fuzz/logs
# SwiftPM does not notice files added to or removed from the main package, a path dependency
# of Fuzz/, and keeps building from its old plan ("cannot find ... in scope"): start the fuzz
# build afresh whenever the list of source files has changed since the last one.
sources=$(find Sources Package.swift -name '*.swift' -o -name '*.c' -o -name '*.h' -o -name 'module.modulemap' | LC_ALL=C sort | cksum)
if [ "$(cat .build-fuzz/sources.cksum 2>/dev/null)" != "$sources" ]; then
  rm -rf Fuzz/.build
  echo "$sources" > .build-fuzz/sources.cksum
fi
for target in "${selected[@]}"; do
  build_log=.build-fuzz/logs/build-$target.log
  if ! (cd Fuzz && nice -n 10 swift build -c release "${sanitize[@]}" --product "$target") >"$build_log" 2>&1; then
    grep -v "__asan_extra_spill_area" "$build_log" | tail -30 >&2
    echo "fuzz: building $target failed (whole log: $build_log)" >&2
    exit 2
  fi
  tail -1 "$build_log"
done
bin=Fuzz/.build/release
out=.build-fuzz
mkdir -p "$out/artifacts" "$out/logs"

summary=()
failed=0
for target in "${selected[@]}"; do
  corpus=$out/corpus/$target
  mkdir -p "$corpus"
  log=$out/logs/$target.log
  echo "fuzz: $target ${limit[*]}"
  status=0
  # -rss_limit_mb and -malloc_limit_mb: a reader must not size memory by what a file claims.
  # -detect_leaks=0 (and ASan's check at exit): the toolchain's Foundation leaks one 4 KiB buffer reading an empty file
  # (Data(contentsOf:)), which is not the readers' doing; growth still hits the RSS limit.
  # SWIFT_BACKTRACE: libFuzzer reports a trap itself (stack, input saved); the Swift
  # backtracer would hold the crash for its own report first.
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS} nice -n 19 "$bin/$target" "$corpus" "Fuzz/Corpus/$target" "${limit[@]}" \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -detect_leaks=0 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$target-" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  seconds=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  # The last status line: cov: edges reached, ft: features, corp: inputs kept/their size.
  progress=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+(b|Kb|Mb)' || true)
  if [ "$status" -eq 0 ] && grep -q "Is the code instrumented for coverage" "$log"; then
    result="FAILED: no coverage counters, the mutation was blind (check the build's -sanitize options)"
    failed=1
  elif [ "$status" -eq 0 ]; then
    result="ok"
  else
    result="FAILED (exit $status): $(grep -m1 -E 'ERROR: |==ERROR|Fatal error|deadly signal|out-of-memory|malloc\(' "$log" || echo "see $log")"
    failed=1
  fi
  summary+=("$(printf '%-24s %10s executions %6s s  %-34s %s' "$target" "${runs:-?}" "${seconds:-?}" "${progress:-no coverage}" "$result")")
  echo "  ${summary[-1]}"
done
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
exit "$failed"
