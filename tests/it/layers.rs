//! Import arrows point down: every `crate::` path in src/ names a module in
//! the same layer or a lower one. The layers are docs/architecture.md's map.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// (layer rank, path) from docs/architecture.md's `layers` block; rank 0 is the top.
fn layers(root: &Path) -> Vec<(usize, String, String)> {
    let readme = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let block = readme
        .split("<!-- layers:")
        .nth(1)
        .expect("docs/architecture.md has a layers block")
        .split("```text\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let mut paths = Vec::new();
    for (rank, line) in block.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let mut words = line.split_whitespace();
        let layer = words.next().unwrap().to_string();
        for path in words {
            paths.push((rank, layer.clone(), path.to_string()));
        }
    }
    paths
}

fn rust_files(folder: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The module path of a file: src/canary/mod.rs → ["canary"].
fn module_of(relative: &str) -> Vec<String> {
    let trimmed = relative.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_string).collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// Every `crate::a::b` (and `crate::{a, b::c}`) path in `text`, as segments.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `gateprobe_crate::`, not ours
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let segments: Vec<String> = item
                    .trim()
                    .split("::")
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty() && s != "self")
                    .collect();
                if !segments.is_empty() {
                    found.push(segments);
                }
            }
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '!'))
            .unwrap_or(rest.len());
        let segments: Vec<String> = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !segments.is_empty() {
            found.push(segments);
        }
    }
    found
}

/// What is wrong with a tree of sources against a layers map: files the
/// map does not place, imports that point up a layer, and circles of
/// imports between top-level modules.
#[derive(Debug, Default)]
struct Findings {
    unlisted: Vec<String>,
    upward: Vec<String>,
    cycles: Vec<String>,
}

/// The top-level module of a file: `canary/split.rs` → `canary`, `units.rs`
/// → `units`; lib.rs and main.rs are the crate root.
fn top_of(relative: &str) -> String {
    relative
        .split('/')
        .next()
        .unwrap()
        .trim_end_matches(".rs")
        .to_string()
}

/// Checks `files` ((path under src/, text)) against the map `table`.
fn check_tree(table: &[(usize, String, String)], files: &[(String, String)]) -> Findings {
    // Each file's layer: the longest listed path that is it or contains it.
    let layer_of = |relative: &str| -> Option<(usize, String)> {
        table
            .iter()
            .filter(|(_, _, path)| {
                relative == path || (path.ends_with('/') && relative.starts_with(path.as_str()))
            })
            .max_by_key(|(_, _, path)| path.len())
            .map(|(rank, layer, _)| (*rank, layer.clone()))
    };
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|(relative, _)| (module_of(relative), relative.clone()))
        .collect();
    let mut found = Findings::default();
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (relative, text) in files {
        let Some((rank, layer)) = layer_of(relative) else {
            found.unlisted.push(relative.clone());
            continue;
        };
        // `super::x` from a file is its parent module's `x`: as if `crate::parent::x`.
        // A file's own `mod tests` (at its end) means `super` = the file: left out.
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let module = module_of(relative);
        let parent = module[..module.len().saturating_sub(1)].join("::");
        let absolute = text.replace(
            "super::",
            &if parent.is_empty() {
                "crate::".to_string()
            } else {
                format!("crate::{parent}::")
            },
        );
        for segments in crate_paths(&absolute) {
            // Exported macros live in console.rs; any other root item is lib.rs.
            let target = if segments[0].ends_with('!') {
                "console.rs".to_string()
            } else {
                (1..=segments.len())
                    .rev()
                    .find_map(|n| modules.get(&segments[..n]).cloned())
                    .unwrap_or_else(|| "lib.rs".to_string())
            };
            let Some((target_rank, target_layer)) = layer_of(&target) else {
                continue; // reported as unlisted, file by file
            };
            let path = format!("crate::{}", segments.join("::"));
            if target_rank < rank {
                found.upward.push(format!(
                    "{relative} ({layer}) → {target} ({target_layer}): {path}"
                ));
            }
            let (from, to) = (top_of(relative), top_of(&target));
            let root = ["lib", "main"];
            if from != to && !root.contains(&from.as_str()) && !root.contains(&to.as_str()) {
                edges
                    .entry(from)
                    .or_default()
                    .entry(to)
                    .or_insert(format!("{relative}: {path}"));
            }
        }
    }
    found.cycles = cycles(&edges);
    found.upward.sort();
    found.upward.dedup();
    found
}

/// Every circle of imports between top-level modules, as "a → b → a" with
/// the first import of each arrow: for each module, a shortest path back to
/// it (breadth first), each circle reported once.
fn cycles(edges: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut found = Vec::new();
    for start in edges.keys() {
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.as_str()]);
        let mut closing = None;
        while let Some(at) = queue.pop_front() {
            for next in edges.get(at).into_iter().flat_map(|m| m.keys()) {
                if next == start {
                    closing = Some(at);
                    break;
                }
                if !came_from.contains_key(next.as_str()) {
                    came_from.insert(next, at);
                    queue.push_back(next);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        let Some(mut at) = closing else { continue };
        let mut circle = vec![start.as_str()];
        while at != start {
            circle.push(at);
            at = came_from[at];
        }
        circle[1..].reverse();
        let mut key: Vec<&str> = circle.clone();
        key.sort_unstable();
        if !seen.insert(key) {
            continue;
        }
        circle.push(start);
        let arrows: Vec<String> = circle
            .windows(2)
            .map(|w| format!("  {} → {} ({})", w[0], w[1], edges[w[0]][w[1]]))
            .collect();
        found.push(format!("{}\n{}", circle.join(" → "), arrows.join("\n")));
    }
    found
}

#[test]
fn layers_import_only_downward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let table = layers(root);
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|file| {
            let relative = file
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (relative, std::fs::read_to_string(file).unwrap())
        })
        .collect();
    let found = check_tree(&table, &files);
    assert!(
        found.unlisted.is_empty(),
        "files in no layer (docs/architecture.md): {:?}",
        found.unlisted
    );
    assert!(
        found.upward.is_empty(),
        "{} imports point up a layer:\n{}",
        found.upward.len(),
        found.upward.join("\n")
    );
    assert!(
        found.cycles.is_empty(),
        "import circles between top-level modules:\n{}",
        found.cycles.join("\n")
    );
    // The map names folders: a folder's files are never listed one by one.
    let listed_files: Vec<&str> = table
        .iter()
        .map(|(_, _, path)| path.as_str())
        .filter(|path| path.contains('/') && !path.ends_with('/'))
        .collect();
    assert!(
        listed_files.is_empty(),
        "files inside folders listed apart: {listed_files:?}"
    );
}

/// The check finds what it claims to: a planted upward import, a planted
/// circle in one layer, and a planted file the map does not place.
#[test]
fn layers_check_finds_planted_faults() {
    let table = vec![
        (0, "app".to_string(), "app/".to_string()),
        (1, "analysis".to_string(), "canary/".to_string()),
        (1, "analysis".to_string(), "throttle/".to_string()),
        (1, "analysis".to_string(), "check/".to_string()),
        (2, "leaf".to_string(), "units.rs".to_string()),
    ];
    let tree = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut files = vec![
            (
                "app/mod.rs",
                "use crate::canary::split::Split;\nuse crate::units;\n",
            ),
            ("canary/mod.rs", "pub mod split;\n"),
            (
                "canary/split.rs",
                "use super::mod_item;\nuse crate::units::round2;\n",
            ),
            ("throttle/mod.rs", "use crate::units::{self, round2};\n"),
            ("units.rs", "pub fn round2() {}\n"),
        ];
        files.extend_from_slice(extra);
        files
            .iter()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect()
    };
    let clean = check_tree(&table, &tree(&[]));
    assert!(
        clean.unlisted.is_empty() && clean.upward.is_empty() && clean.cycles.is_empty(),
        "{clean:?}"
    );
    let upward = check_tree(
        &table,
        &tree(&[(
            "throttle/watch.rs",
            "use crate::app::job::Job; // planted\n",
        )]),
    );
    assert_eq!(upward.upward.len(), 1, "{upward:?}");
    assert!(upward.upward[0].contains("throttle/watch.rs (analysis) → app/mod.rs (app)"));
    let circle = check_tree(
        &table,
        &tree(&[
            ("canary/watch.rs", "use crate::throttle::Fit;\n"),
            (
                "throttle/gate.rs",
                "fn f() { crate::canary::split::run() }\n",
            ),
        ]),
    );
    assert!(circle.upward.is_empty(), "{circle:?}");
    assert_eq!(circle.cycles.len(), 1, "{circle:?}");
    assert!(
        circle.cycles[0].starts_with("canary → throttle → canary"),
        "{}",
        circle.cycles[0]
    );
    let long = check_tree(
        &table,
        &tree(&[
            ("canary/a.rs", "use crate::throttle::x;\n"),
            ("throttle/b.rs", "use crate::check::y;\n"),
            ("check/mod.rs", "use crate::canary::z;\n"),
        ]),
    );
    assert_eq!(long.cycles.len(), 1, "{long:?}");
    assert!(
        long.cycles[0].starts_with("canary → throttle → check → canary"),
        "{long:?}"
    );
    let unnamed = check_tree(&table, &tree(&[("report/mod.rs", "pub struct Report;\n")]));
    assert_eq!(unnamed.unlisted, vec!["report/mod.rs".to_string()]);
}

/// The functions in `text` longer than `limit` lines, as (line, name,
/// length, whether the comments above say why: "Long because …"). The code
/// is rustfmt's: a body ends at the first `}` line at its `fn`'s indent.
fn long_functions(text: &str, limit: usize) -> Vec<(usize, String, usize, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("async ")
            .trim_start_matches("unsafe ");
        let Some(after) = signature.strip_prefix("fn ") else {
            continue;
        };
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // The signature runs to a line ending in `{` (a body) or `;` (none).
        let Some(open) = (start..lines.len()).find(|&i| {
            lines[i].ends_with('{') || lines[i].ends_with(';') || lines[i].ends_with('}')
        }) else {
            continue;
        };
        if !lines[open].ends_with('{') {
            continue;
        }
        let close = format!("{indent}}}");
        let Some(end) = (open + 1..lines.len()).find(|&i| lines[i] == close) else {
            continue;
        };
        let length = end - start + 1;
        if length <= limit {
            continue;
        }
        let reason = lines[..start]
            .iter()
            .rev()
            .take_while(|l| {
                let l = l.trim_start();
                l.starts_with("//") || l.starts_with("#[")
            })
            .any(|l| l.to_lowercase().contains("long because"));
        found.push((start + 1, name, length, reason));
    }
    found
}

#[test]
fn long_functions_say_why() {
    let sample = "/// Short.\nfn short() {\n    a();\n}\n\n/// Long because it is one table.\nfn table() {\n    a();\n    b();\n}\nfn long() {\n    a();\n    b();\n}\n";
    assert_eq!(
        long_functions(sample, 3),
        vec![
            (7, "table".to_string(), 4, true),
            (11, "long".to_string(), 4, false)
        ]
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let (mut found, mut justified) = (Vec::new(), 0);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, name, length, reason) in long_functions(&text, 80) {
            let relative = file.strip_prefix(root).unwrap().display().to_string();
            match reason {
                true => justified += 1,
                false => found.push(format!("{relative}:{line} {name}: {length} lines")),
            }
        }
    }
    // The measure works on the real code: it finds the long ones that say why.
    assert!(justified >= 5, "only {justified} long functions found");
    println!("{justified} functions over 80 lines, each saying why");
    assert!(
        found.is_empty(),
        "functions over 80 lines with no \"Long because\" comment above them:\n{}",
        found.join("\n")
    );
}

/// No file under src/ is longer than 800 lines: a module that grows past it
/// holds more than one job and splits along its seams.
#[test]
fn modules_stay_under_800_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > 800).then(|| {
                format!(
                    "{} ({lines} lines)",
                    file.strip_prefix(root).unwrap().display()
                )
            })
        })
        .collect();
    long.sort();
    assert!(files.len() > 50, "the walk found the sources");
    assert!(long.is_empty(), "modules over 800 lines: {long:?}");
}

/// The drivers and renderers loop over `report::analysis::ALL` and name
/// no analysis: no section (`report.canary`, `ThrottleSection`, …) and no
/// check kind (a command's name, `"throttle"`, is a job's, not a check's).
/// What an analysis is lives in its own module, so adding one
/// touches its module, the list and its schema fragment only.
#[test]
fn drivers_and_renderers_name_no_analysis() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/output"), &mut files);
    rust_files(&root.join("src/report/consistency"), &mut files);
    for file in ["merge.rs", "saved.rs", "analysis.rs", "markup.rs"] {
        files.push(root.join("src/report").join(file));
    }
    files.push(root.join("src/app/job.rs"));
    let names = regex::Regex::new(
        r#"\.canary\b|\.throttle\b|CanarySection|ThrottleSection|"(split|health|throttle)\.[a-z_.]*"|"threshold"|kind(\.as_str\(\))? *==|kind\.starts_with"#,
    )
    .unwrap();
    for planted in [
        "if let Some(c) = &report.canary {",
        "check.kind == \"split.share\"",
    ] {
        assert!(names.is_match(planted), "the rule misses {planted}");
    }
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (index, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if let Some(hit) = names.find(code) {
                let place = file.strip_prefix(root).unwrap().display();
                found.push(format!("{place}:{}: {}", index + 1, hit.as_str()));
            }
        }
    }
    assert!(files.len() > 10, "the walk found the drivers");
    assert!(found.is_empty(), "drivers naming an analysis: {found:#?}");
}
