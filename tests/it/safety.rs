//! Safe to point at production (issue #10): every malformed input is one
//! line and exit 2, cheaply; traffic goes only where the user said; every
//! signal leaves a report; a closed or full stdout loses nothing; this
//! machine's own limits are never blamed on the target.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// What one run of the binary did, with its peak memory from `wait4`.
struct Measured {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    max_rss_kib: i64,
    elapsed: Duration,
}

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("gateprobe")
}

/// Runs the binary with `args`, measuring its wall time and peak resident
/// memory. Linux carries a forking process's peak into its child's rusage
/// across exec, so a child forked from this (large) test process would report
/// the test's own memory: a small Python launcher forks and execs gateprobe
/// instead and reports `wait4`'s rusage of exactly that grandchild (its
/// figure includes the launcher's ≈10 MB at fork, an overestimate). One
/// launcher serves every run (a Python start costs more than a run).
fn run_measured(args: &[String], dir: &Path) -> Measured {
    let out_path = dir.join("stdout.txt");
    let err_path = dir.join("stderr.txt");
    let started = Instant::now();
    let launched = Launcher::shared().and_then(|launcher| {
        let mut argv = vec![binary().to_string_lossy().into_owned()];
        argv.extend(args.iter().cloned());
        let job = serde_json::json!({
            "argv": argv,
            "cwd": dir,
            "out": out_path,
            "err": err_path,
        });
        launcher.lock().unwrap().run(&job)
    });
    let (code, max_rss_kib, elapsed) = match launched {
        Some(measured) => measured,
        None => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                common::say("note: python3 not found: peak memory is not measured (time is, with process start)")
            });
            let status = Command::new(binary())
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&out_path).unwrap())
                .stderr(std::fs::File::create(&err_path).unwrap())
                .status()
                .unwrap();
            (status.code(), 0, started.elapsed())
        }
    };
    Measured {
        code,
        stdout: std::fs::read_to_string(out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(err_path).unwrap_or_default(),
        max_rss_kib,
        elapsed,
    }
}

/// The Python process that forks, execs and `wait4`s each measured run: one
/// JSON job per line in, "code max_rss_kib seconds" per line out.
struct Launcher {
    _child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl Launcher {
    const SCRIPT: &'static str = r#"
import json, os, sys, time
for line in sys.stdin:
    job = json.loads(line)
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(job["cwd"])
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            for fd, path in ((1, job["out"]), (2, job["err"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
            os.execv(job["argv"][0], job["argv"])
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - started
    print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, elapsed, flush=True)
"#;

    fn shared() -> Option<&'static std::sync::Mutex<Launcher>> {
        static SHARED: std::sync::OnceLock<Option<std::sync::Mutex<Launcher>>> =
            std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| Launcher::start().map(std::sync::Mutex::new))
            .as_ref()
    }

    fn start() -> Option<Launcher> {
        let mut child = ["python3", "/usr/bin/python3"]
            .into_iter()
            .find_map(|python| {
                Command::new(python)
                    .arg("-c")
                    .arg(Self::SCRIPT)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .ok()
            })?;
        let input = child.stdin.take()?;
        let output = std::io::BufReader::new(child.stdout.take()?);
        Some(Launcher {
            _child: child,
            input,
            output,
        })
    }

    /// The exit code (None for a signal), peak memory and wall time of one
    /// run; None when the launcher is gone.
    fn run(&mut self, job: &serde_json::Value) -> Option<(Option<i32>, i64, Duration)> {
        use std::io::{BufRead, Write};
        writeln!(self.input, "{job}").ok()?;
        let mut line = String::new();
        self.output.read_line(&mut line).ok()?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [code, rss, seconds] = fields[..] else {
            return None;
        };
        Some((
            code.parse::<i32>().ok().filter(|code| *code >= 0),
            rss.parse().ok()?,
            Duration::from_secs_f64(seconds.parse().ok()?),
        ))
    }
}

/// A scenario around one step's options (the target is a closed port).
fn scenario_with(step: &str) -> String {
    format!(r#"{{"target": "http://127.0.0.1:9", "steps": [{step}]}}"#)
}

/// A simulator config with one deployment, one stage and `extra` merged in.
fn sim_config(deployment: &str, stage: &str, extra: &str) -> String {
    format!(r#"{{"deployments": {{"d": {deployment}}}, "stages": {{"P": {stage}}}{extra}}}"#)
}

const ROUTE: &str =
    r#"{"routes": [{"method": "GET", "path": "/x", "integration": {"type": "mock"}}]}"#;

/// Every flag, scenario field, simulator field and saved-report field with at
/// least one malformed value: exit 2, one line naming the input, no panic,
/// ≤ 50 MB of memory and ≤ 1 s each, nothing sent anywhere.
#[test]
fn malformed_inputs_exit_2_in_one_line_cheaply() {
    let dir = common::temp_dir();
    let d = dir.path();
    let url = "http://127.0.0.1:9/";
    let write = |name: &str, text: &str| -> String {
        std::fs::write(d.join(name), text).unwrap();
        name.to_string()
    };
    // A valid report to tamper with.
    let good = load_report_file(d);
    let tampered = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| -> String {
        let mut value = good.clone();
        edit(&mut value);
        write(name, &value.to_string())
    };
    std::fs::write(d.join("fifo-target"), "").unwrap();
    let fifo = d.join("a.fifo");
    // SAFETY: mkfifo with a NUL-terminated path we own.
    let made = unsafe {
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        libc::mkfifo(path.as_ptr(), 0o600)
    };
    assert_eq!(made, 0, "mkfifo");

    type Case = (Vec<String>, &'static str);
    let load = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["load".to_string(), url.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let canary = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "canary",
            url,
            "--expect",
            "canary=10%",
            "--classify",
            "canary=body:empty",
            "--classify",
            "stable=*",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let throttle = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["throttle".to_string(), url.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |file: String, extra: &[&str]| -> Vec<String> {
        let mut args = vec!["run".to_string(), file];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let sim = |file: String| -> Vec<String> { vec!["sim".into(), "--config".into(), file] };
    let report = |file: String| -> Vec<String> { vec!["report".into(), file] };
    let args = |list: &[&str]| -> Vec<String> { list.iter().map(|s| s.to_string()).collect() };

    let cases: Vec<Case> = vec![
        // load: the URL and every flag
        (
            load(&[])
                .into_iter()
                .map(|a| a.replace(":9/", ":99999/"))
                .collect(),
            "1 to 65535",
        ),
        (args(&["load", "http://127.0.0.1:65536/"]), "1 to 65535"),
        (args(&["load", "http://127.0.0.1:-1/"]), "1 to 65535"),
        (args(&["load", "http://127.0.0.1:19100abc/"]), "1 to 65535"),
        (
            args(&["load", "gopher://127.0.0.1/"]),
            "http:// or https://",
        ),
        (args(&["load", "http://127.0.0.1:9/\u{1b}[2J"]), "URL"),
        (load(&["--duration", "0.5ms"]), "--duration"),
        (load(&["--duration", "8d"]), "--duration"),
        (load(&["-n", "-3"]), "--requests"),
        (load(&["--rate", "1e-9"]), "--rate"),
        (load(&["--rate", "1e12"]), "--rate"),
        (load(&["--rate", "NaN"]), "--rate"),
        (load(&["--steps", "100,x@1s"]), "--steps"),
        (load(&["--ramp", "5..1@0s"]), "--ramp"),
        (load(&["--max-in-flight", "0"]), "--max-in-flight"),
        (load(&["--rate", "max", "-c", "100001"]), "--connections"),
        (load(&["-X", "GE T"]), "--method"),
        (load(&["-H", "x-api-key SECRET-IN-HEADER"]), "Name: value"),
        (load(&["-H", "bad name: v"]), "header"),
        (load(&["--secret-header", "bad name"]), "--secret-header"),
        (load(&["-d", "@/dev/zero"]), "not a regular file"),
        (
            load(&["-d", &format!("@{}", fifo.display())]),
            "not a regular file",
        ),
        (load(&["-d", "@/no/such/body"]), "cannot read"),
        (load(&["-d", "{{nope}}"]), "--body"),
        (load(&["--timeout", "0s"]), "--timeout"),
        (load(&["--http2=yes"]), "--http2"),
        (load(&["--insecure=1"]), "--insecure"),
        (load(&["--classify", "c=status:9xx"]), "--classify"),
        (load(&["--max-body", "1GiB"]), "--max-body"),
        (load(&["--json", "/no/such/dir/r.json"]), "does not exist"),
        (load(&["--junit", "/"]), "--junit"),
        (load(&["--markdown", "/no/such/dir/r.md"]), "--markdown"),
        (load(&["--html", "/no/such/dir/r.html"]), "--html"),
        (load(&["--quiet=2"]), "--quiet"),
        (args(&["load", "not a url"]), "URL"),
        (load(&["--classify", "c=bogus:1"]), "unknown matcher"),
        (
            load(&["--classify", "c=body:regex:(unclosed"]),
            "invalid regex",
        ),
        (
            load(&["--classify", "c=json:version"]),
            "invalid JSON pointer",
        ),
        (load(&["--duration", "30"]), "unit"),
        (load(&["--rate", "10", "--steps", "1,2@1s"]), "conflict"),
        (load(&["--rate", "max", "--max-in-flight", "3"]), "conflict"),
        (load(&["--no-such-flag"]), "--no-such-flag"),
        (args(&["load", "http://127.0.0.1:1/{{nope}}"]), "template"),
        // canary
        (canary(&["--tolerance", "0.0001pp"]), "--tolerance"),
        (canary(&["--tolerance", "fifty"]), "--tolerance"),
        (canary(&["--alpha", "0.7"]), "--alpha"),
        (canary(&["--power", "1.5"]), "--power"),
        (canary(&["--max-requests", "many"]), "--max-requests"),
        (
            canary(&["--max-unclassified", "120%"]),
            "--max-unclassified",
        ),
        (canary(&["--error-if", "status:abc"]), "--error-if"),
        (
            canary(&["--max-error-increase", "1%"]),
            "--max-error-increase",
        ),
        (
            canary(&["--max-latency-increase", "fast"]),
            "--max-latency-increase",
        ),
        (canary(&["--baseline", "nobody"]), "--baseline"),
        (canary(&["--no-health=no"]), "--no-health"),
        (args(&["canary", url, "--expect", "canary=10"]), "--expect"),
        // throttle
        (throttle(&["--max-rate", "0"]), "--max-rate"),
        (throttle(&["--max-requests", "0"]), "--max-requests"),
        (throttle(&["--max-duration", "0s"]), "--max-duration"),
        (throttle(&["--expect-rate", "-1"]), "--expect-rate"),
        (throttle(&["--expect-burst", "lots"]), "--expect-burst"),
        (throttle(&["--tolerance", "200%"]), "--tolerance"),
        (throttle(&["--idle", "-1s"]), "--idle"),
        (throttle(&["--start-rate", "2000"]), "--start-rate"),
        (throttle(&["--step", "0.1ms"]), "--step"),
        (throttle(&["--rate", "10"]), "--rate"),
        (
            throttle(&["--ignore-retry-after=x"]),
            "--ignore-retry-after",
        ),
        // run: the command's own flags
        (run("/dev/zero".into(), &[]), "not a regular file"),
        (run(fifo.display().to_string(), &[]), "not a regular file"),
        (
            run(
                write("ok.json", &scenario_with(r#"{"pause": "1s"}"#)),
                &["--set", "TOKEN:SECRET-IN-SET"],
            ),
            "--set",
        ),
        (
            run(
                write("ok2.json", &scenario_with(r#"{"pause": "1s"}"#)),
                &["--target", "http://127.0.0.1:70000"],
            ),
            "1 to 65535",
        ),
        // scenario fields
        (
            run(
                write(
                    "s-trailing.json",
                    &format!("{} {{}}", scenario_with(r#"{"pause": "1s"}"#)),
                ),
                &[],
            ),
            "after the JSON",
        ),
        (
            run(
                write(
                    "s-desc.json",
                    r#"{"description": 5, "target": "http://127.0.0.1:9", "steps": [{"pause": "1s"}]}"#,
                ),
                &[],
            ),
            "description",
        ),
        (
            run(
                write(
                    "s-target.json",
                    r#"{"target": "http://127.0.0.1:99999", "steps": [{"load": {"path": "/x"}}]}"#,
                ),
                &[],
            ),
            "1 to 65535",
        ),
        (
            run(
                write(
                    "s-headers.json",
                    r#"{"target": "http://127.0.0.1:9", "headers": {"x-api-key": ["SECRET-IN-JSON"]}, "steps": [{"pause": "1s"}]}"#,
                ),
                &[],
            ),
            "headers",
        ),
        (
            run(
                write(
                    "s-secret.json",
                    r#"{"target": "http://127.0.0.1:9", "secret_headers": "x", "steps": [{"pause": "1s"}]}"#,
                ),
                &[],
            ),
            "secret_headers",
        ),
        (
            run(
                write(
                    "s-classify.json",
                    r#"{"target": "http://127.0.0.1:9", "classify": ["c=bogus:1"], "steps": [{"load": {"path": "/"}}]}"#,
                ),
                &[],
            ),
            "unknown matcher",
        ),
        (
            run(
                write(
                    "s-steps.json",
                    r#"{"target": "http://127.0.0.1:9", "steps": []}"#,
                ),
                &[],
            ),
            "steps",
        ),
        (
            run(
                write(
                    "s-name.json",
                    &scenario_with(r#"{"name": "a", "pause": "1s"}, {"name": "a", "pause": "1s"}"#),
                ),
                &[],
            ),
            "unique",
        ),
        (
            run(
                write(
                    "s-two.json",
                    &scenario_with(r#"{"pause": "1s", "load": {}}"#),
                ),
                &[],
            ),
            "exactly one",
        ),
        (
            run(
                write("s-pause.json", &scenario_with(r#"{"pause": "0.1ms"}"#)),
                &[],
            ),
            "pause",
        ),
        (
            run(
                write(
                    "s-path.json",
                    &scenario_with(r#"{"load": {"path": "@127.0.0.1:22/"}}"#),
                ),
                &[],
            ),
            "path",
        ),
        (
            run(
                write(
                    "s-path2.json",
                    &scenario_with(r#"{"load": {"path": "http://evil/"}}"#),
                ),
                &[],
            ),
            "path",
        ),
        (
            run(
                write("s-load.json", &scenario_with(r#"{"load": {"rte": 5}}"#)),
                &[],
            ),
            "rte",
        ),
        (
            run(
                write(
                    "s-rate.json",
                    &scenario_with(r#"{"load": {"rate": [1, 2]}}"#),
                ),
                &[],
            ),
            "rate",
        ),
        (
            run(
                write(
                    "s-threshold.json",
                    &scenario_with(r#"{"load": {"thresholds": ["p99_ms[nobody] < 5"]}}"#),
                ),
                &[],
            ),
            "nobody",
        ),
        (
            run(
                write(
                    "s-canary.json",
                    &scenario_with(r#"{"canary": {"expect": "canary=10%"}}"#),
                ),
                &[],
            ),
            "canary",
        ),
        (
            run(
                write(
                    "s-throttle.json",
                    &scenario_with(r#"{"throttle": {"idle": "soon"}}"#),
                ),
                &[],
            ),
            "--idle",
        ),
        (
            run(
                write(
                    "s-var.json",
                    &scenario_with(r#"{"load": {"path": "/${GATEPROBE_UNSET_VARIABLE_X}"}}"#),
                ),
                &[],
            ),
            "not set",
        ),
        (
            run(write("s-syntax.json", "{\"target\": "), &[]),
            "s-syntax.json:1:",
        ),
        // simulator config fields
        (sim("/dev/zero".into()), "not a regular file"),
        (
            sim(write(
                "c-status0.json",
                &sim_config(
                    r#"{"routes": [{"method": "GET", "path": "/x", "integration": {"type": "mock", "status": 0}}]}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "status",
        ),
        (
            sim(write(
                "c-status999.json",
                &sim_config(
                    r#"{"routes": [{"method": "GET", "path": "/x", "integration": {"type": "json", "status": 999, "body": {}}}]}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "status",
        ),
        (
            sim(write(
                "c-crlf.json",
                &sim_config(
                    r#"{"routes": [{"method": "GET", "path": "/x", "integration": {"type": "mock", "headers": {"x-v": "a\r\nSet-Cookie: evil"}}}]}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "header",
        ),
        (
            sim(write(
                "c-hname.json",
                &sim_config(
                    r#"{"routes": [{"method": "GET", "path": "/x", "integration": {"type": "start_execution", "headers": {"bad name": "v"}}}]}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "header name",
        ),
        (
            sim(write(
                "c-missing-route.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d", "method_throttles": {"GET /nowhere": {"rate": 5, "burst": 1}}}"#,
                    "",
                ),
            )),
            "no route",
        ),
        (
            sim(write(
                "c-method.json",
                &sim_config(
                    r#"{"routes": [{"method": "G T", "path": "/x", "integration": {"type": "mock"}}]}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "routes[0]",
        ),
        (
            sim(write(
                "c-path.json",
                &sim_config(
                    r#"{"routes": [{"method": "GET", "path": "x", "integration": {"type": "mock"}}]}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "routes[0]",
        ),
        (
            sim(write(
                "c-type.json",
                &sim_config(
                    r#"{"routes": [{"method": "GET", "path": "/x", "integration": {"type": "lambda"}}]}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "integration",
        ),
        (
            sim(write(
                "c-access.json",
                &sim_config(
                    r#"{"routes": [{"method": "GET", "path": "/x", "integration": {"type": "start_execution", "access": "maybe"}}]}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "access",
        ),
        (
            sim(write(
                "c-keyreq.json",
                &sim_config(
                    r#"{"routes": [{"method": "GET", "path": "/x", "api_key_required": "yes", "integration": {"type": "mock"}}]}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "api_key_required",
        ),
        (
            sim(write(
                "c-latency.json",
                &sim_config(
                    r#"{"routes": [], "latency_ms": {"fixed": -5}}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "latency_ms",
        ),
        (
            sim(write(
                "c-error.json",
                &sim_config(
                    r#"{"routes": [], "error_rate": 2}"#,
                    r#"{"deployment": "d"}"#,
                    "",
                ),
            )),
            "error_rate",
        ),
        (
            sim(write(
                "c-stage.json",
                &sim_config(ROUTE, r#"{"deployment": "nowhere"}"#, ""),
            )),
            "deployment",
        ),
        (
            sim(write(
                "c-vars.json",
                &sim_config(ROUTE, r#"{"deployment": "d", "variables": {"v": 1}}"#, ""),
            )),
            "variables",
        ),
        (
            sim(write(
                "c-canary.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d", "canary": {"percent_traffic": 101, "deployment": "d"}}"#,
                    "",
                ),
            )),
            "percent_traffic",
        ),
        (
            sim(write(
                "c-canary-dep.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d", "canary": {"percent_traffic": 10, "deployment": "x"}}"#,
                    "",
                ),
            )),
            "canary.deployment",
        ),
        (
            sim(write(
                "c-overrides.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d", "canary": {"percent_traffic": 10, "deployment": "d", "stage_variable_overrides": []}}"#,
                    "",
                ),
            )),
            "stage_variable_overrides",
        ),
        (
            sim(write(
                "c-throttle.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d", "throttle": {"rate": -1, "burst": 1}}"#,
                    "",
                ),
            )),
            "throttle.rate",
        ),
        (
            sim(write(
                "c-burst.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d", "throttle": {"rate": 1, "burst": -1}}"#,
                    "",
                ),
            )),
            "burst",
        ),
        (
            sim(write(
                "c-account.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d"}"#,
                    r#", "account": {"throttle": {"rate": -3, "burst": 1}}"#,
                ),
            )),
            "account",
        ),
        (
            sim(write(
                "c-machines.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d"}"#,
                    r#", "state_machines": "arn""#,
                ),
            )),
            "state_machines",
        ),
        (
            sim(write(
                "c-plan-stage.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d"}"#,
                    r#", "usage_plans": [{"name": "p", "api_keys": ["k"], "stages": ["NOPE"]}]"#,
                ),
            )),
            "usage_plans[0].stages",
        ),
        (
            sim(write(
                "c-plan-key.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d"}"#,
                    r#", "usage_plans": [{"name": "p", "api_keys": ["a\nb"]}]"#,
                ),
            )),
            "api_keys",
        ),
        (
            sim(write(
                "c-quota.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d"}"#,
                    r#", "usage_plans": [{"name": "p", "api_keys": ["k"], "quota": {"limit": 5, "period": "YEAR"}}]"#,
                ),
            )),
            "period",
        ),
        (
            sim(write(
                "c-quota0.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d"}"#,
                    r#", "usage_plans": [{"name": "p", "api_keys": ["k"], "quota": {"limit": 0, "period": "DAY"}}]"#,
                ),
            )),
            "quota.limit",
        ),
        (
            sim(write(
                "c-plan-throttle.json",
                &sim_config(
                    ROUTE,
                    r#"{"deployment": "d"}"#,
                    r#", "usage_plans": [{"name": "p", "api_keys": ["k"], "throttle": {"rate": -1, "burst": 1}}]"#,
                ),
            )),
            "usage_plans[0].throttle",
        ),
        (
            sim(write(
                "c-unknown.json",
                &sim_config(ROUTE, r#"{"deployment": "d"}"#, r#", "colour": "blue""#),
            )),
            "colour",
        ),
        (args(&["sim", "--listen", "localhost"]), "--listen"),
        (args(&["sim", "--seed", "-1"]), "--seed"),
        (args(&["demo", "--seed", "x"]), "--seed"),
        (args(&["demo", "--out", "/dev/null/x"]), "--out"),
        // saved reports
        (report("/dev/zero".into()), "not a regular file"),
        (
            report(write("r-garbage.json", "not json")),
            "r-garbage.json:1:",
        ),
        (
            report(tampered("r-exit.json", &|r| r["exit_code"] = 7.into())),
            "exit_code",
        ),
        (
            report(tampered("r-exit0.json", &|r| {
                r["verdict"] = "fail".into();
                r["exit_code"] = 0.into();
            })),
            "exit_code",
        ),
        (
            report(tampered("r-schema.json", &|r| {
                r["schema"] = "gateprobe.report/v9".into()
            })),
            "schema",
        ),
        (
            report(tampered("r-verdict.json", &|r| {
                r["verdict"] = "great".into()
            })),
            "verdict",
        ),
        (
            report(tampered("r-run.json", &|r| {
                r["run"]["requests_sent"] = (-4).into()
            })),
            "requests_sent",
        ),
        (
            report(tampered("r-classes.json", &|r| {
                r["classes"] = serde_json::json!([])
            })),
            "classes",
        ),
        (
            report(format!("{}\u{7}", write("r-bell.json", "{}"))),
            "r-bell.json",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut slowest = Duration::ZERO;
    let mut heaviest = 0;
    for (args, expected) in &cases {
        let measured = run_measured(args, d);
        let stderr = &measured.stderr;
        assert_eq!(measured.code, Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {stderr:?}"
        );
        assert!(
            stderr.contains(expected),
            "{args:?}: expected '{expected}' in {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(measured.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(
            !stderr.trim_end().chars().any(|c| c.is_control()),
            "{args:?}: a control character reached the terminal: {stderr:?}"
        );
        for secret in ["SECRET-IN-SET", "SECRET-IN-HEADER", "SECRET-IN-JSON"] {
            assert!(!stderr.contains(secret), "{args:?}: {secret} echoed");
        }
        assert!(
            measured.max_rss_kib <= 50 * 1024,
            "{args:?}: {} KiB",
            measured.max_rss_kib
        );
        assert!(
            measured.elapsed <= Duration::from_secs(1),
            "{args:?}: {:?}",
            measured.elapsed
        );
        slowest = slowest.max(measured.elapsed);
        heaviest = heaviest.max(measured.max_rss_kib);
    }
    common::say(&format!(
        "{} malformed inputs: exit 2, one line each; slowest {:.0} ms, largest {} MiB",
        cases.len(),
        slowest.as_secs_f64() * 1000.0,
        heaviest / 1024
    ));
}

/// A small valid report, written by a real (failing) run against a closed port.
fn load_report_file(dir: &Path) -> serde_json::Value {
    let path = dir.join("good.json");
    let output = Command::new(binary())
        .args([
            "load",
            "http://127.0.0.1:9/",
            "-n",
            "3",
            "--quiet",
            "--json",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    common::read_json(&path)
}

/// A saved report is input too: every value edited to an extreme renders in
/// every format without a panic (exit 0–4, or 2 naming what is wrong).
#[test]
fn edited_reports_never_panic_any_format() {
    let dir = common::temp_dir();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (code, report) = runtime.block_on(async {
        let simulator = gateprobe::sim::start(
            gateprobe::sim::config::parse("default", gateprobe::sim::config::DEFAULT_CONFIG)
                .unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            Some(3),
        )
        .await
        .unwrap();
        let url = simulator.url("/PROD/throttled");
        common::load_report(&["throttle", &url, "--idle", "0", "--max-requests", "400"]).await
    });
    assert!(code <= 4, "{code}");
    let mut leaves = Vec::new();
    collect_numeric_paths(&report, String::new(), &mut leaves);
    assert!(leaves.len() > 50, "{} numbers", leaves.len());
    let mut rendered = 0;
    for (index, pointer) in leaves.iter().enumerate() {
        for extreme in [
            serde_json::json!(-1),
            serde_json::json!(1e308),
            serde_json::json!(u64::MAX),
        ] {
            let mut edited = report.clone();
            *edited.pointer_mut(pointer).unwrap() = extreme.clone();
            if index % 7 == 0 {
                // Arrays of mismatched lengths, too.
                if let Some(series) = edited.pointer_mut("/throttle/series/admitted") {
                    *series = serde_json::json!([]);
                }
            }
            let path = dir.path().join("edited.json");
            std::fs::write(&path, edited.to_string()).unwrap();
            let html = dir.path().join("e.html");
            let junit = dir.path().join("e.xml");
            let markdown = dir.path().join("e.md");
            let argv = [
                "gateprobe",
                "report",
                path.to_str().unwrap(),
                "--html",
                html.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
                "--markdown",
                markdown.to_str().unwrap(),
                "--quiet",
            ];
            let cli = <gateprobe::cli::Cli as clap::Parser>::parse_from(argv);
            let gateprobe::cli::Command::Report(args) = cli.command else {
                unreachable!()
            };
            let outcome = std::panic::catch_unwind(|| gateprobe::app::job::rerender(args.clone()));
            let Ok(result) = outcome else {
                panic!("{pointer} = {extreme}: rendering panicked");
            };
            if let Ok(code) = result {
                assert!(code <= 4);
                rendered += 1;
            }
            // Also the terminal text.
            let text = std::panic::catch_unwind(|| {
                if let Ok(saved) =
                    serde_json::from_value::<gateprobe::report::Report>(edited.clone())
                {
                    let _ = gateprobe::output::text::render(&saved);
                }
            });
            assert!(text.is_ok(), "{pointer} = {extreme}: text panicked");
        }
    }
    common::say(&format!(
        "{} edited reports rendered in every format without a panic ({} accepted)",
        leaves.len() * 3,
        rendered
    ));
}

fn collect_numeric_paths(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Number(_) => out.push(at),
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate().take(3) {
                collect_numeric_paths(item, format!("{at}/{index}"), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                collect_numeric_paths(item, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
}

/// The embedded simulator on a runtime of its own, for tests that drive the
/// binary from this thread.
fn background_simulator() -> (tokio::runtime::Runtime, String) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let base = runtime.block_on(async {
        let config =
            gateprobe::sim::config::parse("default", gateprobe::sim::config::DEFAULT_CONFIG)
                .unwrap();
        let running = gateprobe::sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(11))
            .await
            .unwrap();
        let base = format!("http://{}", running.address);
        // Kept alive for as long as the runtime lives.
        std::mem::forget(running);
        base
    });
    (runtime, base)
}

/// SIGTERM, SIGHUP and SIGINT at three moments each in `load`, `canary`,
/// `throttle` and `run`: a valid partial report, exit 3, within 1 s.
#[test]
fn every_signal_leaves_a_partial_report_within_a_second() {
    use rand::{Rng, SeedableRng};
    let (_runtime, base) = background_simulator();
    let dir = common::temp_dir();
    let scenario = dir.path().join("signals.json");
    std::fs::write(
        &scenario,
        r#"{"target": "http://127.0.0.1:9", "classify": ["canary=body:empty", "stable=json:/version"],
            "steps": [
              {"name": "settle", "pause": "300ms"},
              {"name": "traffic", "load": {"path": "/PROD/hello", "rate": 200, "duration": "20s"}},
              {"name": "split", "canary": {"path": "/PROD/hello", "rate": 200, "expect": "canary=10%"}}
            ]}"#,
    )
    .unwrap();
    let hello = format!("{base}/PROD/hello");
    let throttled = format!("{base}/PROD/throttled");
    let scenario_path = scenario.display().to_string();
    let commands: Vec<(&str, Vec<&str>)> = vec![
        (
            "load",
            vec!["load", &hello, "--rate", "200", "--duration", "20s"],
        ),
        (
            "canary",
            vec![
                "canary",
                &hello,
                "--rate",
                "200",
                "--expect",
                "canary=10%",
                "--classify",
                "canary=body:empty",
                "--classify",
                "stable=json:/version",
            ],
        ),
        ("throttle", vec!["throttle", &throttled, "--idle", "300ms"]),
        ("run", vec!["run", &scenario_path, "--target", &base]),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut slowest = Duration::ZERO;
    let mut runs = 0;
    for (name, args) in &commands {
        for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
            for _ in 0..3 {
                let moment = Duration::from_millis(rng.random_range(100..1_200));
                let report = dir.path().join(format!("{name}-{signal}.json"));
                let mut child = Command::new(binary())
                    .args(args)
                    .args(["--quiet", "--json"])
                    .arg(&report)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                std::thread::sleep(moment);
                // SAFETY: signals our own child.
                assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
                let sent = Instant::now();
                let status = child.wait().unwrap();
                let took = sent.elapsed();
                let mut stderr = String::new();
                use std::io::Read as _;
                let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                let what = format!("{name}, signal {signal} at {moment:?}");
                assert_eq!(status.code(), Some(3), "{what}: {stderr}");
                assert!(took <= Duration::from_secs(1), "{what}: {took:?}");
                let saved = common::read_json(&report);
                common::assert_valid_report(&saved);
                if *name != "throttle" {
                    common::assert_books_balance(&saved);
                }
                assert_eq!(saved["run"]["ended"], "interrupted", "{what}");
                assert_eq!(saved["verdict"], "inconclusive", "{what}");
                slowest = slowest.max(took);
                runs += 1;
            }
        }
    }
    // Two signals in a row: the second may cut the report short, never hang.
    let mut child = Command::new(binary())
        .args([
            "load",
            &hello,
            "--rate",
            "200",
            "--duration",
            "20s",
            "--quiet",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signals our own child, twice.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let sent = Instant::now();
    let code = child.wait().unwrap().code();
    assert!(
        matches!(code, Some(3) | Some(143)),
        "a second SIGTERM exits 128+15 at once (or the first had finished): {code:?}"
    );
    assert!(sent.elapsed() <= Duration::from_secs(1));
    common::say(&format!(
        "{runs} interrupted runs: exit 3 with a valid report, slowest {:.0} ms after the signal",
        slowest.as_secs_f64() * 1000.0
    ));
}

/// `| head -1` and `> /dev/full`: no panic, the report on disk is whole.
#[test]
fn a_closed_or_full_stdout_loses_no_report() {
    let (_runtime, base) = background_simulator();
    let dir = common::temp_dir();
    let hello = format!("{base}/PROD/hello");
    // A pipe whose reader goes away after one line.
    let report = dir.path().join("piped.json");
    let mut child = Command::new(binary())
        .args(["load", &hello, "--rate", "200", "-n", "200", "--json"])
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead as _;
        let mut first = String::new();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
        assert!(first.contains("gateprobe"), "{first}");
    } // the reader is gone, as after `head -1`
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    common::assert_valid_report(&common::read_json(&report));
    // A full device on stdout and stderr, with the JSON report to stdout too.
    for json_to in ["file", "-"] {
        let report = dir.path().join("full.json");
        let _ = std::fs::remove_file(&report);
        let full = || {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap()
        };
        let mut command = Command::new(binary());
        command.args(["load", &hello, "--rate", "200", "-n", "100"]);
        if json_to == "file" {
            command.arg("--json").arg(&report);
        } else {
            command
                .args(["--json", "-", "--markdown"])
                .arg(dir.path().join("full.md"));
        }
        let status = command.stdout(full()).stderr(full()).status().unwrap();
        assert_eq!(status.code(), Some(0), "json to {json_to}");
        if json_to == "file" {
            common::assert_valid_report(&common::read_json(&report));
        } else {
            assert!(dir.path().join("full.md").exists());
        }
    }
}

/// Under `ulimit -n 256`, 2,000 connections are refused up front (closed
/// model) or fail as `local` and end as "could not measure" (open model):
/// never a pass, never a `connect` error charged to the target.
#[test]
fn this_machines_limits_are_not_the_targets() {
    use std::os::unix::process::CommandExt as _;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A target slow enough that 2,000 requests are in flight at once.
    let base = runtime.block_on(async {
        let config = gateprobe::sim::config::parse(
            "slow",
            r#"{"deployments": {"slow": {"routes": [{"method": "GET", "path": "/s",
                 "integration": {"type": "mock", "body": "x"}}], "latency_ms": {"fixed": 1500}}},
                "stages": {"P": {"deployment": "slow"}}}"#,
        )
        .unwrap();
        let running = gateprobe::sim::start(config, "127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        let base = format!("http://{}", running.address);
        std::mem::forget(running);
        base
    });
    let dir = common::temp_dir();
    let limited = |args: &[&str], report: &Path| {
        let mut command = Command::new(binary());
        command.args(args).arg("--quiet").arg("--json").arg(report);
        // SAFETY: only setrlimit between fork and exec.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 256,
                    rlim_max: 256,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.output().unwrap()
    };
    let url = format!("{base}/P/s");
    let closed = dir.path().join("closed.json");
    let output = limited(
        &["load", &url, "--rate", "max", "-c", "2000", "-n", "4000"],
        &closed,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("2000 connections") && stderr.contains("256"),
        "{stderr}"
    );
    assert!(!closed.exists(), "refused before anything was sent");

    let open = dir.path().join("open.json");
    let output = limited(
        &[
            "load",
            &url,
            "--rate",
            "1000",
            "--max-in-flight",
            "2000",
            "-n",
            "2000",
        ],
        &open,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    let report = common::read_json(&open);
    common::assert_valid_report(&report);
    common::assert_books_balance(&report);
    assert_eq!(report["verdict"], "error");
    assert!(
        report["errors"]["local"].as_u64().unwrap() > 1000,
        "{}",
        report["errors"]
    );
    assert_eq!(
        report["errors"]["connect"], 0,
        "nothing charged to the target"
    );
    assert!(report["reason"].as_str().unwrap().contains("this machine"));
    drop(runtime);
}

/// Invalid ports and host-changing scenario paths: exit 2, and no connection
/// reaches the port the run would otherwise have hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_goes_only_where_the_user_said() {
    // Ports the http crate would have fallen back to.
    let mut fallbacks = Vec::new();
    for port in [80u16, 443] {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => {
                let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
                let seen = counter.clone();
                tokio::spawn(async move {
                    while listener.accept().await.is_ok() {
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
                fallbacks.push((port, counter));
            }
            Err(err) => common::say(&format!(
                "note: cannot listen on 127.0.0.1:{port} ({err}); that port's zero-connection check is skipped"
            )),
        }
    }
    for url in [
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:65536/",
        "http://127.0.0.1:-1/",
        "http://127.0.0.1:19100abc/",
        "https://127.0.0.1:99999/",
    ] {
        let (code, report) = common::load_report(&["load", url, "-n", "5"]).await;
        assert_eq!(code, 2, "{url}");
        assert!(report.is_null(), "{url}: nothing ran");
    }
    // A scenario path that would name another host.
    let (port, visits) = crate::faults::counting_listener().await;
    let (target_port, target_visits) = crate::faults::counting_listener().await;
    let dir = common::temp_dir();
    for path in [
        format!("@127.0.0.1:{port}/"),
        format!("//127.0.0.1:{port}/"),
        format!("http://127.0.0.1:{port}/"),
        "${EVIL_PATH}".to_string(),
    ] {
        let file = dir.path().join("s.json");
        std::fs::write(
            &file,
            format!(
                r#"{{"target": "http://127.0.0.1:{target_port}", "steps": [{{"load": {{"path": "{path}", "requests": 3}}}}]}}"#
            ),
        )
        .unwrap();
        let evil = format!("EVIL_PATH=@127.0.0.1:{port}/");
        let code = common::run(&["run", file.to_str().unwrap(), "--quiet", "--set", &evil]).await;
        if path.starts_with("//") {
            // A path on the target (whose listener answers nothing: exit 4).
            assert_eq!(code, 4, "{path}");
        } else {
            assert_eq!(code, 2, "{path}");
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        visits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the other host saw nothing"
    );
    assert!(
        target_visits.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "'//host/' is a path on the target"
    );
    for (port, counter) in fallbacks {
        assert_eq!(
            counter.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "port {port} saw nothing"
        );
    }
}

/// The edge answers of issue #10, each pinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_answers_are_right() {
    // body:empty is what the server sent, not what --max-body kept.
    let (address, _) = common::serve_ok().await;
    let url = format!("http://{address}/");
    let (code, report) = common::load_report(&[
        "load",
        &url,
        "-n",
        "10",
        "--max-body",
        "0",
        "--classify",
        "canary=body:empty",
        "--classify",
        "stable=*",
    ])
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        report["classes"]["stable"]["count"], 10,
        "{}",
        report["classes"]
    );
    assert!(report["classes"]
        .get("canary")
        .is_none_or(|c| c["count"] == 0));
    // A short run reports its own length, not the 7-day bound.
    let (_, report) = common::load_report(&["load", &url, "-n", "3", "--rate", "2"]).await;
    let duration = report["run"]["duration_s"].as_f64().unwrap();
    assert!((0.9..=1.6).contains(&duration), "{duration}");
    // `--idle 0s` and "idle": "0" mean the same.
    for idle in ["0", "0s", "0ms"] {
        let cli = <gateprobe::cli::Cli as clap::Parser>::parse_from([
            "gateprobe",
            "throttle",
            &url,
            "--idle",
            idle,
        ]);
        let gateprobe::cli::Command::Throttle(args) = cli.command else {
            unreachable!()
        };
        let plan = gateprobe::cli::throttle::throttle_plan(&args).unwrap();
        assert!(plan.idle.is_zero(), "{idle}");
    }
    // A scenario's report sums its steps: classes and books balance.
    let dir = common::temp_dir();
    let file = dir.path().join("two.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"target": "http://{address}", "steps": [
                {{"name": "a", "load": {{"path": "/a", "requests": 7, "rate": 200}}}},
                {{"name": "b", "load": {{"path": "/b", "requests": 5, "rate": 200}}}}]}}"#
        ),
    )
    .unwrap();
    let (code, report) = common::load_report(&["run", file.to_str().unwrap()]).await;
    assert_eq!(code, 0);
    common::assert_valid_report(&report);
    common::assert_books_balance(&report);
    assert_eq!(report["classes"]["ok"]["count"], 12);
    assert_eq!(report["run"]["requests_due"], 12);
}
