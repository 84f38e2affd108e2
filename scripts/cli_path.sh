# Sourced by the scripts: builds the release CLI once, where cargo puts it (honouring
# CARGO_TARGET_DIR), and sets `cli` to its absolute path. SANDBOX_CLI=PATH skips the build.
# Every script uses the release profile, so following the README builds Wasmtime once.
build_cli() {
    local repo="$1"
    if [[ -n "${SANDBOX_CLI:-}" ]]; then
        if [[ "$SANDBOX_CLI" = */* ]]; then
            cli="$(cd "$(dirname "$SANDBOX_CLI")" && pwd)/$(basename "$SANDBOX_CLI")"
        else
            cli="$(command -v "$SANDBOX_CLI")" || { echo "\`$SANDBOX_CLI\` is not on PATH" >&2; return 1; }
        fi
        return 0
    fi
    local target="${CARGO_TARGET_DIR:-target}"
    [[ "$target" = /* ]] || target="$repo/$target"
    echo "building the release CLI (cargo build --release --locked -p sandbox-cli) into \`$target\`" >&2
    (cd "$repo" && cargo build --release --locked -p sandbox-cli >&2) || return 1
    cli="$target/release/sandbox-cli"
}
