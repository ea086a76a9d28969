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

#[test]
fn layers_import_only_downward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let table = layers(root);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
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
    let relative_of = |file: &PathBuf| {
        file.strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/")
    };
    let mut modules: BTreeMap<Vec<String>, String> = BTreeMap::new();
    for file in &files {
        let relative = relative_of(file);
        modules.insert(module_of(&relative), relative);
    }
    let mut unlisted = Vec::new();
    let mut upward = Vec::new();
    for file in &files {
        let relative = relative_of(file);
        let Some((rank, layer)) = layer_of(&relative) else {
            unlisted.push(relative);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        // `super::x` from a file is its parent module's `x`: as if `crate::parent::x`.
        // A file's own `mod tests` (at its end) means `super` = the file: left out.
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let module = module_of(&relative);
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
            if target_rank < rank {
                upward.push(format!(
                    "{relative} ({layer}) → {target} ({target_layer}): crate::{}",
                    segments.join("::")
                ));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        unlisted.is_empty(),
        "files in no layer (docs/architecture.md): {unlisted:?}"
    );
    assert!(
        upward.is_empty(),
        "{} imports point up a layer:\n{}",
        upward.len(),
        upward.join("\n")
    );
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
