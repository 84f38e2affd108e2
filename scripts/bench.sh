#!/usr/bin/env bash
# End-to-end benchmark: runs the built `sandbox-cli` binary on the sample plugins, ITERATIONS
# times each, and prints `case, iterations, min_ms, median_ms, p95_ms, max_ms, mean_ms`.
# Each run is a whole process (start, compile, run, report), as a user would see it.
#
#   ITERATIONS=N       runs per case (default 20)
#   SANDBOX_CLI=PATH   the binary to time (default: build and use the release binary)
#   BENCH_JSON=PATH    where to write the JSON (default: $ARTIFACT_DIR/benchmark.json, or
#                      ./benchmark.json in the folder the script was called from)
#   SANDBOX_CLI_BUILD  how that binary was built, for the JSON (e.g. `debug`; default `given`)
#   BENCH_NOTE=TEXT    a note recorded in the JSON (e.g. why the numbers are only a snapshot)
#
# To add a case, add a `bench_case NAME EXPECTED_EXIT COMMAND...` line to `cases` below.
set -euo pipefail
# `run` passes a piped stdin to the plugin, reading it to its end first: the scripts give it none.
exec </dev/null
# Decimal points, not commas, in bash's clock, sort and awk.
export LC_ALL=C

if [[ -z "${EPOCHREALTIME:-}" ]]; then
    echo "bench: needs bash 5 or later (for \$EPOCHREALTIME); this is bash $BASH_VERSION" >&2
    exit 1
fi

caller_dir="$PWD"
repo="$(cd "$(dirname "$0")/.." && pwd)"
iterations="${ITERATIONS:-20}"
out="${BENCH_JSON:-${ARTIFACT_DIR:-$caller_dir}/benchmark.json}"
note="${BENCH_NOTE:-}"

if ! [[ "$iterations" =~ ^[1-9][0-9]*$ ]]; then
    echo "bench: ITERATIONS must be a positive whole number, not \`$iterations\`" >&2
    exit 2
fi

[[ "$out" = /* ]] || out="$caller_dir/$out"

if [[ -n "${SANDBOX_CLI:-}" ]]; then
    if [[ "$SANDBOX_CLI" = */* ]]; then
        cli="$(cd "$(dirname "$SANDBOX_CLI")" && pwd)/$(basename "$SANDBOX_CLI")"
    else
        cli="$(command -v "$SANDBOX_CLI")" || { echo "bench: \`$SANDBOX_CLI\` is not on PATH" >&2; exit 1; }
    fi
    build="${SANDBOX_CLI_BUILD:-given}"
else
    # shellcheck source=scripts/cli_path.sh
    source "$repo/scripts/cli_path.sh"
    build_cli "$repo" || exit 1
    build="release"
fi
[[ -x "$cli" ]] || { echo "bench: \`$cli\` is not an executable" >&2; exit 1; }

# Runs work on copies of policies/ and examples/, so the checkout is never written to.
work="$(mktemp -d "${TMPDIR:-/tmp}/sandbox-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -R "$repo/policies" "$repo/examples" "$work/"
cd "$work"
# The CLI's module cache lives with the copies; the first run of each case warms it.
export XDG_CACHE_HOME="$work/cache"

rows=()      # "case iterations min median p95 max mean", one per measured case
skipped=()   # "case|reason"

# Times COMMAND ITERATIONS times (bash's microsecond clock, no extra process per sample).
bench_case() {
    local name="$1" expected="$2"
    shift 2
    local samples=() start end code
    for ((i = 0; i < iterations; i++)); do
        start="$EPOCHREALTIME"
        set +e
        "$@" >/dev/null 2>&1
        code=$?
        set -e
        end="$EPOCHREALTIME"
        if [[ "$code" != "$expected" ]]; then
            echo "bench: case \`$name\` exited $code, expected $expected: $*" >&2
            exit 1
        fi
        samples+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
    done
    rows+=("$name $iterations $(printf '%s\n' "${samples[@]}" | sort -n | awk '
        { v[NR] = $1; sum += $1 }
        END {
            n = NR
            mid = int((n + 1) / 2)
            median = (n % 2) ? v[mid] : (v[n / 2] + v[n / 2 + 1]) / 2
            rank = int(0.95 * n); if (rank < 0.95 * n) rank++   # nearest rank
            printf "%.3f %.3f %.3f %.3f %.3f", v[1], median, v[rank], v[n], sum / n
        }')")
}

skip_case() {
    skipped+=("$1|$2")
    echo "bench: skipping \`$1\`: $2" >&2
}

cases() {
    "$cli" run --policy policies/demo.yaml --plugin examples/plugins/capability_allowed.wat >/dev/null 2>&1 || true
    # Cold start of the whole process with a warm module cache, then compiling every time.
    bench_case capability_allowed 0 \
        "$cli" run --policy policies/demo.yaml --plugin examples/plugins/capability_allowed.wat
    bench_case capability_allowed_no_cache 0 \
        "$cli" run --no-cache --policy policies/demo.yaml --plugin examples/plugins/capability_allowed.wat
    bench_case deny_heavy 0 \
        "$cli" run --policy policies/demo.yaml --plugin examples/plugins/deny_heavy.wat
    # Plain Wasmtime on the same module, its `sandbox` imports stubbed to return zero: the
    # cost of the engine alone, without policy, broker or report.
    if ! command -v wasmtime >/dev/null 2>&1; then
        skip_case wasmtime_run_capability_allowed "no \`wasmtime\` on PATH"
    elif ! wasmtime run --default-values-unknown-imports examples/plugins/capability_allowed.wat >/dev/null 2>&1; then
        skip_case wasmtime_run_capability_allowed "this \`wasmtime\` cannot run it with --default-values-unknown-imports"
    else
        bench_case wasmtime_run_capability_allowed 0 \
            wasmtime run --default-values-unknown-imports examples/plugins/capability_allowed.wat
    fi
}

cases

printf '%-34s %10s %9s %10s %9s %9s %9s\n' case iterations min_ms median_ms p95_ms max_ms mean_ms
for row in "${rows[@]}"; do
    # shellcheck disable=SC2086
    printf '%-34s %10s %9s %10s %9s %9s %9s\n' $row
done
for s in "${skipped[@]+"${skipped[@]}"}"; do
    echo "(skipped ${s%%|*}: ${s#*|})"
done

json_string() {
    local s="$1"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    printf '"%s"' "$s"
}

{
    printf '{\n  "schema_version": 1,\n  "tool": "scripts/bench.sh",\n'
    printf '  "binary": %s,\n  "build": %s,\n' "$(json_string "$cli")" "$(json_string "$build")"
    printf '  "version": %s,\n' "$(json_string "$("$cli" --version 2>/dev/null || echo unknown)")"
    printf '  "iterations": %s,\n' "$iterations"
    printf '  "note": %s,\n' "$(json_string "$note")"
    printf '  "cases": ['
    sep=""
    for row in "${rows[@]}"; do
        read -r name n min median p95 max mean <<<"$row"
        printf '%s\n    {"case": %s, "iterations": %s, "min_ms": %s, "median_ms": %s, "p95_ms": %s, "max_ms": %s, "mean_ms": %s}' \
            "$sep" "$(json_string "$name")" "$n" "$min" "$median" "$p95" "$max" "$mean"
        sep=","
    done
    printf '\n  ],\n  "skipped": ['
    sep=""
    for s in "${skipped[@]+"${skipped[@]}"}"; do
        printf '%s\n    {"case": %s, "reason": %s}' "$sep" "$(json_string "${s%%|*}")" "$(json_string "${s#*|}")"
        sep=","
    done
    printf '\n  ]\n}\n'
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "bench: wrote $out" >&2
