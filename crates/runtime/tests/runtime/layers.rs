//! The layering rule of `docs/host-abi.md` and DESIGN.md, checked on the source: every
//! `crate::` reference in `crates/runtime` points down the layer order written once below, and
//! neither `crates/runtime` nor `crates/policy` has an import cycle between its top-level
//! modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The runtime's layers, bottom first. A module may refer to its own layer and those below.
const RUNTIME_LAYERS: &[&str] = &[
    "engine", "broker", "cap", "state", "guest", "abi", "report", "call", "sandbox",
];

/// Top-level module → the top-level modules (and other `crate::` names) it refers to.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`lib` for `lib.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The names a piece of source refers to as `crate::name`, also inside `crate::{a, b::c}`.
/// Comment lines are left out: a doc link is not an import.
fn crate_references(source: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for part in inner.split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        names.insert(name);
                    }
                }
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
            rest = after;
        }
    }
    names
}

/// The graph of `crate::` references between top-level modules of a source tree, given as
/// (file path relative to `src`, contents) pairs.
fn graph_of(files: &[(PathBuf, String)]) -> Graph {
    let mut graph = Graph::new();
    for (rel, source) in files {
        let module = module_of(Path::new(""), rel);
        let refs = graph.entry(module.clone()).or_default();
        for name in crate_references(source) {
            if name != module {
                refs.insert(name);
            }
        }
    }
    graph
}

fn read_tree(crate_dir: &str) -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f.strip_prefix(&src).unwrap().to_path_buf(), text)
        })
        .collect()
}

/// Every reference that does not point down `layers`; `lib` (the crate root) may refer to all.
fn layer_violations(graph: &Graph, layers: &[&str]) -> Vec<String> {
    let rank = |m: &str| layers.iter().position(|l| *l == m);
    let mut found = Vec::new();
    for (module, refs) in graph {
        if module == "lib" {
            continue;
        }
        let Some(own) = rank(module) else {
            found.push(format!("module `{module}` is in no layer"));
            continue;
        };
        for name in refs {
            match rank(name) {
                Some(other) if other <= own => {}
                Some(_) => found.push(format!("`{module}` refers up to `{name}`")),
                // A name re-exported at the root hides which layer it comes from.
                None => found.push(format!(
                    "`{module}` refers to `crate::{name}`: name its module instead"
                )),
            }
        }
    }
    found
}

/// One cycle between top-level modules, if there is any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next) {
                if let Some(cycle) = visit(next, graph, path, done) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn runtime_imports_point_down_the_layers() {
    let graph = graph_of(&read_tree("runtime"));
    assert!(graph.contains_key("broker") && graph.contains_key("sandbox"));
    let violations = layer_violations(&graph, RUNTIME_LAYERS);
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn policy_modules_import_no_cycle() {
    let graph = graph_of(&read_tree("policy"));
    assert!(graph.contains_key("decide"));
    assert_eq!(find_cycle(&graph), None, "an import cycle in crates/policy");
}

#[test]
fn an_upward_import_or_a_cycle_is_caught() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_owned());
    let upward = graph_of(&[
        file("broker/mod.rs", "use crate::engine::cache;\n"),
        file(
            "cap/fs/mod.rs",
            "use crate::{broker::Permit, state::RunState};\n",
        ),
        file(
            "state/mod.rs",
            "// crate::sandbox in a comment is no import\n",
        ),
    ]);
    assert_eq!(
        layer_violations(&upward, RUNTIME_LAYERS),
        vec!["`cap` refers up to `state`".to_owned()]
    );
    let cycle = graph_of(&[
        file("learn.rs", "use crate::replay::x;\n"),
        file("replay.rs", "fn f() { crate::learn::y(); }\n"),
    ]);
    assert_eq!(
        find_cycle(&cycle),
        Some(vec!["learn".into(), "replay".into(), "learn".into()])
    );
}
