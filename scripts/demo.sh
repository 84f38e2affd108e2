#!/usr/bin/env bash
# The one-command demo: builds the CLI (release), runs the allowed and the deny-heavy sample
# plugins under the demo policy, explains one deny, lints a policy, learns the policy the
# deny-heavy plugin needs, and prints a small benchmark table.
#
#   ITERATIONS=N       benchmark runs per case (default 5: a snapshot, not a measurement)
#   SANDBOX_CLI=PATH   use this binary instead of building the release one
#
# Everything runs on a temporary copy of policies/ and examples/: the checkout is not written.
set -euo pipefail
# `run` passes a piped stdin to the plugin, reading it to its end first: the scripts give it none.
exec </dev/null

repo="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
section() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
# Shows a command, then runs it (the echo goes to stderr, so redirecting the output keeps it).
show() {
    printf '$ %s\n' "$*" >&2
    "$@"
}

# shellcheck source=scripts/cli_path.sh
source "$repo/scripts/cli_path.sh"
section "build"
build_cli "$repo"
sandbox-cli() { "$cli" "$@"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/sandbox-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -R "$repo/policies" "$repo/examples" "$work/"
cd "$work"

section "a plugin that only does what the demo policy allows"
show sandbox-cli run --policy policies/demo.yaml --plugin examples/plugins/capability_allowed.wat \
    --report-file allowed.json --stdout allowed.out >/dev/null
printf 'exit 0; the guest printed:\n'
sed 's/^/  | /' allowed.out
grep -o '"summary":{[^}]*}' allowed.json

section "a plugin that tries a dozen forbidden things: it completes, each attempt is a deny event"
show sandbox-cli run --policy policies/demo.yaml --plugin examples/plugins/deny_heavy.wat \
    --report-file denied.json >/dev/null
grep -o '"summary":{[^}]*}' denied.json

section "why was event 7 denied, and what would allow it?"
show sandbox-cli explain --report-file denied.json --event-index 7

section "lint a deliberately noisy policy (warnings only: exit 0)"
show sandbox-cli policy lint --policy policies/noisy.yaml >lint.txt
head -n 12 lint.txt
echo "  ..."
tail -n 1 lint.txt

section "learn the least-privilege policy for the deny-heavy plugin (it runs once in audit mode)"
show sandbox-cli policy learn --plugin examples/plugins/deny_heavy.wat --policy policies/demo.yaml \
    --output learned.yaml
sed -n '/^version: 1/,$p' learned.yaml
show sandbox-cli policy replay --report-file denied.json --policy learned.yaml >replay.txt
head -n 3 replay.txt

section "benchmark snapshot (scripts/bench.sh, ITERATIONS=${ITERATIONS:-5})"
ITERATIONS="${ITERATIONS:-5}" SANDBOX_CLI="$cli" BENCH_JSON="$work/benchmark.json" \
    BENCH_NOTE="demo snapshot" "$repo/scripts/bench.sh"

printf '\ndemo done.\n'
