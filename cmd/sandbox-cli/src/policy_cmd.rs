//! `policy lint`, `policy template`, `policy schema` (and dispatch of `learn`, `diff`, `replay`).

use anyhow::Context;
use sandbox_policy::lint::{lint_policy_text, render_json, render_sarif, render_text};
use sandbox_policy::templates::{template, Preset};

use crate::args::{LintArgs, LintFormat, PolicyCommand, PresetArg, TemplateArgs};
use crate::text::neutralize;
use crate::Exit;

pub fn dispatch(command: PolicyCommand) -> anyhow::Result<Exit> {
    match command {
        PolicyCommand::Lint(a) => lint(a),
        PolicyCommand::Template(a) => write_template(a),
        PolicyCommand::Schema => {
            outln!("{}", sandbox_policy::schema::policy_schema().trim_end());
            Ok(Exit::Ok)
        }
        PolicyCommand::Learn(a) => crate::learn_cmd::learn(a),
        PolicyCommand::Diff(a) => crate::change_cmd::diff(a),
        PolicyCommand::Replay(a) => crate::change_cmd::replay(a),
        PolicyCommand::Fix(a) => crate::fix_cmd::fix(a),
    }
}

fn lint(args: LintArgs) -> anyhow::Result<Exit> {
    let bytes = crate::bounded::read(
        &args.policy,
        "policy",
        sandbox_policy::MAX_POLICY_BYTES as u64,
    )?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("policy `{}` is not UTF-8 text", args.policy.display()))?;
    let report = lint_policy_text(&text, &args.policy);
    let shown = args.policy.display().to_string();
    let out = match args.format {
        LintFormat::Text => neutralize(&render_text(&report, &text, &shown)),
        LintFormat::Json => render_json(&report, &shown, args.pretty),
        LintFormat::Sarif => render_sarif(&report, &shown, args.pretty),
    };
    out!("{}", out);
    if !out.ends_with('\n') {
        outln!();
    }
    let fails = report.has_errors() || (args.deny_warnings && report.warning_count() > 0);
    Ok(if fails { Exit::Failure } else { Exit::Ok })
}

fn write_template(args: TemplateArgs) -> anyhow::Result<Exit> {
    let preset = match args.preset {
        PresetArg::Strict => Preset::Strict,
        PresetArg::Balanced => Preset::Balanced,
        PresetArg::Dev => Preset::Dev,
    };
    let text = template(preset);
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write `{}`", path.display()))?,
        None => out!("{text}"),
    }
    Ok(Exit::Ok)
}
