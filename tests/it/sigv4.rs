//! SigV4: AWS's published examples reproduce byte for byte through
//! gateprobe's signer, and the simulator's verifier accepts them and refuses
//! each kind of bad signature with API Gateway's answer.
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use gateprobe::sigv4::{self, Credentials, Options, Rejection, Scope, Signer, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue, Request};

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigv4")
}

/// One example: its request as an `http::Request`, its context, and the
/// headers AWS's signed request adds.
struct Example {
    name: String,
    request: Request<()>,
    target: String,
    body: Vec<u8>,
    credentials: Credentials,
    scope: Scope,
    options: Options,
    time: SystemTime,
    added: Vec<(String, String)>,
}

/// `METHOD TARGET HTTP/1.1`, `Name:value` lines, a blank line, the body.
fn parse_http(text: &str) -> (String, String, Vec<(String, String)>, Vec<u8>) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let target = rest.rsplit_once(' ').unwrap().0;
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            (name.to_string(), value.to_string())
        })
        .collect();
    (
        method.into(),
        target.into(),
        headers,
        body.as_bytes().to_vec(),
    )
}

/// The example, or why gateprobe cannot send it at all (then the signer is
/// not what would differ).
fn load(dir: &Path) -> Result<Example, String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let context: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap()).unwrap();
    let text = std::fs::read_to_string(dir.join("request.txt")).unwrap();
    let (method, target, headers, body) = parse_http(&text);
    if headers
        .iter()
        .any(|(name, _)| name.starts_with([' ', '\t']))
    {
        return Err("a folded (multi-line) header value, which HTTP/1.1 forbids and http::HeaderValue cannot hold".into());
    }
    let uri: http::Uri = format!("http://example.amazonaws.com{target}")
        .parse()
        .map_err(|_| format!("request target '{target}' is not a valid URI (unencoded space or UTF-8), so no client sends it"))?;
    let mut request = Request::builder().method(method.as_str()).uri(uri);
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let credentials = &context["credentials"];
    let signed = std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap();
    let (_, _, signed_headers, _) = parse_http(&signed);
    let added = signed_headers
        .into_iter()
        .filter(|header| !headers.contains(header))
        .collect();
    let timestamp = context["timestamp"]
        .as_str()
        .unwrap()
        .replace(['-', ':'], "");
    Ok(Example {
        name: name.clone(),
        request: request.body(()).unwrap(),
        target,
        body,
        credentials: Credentials::new(
            credentials["access_key_id"].as_str().unwrap(),
            credentials["secret_access_key"].as_str().unwrap(),
            credentials["token"].as_str(),
        ),
        scope: Scope {
            region: context["region"].as_str().unwrap().into(),
            service: context["service"].as_str().unwrap().into(),
        },
        options: Options {
            normalize_path: context["normalize"].as_bool().unwrap(),
            content_sha256: context["sign_body"].as_bool().unwrap(),
            sign_session_token: !context["omit_session_token"].as_bool().unwrap_or(false),
            // The CRT suite signs this one with the path encoded once (its
            // canonical request keeps %20; smithy-rs ignores the case for
            // that reason): AWS's signers, botocore's included, encode it
            // twice for every service but S3, as gateprobe does.
            double_encode_path: name != "get-space-normalized",
        },
        time: sigv4::parse_amz_date(&timestamp).unwrap(),
        added,
    })
}

fn examples() -> (Vec<Example>, Vec<(String, String)>) {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for dir in dirs {
        match load(&dir) {
            Ok(example) => usable.push(example),
            Err(why) => skipped.push((dir.file_name().unwrap().to_string_lossy().into(), why)),
        }
    }
    (usable, skipped)
}

#[test]
fn aws_published_examples_reproduce_byte_for_byte() {
    let (examples, skipped) = examples();
    for (name, why) in &skipped {
        println!("skipped {name}: {why}");
    }
    assert!(
        examples.len() >= 30,
        "only {} examples usable",
        examples.len()
    );
    // Every skip is for a request no HTTP client can send, never a signing case.
    assert!(skipped.len() <= 4, "{skipped:?}");
    for mut example in examples {
        let signer = Signer::new(&example.credentials, example.scope.clone(), example.options);
        signer
            .sign(&mut example.request, &example.body, example.time)
            .unwrap_or_else(|why| panic!("{}: {why}", example.name));
        for (name, value) in &example.added {
            let ours = example.request.headers().get(name.as_str());
            assert_eq!(
                ours.map(|v| v.to_str().unwrap()),
                Some(value.as_str()),
                "{}: header {name}",
                example.name
            );
        }
        let authorization = example.request.headers().get("authorization").unwrap();
        assert!(
            authorization.is_sensitive(),
            "{}: Authorization must be marked sensitive",
            example.name
        );
    }
}

/// The signed request as the verifier receives it.
fn signed(example: &Example) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in example.request.headers().iter() {
        headers.append(name.clone(), value.clone());
    }
    for (name, value) in &example.added {
        headers.insert(
            HeaderName::from_bytes(name.to_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

#[test]
fn the_simulators_verifier_admits_aws_examples_and_refuses_bad_signatures() {
    let (examples, _) = examples();
    let mut checked = 0;
    for example in &examples {
        // API Gateway normalises paths and signs the token; the examples
        // that do otherwise are for other services.
        if !example.options.normalize_path
            || !example.options.sign_session_token
            || !example.options.double_encode_path
        {
            continue;
        }
        let verifier = Verifier::new(
            std::slice::from_ref(&example.credentials),
            &example.scope.region,
            &example.scope.service,
        );
        let headers = signed(example);
        let method = example.request.method().as_str();
        let verify = |headers: &HeaderMap, now: SystemTime| {
            verifier.verify(method, &example.target, headers, &example.body, now)
        };
        assert_eq!(
            verify(&headers, example.time + Duration::from_secs(299)),
            Ok("AKIDEXAMPLE".to_string()),
            "{}",
            example.name
        );
        checked += 1;
        // A changed body is a different signature.
        let wrong_body =
            verifier.verify(method, &example.target, &headers, b"tampered", example.time);
        assert_eq!(
            wrong_body,
            Err(Rejection::Invalid(sigv4::MISMATCH.into())),
            "{}",
            example.name
        );
    }
    assert!(checked >= 25, "only {checked} examples verified");

    let example = examples.iter().find(|e| e.name == "get-vanilla").unwrap();
    let verifier = Verifier::new(
        std::slice::from_ref(&example.credentials),
        "us-east-1",
        "service",
    );
    let good = signed(example);
    let verify =
        |headers: &HeaderMap, now: SystemTime| verifier.verify("GET", "/", headers, &[], now);
    let with = |name: &str, value: &str| {
        let mut headers = good.clone();
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    };
    let authorization = good
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let cases: Vec<(&str, HeaderMap, SystemTime, &str, &str)> = vec![
        ("missing", { let mut h = good.clone(); h.remove("authorization"); h }, example.time,
         "MissingAuthenticationTokenException", "Missing Authentication Token"),
        ("malformed", with("authorization", "AWS4-HMAC-SHA256 Signature=abc"), example.time,
         "IncompleteSignatureException", "Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter."),
        ("no date", { let mut h = good.clone(); h.remove("x-amz-date"); h }, example.time,
         "IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."),
        ("expired", good.clone(), example.time + Duration::from_secs(301),
         "InvalidSignatureException", "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"),
        ("not yet current", good.clone(), example.time - Duration::from_secs(301),
         "InvalidSignatureException", "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T123059Z + 5 min.)"),
        ("wrong signature", with("authorization", &authorization.replace("Signature=5", "Signature=6")), example.time,
         "InvalidSignatureException", sigv4::MISMATCH),
        ("unknown key", with("authorization", &authorization.replace("AKIDEXAMPLE", "AKIDOTHER")), example.time,
         "UnrecognizedClientException", "The security token included in the request is invalid."),
        ("wrong region", with("authorization", &authorization.replace("us-east-1", "eu-west-1")), example.time,
         "InvalidSignatureException", "Credential should be scoped to a valid region, not 'eu-west-1'. "),
    ];
    for (case, headers, now, error_type, message) in cases {
        let rejection = verify(&headers, now).expect_err(case);
        assert_eq!(
            (rejection.error_type(), rejection.message()),
            (error_type, message),
            "{case}"
        );
    }
}

const SIGNED_SIM: &str = r#"{
  "deployments": { "v1": { "routes": [
    { "method": "POST", "path": "/start", "authorization": "AWS_IAM",
      "integration": { "type": "json", "body": { "executionArn": "arn:aws:states:eu-west-1:1:execution:x" } } },
    { "method": "GET", "path": "/open", "integration": { "type": "json", "body": { "ok": true } } }
  ] } },
  "stages": { "PROD": { "deployment": "v1" } },
  "iam": { "region": "eu-west-1",
           "access_keys": [ { "access_key_id": "AKIDSIGNTEST", "secret_access_key": "sigv4-test-secret-9f3a" } ] }
}"#;

const SECRET: &str = "sigv4-test-secret-9f3a";
const TOKEN: &str = "sigv4-test-session-token-77c1";

/// Runs the gateprobe binary with only the credentials given (HOME empty,
/// no profile), and returns exit code, terminal output and report.
fn signed_run(
    args: &[&str],
    credentials: Option<(&str, &str)>,
) -> (i32, String, serde_json::Value) {
    let dir = crate::common::temp_dir();
    let report = dir.path().join("report.json");
    let markdown = dir.path().join("report.md");
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("gateprobe"));
    command
        .args(args)
        .args([
            "--json",
            report.to_str().unwrap(),
            "--markdown",
            markdown.to_str().unwrap(),
        ])
        .env("HOME", dir.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
    ] {
        command.env_remove(name);
    }
    if let Some((id, secret)) = credentials {
        command
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", TOKEN);
    }
    let output = command.output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    for file in [&report, &markdown] {
        text.push_str(&std::fs::read_to_string(file).unwrap_or_default());
    }
    for secret in [SECRET, TOKEN, "sigv4-test-secret"] {
        assert!(
            !text.contains(secret),
            "a credential reached the output: {text}"
        );
    }
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null);
    (output.status.code().unwrap_or(-1), text, report)
}

fn class_count(report: &serde_json::Value, class: &str) -> u64 {
    report["classes"][class]["count"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_templated_posts_pass_an_iam_route_and_bad_ones_are_refused() {
    let config = gateprobe::sim::config::parse("test config", SIGNED_SIM).unwrap();
    let sim = gateprobe::sim::start(config, "127.0.0.1:0".parse().unwrap(), Some(3))
        .await
        .unwrap();
    let url = format!("{}/PROD/start", sim.base());
    let good = Some(("AKIDSIGNTEST", SECRET));
    let base = |extra: &[&'static str]| {
        let mut args: Vec<String> = [
            "load",
            url.as_str(),
            "-X",
            "POST",
            "-d",
            r#"{"input": "{\"n\": {{seq}}}", "name": "run-{{uuid}}"}"#,
            "--rate",
            "400",
            "-n",
            "400",
            "--classify",
            "ok=status:200",
            "--classify",
            "refused=status:403",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: Vec<String>, credentials| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            signed_run(&args, credentials)
        })
    };
    for extra in [
        &["--aws-sigv4", "eu-west-1"][..],
        &["--aws-sigv4", "eu-west-1:execute-api", "--http2"][..],
    ] {
        let (code, text, report) = run(base(extra), good).await.unwrap();
        assert_eq!(code, 0, "{extra:?}: {text}");
        assert_eq!(class_count(&report, "ok"), 400, "{extra:?}: {report}");
        let shown = report["run"]["headers"].to_string();
        assert!(shown.contains("SigV4 eu-west-1/execute-api"), "{shown}");
    }
    // Unsigned, signed with the wrong secret, or for the wrong region: all 403.
    for (extra, credentials) in [
        (&[][..], good),
        (
            &["--aws-sigv4", "eu-west-1"][..],
            Some(("AKIDSIGNTEST", "not-the-secret")),
        ),
        (&["--aws-sigv4", "us-east-1"][..], good),
        (
            &["--aws-sigv4", "eu-west-1"][..],
            Some(("AKIDUNKNOWN", SECRET)),
        ),
    ] {
        let (_, text, report) = run(base(extra), credentials).await.unwrap();
        assert_eq!(class_count(&report, "refused"), 400, "{extra:?}: {text}");
    }
    // Input errors, before any request.
    let (code, text, _) = run(base(&["--aws-sigv4", "eu-west-1"]), None)
        .await
        .unwrap();
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no AWS credentials"), "{text}");
    let (code, text, _) = run(
        base(&["--aws-sigv4", "eu-west-1", "-H", "Authorization: Bearer x"]),
        good,
    )
    .await
    .unwrap();
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("conflict"), "{text}");
    let (code, text, _) = run(base(&["--aws-sigv4", "EU"]), good).await.unwrap();
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--aws-sigv4 'EU'"), "{text}");
}

/// A Python that can import botocore: the system's, or one given botocore
/// by pip into target/ (`PYTHONPATH`); `Err` says why there is none.
fn botocore_python() -> Result<Vec<(String, String)>, String> {
    let imports = |env: &[(String, String)]| {
        std::process::Command::new("python3")
            .args(["-c", "import botocore"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if imports(&[]) {
        return Ok(Vec::new());
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python-botocore");
    let env = vec![("PYTHONPATH".to_string(), target.display().to_string())];
    if imports(&env) {
        return Ok(env);
    }
    let _installing = crate::common::installing();
    let installed = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&target)
        .arg("botocore")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|why| format!("python3 cannot run: {why}"))?;
    if installed.status.success() && imports(&env) {
        Ok(env)
    } else {
        Err(format!(
            "botocore is not importable and pip could not install it: {}",
            String::from_utf8_lossy(&installed.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ))
    }
}

#[tokio::test]
async fn signatures_match_botocore_on_a_thousand_templated_posts() {
    use clap::Parser as _;
    use http_body_util::BodyExt as _;
    let python = match botocore_python() {
        Ok(env) => env,
        Err(why) => {
            crate::common::say(&format!("SKIP botocore cross-check: {why}"));
            return;
        }
    };
    let cli = gateprobe::cli::Cli::parse_from([
        "gateprobe",
        "load",
        "http://127.0.0.1:9/PROD/orders/{{seq}}?trace={{uuid}}&n={{seq}}&tag=a%20b",
        "-X",
        "POST",
        "-H",
        "x-request-id: {{uuid}}",
        "-H",
        "X-Tenant:   acme   corp  ",
        "-d",
        r#"{"input": "{\"order\": {{seq}}, \"at\": {{unix_ms}}}", "name": "order-{{uuid}}"}"#,
    ]);
    let gateprobe::cli::Command::Load(args) = cli.command else {
        unreachable!()
    };
    let mut plan = gateprobe::cli::load::load_plan(&args).unwrap();
    let (id, secret, token) = (
        "AKIDCROSSCHECK",
        "cross/check+secret=key",
        "FwoGZXIvYXdzEXAMPLE//token==",
    );
    let credentials = Credentials::new(id, secret, Some(token));
    let scope = Scope::parse("ap-southeast-2").unwrap();
    // The engine's signer, on the engine's requests (templates filled first).
    plan.request.signer = Some(std::sync::Arc::new(Signer::new(
        &credentials,
        scope.clone(),
        Options::default(),
    )));
    let dir = crate::common::temp_dir();
    let path = dir.path().join("signed.jsonl");
    let mut lines = String::new();
    let mut scratch = gateprobe::engine::request::Scratch::default();
    for index in 0..1000 {
        let request =
            gateprobe::engine::request::build(&plan.request, index, &mut scratch).unwrap();
        let (parts, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        };
        let unsigned: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter(|(name, _)| {
                !["authorization", "x-amz-date", "x-amz-security-token"].contains(&name.as_str())
            })
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
            .collect();
        assert_eq!(header("x-amz-security-token"), token);
        let case = serde_json::json!({
            "method": parts.method.as_str(),
            "url": parts.uri.to_string(),
            "headers": unsigned,
            "body": String::from_utf8(body.to_vec()).unwrap(),
            "amz_date": header("x-amz-date"),
            "authorization": header("authorization"),
            "region": scope.region, "service": scope.service,
            "access_key_id": id, "secret_access_key": secret, "session_token": token,
        });
        lines.push_str(&case.to_string());
        lines.push('\n');
    }
    std::fs::write(&path, lines).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crosscheck/botocore_sigv4.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(&path)
        .envs(python.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    crate::common::say(&format!(
        "botocore cross-check: {}",
        said.lines().next().unwrap_or("")
    ));
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.starts_with("checked 1000 mismatched 0"), "{said}");
}
