//! `load` flags become a [`LoadPlan`]: the input layer's half of planning.
//! Every mistake is one [`UsageError`] naming the flag and what was expected.
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use super::LoadArgs;
use crate::classify::Classifier;
use crate::plan::schedule::{RateCurve, Schedule};
use crate::plan::*;
use crate::redact;
use crate::template::Template;
use crate::units;

/// Turns `load` flags into a plan, or one usage error.
pub fn load_plan(args: &LoadArgs) -> Result<LoadPlan, UsageError> {
    let request = request_spec(args)?;
    let resolve = resolve(&args.resolve, &request.endpoint)?;
    let duration = match &args.duration {
        Some(text) => {
            Some(units::parse_duration(text).or_else(|why| usage(format!("--duration: {why}")))?)
        }
        None => None,
    };
    let max_requests = match &args.requests {
        Some(text) => {
            Some(units::parse_count(text).or_else(|why| usage(format!("--requests: {why}")))?)
        }
        None => None,
    };
    let given: Vec<&str> = args
        .shapes()
        .iter()
        .filter(|(_, value)| value.is_some())
        .map(|(flag, _)| *flag)
        .collect();
    if given.len() > 1 {
        return usage(format!(
            "{} conflict: give one rate shape",
            given.join(" and ")
        ));
    }
    let (schedule, curve_duration) = schedule(args, duration, max_requests)?;
    let duration = match (duration, curve_duration, max_requests) {
        (Some(bound), Some(curve), _) => bound.min(curve),
        (Some(bound), None, _) => bound,
        (None, Some(curve), _) => curve,
        (None, None, Some(_)) => Duration::from_secs(7 * 86400),
        (None, None, None) => DEFAULT_DURATION,
    };
    let whole_concurrency = concurrency(args, &schedule)?;
    let timeout =
        units::parse_duration(&args.timeout).or_else(|why| usage(format!("--timeout: {why}")))?;
    let classifier = Classifier::parse(&args.classify).map_err(UsageError)?;
    let max_body =
        units::parse_size(&args.max_body).or_else(|why| usage(format!("--max-body: {why}")))?;
    check_outputs(&args.outputs)?;
    let mut plan = LoadPlan {
        request,
        schedule,
        duration,
        max_requests,
        concurrency: whole_concurrency,
        timeout,
        http2: args.http2,
        insecure: args.insecure,
        tls: std::sync::Arc::new(tls_files(args)?),
        resolve,
        no_keepalive: args.no_keepalive,
        classifier,
        max_body,
        outputs: args.outputs.clone(),
        quiet: args.quiet,
        pacer: None,
        warm_connections: 0,
        sharding: None,
    };
    plan.sharding = sharding(&args.sharding, &plan)?;
    if let Some(sharding) = &plan.sharding {
        plan.concurrency = sharding.shard.part_of(whole_concurrency);
        if plan.concurrency == 0 {
            let flag = if plan.schedule.is_open() {
                "--max-in-flight"
            } else {
                "--connections"
            };
            return usage(format!(
                "{flag} {whole_concurrency} over {} shards: each shard needs at least 1; give at least {}",
                sharding.shard.count,
                sharding.shard.period()
            ));
        }
    }
    Ok(plan)
}

/// Variable a Kubernetes Indexed Job sets to each pod's index.
pub const JOB_INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";

/// Furthest ahead `--start-at` may be: a shard waiting longer is a mistake
/// (a date typed wrong), and waits are bounded like every loop.
pub const MAX_START_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The shard and the start time, from `--shard`/`--shard-from-env` and
/// `--start-at`; `None` when neither is given.
fn sharding(args: &super::ShardArgs, plan: &LoadPlan) -> Result<Option<Sharding>, UsageError> {
    if args.given().is_none() {
        return Ok(None);
    }
    let shard = match (&args.shard, &args.shard_from_env) {
        (Some(text), _) => {
            Shard::parse(text).or_else(|why| usage(format!("--shard '{text}': {why}")))?
        }
        (None, Some(count)) => {
            let count = Shard::parse_count(count)
                .or_else(|why| usage(format!("--shard-from-env: {why}")))?;
            let index = std::env::var(JOB_INDEX_VARIABLE).or_else(|_| {
                usage(format!(
                    "--shard-from-env {count}: ${JOB_INDEX_VARIABLE} is not set (a Kubernetes Indexed Job sets it; elsewhere use --shard I/{count})"
                ))
            })?;
            Shard::parse(&format!("{index}/{count}")).or_else(|why| {
                usage(format!(
                    "--shard-from-env {count}: ${JOB_INDEX_VARIABLE}={}: {why}",
                    crate::console::escape_controls(&index)
                ))
            })?
        }
        (None, None) => Shard::WHOLE,
    };
    let shard = match &args.shard_weights {
        Some(_) if args.shard.is_none() && args.shard_from_env.is_none() => {
            return usage("--shard-weights: give --shard I/N or --shard-from-env N with it");
        }
        Some(weights) => shard
            .weighted(weights)
            .or_else(|why| usage(format!("--shard-weights '{weights}': {why}")))?,
        None => shard,
    };
    let start_at = match &args.start_at {
        Some(text) => Some(start_at(text)?),
        None => None,
    };
    let start_at_relative = args
        .start_at
        .as_deref()
        .map(str::trim)
        .filter(|text| text.starts_with('+'))
        .map(str::to_string);
    Ok(Some(Sharding {
        shard,
        start_at,
        start_at_relative,
        whole_load: plan.describe_whole_load(),
        whole_concurrency: plan.concurrency,
    }))
}

/// `--start-at`: an RFC 3339 time, or `+DURATION` from now rounded up to
/// the next whole second of the wall clock (so that processes started
/// together from one shell loop agree to the millisecond, and a merge can
/// line their series up by whole seconds); not more than
/// [`MAX_START_WAIT`] ahead. A time already past is allowed (a shard that
/// started late runs and says how late).
pub fn start_at(text: &str) -> Result<std::time::SystemTime, UsageError> {
    let now = std::time::SystemTime::now();
    let at = match text.trim().strip_prefix('+') {
        Some(wait) => {
            let wait = units::parse_duration_or_zero(wait)
                .or_else(|why| usage(format!("--start-at '{text}': {why}")))?;
            whole_second_after(now + wait)
        }
        None => humantime::parse_rfc3339_weak(text.trim()).or_else(|_| {
            usage(format!(
                "--start-at '{}': expected an RFC 3339 time such as 2026-12-02T10:00:00Z, or +DURATION such as +30s",
                crate::console::escape_controls(text)
            ))
        })?,
    };
    if at
        .duration_since(now)
        .is_ok_and(|ahead| ahead > MAX_START_WAIT)
    {
        return usage(format!(
            "--start-at '{text}': more than {} hours from now; expected a time within a day",
            MAX_START_WAIT.as_secs() / 3600
        ));
    }
    Ok(at)
}

/// `at` rounded up to a whole second since the Unix epoch.
fn whole_second_after(at: std::time::SystemTime) -> std::time::SystemTime {
    let since = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let seconds = since.as_secs() + u64::from(since.subsec_nanos() > 0);
    std::time::UNIX_EPOCH + Duration::from_secs(seconds)
}

/// The schedule, and the time the shape itself lasts (steps and ramps).
fn schedule(
    args: &LoadArgs,
    duration: Option<Duration>,
    max_requests: Option<u64>,
) -> Result<(Schedule, Option<Duration>), UsageError> {
    if let Some((shape, text)) = args.curve.given() {
        let (curve, length) =
            (shape.parse)(text).or_else(|why| usage(format!("{} '{text}': {why}", shape.flag)))?;
        return Ok((Schedule::Open(curve), Some(length)));
    }
    match args.rate.as_deref() {
        Some("max") => Ok((Schedule::Closed, None)),
        other => {
            let rate = match other {
                Some(text) => units::parse_rate(text)
                    .or_else(|why| usage(format!("--rate: {why} (or `max`)")))?,
                None => DEFAULT_RATE_PER_S,
            };
            let length = match (duration, max_requests) {
                (Some(bound), _) => bound.as_secs_f64(),
                (None, Some(_)) => f64::INFINITY,
                (None, None) => DEFAULT_DURATION.as_secs_f64(),
            };
            Ok((Schedule::Open(RateCurve::constant(rate, length)), None))
        }
    }
}

fn concurrency(args: &LoadArgs, schedule: &Schedule) -> Result<usize, UsageError> {
    let parse = |flag: &str, text: &Option<String>| -> Result<Option<usize>, UsageError> {
        match text {
            Some(text) => match units::parse_count(text) {
                Ok(count) if count <= 100_000 => Ok(Some(count as usize)),
                _ => usage(format!(
                    "{flag}: expected a whole number from 1 to 100000; got '{text}'"
                )),
            },
            None => Ok(None),
        }
    };
    let max_in_flight = parse("--max-in-flight", &args.max_in_flight)?;
    let connections = parse("--connections", &args.connections)?;
    match schedule {
        Schedule::Closed => {
            if max_in_flight.is_some() {
                return usage("--max-in-flight and --rate max conflict: the closed model's concurrency is --connections");
            }
            Ok(connections.unwrap_or(DEFAULT_CONNECTIONS))
        }
        Schedule::Open(_) => match (max_in_flight, connections) {
            (Some(_), Some(_)) => usage(
                "--max-in-flight and --connections conflict: with an open-model rate, connections open as needed up to --max-in-flight",
            ),
            (Some(cap), None) | (None, Some(cap)) => Ok(cap),
            (None, None) => Ok(DEFAULT_MAX_IN_FLIGHT),
        },
    }
}

fn request_spec(args: &LoadArgs) -> Result<RequestSpec, UsageError> {
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes()).or_else(|_| {
        usage(format!(
            "--method '{}': expected an HTTP method such as GET or POST",
            args.method
        ))
    })?;
    let Target {
        url,
        static_uri,
        probe_uri,
        display_url,
        basic_auth,
    } = target(&args.url)?;
    let mut headers = headers(args, basic_auth, &display_url)?;
    if !args.http2 && !headers.fixed.contains_key(http::header::HOST) {
        // HTTP/1.1 sends origin-form URIs with a Host header; set it once here
        // rather than on every request.
        if let Some(authority) = probe_uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            headers.fixed.insert(http::header::HOST, authority);
        }
    }
    let body = body_spec(args)?;
    json_content_type(&body, &mut headers.fixed);
    let api_keys = api_keys(args, &mut headers)?;
    let signer = match &args.aws_sigv4 {
        Some(text) => Some(std::sync::Arc::new(signer(text, &mut headers)?)),
        None => None,
    };
    Ok(RequestSpec {
        method,
        url,
        static_uri,
        endpoint: probe_uri,
        static_headers: headers.fixed,
        templated_headers: headers.templated,
        body,
        display_url,
        display_headers: headers.shown,
        signer,
        api_keys,
    })
}

/// The `--api-keys` values as (where it was given, entry): a value as
/// itself, an @FILE one entry per line, blank lines and `#` comments skipped.
fn key_entries(values: &[String]) -> Result<Vec<(String, String)>, UsageError> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for value in values {
        match value.strip_prefix('@') {
            Some(path) => {
                let text = std::fs::read_to_string(path).or_else(|why| {
                    usage(format!("--api-keys @{path}: cannot read the file: {why}"))
                })?;
                for (number, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if !line.is_empty() && !line.starts_with('#') {
                        entries.push((
                            format!("--api-keys @{path} line {}", number + 1),
                            line.to_string(),
                        ));
                    }
                }
            }
            None => entries.push(("--api-keys".to_string(), value.clone())),
        }
    }
    Ok(entries)
}

/// `--api-keys`: each value KEY, LABEL=KEY or @FILE (one per line, blank
/// lines and `#` comments skipped). A key of its own in `-H x-api-key`
/// would be overwritten, so the two conflict.
fn api_keys(args: &LoadArgs, headers: &mut Headers) -> Result<ApiKeys, UsageError> {
    let random = match args.api_key_order.as_str() {
        "round-robin" => false,
        "random" => true,
        other => {
            return usage(format!(
                "--api-key-order '{other}': expected round-robin or random"
            ))
        }
    };
    let entries = key_entries(&args.api_keys)?;
    if entries.is_empty() {
        return Ok(ApiKeys::default());
    }
    let given = |name: &str| {
        headers.fixed.contains_key(name) || headers.templated.iter().any(|(n, _)| n == name)
    };
    if given("x-api-key") {
        return usage("--api-keys and -H x-api-key conflict: give the keys in one place");
    }
    let mut keys = ApiKeys {
        random,
        ..ApiKeys::default()
    };
    for (position, (place, entry)) in entries.iter().enumerate() {
        let (label, key) = match entry.split_once('=') {
            Some((label, key)) if !label.is_empty() && !key.is_empty() => {
                (label.trim().to_string(), key.trim())
            }
            _ => (format!("key {}", position + 1), entry.as_str()),
        };
        let mut value = HeaderValue::from_str(key).or_else(|_| {
            usage(format!(
                "{place}: key {} has characters a header cannot carry (the key itself is not shown)",
                position + 1
            ))
        })?;
        value.set_sensitive(true);
        if key.is_empty() {
            return usage(format!("{place}: key {} is empty", position + 1));
        }
        if keys.labels.contains(&label) {
            return usage(format!("{place}: label '{label}' is given twice"));
        }
        keys.values.push(value);
        keys.labels.push(label);
    }
    if keys.values.len() > usize::from(u16::MAX) {
        return usage(format!(
            "--api-keys: {} keys; at most 65535",
            keys.values.len()
        ));
    }
    headers.shown.push((
        "x-api-key".to_string(),
        format!(
            "{} ({} keys, {}: {})",
            redact::REDACTED,
            keys.values.len(),
            args.api_key_order,
            keys.labels.join(", ")
        ),
    ));
    Ok(keys)
}

/// `--aws-sigv4 REGION[:SERVICE]`: the scope and the credentials, found now
/// so that a run never starts unable to sign. The signature is the
/// Authorization header, so another one conflicts.
fn signer(text: &str, headers: &mut Headers) -> Result<crate::sigv4::Signer, UsageError> {
    use crate::sigv4::{Credentials, Options, Scope, Signer};
    let scope = Scope::parse(text).map_err(|why| UsageError(format!("--aws-sigv4 {why}")))?;
    let templated = headers
        .templated
        .iter()
        .any(|(name, _)| name == http::header::AUTHORIZATION);
    if templated || headers.fixed.contains_key(http::header::AUTHORIZATION) {
        return usage(
            "--aws-sigv4 and an Authorization header (-H, or user:password in the URL) conflict: the signature is the Authorization header",
        );
    }
    let credentials = Credentials::from_environment(&|name| std::env::var(name).ok())
        .map_err(|why| UsageError(format!("--aws-sigv4 {text}: {why}")))?;
    headers.shown.push((
        "authorization".to_string(),
        format!(
            "{} (SigV4 {}/{}, credentials from {})",
            redact::REDACTED,
            scope.region,
            scope.service,
            credentials.source
        ),
    ));
    Ok(Signer::new(&credentials, scope, Options::default()))
}

/// The URL, checked: absolute http(s) with a host and a valid port; templates
/// may vary its path and query, never the host. Credentials in it become a
/// Basic `Authorization` header.
struct Target {
    url: Template,
    static_uri: Option<Uri>,
    probe_uri: Uri,
    display_url: String,
    basic_auth: Option<String>,
}

fn target(text: &str) -> Result<Target, UsageError> {
    let display_url = redact::url(text);
    let (url_text, basic_auth) = split_userinfo(text);
    let url = Template::parse(&url_text)
        .map_err(|why| UsageError(format!("URL '{display_url}': {why}")))?;
    let probe_uri: Uri = url.render(0).parse().or_else(|_| {
        usage(format!(
            "URL '{display_url}': expected an absolute http:// or https:// URL with a host"
        ))
    })?;
    match (probe_uri.scheme_str(), probe_uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => {}
        _ => {
            return usage(format!(
                "URL '{display_url}': expected an absolute http:// or https:// URL with a host"
            ))
        }
    }
    check_port(&url.render(0)).map_err(|why| UsageError(format!("URL '{display_url}': {why}")))?;
    let other: Uri = url.render(1).parse().or_else(|_| {
        usage(format!(
            "URL '{display_url}': not a valid URL once rendered"
        ))
    })?;
    if other.authority() != probe_uri.authority() {
        return usage(format!(
            "URL '{display_url}': templates may vary the path and query, not the host"
        ));
    }
    let static_uri = url.as_static().map(|_| probe_uri.clone());

    Ok(Target {
        url,
        static_uri,
        probe_uri,
        display_url,
        basic_auth,
    })
}

/// Headers: the fixed ones (sent as they are), the templated ones (filled per
/// request) and how each is shown (secrets as `<redacted>`).
struct Headers {
    fixed: HeaderMap,
    templated: Vec<(HeaderName, Template)>,
    shown: Vec<(String, String)>,
}

fn headers(
    args: &LoadArgs,
    basic_auth: Option<String>,
    display_url: &str,
) -> Result<Headers, UsageError> {
    let mut static_headers = HeaderMap::new();
    let mut templated_headers = Vec::new();
    let mut display_headers = Vec::new();
    if let Some(credentials) = basic_auth {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        let value = HeaderValue::from_str(&format!("Basic {encoded}")).or_else(|_| {
            usage(format!(
                "URL '{display_url}': the user:password part is not valid in a header"
            ))
        })?;
        static_headers.insert(http::header::AUTHORIZATION, value);
        display_headers.push(("authorization".to_string(), redact::REDACTED.to_string()));
    }
    for (position, text) in args.headers.iter().enumerate() {
        let (name, value) = parse_header(position + 1, text, &args.secret_headers)?;
        let secret = redact::is_secret_header(name.as_str(), &args.secret_headers);
        display_headers.push((
            name.as_str().to_string(),
            if secret {
                redact::REDACTED.to_string()
            } else {
                value.clone()
            },
        ));
        let template = Template::parse(&value).map_err(|why| {
            UsageError(format!("-H/--header '{}' (#{}): {why}", name, position + 1))
        })?;
        match template.as_static() {
            Some(text) => {
                let value = HeaderValue::from_str(&text).or_else(|_| {
                    usage(format!(
                        "-H/--header '{}' (#{}): the value has characters a header cannot carry",
                        name,
                        position + 1
                    ))
                })?;
                static_headers.append(name, value);
            }
            None => templated_headers.push((name, template)),
        }
    }
    for name in &args.secret_headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return usage(format!("--secret-header '{name}': expected a header name"));
        }
    }
    Ok(Headers {
        fixed: static_headers,
        templated: templated_headers,
        shown: display_headers,
    })
}

/// A body that starts like JSON is sent as JSON unless the user said otherwise.
fn json_content_type(body: &BodySpec, headers: &mut HeaderMap) {
    let first_text = match body {
        BodySpec::Empty => String::new(),
        BodySpec::Static(bytes) => {
            String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned()
        }
        BodySpec::Templated(template) => template.render(0),
    };
    if first_text.trim_start().starts_with(['{', '['])
        && !headers.contains_key(http::header::CONTENT_TYPE)
    {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
}

/// `--resolve HOST:PORT:ADDR[,ADDR…]` (curl's form): the addresses for the
/// target's host and port. An entry for another host or port would never
/// be used, so it is an input error rather than silently ignored.
fn resolve(entries: &[String], target: &Uri) -> Result<Vec<std::net::SocketAddr>, UsageError> {
    let host = target.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let https = target.scheme_str() == Some("https");
    let port = target.port_u16().unwrap_or(if https { 443 } else { 80 });
    let mut found = Vec::new();
    for entry in entries {
        let expected = || {
            UsageError(format!(
                "--resolve '{entry}': expected HOST:PORT:ADDR[,ADDR…], e.g. api.example.com:443:10.0.0.7"
            ))
        };
        // HOST may be a bracketed IPv6 literal; ADDR may hold colons.
        let (entry_host, rest) = match entry.strip_prefix('[') {
            Some(after) => {
                let (inner, rest) = after.split_once(']').ok_or_else(expected)?;
                (inner, rest.strip_prefix(':').ok_or_else(expected)?)
            }
            None => entry.split_once(':').ok_or_else(expected)?,
        };
        let (entry_port, addresses) = rest.split_once(':').ok_or_else(expected)?;
        let entry_port: u16 = entry_port.parse().map_err(|_| expected())?;
        let parsed = addresses
            .split(',')
            .map(|address| {
                let address = address.trim().trim_start_matches('[').trim_end_matches(']');
                address.parse::<std::net::IpAddr>().map_err(|_| {
                    UsageError(format!(
                        "--resolve '{entry}': '{address}' is not an IP address"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if entry_host.is_empty() || parsed.is_empty() {
            return Err(expected());
        }
        if !entry_host.eq_ignore_ascii_case(bare) || entry_port != port {
            return usage(format!(
                "--resolve '{entry}': the target is {host}:{port}, so this entry would never be used"
            ));
        }
        found.extend(
            parsed
                .into_iter()
                .map(|ip| std::net::SocketAddr::new(ip, port)),
        );
    }
    Ok(found)
}

/// `--cacert` and `--cert`/`--key`, read and parsed: each file must hold
/// what its flag names (certificates; one private key), or exit 2 naming it.
fn tls_files(args: &LoadArgs) -> Result<crate::plan::TlsFiles, UsageError> {
    let certificates = crate::input::pem_certificates;
    let mut files = crate::plan::TlsFiles::default();
    if let Some(path) = &args.cacert {
        files.roots = certificates("--cacert", path)?;
        let mut store = rustls::RootCertStore::empty();
        for root in &files.roots {
            store.add(root.clone()).map_err(|why| {
                UsageError(format!(
                    "--cacert {}: a certificate that cannot be a trust anchor: {why}",
                    path.display()
                ))
            })?;
        }
    }
    match (&args.cert, &args.key) {
        (None, Some(_)) => {
            return usage("--key needs --cert: the client certificate it belongs to (PEM)")
        }
        (Some(cert), key) => {
            files.client = Some(crate::identity::client_identity(cert, key.as_deref())?);
        }
        (None, None) => {}
    }
    Ok(files)
}

fn body_spec(args: &LoadArgs) -> Result<BodySpec, UsageError> {
    let Some(text) = &args.body else {
        return Ok(BodySpec::Empty);
    };
    let content = match text.strip_prefix('@') {
        Some(path) => crate::input::read_text(
            std::path::Path::new(path),
            "--body @FILE",
            crate::input::BODY_LIMIT,
        )?,
        None => text.clone(),
    };
    let template = Template::parse(&content).map_err(|why| UsageError(format!("--body: {why}")))?;
    Ok(match template.as_static() {
        Some(text) => BodySpec::Static(Bytes::from(text)),
        None => BodySpec::Templated(template),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<LoadPlan, UsageError> {
        let mut argv = vec!["gateprobe", "load"];
        argv.extend_from_slice(args);
        let cli = crate::cli::Cli::parse_from(argv);
        let crate::cli::Command::Load(load) = cli.command else {
            panic!("parsed as load")
        };
        load_plan(&load)
    }

    #[test]
    fn defaults_are_a_gentle_bounded_open_model() {
        let plan = plan(&["http://127.0.0.1:1/"]).unwrap();
        assert_eq!(plan.duration, DEFAULT_DURATION);
        assert!(matches!(plan.schedule, Schedule::Open(_)));
        assert_eq!(plan.concurrency, DEFAULT_MAX_IN_FLIGHT);
        assert!(plan.describe_load().contains("50 rps"));
    }

    #[test]
    fn ports_are_parsed_strictly() {
        for bad in ["99999", "65536", "-1", "19100abc", "0", "", "+80", "1e3"] {
            let url = format!("http://127.0.0.1:{bad}/");
            let err = plan(&[&url]).unwrap_err().0;
            assert!(err.contains("1 to 65535"), "{bad}: {err}");
        }
        let err = plan(&["http://[::1]:70000/"]).unwrap_err().0;
        assert!(err.contains("1 to 65535"), "{err}");
        for good in [
            "http://127.0.0.1:1/",
            "http://127.0.0.1:65535/",
            "http://[::1]:8080/x",
            "http://[::1]/",
            "https://h/",
            "http://u:p@h:81/?a=b:c",
        ] {
            assert!(plan(&[good]).is_ok(), "{good}");
        }
    }

    #[test]
    fn userinfo_becomes_a_secret_header() {
        let plan = plan(&["http://me:pw@127.0.0.1:1/x"]).unwrap();
        assert_eq!(plan.request.display_url, "http://<redacted>@127.0.0.1:1/x");
        assert_eq!(
            plan.request.static_uri.unwrap().to_string(),
            "http://127.0.0.1:1/x"
        );
        assert!(plan.request.static_headers.contains_key("authorization"));
    }

    #[test]
    fn header_errors_never_echo_values() {
        let err = plan(&["http://h/", "-H", "x-api-key SECRETVALUE"])
            .unwrap_err()
            .0;
        assert!(!err.contains("SECRETVALUE"), "{err}");
        assert!(err.contains("Name: value"));
    }

    #[test]
    fn conflicts_and_bounds() {
        assert!(plan(&["http://h/", "--rate", "10", "--ramp", "0..5@1s"])
            .unwrap_err()
            .0
            .contains("conflict"));
        assert!(
            plan(&["http://h/", "--rate", "max", "--max-in-flight", "5"])
                .unwrap_err()
                .0
                .contains("conflict")
        );
        let steps = plan(&["http://h/", "--steps", "100,200@2s"]).unwrap();
        assert_eq!(steps.duration, Duration::from_secs(4));
        let capped = plan(&["http://h/", "--steps", "100,200@2s", "--duration", "1s"]).unwrap();
        assert_eq!(capped.duration, Duration::from_secs(1));
        let counted = plan(&["http://h/", "-n", "100"]).unwrap();
        assert_eq!(counted.max_requests, Some(100));
    }

    #[test]
    fn json_looking_bodies_are_sent_as_json_unless_told_otherwise() {
        let content_type = |args: &[&str]| {
            let mut all = vec!["http://h/"];
            all.extend_from_slice(args);
            plan(&all)
                .unwrap()
                .request
                .static_headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            content_type(&["-d", r#" {"a":1}"#]).as_deref(),
            Some("application/json")
        );
        assert_eq!(
            content_type(&["-d", r#"{"name":"run-{{uuid}}"}"#]).as_deref(),
            Some("application/json")
        );
        assert_eq!(content_type(&["-d", "a=1"]), None);
        assert_eq!(
            content_type(&["-d", "{}", "-H", "Content-Type: text/plain"]).as_deref(),
            Some("text/plain")
        );
    }
}
