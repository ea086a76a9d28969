//! The Kubernetes manifests (#15): valid batch/v1 and v1 objects by the
//! Kubernetes API's own schemas (the `kubernetes-validate` package, strict),
//! consistent with each other (N in every place), and the Job's container
//! command, run here once per index with $JOB_COMPLETION_INDEX set as the Job
//! sets it, then the merge Job's command: one run's result.
use crate::common::{self, read_json, say};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// The `args:` list of the first container in a manifest (the lines
/// `- value` under `args:`, unquoted): the command the pod runs.
fn container_args(manifest: &str) -> Vec<String> {
    let mut lines = manifest.lines().skip_while(|l| l.trim() != "args:").skip(1);
    let mut args = Vec::new();
    for line in lines.by_ref() {
        let Some(item) = line.trim().strip_prefix("- ") else {
            break;
        };
        args.push(item.trim_matches('"').to_string());
    }
    args
}

fn field(manifest: &str, name: &str) -> String {
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} in the manifest"))
        .trim()
        .to_string()
}

/// The validator, installed with pip when it is missing; why not, if not.
fn validator() -> Result<String, String> {
    let works = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("kubernetes-validate") {
        return Ok("kubernetes-validate".to_string());
    }
    let _installing = crate::common::installing();
    let installed = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--user",
            "kubernetes-validate==1.37.0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let user_bin = Command::new("python3")
        .args(["-c", "import site; print(site.USER_BASE)"])
        .output()
        .ok()
        .map(|o| {
            format!(
                "{}/bin/kubernetes-validate",
                String::from_utf8_lossy(&o.stdout).trim()
            )
        });
    match user_bin {
        Some(path) if installed && works(&path) => Ok(path),
        _ if installed && works("kubernetes-validate") => Ok("kubernetes-validate".to_string()),
        _ => Err("kubernetes-validate is not installed and `python3 -m pip install --user kubernetes-validate` did not work (no python3, pip or network)".to_string()),
    }
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let job = std::fs::read_to_string(manifests().join("job.yaml")).unwrap();
    let merge = std::fs::read_to_string(manifests().join("merge-job.yaml")).unwrap();
    // One N everywhere, and no retry that would send a shard's part twice.
    let n = field(&job, "completions");
    assert_eq!(field(&job, "parallelism"), n);
    assert_eq!(field(&job, "completionMode"), "Indexed");
    assert_eq!(field(&job, "backoffLimit"), "0");
    let args = container_args(&job);
    let at = args.iter().position(|a| a == "--shard-from-env").unwrap();
    assert_eq!(args[at + 1], n, "--shard-from-env N");
    assert!(args.contains(&"--start-at".to_string()));
    let shards = container_args(&merge)
        .iter()
        .filter(|a| a.starts_with("/reports/shard-"))
        .count();
    assert_eq!(shards.to_string(), n, "merge names every shard");

    let validate = match validator() {
        Ok(program) => program,
        Err(why) => {
            say(&format!(
                "SKIPPED manifests_validate_against_the_kubernetes_schemas: {why}"
            ));
            return;
        }
    };
    let run = |files: &[PathBuf]| {
        Command::new(&validate)
            .args(["--strict", "--kubernetes-version", "1.30.0"])
            .args(files)
            .output()
            .unwrap()
    };
    let files: Vec<PathBuf> = ["job.yaml", "merge-job.yaml", "pvc.yaml"]
        .iter()
        .map(|f| manifests().join(f))
        .collect();
    let out = run(&files);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator does reject: a misspelt field and a wrong type.
    let dir = common::temp_dir();
    for (from, to) in [
        ("completionMode: Indexed", "completionMod: Indexed"),
        ("backoffLimit: 0", "backoffLimit: none"),
    ] {
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, job.replace(from, to)).unwrap();
        assert!(!run(&[broken]).status.success(), "{to} must not validate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_command_run_locally_merges_to_one_run() {
    let (address, seen) = crate::shards::serve_recording().await;
    let job = std::fs::read_to_string(manifests().join("job.yaml")).unwrap();
    let merge = std::fs::read_to_string(manifests().join("merge-job.yaml")).unwrap();
    let n: u64 = field(&job, "completions").parse().unwrap();
    let dir = common::temp_dir();
    let reports = format!("{}/", dir.path().display());
    let start = humantime::format_rfc3339_millis(
        std::time::SystemTime::now() + std::time::Duration::from_millis(1500),
    )
    .to_string();
    let target = format!("http://{address}/?seq={{{{seq}}}}");
    // The pod's command with what the cluster supplies: the ConfigMap's
    // target and start, the volume's path. Only the size is made CI-sized
    // (the manifest's 2000 rps for 60 s is 120,000 requests).
    let command = |index: u64| -> Vec<String> {
        let mut args: Vec<String> = container_args(&job)
            .into_iter()
            .map(|a| {
                a.replace("$(TARGET)", &target)
                    .replace("$(START_AT)", &start)
                    .replace("/reports/", &reports)
                    .replace("$(JOB_COMPLETION_INDEX)", &index.to_string())
            })
            .collect();
        for (flag, value) in [
            ("--rate", "200"),
            ("--duration", "1s"),
            ("--max-in-flight", "100"),
        ] {
            let at = args.iter().position(|a| a == flag).unwrap();
            args[at + 1] = value.to_string();
        }
        args
    };
    let statuses = tokio::task::block_in_place(|| {
        let children: Vec<_> = (0..n)
            .map(|index| {
                Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
                    .args(command(index))
                    .env("JOB_COMPLETION_INDEX", index.to_string())
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|mut c| c.wait().unwrap().code())
            .collect::<Vec<_>>()
    });
    assert!(statuses.iter().all(|s| *s == Some(0)), "{statuses:?}");
    let mut indices = seen.lock().unwrap().clone();
    indices.sort_unstable();
    assert_eq!(indices, (0..200).collect::<Vec<_>>(), "each request once");
    let merge_args: Vec<String> = container_args(&merge)
        .into_iter()
        .map(|a| a.replace("/reports/", &reports))
        .collect();
    let out = tokio::task::block_in_place(|| {
        Command::new(assert_cmd::cargo::cargo_bin("gateprobe"))
            .args(&merge_args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let merged = read_json(&dir.path().join("merged.json"));
    assert_eq!(merged["run"]["requests_sent"], 200);
    assert_eq!(
        merged["shard"]["merged"].as_array().unwrap().len() as u64,
        n
    );
    assert!(dir.path().join("merged.xml").exists() && dir.path().join("merged.md").exists());
}

/// `deploy/kubernetes/serve/`: the core objects by the Kubernetes schemas,
/// Flagger's Canary and Argo's Rollout and AnalysisTemplates by their own
/// CRDs' schemas (vendored, strict on unknown fields), and the pieces
/// agreeing: the Deployment's command is a `gateprobe serve` command line,
/// the ConfigMap's profile is a scenario, and every profile the
/// controllers name is in it.
#[test]
fn serve_manifests_validate_against_their_schemas() {
    let dir = manifests().join("serve");
    let validate = match validator() {
        Ok(program) => program,
        Err(why) => {
            say(&format!(
                "SKIPPED serve_manifests_validate_against_their_schemas: {why}"
            ));
            return;
        }
    };
    let core = Command::new(&validate)
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .arg(dir.join("serve.yaml"))
        .output()
        .unwrap();
    assert!(
        core.status.success(),
        "{}",
        String::from_utf8_lossy(&core.stderr)
    );
    // kubernetes-validate brings PyYAML and jsonschema with it.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crosscheck/validate_crds.py");
    let crds = |files: &[PathBuf]| {
        Command::new("python3")
            .arg(&script)
            .arg(dir.join("crds"))
            .args(files)
            .output()
            .unwrap()
    };
    let custom = [
        dir.join("flagger-canary.yaml"),
        dir.join("argo-rollout.yaml"),
    ];
    let out = crds(&custom);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    say(said.trim());
    assert!(
        out.status.success() && said.contains("5 custom resources valid"),
        "{said}"
    );
    let temp = common::temp_dir();
    let canary = std::fs::read_to_string(&custom[0]).unwrap();
    for (from, to) in [
        ("stepWeight", "stepWieght"),
        ("threshold: 2", "threshold: two"),
    ] {
        let broken = temp.path().join("broken.yaml");
        std::fs::write(&broken, canary.replace(from, to)).unwrap();
        assert!(!crds(&[broken]).status.success(), "{to} must not validate");
    }
    // The objects as JSON, to check they agree.
    let json = Command::new("python3")
        .args(["-c", "import json,sys,yaml; print(json.dumps([d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f))]))"])
        .arg(dir.join("serve.yaml"))
        .args(&custom)
        .output()
        .unwrap();
    let docs: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let all = docs.as_array().unwrap();
    let of = |kind: &'static str| all.iter().filter(move |d| d["kind"] == kind);
    let deployment = of("Deployment").next().unwrap();
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let argv = std::iter::once("gateprobe".to_string()).chain(args);
    let cli = <gateprobe::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    assert!(matches!(cli.command, gateprobe::cli::Command::Serve(_)));
    let profiles = &of("ConfigMap").next().unwrap()["data"];
    for (name, text) in profiles.as_object().unwrap() {
        let scenario = gateprobe::app::scenario::parse(name, text.as_str().unwrap()).unwrap();
        assert!(scenario.settable.contains_key("SHARE"), "{name}");
    }
    let named: Vec<&str> = of("Canary")
        .flat_map(|c| c["spec"]["analysis"]["webhooks"].as_array().unwrap())
        .map(|hook| hook["metadata"]["profile"].as_str().unwrap())
        .chain(of("AnalysisTemplate").filter_map(|t| {
            t["spec"]["metrics"][0]["provider"]["web"]["jsonBody"]["profile"].as_str()
        }))
        .collect();
    assert!(named.len() >= 6, "{named:?}");
    for profile in named {
        assert!(
            profiles.get(format!("{profile}.json")).is_some(),
            "profile {profile}"
        );
    }
    // The YAML the README and docs show is what deploy/ ships.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let out = Command::new("python3")
        .arg(root.join("tests/crosscheck/excerpts.py"))
        .arg(root)
        .args(&pages)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    say(said.trim());
    assert!(out.status.success(), "{said}");
    let checked: usize = said
        .lines()
        .last()
        .and_then(|line| line.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(checked >= 6, "{said}");
}
