#!/usr/bin/env bash
# The fuller tour, with every output saved: optional test run, the allowed and deny-heavy
# plugins, explain (from a report and from a lone event), lint of a clean and a noisy
# policy, the three templates, policy learn (with a rerun, a replay and a diff), and a
# benchmark. Fails loudly, naming the step, if any step fails.
#
#   ARTIFACT_DIR=DIR   where artifacts go (default: a new folder under ${TMPDIR:-/tmp})
#   RUN_TESTS=0|1      run ./scripts/test.sh first (default 1)
#   RUN_BENCH=0|1      run scripts/bench.sh on the release build (default 1); with 0,
#                      benchmark.json is still written: a 3-iteration snapshot of the binary
#                      used here, marked as a snapshot, not a measurement
#   ITERATIONS=N       benchmark runs per case with RUN_BENCH=1 (default 20)
#   SANDBOX_CLI=PATH   the binary to use (default: cargo build --release --locked -p sandbox-cli,
#                      into CARGO_TARGET_DIR when set; the same build demo.sh and bench.sh use)
#
# Fast mode, as CI runs it: RUN_TESTS=0 RUN_BENCH=0 ./scripts/usage_run.sh
#
# Artifacts: allowed_report.json, denied_report.json, explain_events/*.json,
# policy_lint_clean.json, policy_lint_noisy.json, templates/*.yaml, learned_policy.yaml,
# learned_rerun_report.json, replay_learned.json, policy_diff.txt, benchmark.json, summary.md.
set -euo pipefail
# `run` passes a piped stdin to the plugin, reading it to its end first: the scripts give it none.
exec </dev/null

repo="$(cd "$(dirname "$0")/.." && pwd)"
RUN_TESTS="${RUN_TESTS:-1}"
RUN_BENCH="${RUN_BENCH:-1}"
ITERATIONS="${ITERATIONS:-20}"
if [[ -n "${ARTIFACT_DIR:-}" ]]; then
    mkdir -p "$ARTIFACT_DIR"
    artifacts="$(cd "$ARTIFACT_DIR" && pwd)"
else
    artifacts="$(mktemp -d "${TMPDIR:-/tmp}/sandbox-usage-run.XXXXXX")"
fi
mkdir -p "$artifacts/explain_events" "$artifacts/templates"
summary="$artifacts/summary.md"
steps=()     # "status|step|detail"
current=""

write_summary() {
    {
        echo "# sandbox-cli usage run"
        echo
        echo "- when: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "- binary: \`${cli:-not built}\`"
        echo "- RUN_TESTS=$RUN_TESTS, RUN_BENCH=$RUN_BENCH, ITERATIONS=$ITERATIONS"
        echo "- artifacts: \`$artifacts\`"
        echo
        echo "| step | result | detail |"
        echo "|---|---|---|"
        for s in "${steps[@]+"${steps[@]}"}"; do
            IFS='|' read -r status name detail <<<"$s"
            echo "| $name | $status | $detail |"
        done
        echo
        echo "## Artifacts"
        echo
        (cd "$artifacts" && find . -type f ! -name summary.md ! -path './work/*' | sort |
            sed 's|^\./\(.*\)|- `\1`|')
    } >"$summary"
}

fail() {
    steps+=("FAILED|$current|$1")
    write_summary
    echo "usage_run: step \`$current\` failed: $1" >&2
    echo "usage_run: summary so far in $summary" >&2
    exit 1
}

# step NAME: starts a step; ok DETAIL: records it as passed.
step() {
    current="$1"
    printf '\n==> %s\n' "$current"
}
ok() { steps+=("passed|$current|${1:-}"); }

# expect CODE COMMAND...: runs a command, fails the step unless it exits CODE.
expect() {
    local want="$1" code=0
    shift
    "$@" || code=$?
    [[ "$code" == "$want" ]] || fail "\`$*\` exited $code, expected $want"
}

# The events of a compact report, one JSON object a line (no jq needed): a scan that keeps
# track of strings and nesting, from `"events":[` to its closing bracket.
events_of() {
    awk '
        { text = text $0 "\n" }
        END {
            key = "\"events\":["
            at = index(text, key)
            if (!at) exit 1
            n = length(text); depth = 0; instr = 0; esc = 0
            for (p = at + length(key); p <= n; p++) {
                c = substr(text, p, 1)
                if (instr) {
                    if (esc) esc = 0
                    else if (c == "\\") esc = 1
                    else if (c == "\"") instr = 0
                    continue
                }
                if (c == "\"") instr = 1
                else if (c == "{") { if (depth == 0) start = p; depth++ }
                else if (c == "}") { depth--; if (depth == 0) print substr(text, start, p - start + 1) }
                else if (c == "]" && depth == 0) break
            }
        }' "$1"
}

# Reasons a policy rule or quota could turn into an allow (see `policy learn`).
grantable='"reason_code":"(FS_PATH_NOT_ALLOWED|FS_READ_QUOTA_EXCEEDED|FS_WRITE_QUOTA_EXCEEDED|NET_HOST_NOT_ALLOWED|NET_PORT_NOT_ALLOWED|NET_CONNECTION_QUOTA_EXCEEDED|NET_EGRESS_QUOTA_EXCEEDED|NET_INGRESS_QUOTA_EXCEEDED)"'

echo "usage_run: artifacts in $artifacts"

if [[ "$RUN_TESTS" == 1 ]]; then
    step "tests (./scripts/test.sh)"
    expect 0 "$repo/scripts/test.sh"
    ok "format, clippy and every test passed"
else
    steps+=("skipped|tests (./scripts/test.sh)|RUN_TESTS=0")
fi

step "build the CLI"
if [[ -n "${SANDBOX_CLI:-}" ]]; then
    cli="$(cd "$(dirname "$SANDBOX_CLI")" && pwd)/$(basename "$SANDBOX_CLI")"
    [[ -x "$cli" ]] || fail "SANDBOX_CLI=\`$SANDBOX_CLI\` is not an executable"
    ok "given: \`$cli\`"
else
    # shellcheck source=scripts/cli_path.sh
    source "$repo/scripts/cli_path.sh"
    expect 0 build_cli "$repo"
    ok "cargo build --release --locked -p sandbox-cli: \`$cli\`"
fi

# Plugins run on a copy of policies/ and examples/: learn really performs what it observes.
work="$artifacts/work"
rm -rf "$work"
mkdir -p "$work"
cp -R "$repo/policies" "$repo/examples" "$work/"
cd "$work"

step "run the allowed plugin"
expect 0 "$cli" run --policy policies/demo.yaml --plugin examples/plugins/capability_allowed.wat \
    --report-file "$artifacts/allowed_report.json" >/dev/null
grep -q '"denied":0}' "$artifacts/allowed_report.json" || fail "the allowed plugin was denied something"
expect 0 "$cli" report verify --report-file "$artifacts/allowed_report.json" >/dev/null
ok "completed with no deny; report verified: allowed_report.json"

step "run the deny-heavy plugin"
expect 0 "$cli" run --policy policies/demo.yaml --plugin examples/plugins/deny_heavy.wat \
    --report-file "$artifacts/denied_report.json" >/dev/null
expect 0 "$cli" report verify --report-file "$artifacts/denied_report.json" >/dev/null
denies="$(events_of "$artifacts/denied_report.json" | grep -c '"decision":"deny"')" ||
    fail "no deny events in denied_report.json"
ok "completed with $denies deny events; report verified: denied_report.json"

step "explain every deny through --report-file"
explained=0
first_deny=""
index=0
while IFS= read -r event; do
    if [[ "$event" == *'"decision":"deny"'* ]]; then
        expect 0 "$cli" explain --report-file "$artifacts/denied_report.json" --event-index "$index" \
            --format json --pretty >"$artifacts/explain_events/report_event_$index.json"
        explained=$((explained + 1))
        [[ -n "$first_deny" ]] || first_deny="$index"
    fi
    index=$((index + 1))
done < <(events_of "$artifacts/denied_report.json")
[[ "$explained" -gt 0 ]] || fail "nothing to explain"
ok "$explained explanations: explain_events/report_event_N.json"

step "explain a lone event through --event-json"
events_of "$artifacts/denied_report.json" | sed -n "$((first_deny + 1))p" >"$work/event_$first_deny.json"
expect 0 "$cli" explain --event-json "$work/event_$first_deny.json" --policy policies/demo.yaml \
    --format json --pretty >"$artifacts/explain_events/lone_event_$first_deny.json"
grep -q '"suggestion"' "$artifacts/explain_events/lone_event_$first_deny.json" || fail "no suggestion"
ok "explain_events/lone_event_$first_deny.json"

step "lint the clean demo policy"
expect 0 "$cli" policy lint --policy policies/demo.yaml --format json --pretty \
    >"$artifacts/policy_lint_clean.json"
ok "no errors: policy_lint_clean.json"

step "lint the noisy policy"
expect 0 "$cli" policy lint --policy policies/noisy.yaml --format json --pretty \
    >"$artifacts/policy_lint_noisy.json"
grep -q '"severity": "warning"' "$artifacts/policy_lint_noisy.json" || fail "the noisy policy has no warnings"
ok "warnings, no errors: policy_lint_noisy.json"

step "templates: strict, balanced, dev"
for preset in strict balanced dev; do
    expect 0 "$cli" policy template --preset "$preset" --output "$artifacts/templates/$preset.yaml"
    expect 0 "$cli" policy lint --policy "$artifacts/templates/$preset.yaml" >/dev/null
done
ok "each written and linted without errors: templates/*.yaml"

step "learn the deny-heavy plugin's policy"
expect 0 "$cli" policy learn --plugin examples/plugins/deny_heavy.wat --policy policies/demo.yaml \
    --output "$artifacts/learned_policy.yaml"
expect 0 "$cli" policy lint --policy "$artifacts/learned_policy.yaml" >/dev/null
ok "lints clean: learned_policy.yaml"

step "rerun under the learned policy"
expect 0 "$cli" run --policy "$artifacts/learned_policy.yaml" --plugin examples/plugins/deny_heavy.wat \
    --report-file "$artifacts/learned_rerun_report.json" >/dev/null
if events_of "$artifacts/learned_rerun_report.json" | grep '"decision":"deny"' | grep -Eq "$grantable"; then
    fail "a deny that a rule could allow is left in learned_rerun_report.json"
fi
ok "no deny a rule could allow: learned_rerun_report.json"

step "replay the deny-heavy report under the learned policy"
expect 0 "$cli" policy replay --report-file "$artifacts/denied_report.json" \
    --policy "$artifacts/learned_policy.yaml" --format json --pretty >"$artifacts/replay_learned.json"
grep -q '"now_denied": 0' "$artifacts/replay_learned.json" || fail "the learned policy denies what the run was allowed"
ok "replay_learned.json"

step "diff the demo policy against the learned one"
expect 0 "$cli" policy diff --old policies/demo.yaml --new "$artifacts/learned_policy.yaml" \
    >"$artifacts/policy_diff.txt"
ok "policy_diff.txt"

if [[ "$RUN_BENCH" == 1 ]]; then
    step "benchmark (scripts/bench.sh, release build, ITERATIONS=$ITERATIONS)"
    build_label=release
    [[ -z "${SANDBOX_CLI:-}" ]] || build_label=given
    expect 0 env SANDBOX_CLI="$cli" SANDBOX_CLI_BUILD="$build_label" ITERATIONS="$ITERATIONS" \
        BENCH_JSON="$artifacts/benchmark.json" "$repo/scripts/bench.sh"
    ok "benchmark.json"
else
    step "benchmark snapshot (RUN_BENCH=0: 3 iterations of the binary above)"
    expect 0 env ITERATIONS=3 SANDBOX_CLI="$cli" SANDBOX_CLI_BUILD=snapshot \
        BENCH_NOTE="RUN_BENCH=0: a 3-iteration snapshot of $cli, not a measurement" \
        BENCH_JSON="$artifacts/benchmark.json" "$repo/scripts/bench.sh"
    ok "snapshot only: benchmark.json"
fi

write_summary
printf '\nusage_run: every step passed; summary in %s\n' "$summary"
