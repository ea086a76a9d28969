//! Every documented command, so the docs cannot drift from the CLI: each
//! `gateprobe …` command in a `sh` block of README.md and docs/*.md is
//! parsed by the CLI's own definitions. A command against loopback is then
//! run against the simulator (its default config, on an ephemeral port in
//! place of the docs' 127.0.0.1:8080) at a small budget, and must not be a
//! usage error; one against a real gateway is planned, never sent, and its
//! block says so visibly with a `# needs a real gateway` comment. Commands
//! that need a file or a variable the docs leave to the reader (`$i`,
//! `saved.json`) are parsed only, and listed.
use std::path::{Path, PathBuf};

use clap::Parser;
use gateprobe::cli::{Cli, Command};
use gateprobe::sim::{self, config};

use crate::common::{say, temp_dir};

/// The marker a block against a real gateway carries.
const REAL: &str = "# needs a real gateway";

/// A documented command: where it is, its words, and its block's text.
struct Documented {
    place: String,
    words: Vec<String>,
    block: String,
}

fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The words of one shell line up to its first operator or comment.
fn command_words(line: &str) -> Option<Vec<String>> {
    let words = shell_words::split(line).ok()?;
    let stops = ["|", "||", "&&", ";", "&", "<"];
    let words: Vec<String> = words
        .into_iter()
        .take_while(|w| !stops.contains(&w.as_str()) && !w.starts_with('#') && !w.contains('>'))
        .collect();
    let start = words.iter().position(|w| w == "gateprobe")?;
    // `cargo run --release -- demo` is the binary too.
    Some(words[start..].to_vec())
}

fn commands() -> Vec<Documented> {
    let mut found = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut in_block = false;
        let mut block = String::new();
        let mut block_start = 0;
        for (index, line) in text.lines().enumerate() {
            if !in_block && line.trim_start() == "```sh" {
                in_block = true;
                block.clear();
                block_start = index + 2;
                continue;
            }
            if in_block && line.trim_start() == "```" {
                in_block = false;
                let joined = block.replace("\\\n", " ");
                for (offset, logical) in joined.lines().enumerate() {
                    let logical = logical.replace("cargo run --release --", "gateprobe");
                    let logical = logical
                        .split_once("do ")
                        .map_or(logical.as_str(), |(_, rest)| rest);
                    if let Some(words) = command_words(logical.trim()) {
                        found.push(Documented {
                            place: format!("{name}:{}", block_start + offset),
                            words,
                            block: block.clone(),
                        });
                    }
                }
                continue;
            }
            if in_block {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    found
}

/// `$NAME` and `${NAME}` replaced by a placeholder value.
fn fill_variables(word: &str) -> String {
    let pattern = regex::Regex::new(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?").unwrap();
    pattern.replace_all(word, "placeholder").into_owned()
}

/// Replaces a flag's value, or appends the flag, so a run stays small.
fn bound(words: &mut Vec<String>, flags: &[&str], value: &str) {
    match words.iter().position(|w| flags.contains(&w.as_str())) {
        Some(at) if at + 1 < words.len() => words[at + 1] = value.to_string(),
        _ => {
            words.push(flags[0].to_string());
            words.push(value.to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_command_parses_and_runs() {
    let documented = commands();
    assert!(
        documented.len() >= 10,
        "found only {} commands",
        documented.len()
    );
    let config = config::parse("default", config::DEFAULT_CONFIG).unwrap();
    let sim = sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(7))
        .await
        .unwrap();
    let address = sim.address.to_string();
    let dir = temp_dir();
    let (mut ran, mut planned, mut parsed) = (Vec::new(), Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for Documented {
        place,
        words,
        block,
    } in documented
    {
        let shown = words.join(" ");
        let cli = match Cli::try_parse_from(&words) {
            Ok(cli) => cli,
            Err(err) => {
                failures.push(format!("{place}: `{shown}` does not parse: {err}"));
                continue;
            }
        };
        // `run FILE`: the documented scenario exists.
        if let Command::Run(args) = &cli.command {
            let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(&args.scenario);
            if !words.iter().any(|w| w.contains('$')) && !file.exists() {
                failures.push(format!("{place}: `{shown}`: no such scenario file"));
            }
        }
        let variable = words.iter().any(|w| w.contains('$'));
        let target = words.iter().find(|w| w.starts_with("http"));
        let local = target.is_some_and(|t| t.contains("127.0.0.1") || t.contains("[::1]"));
        let sends = matches!(
            cli.command,
            Command::Load(_) | Command::Canary(_) | Command::Throttle(_)
        );
        // A target the reader fills in (`$URL`: the shards recipe, which
        // tests/it/shards.rs runs as written) is parsed only.
        if !sends || target.is_none() || (variable && local) {
            parsed.push(format!("{place}: {}", words[1]));
            continue;
        }
        if !local {
            // Planned with the reader's variables filled in.
            let filled: Vec<String> = words.iter().map(|w| fill_variables(w)).collect();
            let Ok(cli) = Cli::try_parse_from(&filled) else {
                failures.push(format!("{place}: `{shown}` does not parse once filled in"));
                continue;
            };
            if !block.contains(REAL) {
                failures.push(format!(
                    "{place}: `{shown}` targets a real gateway; its block needs `{REAL}`"
                ));
            }
            if let Err(err) = gateprobe::app::job::Job::plan(&cli.command) {
                failures.push(format!("{place}: `{shown}` does not plan: {err}"));
            }
            planned.push(place);
            continue;
        }
        // Against the simulator, small: a few hundred requests.
        let mut words: Vec<String> = words
            .iter()
            .map(|w| w.replace("127.0.0.1:8080", &address))
            .collect();
        match words[1].as_str() {
            "load" => {
                words.retain(|w| !w.starts_with("--duration="));
                if let Some(at) = words.iter().position(|w| w == "--duration") {
                    words.drain(at..(at + 2).min(words.len()));
                }
                bound(&mut words, &["--requests", "-n"], "200");
            }
            "canary" => bound(&mut words, &["--max-requests"], "3000"),
            _ => {
                bound(&mut words, &["--max-requests"], "800");
                bound(&mut words, &["--idle"], "0");
            }
        }
        let json = dir.path().join("docs-report.json");
        words.push("--json".to_string());
        words.push(json.display().to_string());
        words.push("--quiet".to_string());
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let code = crate::common::run(&args).await;
        say(&format!(
            "{place}: exit {code}: gateprobe {}",
            args.join(" ")
        ));
        if code == 2 || !json.exists() {
            failures.push(format!(
                "{place}: `{shown}` exited {code} against the simulator"
            ));
        }
        let _ = std::fs::remove_file(&json);
        ran.push(place);
    }
    say(&format!(
        "{} documented commands run against the simulator, {} planned for a real gateway, {} parsed only ({})",
        ran.len(),
        planned.len(),
        parsed.len(),
        parsed.join(", ")
    ));
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(ran.len() >= 5, "only {} ran", ran.len());
}
