//! `gateprobe run SCENARIO.json`: a pipeline step as a file — a target, default
//! headers and classes, and ordered steps (`load` with thresholds, `canary`,
//! `throttle`, `pause`) whose checks make one verdict and one exit code.
//!
//! A step's options are the command's own flags, spelled with underscores
//! (`expect_rate` for `--expect-rate`): each step becomes a command line that
//! clap and the command's planner validate exactly as at the terminal, so a
//! scenario can do what a command can, with the same messages. Every step is
//! planned before anything is sent: a mistake anywhere exits 2 first.
//! Unknown fields are refused where they stand (file:line:col), and `${NAME}`
//! takes its value from `--set NAME=VALUE` or the environment — API keys come
//! from there, never from the file, and headers filled that way are secret.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use anyhow::Result;
use clap::Parser;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::app::job::Job;
use crate::app::steps::{self, Step, Work};
use crate::check::threshold::Threshold;
use crate::cli::{Cli, Command, RunArgs};
use crate::plan::{self, UsageError};
use crate::report::{Report, Verdict};
use crate::units;

/// A step kind: its command's name.
pub trait StepKind {
    const NAME: &'static str;
}

pub struct LoadKind;
impl StepKind for LoadKind {
    const NAME: &'static str = "load";
}

pub struct CanaryKind;
impl StepKind for CanaryKind {
    const NAME: &'static str = "canary";
}

pub struct ThrottleKind;
impl StepKind for ThrottleKind {
    const NAME: &'static str = "throttle";
}

/// The options a step of `kind` accepts: its command's long flags with
/// underscores (`expect_rate` for `--expect-rate`), read from the clap
/// definition so that a new flag is a new step option. Left out: what the
/// scenario's own run decides (report files, `--quiet`), the URL (a step
/// has a `path` on the target), `--header` (a step has a `headers` map),
/// and the flags `throttle` sets itself. Added: `path`, `headers`, and a
/// load step's `thresholds`.
pub fn step_keys(kind: &str) -> &'static [&'static str] {
    use std::sync::OnceLock;
    static KEYS: OnceLock<BTreeMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        // Leaked once: clap hands out names borrowed from its Command.
        let cli: &'static clap::Command =
            Box::leak(Box::new(<Cli as clap::CommandFactory>::command()));
        let outputs: Vec<&str> = crate::output::FORMATS
            .iter()
            .map(|format| format.flag().trim_start_matches("--"))
            .collect();
        let refused: Vec<&str> = crate::cli::throttle::refused_load_flags()
            .map(|flag| flag.trim_start_matches("--"))
            .collect();
        let mut all = BTreeMap::new();
        for kind in [LoadKind::NAME, CanaryKind::NAME, ThrottleKind::NAME] {
            let command = cli
                .find_subcommand(kind)
                .expect("a step kind is a subcommand");
            let mut keys: Vec<&'static str> = vec!["path", "headers"];
            for arg in command.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                let skip = long == "help"
                    || long == "quiet"
                    || crate::cli::ShardArgs::FLAGS.contains(&format!("--{long}").as_str())
                    || long == "header"
                    || outputs.contains(&long)
                    || long == "samples"
                    || (kind == ThrottleKind::NAME && refused.contains(&long));
                if !skip {
                    keys.push(Box::leak(long.replace('-', "_").into_boxed_str()));
                }
            }
            if kind == LoadKind::NAME {
                keys.push("thresholds");
            }
            all.insert(kind, keys);
        }
        all
    });
    keys.get(kind).map_or(&[], Vec::as_slice)
}

/// A step's options, in file order, refused at the first unknown key.
pub struct Options<K> {
    pub entries: Vec<(String, Value)>,
    kind: PhantomData<K>,
}

impl<'de, K: StepKind> Deserialize<'de> for Options<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys<K>(PhantomData<K>);
        impl<'de, K: StepKind> Visitor<'de> for Keys<K> {
            type Value = Options<K>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "the options of a {} step", K::NAME)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let keys = step_keys(K::NAME);
                    if !keys.contains(&key.as_str()) {
                        return Err(de::Error::unknown_field(&key, keys));
                    }
                    entries.push((key, map.next_value::<Value>()?));
                }
                Ok(Options {
                    entries,
                    kind: PhantomData,
                })
            }
        }
        deserializer.deserialize_map(Keys(PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub load: Option<Options<LoadKind>>,
    #[serde(default)]
    pub canary: Option<Options<CanaryKind>>,
    #[serde(default)]
    pub throttle: Option<Options<ThrottleKind>>,
    #[serde(default)]
    pub pause: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub description: Option<String>,
    /// Base URL; each step's `path` is appended. `--target` overrides it.
    pub target: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub secret_headers: Vec<String>,
    #[serde(default)]
    pub classify: Vec<String>,
    /// The variables a caller of `gateprobe serve` may set, with their
    /// types and bounds; every other `${NAME}` is the server's own.
    #[serde(default)]
    pub settable: BTreeMap<String, Settable>,
    pub steps: Vec<StepSpec>,
}

/// One variable a caller may set (`settable` in a scenario).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Settable {
    /// `number`, `percent` (`10%`), `duration` (`30s`) or `word` (letters,
    /// digits, `.`, `_`, `-`; at most 64).
    #[serde(rename = "type")]
    pub kind: SettableKind,
    /// Bounds of a number, a percent or a duration (in seconds).
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Its value when the caller sets none.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SettableKind {
    Number,
    Percent,
    Duration,
    Word,
}

impl Settable {
    /// `value` as this variable's type within its bounds, or why not. The
    /// value is echoed only when it is short and plain.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let shown = if value.len() <= 32 && value.chars().all(|c| c.is_ascii_graphic()) {
            format!("'{value}'")
        } else {
            "the value".to_string()
        };
        let number = match self.kind {
            SettableKind::Word => {
                let plain = !value.is_empty()
                    && value.len() <= 64
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
                return if plain {
                    Ok(())
                } else {
                    Err(format!(
                        "{shown}: expected a word (1 to 64 letters, digits, '.', '_' or '-')"
                    ))
                };
            }
            SettableKind::Number => value.trim().parse::<f64>().ok(),
            SettableKind::Percent => value
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok()),
            SettableKind::Duration => humantime::parse_duration(value.trim())
                .ok()
                .map(|d| d.as_secs_f64()),
        };
        let what = match self.kind {
            SettableKind::Number => "a number",
            SettableKind::Percent => "a percent such as 10%",
            _ => "a duration such as 30s",
        };
        let number = number
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("{shown}: expected {what}"))?;
        let (low, high) = match self.kind {
            SettableKind::Percent => (self.min.unwrap_or(0.0), self.max.unwrap_or(100.0)),
            _ => (
                self.min.unwrap_or(f64::NEG_INFINITY),
                self.max.unwrap_or(f64::INFINITY),
            ),
        };
        if number < low || number > high {
            return Err(format!(
                "{shown}: expected {what} from {} to {}",
                crate::units::trim_float(low),
                crate::units::trim_float(high)
            ));
        }
        Ok(())
    }
}

/// The variables a caller sets on `scenario` (named `source`): each must
/// be settable and of its type; the settable ones it leaves out take their
/// defaults. Returns every value to expand the scenario with.
pub fn caller_vars(
    scenario: &Scenario,
    source: &str,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, UsageError> {
    let mut vars = BTreeMap::new();
    for (name, value) in given {
        let Some(settable) = scenario.settable.get(name) else {
            let names: Vec<&str> = scenario.settable.keys().map(String::as_str).collect();
            return Err(UsageError(format!(
                "{source}: variable '{}' is not settable (settable: {})",
                crate::console::escape_controls(name),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        };
        settable
            .check(value)
            .map_err(|why| UsageError(format!("{source}: variable '{name}': {why}")))?;
        vars.insert(name.clone(), value.clone());
    }
    for (name, settable) in &scenario.settable {
        if let (false, Some(default)) = (vars.contains_key(name), &settable.default) {
            settable
                .check(default)
                .map_err(|why| UsageError(format!("{source}: settable.{name}.default: {why}")))?;
            vars.insert(name.clone(), default.clone());
        }
    }
    Ok(vars)
}

/// Parses a scenario; errors name the file, line and column.
pub fn parse(source: &str, text: &str) -> Result<Scenario, UsageError> {
    crate::json::parse_json(source, text).map_err(UsageError)
}

/// Replaces `${NAME}` from `vars`, then the environment. Returns the text and
/// whether anything was substituted.
fn expand(
    text: &str,
    vars: &BTreeMap<String, String>,
    place: &str,
) -> Result<(String, bool), UsageError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut substituted = false;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| UsageError(format!("{place}: '${{' without a closing '}}'")))?;
        let name = &after[..end];
        let value = vars
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .ok_or_else(|| {
                UsageError(format!(
                    "{place}: ${{{name}}} is not set (set it in the environment or with --set {name}=VALUE)"
                ))
            })?;
        out.push_str(&value);
        substituted = true;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, substituted))
}

/// What one step will do, validated.
/// A JSON scalar as a flag value.
fn scalar(value: &Value, place: &str) -> Result<String, UsageError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        // Named by its type, not echoed: a header's value may be a secret.
        _ => Err(UsageError(format!(
            "{place}: expected a string or a number, got {}",
            match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
                _ => "a value",
            }
        ))),
    }
}

/// A step's URL: its `path` on the target. A step names a path on the
/// target, never another host: `--target` (or the scenario's `target`) alone
/// decides where traffic goes.
fn step_url(
    path: &str,
    target: &str,
    vars: &BTreeMap<String, String>,
    place: &str,
) -> Result<String, UsageError> {
    let path = expand(path, vars, &format!("{place}.path"))?.0;
    if !path.is_empty() && !path.starts_with('/') {
        return Err(UsageError(format!(
            "{place}.path: expected a path starting with '/' (the target decides the host; a step cannot name another)"
        )));
    }
    let url = format!("{}{path}", target.trim_end_matches('/'));
    if plan::authority_of(&url) != plan::authority_of(target) {
        return Err(UsageError(format!(
            "{place}.path: the path would change the target's host"
        )));
    }
    Ok(url)
}

/// Builds the step's command line: `KIND URL --flag value …`.
fn command_line(
    kind: &str,
    entries: &[(String, Value)],
    scenario: &Scenario,
    target: &str,
    vars: &BTreeMap<String, String>,
    place: &str,
) -> Result<(Vec<String>, Vec<String>), UsageError> {
    let mut path = String::new();
    let mut flags: Vec<String> = Vec::new();
    let mut thresholds = Vec::new();
    let mut headers: Vec<(String, String)> = scenario
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let mut secret: Vec<String> = scenario.secret_headers.clone();
    let mut classify = scenario.classify.clone();
    for (key, value) in entries {
        let at = format!("{place}.{key}");
        match (key.as_str(), value) {
            ("path", value) => path = scalar(value, &at)?,
            ("thresholds", Value::Array(items)) => {
                for item in items {
                    thresholds.push(scalar(item, &at)?);
                }
            }
            ("headers", Value::Object(map)) => {
                for (name, value) in map {
                    headers.retain(|(known, _)| !known.eq_ignore_ascii_case(name));
                    headers.push((name.clone(), scalar(value, &format!("{at}.{name}"))?));
                }
            }
            ("classify", Value::Array(items)) => {
                classify = items
                    .iter()
                    .map(|item| scalar(item, &at))
                    .collect::<Result<_, _>>()?;
            }
            ("secret_header", Value::Array(items)) => {
                for item in items {
                    secret.push(scalar(item, &at)?);
                }
            }
            (_, Value::Bool(true)) => flags.push(format!("--{}", key.replace('_', "-"))),
            (_, Value::Bool(false)) => {}
            (_, Value::Array(items)) => {
                for item in items {
                    flags.push(format!("--{}", key.replace('_', "-")));
                    flags.push(expand(&scalar(item, &at)?, vars, &at)?.0);
                }
            }
            (_, value) => {
                flags.push(format!("--{}", key.replace('_', "-")));
                flags.push(expand(&scalar(value, &at)?, vars, &at)?.0);
            }
        }
    }
    let url = step_url(&path, target, vars, place)?;
    let mut argv = vec!["gateprobe".to_string(), kind.to_string(), url];
    for (name, value) in headers {
        let (value, substituted) = expand(&value, vars, &format!("{place} header {name}"))?;
        if substituted {
            secret.push(name.clone());
        }
        argv.push("-H".to_string());
        argv.push(format!("{name}: {value}"));
    }
    for name in secret {
        argv.push("--secret-header".to_string());
        argv.push(name);
    }
    for rule in classify {
        argv.push("--classify".to_string());
        argv.push(rule);
    }
    argv.extend(flags);
    Ok((argv, thresholds))
}

fn plan_step(
    index: usize,
    spec: &StepSpec,
    scenario: &Scenario,
    target: &str,
    vars: &BTreeMap<String, String>,
    source: &str,
    extra: &[String],
) -> Result<Step, UsageError> {
    let kinds = [
        spec.load.is_some(),
        spec.canary.is_some(),
        spec.throttle.is_some(),
        spec.pause.is_some(),
    ];
    let (kind, entries) = match (&spec.load, &spec.canary, &spec.throttle) {
        _ if kinds.iter().filter(|k| **k).count() != 1 => {
            return Err(UsageError(format!(
                "{source}: steps[{index}]: expected exactly one of load, canary, throttle or pause"
            )))
        }
        (Some(options), _, _) => ("load", &options.entries),
        (_, Some(options), _) => ("canary", &options.entries),
        (_, _, Some(options)) => ("throttle", &options.entries),
        _ => ("pause", &Vec::new()),
    };
    let name = spec
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{kind}", index + 1));
    let place = format!("{source}: steps[{index}] ({name})");
    if let Some(text) = &spec.pause {
        let duration = units::parse_duration(text)
            .map_err(|why| UsageError(format!("{place}.pause: {why}")))?;
        return Ok(Step::new(
            format!("step {name}"),
            name,
            Work::Pause(duration),
        ));
    }
    let (mut argv, thresholds) = command_line(kind, entries, scenario, target, vars, &place)?;
    argv.extend(extra.iter().cloned());
    let cli = Cli::try_parse_from(&argv).map_err(|err| {
        let rendered = err.render().to_string();
        let first = rendered.lines().next().unwrap_or("bad options").trim();
        UsageError(format!("{place}: {}", first.trim_start_matches("error: ")))
    })?;
    let wrap = |err: UsageError| UsageError(format!("{place}: {}", err.0));
    let planned = match cli.command {
        Command::Load(args) => {
            let plan = crate::cli::load::load_plan(&args).map_err(wrap)?;
            let names = plan.classifier.names().to_vec();
            let thresholds = thresholds
                .iter()
                .map(|text| Threshold::parse(text, &names))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|why| UsageError(format!("{place}: {why}")))?;
            Work::Job(Job::Load(Box::new(plan), thresholds))
        }
        command => match Job::plan(&command).map_err(wrap)? {
            Some(job) => Work::Job(job),
            None => {
                return Err(UsageError(format!(
                    "{place}: a step runs load, canary or throttle"
                )))
            }
        },
    };
    Ok(Step::new(format!("step {name}"), name, planned))
}

/// Runs `gateprobe run`.
pub async fn run(args: RunArgs) -> Result<u8> {
    plan::check_outputs(&args.outputs)?;
    let source = args.scenario.display().to_string();
    let text = crate::input::read_text(&args.scenario, "scenario", crate::input::CONFIG_LIMIT)?;
    let mut vars = BTreeMap::new();
    for (position, item) in args.set.iter().enumerate() {
        // The text may be a secret with a typo (`TOKEN:VALUE`): never echo it.
        let (name, value) = item.split_once('=').ok_or_else(|| {
            UsageError(format!(
                "--set #{}: expected NAME=VALUE (no '=' found; the value is not shown)",
                position + 1
            ))
        })?;
        if name.trim().is_empty()
            || !name
                .trim()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(UsageError(format!(
                "--set #{}: expected NAME=VALUE with a NAME of letters, digits and '_'",
                position + 1
            ))
            .into());
        }
        vars.insert(name.trim().to_string(), value.to_string());
    }
    let mut sharding = shard_flags(&args.sharding)?;
    // Every step appends its requests to the one samples file.
    if let Some(path) = args.outputs.path("--samples") {
        sharding.every.push("--samples".to_string());
        sharding.every.push(path.display().to_string());
    }
    let report = run_text(
        &source,
        &text,
        &vars,
        args.target.as_deref(),
        args.quiet,
        &sharding,
    )
    .await?;
    crate::app::job::finish_with(&args.outputs, args.quiet, &report, Some(summary))
}

/// The base URL every step's path is appended to: an absolute http(s) URL
/// with a valid port, checked even when no step sends (pause-only).
fn check_target(target: &str, place: &str) -> Result<(), UsageError> {
    let shown = crate::redact::url(target);
    let valid = target.parse::<http::Uri>().ok().is_some_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|h| !h.is_empty())
    });
    if !valid {
        return Err(UsageError(format!(
            "{place} '{shown}': expected an absolute http:// or https:// URL with a host"
        )));
    }
    plan::check_port(target).map_err(|why| UsageError(format!("{place} '{shown}': {why}")))
}

/// `run --shard/--shard-from-env/--start-at` as flags for the steps: the
/// shard for every step, the start (made absolute now, so that "+30s"
/// means one moment) for the first step that sends.
#[derive(Debug, Default)]
pub struct StepSharding {
    pub every: Vec<String>,
    pub first: Vec<String>,
}

fn shard_flags(args: &crate::cli::ShardArgs) -> Result<StepSharding, UsageError> {
    let mut flags = StepSharding::default();
    if let Some(shard) = &args.shard {
        flags.every = vec!["--shard".to_string(), shard.clone()];
    }
    if let Some(count) = &args.shard_from_env {
        flags.every = vec!["--shard-from-env".to_string(), count.clone()];
    }
    if let Some(text) = &args.start_at {
        let at = crate::cli::load::start_at(text)?;
        flags.first = vec![
            "--start-at".to_string(),
            humantime::format_rfc3339_millis(at).to_string(),
        ];
    }
    Ok(flags)
}

/// Plans every step of the scenario `text` (named `source` in messages),
/// then runs them in order and returns the scenario's report.
pub async fn run_text(
    source: &str,
    text: &str,
    vars: &BTreeMap<String, String>,
    target: Option<&str>,
    quiet: bool,
    sharding: &StepSharding,
) -> Result<Report> {
    let (steps, target) = plan_text(source, text, vars, target, quiet, sharding)?;
    steps::execute("run", &steps, &target, quiet).await
}

/// Plans every step of the scenario `text`, sending nothing: its steps
/// and the target they go to.
pub fn plan_text(
    source: &str,
    text: &str,
    vars: &BTreeMap<String, String>,
    target: Option<&str>,
    quiet: bool,
    sharding: &StepSharding,
) -> Result<(Vec<Step>, String), UsageError> {
    let scenario = parse(source, text)?;
    let (target, place) = match target {
        Some(target) => (target.to_string(), "--target".to_string()),
        None => (
            expand(&scenario.target, vars, &format!("{source}: target"))?.0,
            format!("{source}: target"),
        ),
    };
    check_target(&target, &place)?;
    let steps = scenario
        .steps
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let first_sending = scenario.steps[..index].iter().all(|s| s.pause.is_some());
            let quiet_flag = ["--quiet".to_string()];
            let extra: Vec<String> = sharding
                .every
                .iter()
                .chain(if first_sending {
                    &sharding.first[..]
                } else {
                    &[]
                })
                .chain(if quiet { &quiet_flag[..] } else { &[] })
                .cloned()
                .collect();
            plan_step(index, spec, &scenario, &target, vars, source, &extra)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if steps.is_empty() {
        return Err(UsageError(format!(
            "{source}: 'steps' is empty: nothing to run"
        )));
    }
    // Checks are named `step: check` and JUnit suites by step: a name used
    // twice would make two results indistinguishable.
    for (index, step) in steps.iter().enumerate() {
        if let Some(first) = steps[..index].iter().position(|s| s.name == step.name) {
            return Err(UsageError(format!(
                "{source}: steps[{index}]: the name '{}' is already used by steps[{first}]; step names must be unique",
                crate::console::escape_controls(&step.name)
            )));
        }
    }
    Ok((steps, target))
}

/// The closing lines of a run: one per step, then the verdict.
fn summary(report: &Report) -> String {
    let mut out = String::from("\ngateprobe run\n");
    for step in &report.steps {
        out.push_str(&format!(
            "  {:<13} {:<22} {}\n",
            step.report.verdict.as_str().to_uppercase(),
            step.name,
            step.report.reason
        ));
        for check in step
            .report
            .checks
            .iter()
            .filter(|c| c.verdict != Verdict::Pass)
        {
            out.push_str(&format!(
                "                  {} {}: {}\n",
                check.verdict.as_str().to_uppercase(),
                check.name,
                check.reason
            ));
        }
    }
    out.push_str(&format!(
        "\n  verdict   {} (exit {}): {}\n",
        report.verdict.as_str().to_uppercase(),
        report.exit_code,
        report.reason
    ));
    out
}
