//! The module import graph has no cycles.
//!
//! A module may use its ancestors (the error type, the helpers of its service) and its parent
//! may use it (the operation table); every other dependency must go one way, so that a module
//! can be read, changed or split into a crate without the one it imports. This test reads the
//! sources: each `use` and each `crate::`/`super::` path, outside comments and before a file's
//! first `#[cfg(test)]`, is an edge to the deepest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`services::cloudtrail::channels`) -> source text without its tests.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("src is readable")
            .map(|entry| entry.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 name")
                .to_owned();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(name);
                walk(&path, &inner, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut module = prefix.to_vec();
                if !matches!(name.as_str(), "mod" | "lib" | "main") {
                    module.push(name);
                }
                let text = std::fs::read_to_string(&path).expect("source is readable");
                let text = match text.find("#[cfg(test)]") {
                    Some(at) => &text[..at],
                    None => &text,
                };
                // Comments (doc links included) are not imports.
                let text: String = text
                    .lines()
                    .map(|line| match line.find("//") {
                        Some(at) if !line[..at].contains('"') => &line[..at],
                        _ => line,
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                out.insert(module.join("::"), text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut out,
    );
    out
}

/// The paths a `use` tree names, flattened: `a::{b, c::{d}}` -> `a::b`, `a::c::d`.
fn flatten_use(tree: &str) -> Vec<String> {
    // Aliases (`x as y`) name the same module: drop them, then the whitespace.
    let mut words = tree.split_whitespace().peekable();
    let mut tree = String::new();
    while let Some(word) = words.next() {
        if word == "as" {
            let alias = words.next().unwrap_or_default();
            tree.extend(alias.chars().filter(|c| matches!(c, ',' | '}')));
        } else {
            tree.push_str(word);
        }
    }
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (at, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&inner[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|part| !part.is_empty())
        .flat_map(|part| flatten_use(&format!("{prefix}{part}")))
        .collect()
}

/// Every path of a source: its `use` trees flattened, and `crate::`/`super::` paths in code.
fn paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let after = &rest[at + 4..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(end) = after.find(';') else { break };
        let tree = &after[..end];
        if tree.starts_with("crate::") || tree.starts_with("super::") || tree.starts_with("self::")
        {
            out.extend(flatten_use(tree));
        }
    }
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(anchor).map(|at| at + from) {
            from = at + anchor.len();
            let boundary = text[..at]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
            if !boundary {
                continue;
            }
            let end = text[at..]
                .char_indices()
                .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(text.len(), |(i, _)| at + i);
            out.push(text[at..end].trim_end_matches(':').to_owned());
        }
    }
    out
}

/// Resolves a path used in `module` to the deepest module it names.
fn resolve(module: &str, path: &str, known: &BTreeSet<String>) -> Option<String> {
    let mut here: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    let mut segments = path.split("::").peekable();
    match segments.peek() {
        Some(&"crate") => {
            here.clear();
            segments.next();
        }
        Some(&"super") => {
            while segments.peek() == Some(&"super") {
                segments.next();
                here.pop();
            }
        }
        Some(&"self") => {
            segments.next();
        }
        _ => return None,
    }
    let mut best = here.join("::");
    for segment in segments {
        here.push(segment);
        let candidate = here.join("::");
        if known.contains(&candidate) {
            best = candidate;
        } else {
            break;
        }
    }
    Some(best)
}

/// Whether one module is the other or contains it.
fn related(a: &str, b: &str) -> bool {
    let within = |inner: &str, outer: &str| {
        outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}::"))
    };
    within(a, b) || within(b, a)
}

/// The edges between modules that are not ancestor and descendant.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &modules {
        for path in paths(text) {
            if let Some(target) = resolve(module, &path, &known) {
                if !related(module, &target) {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    edges
}

/// A cycle of the graph, if it has one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}

#[test]
fn paths_are_read_from_use_trees_and_code() {
    assert_eq!(
        flatten_use("super::{key, channels::{self, ChannelRecord}}"),
        [
            "super::key",
            "super::channels::self",
            "super::channels::ChannelRecord"
        ]
    );
    let known: BTreeSet<String> = ["services", "services::cloudtrail", "services::kinesis"]
        .map(str::to_owned)
        .into();
    assert_eq!(
        resolve("services::cloudtrail", "super::kinesis::may_write", &known).as_deref(),
        Some("services::kinesis")
    );
    assert_eq!(
        resolve("services::cloudtrail", "crate::services::Deps", &known).as_deref(),
        Some("services")
    );
    let cycle: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), ["b".to_owned()].into()),
        ("b".to_owned(), ["a".to_owned()].into()),
    ]
    .into();
    assert!(find_cycle(&cycle).is_some());
}

/// The unit a module belongs to: its service (`services::logs`), or its top-level module.
fn unit(module: &str) -> String {
    let parts: Vec<&str> = module.split("::").collect();
    match parts.as_slice() {
        ["services", service, ..] => format!("services::{service}"),
        [top, ..] => (*top).to_owned(),
        [] => String::new(),
    }
}

#[test]
fn no_import_cycles_between_services_and_top_level_modules() {
    let mut units: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in graph() {
        for to in targets {
            let (from, to) = (unit(&from), unit(&to));
            if !related(&from, &to) {
                units.entry(from).or_default().insert(to);
            }
        }
    }
    // FIXME: cycles remain: `config` checks app names and bucket names with `appfabric` and
    // `s3` functions while those read config's validated types (`AppFabricSettings`,
    // `ExternalBucket`). Their back edges are set aside here so that every other cycle fails
    // the test.
    for (from, to) in [
        ("services::appfabric", "config"),
        ("services::s3", "config"),
    ] {
        assert!(
            units
                .get_mut(from)
                .is_some_and(|targets| targets.remove(to)),
            "{from} -> {to} is gone: drop it from this list"
        );
    }
    // The graph is read, not empty: CloudTrail Data reads CloudTrail's records, config the
    // parsed flags.
    assert!(units["services::cloudtrail_data"].contains("services::cloudtrail"));
    assert!(units["config"].contains("cli"));
    if let Some(cycle) = find_cycle(&units) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn no_import_cycles_inside_cloudtrail() {
    // FIXME: sibling cycles remain inside `logs` (groups <-> destinations), `appfabric`
    // (authorizations -> ingestions -> delivery -> authorizations) and CloudTrail's `lake`
    // (queries <-> runner, segments <-> table); CloudTrail's control plane is checked here.
    let inside = |module: &str| {
        module.starts_with("services::cloudtrail::")
            && !module.starts_with("services::cloudtrail::lake")
    };
    let edges: BTreeMap<String, BTreeSet<String>> = graph()
        .into_iter()
        .filter(|(from, _)| inside(from))
        .map(|(from, targets)| {
            let targets = targets.into_iter().filter(|to| inside(to)).collect();
            (from, targets)
        })
        .collect();
    assert!(edges["services::cloudtrail::channels"].contains("services::cloudtrail::records"));
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn cloudtrail_records_are_a_leaf() {
    let edges = graph();
    let records = "services::cloudtrail::records";
    // It may use shared types (a channel's policy is a `policy::StoredPolicy`), but no
    // service, CloudTrail's handlers included.
    let imports: Vec<&String> = edges
        .get(records)
        .into_iter()
        .flatten()
        .filter(|to| to.starts_with("services"))
        .collect();
    assert!(imports.is_empty(), "{records} imports {imports:?}");
    let modules = modules();
    let text = &modules[records];
    assert!(
        !text.contains("super::"),
        "{records} must not use its parent"
    );
}

#[test]
fn logs_reads_no_other_service() {
    // CloudWatch Logs asks the pipeline's sinks whether a target exists and is writable;
    // it never reads Kinesis's or Firehose's records.
    let edges = graph();
    let logs: BTreeSet<String> = edges
        .iter()
        .filter(|(from, _)| unit(from) == "services::logs")
        .flat_map(|(_, targets)| targets.iter().map(|to| unit(to)))
        .collect();
    for other in ["services::kinesis", "services::firehose", "services::s3"] {
        assert!(!logs.contains(other), "services::logs imports {other}");
    }
    assert!(logs.contains("pipeline"));
}
