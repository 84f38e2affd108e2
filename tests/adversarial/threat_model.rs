//! `docs/threat-model.md` names a test for each claim: every name must be a test that exists,
//! and every test of this suite must back a claim there.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (file, test) pairs written as `` `file` → `test`, `test` `` in the document.
fn references(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in doc.match_indices("` → `") {
        let file = &doc[..i];
        let file = &file[file.rfind('`').unwrap() + 1..];
        let mut rest = &doc[i + "` → `".len()..];
        loop {
            let end = rest.find('`').unwrap();
            out.push((file.to_owned(), rest[..end].to_owned()));
            rest = &rest[end + 1..];
            match rest.strip_prefix(", `") {
                Some(next) => rest = next,
                None => break,
            }
        }
    }
    out
}

#[test]
fn every_claim_names_a_test_that_exists_and_every_adversarial_test_backs_a_claim() {
    let doc = std::fs::read_to_string(repo_root().join("docs/threat-model.md")).unwrap();
    let refs = references(&doc);
    assert!(refs.len() > 40, "only {} references found", refs.len());
    for (file, test) in &refs {
        let source = std::fs::read_to_string(repo_root().join(file))
            .unwrap_or_else(|_| panic!("threat model names missing file `{file}`"));
        assert!(
            source.contains(&format!("fn {test}(")),
            "threat model names `{test}`, which is not in `{file}`"
        );
    }
    // Every claim row of the tables names at least one test.
    for line in doc
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| claim"))
    {
        assert!(line.contains(" → "), "a claim without a test: {line}");
    }
    for module in [
        "paths",
        "quotas",
        "network",
        "budgets",
        "reports",
        "hostile_files",
    ] {
        let file = format!("tests/adversarial/{module}.rs");
        let source = std::fs::read_to_string(repo_root().join(&file)).unwrap();
        for chunk in source.split("#[test]").skip(1) {
            let name = chunk
                .split("fn ")
                .nth(1)
                .unwrap()
                .split('(')
                .next()
                .unwrap();
            assert!(
                refs.iter().any(|(f, t)| *f == file && t == name),
                "`{file}` → `{name}` backs no claim in docs/threat-model.md"
            );
        }
    }
}
