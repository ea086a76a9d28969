//! Validation, step two: raw flags become a typed [`LoadPlan`] before any
//! request is sent. Every mistake is one [`UsageError`] naming the input and
//! what was expected (exit code 2). No I/O here except reading `@file` bodies.
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::classify::Classifier;
use crate::cli::LoadArgs;
use crate::engine::schedule::{RateCurve, Schedule};
use crate::redact;
use crate::template::Template;
use crate::units;

/// A usage or input error: exit code 2, printed as one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
}

/// The open-model rate when none is given: gentle enough for a shared gateway.
pub const DEFAULT_RATE_PER_S: f64 = 50.0;
/// Open model: default cap on requests in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1000;
/// Closed model: default connections.
pub const DEFAULT_CONNECTIONS: usize = 50;
/// The time bound when neither --duration nor --requests is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Where a request's URL, headers and body come from: built once when static,
/// rendered per request when templated.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub url: Template,
    /// The URI when the URL has no template variables.
    pub static_uri: Option<Uri>,
    /// The URL rendered for request 0: every request goes to its host.
    pub endpoint: Uri,
    /// Headers without template variables (secret ones included, unprinted).
    pub static_headers: HeaderMap,
    pub templated_headers: Vec<(HeaderName, Template)>,
    pub body: BodySpec,
    /// The URL as it may be printed (credentials and secret params redacted).
    pub display_url: String,
    /// Header names as they may be printed: secret values replaced.
    pub display_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub enum BodySpec {
    Empty,
    Static(Bytes),
    Templated(Template),
}

/// Everything a load run needs, validated.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub request: RequestSpec,
    pub schedule: Schedule,
    /// Time bound for sending (the run stops claiming new requests after it).
    pub duration: Duration,
    /// Count bound.
    pub max_requests: Option<u64>,
    /// Open model: the in-flight cap. Closed model: the connections.
    pub concurrency: usize,
    pub timeout: Duration,
    pub http2: bool,
    pub insecure: bool,
    pub classifier: Classifier,
    pub max_body: usize,
    pub outputs: crate::cli::ReportArgs,
    pub quiet: bool,
    /// A hard cap on sends per sliding second, shared across runs (the
    /// throttle probe's `--max-rate`); `None` for plain load.
    pub pacer: Option<std::sync::Arc<crate::engine::pacer::Pacer>>,
    /// Connections opened before the clock starts (requests rotate over
    /// them): the canary check's guard against a split per connection.
    pub warm_connections: usize,
}

impl LoadPlan {
    /// A one-line description of the offered load, for the terminal.
    pub fn describe_load(&self) -> String {
        let bound = match self.max_requests {
            Some(count) if self.duration >= Duration::from_secs(7 * 86400) => {
                format!("{count} requests")
            }
            Some(count) => format!("{count} requests or {}", format_duration(self.duration)),
            None => format_duration(self.duration),
        };
        match &self.schedule {
            Schedule::Closed => format!("closed model, {} connections, {bound}", self.concurrency),
            Schedule::Open(curve) => {
                let rate = curve.max_rate_per_s();
                let mean =
                    curve.expected_by(self.duration.as_secs_f64()) / self.duration.as_secs_f64();
                if (rate - mean).abs() < 1e-9 || !curve.duration_s().is_finite() {
                    format!(
                        "open model, {} rps, {bound}, at most {} in flight",
                        trim_float(rate),
                        self.concurrency
                    )
                } else {
                    format!(
                        "open model, up to {} rps (mean {:.1}), {bound}, at most {} in flight",
                        trim_float(rate),
                        mean,
                        self.concurrency
                    )
                }
            }
        }
    }
}

pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 1.0 {
        format!("{}ms", (seconds * 1000.0).round())
    } else if seconds < 120.0 {
        format!("{}s", trim_float((seconds * 10.0).round() / 10.0))
    } else {
        format!("{}m", trim_float((seconds / 6.0).round() / 10.0))
    }
}

pub fn trim_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Parses JSON into `T`; a mistake reads `SOURCE:LINE:COL: field 'a.b': what`
/// (the simulator config, scenarios and saved reports all say it this way).
pub fn parse_json<T: serde::de::DeserializeOwned>(source: &str, text: &str) -> Result<T, String> {
    let source = crate::console::escape_controls(source);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let field = if path == "." {
            String::new()
        } else {
            format!(" field '{path}':")
        };
        let message = inner.to_string();
        let message = message
            .find(" at line ")
            .map_or(message.as_str(), |at| &message[..at]);
        format!(
            "{source}:{}:{}:{field} {message}",
            inner.line(),
            inner.column()
        )
    })?;
    // One JSON document: text after it (a second object, a stray brace) is
    // a mistake, not something to ignore.
    deserializer.end().map_err(|err| {
        format!(
            "{source}:{}:{}: unexpected text after the JSON document",
            err.line(),
            err.column()
        )
    })?;
    Ok(value)
}

/// Checks every report path before anything is sent.
pub fn check_outputs(outputs: &crate::cli::ReportArgs) -> Result<(), UsageError> {
    for (format, path) in outputs.files() {
        check_output_path(format.flag(), path)?;
    }
    Ok(())
}

/// Turns `load` flags into a plan, or one usage error.
pub fn load_plan(args: &LoadArgs) -> Result<LoadPlan, UsageError> {
    let request = request_spec(args)?;
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
    let shape_flags = [
        ("--rate", &args.rate),
        ("--steps", &args.steps),
        ("--ramp", &args.ramp),
    ];
    let given: Vec<&str> = shape_flags
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
    let concurrency = concurrency(args, &schedule)?;
    let timeout =
        units::parse_duration(&args.timeout).or_else(|why| usage(format!("--timeout: {why}")))?;
    let classifier = Classifier::parse(&args.classify).map_err(UsageError)?;
    let max_body =
        units::parse_size(&args.max_body).or_else(|why| usage(format!("--max-body: {why}")))?;
    check_outputs(&args.outputs)?;
    Ok(LoadPlan {
        request,
        schedule,
        duration,
        max_requests,
        concurrency,
        timeout,
        http2: args.http2,
        insecure: args.insecure,
        classifier,
        max_body,
        outputs: args.outputs.clone(),
        quiet: args.quiet,
        pacer: None,
        warm_connections: 0,
    })
}

/// The schedule, and the time the shape itself lasts (steps and ramps).
fn schedule(
    args: &LoadArgs,
    duration: Option<Duration>,
    max_requests: Option<u64>,
) -> Result<(Schedule, Option<Duration>), UsageError> {
    if let Some(text) = &args.steps {
        let (rates, hold) = text.rsplit_once('@').ok_or_else(|| {
            UsageError(format!(
                "--steps '{text}': expected rates and a hold time, e.g. 100,200,400@10s"
            ))
        })?;
        let hold =
            units::parse_duration(hold).or_else(|why| usage(format!("--steps '{text}': {why}")))?;
        let rates = rates
            .split(',')
            .map(|rate| {
                units::parse_rate(rate).or_else(|why| usage(format!("--steps '{text}': {why}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total = hold * rates.len() as u32;
        return Ok((
            Schedule::Open(RateCurve::steps(&rates, hold.as_secs_f64())),
            Some(total),
        ));
    }
    if let Some(text) = &args.ramp {
        let bad = || {
            UsageError(format!(
                "--ramp '{text}': expected FROM..TO@DURATION, e.g. 0..1000@60s"
            ))
        };
        let (range, over) = text.rsplit_once('@').ok_or_else(bad)?;
        let (from, to) = range.split_once("..").ok_or_else(bad)?;
        let from = units::parse_rate_or_zero(from)
            .or_else(|why| usage(format!("--ramp '{text}': {why}")))?;
        let to = units::parse_rate_or_zero(to)
            .or_else(|why| usage(format!("--ramp '{text}': {why}")))?;
        if from == 0.0 && to == 0.0 {
            return Err(bad());
        }
        let over =
            units::parse_duration(over).or_else(|why| usage(format!("--ramp '{text}': {why}")))?;
        return Ok((
            Schedule::Open(RateCurve::ramp(from, to, over.as_secs_f64())),
            Some(over),
        ));
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
    let display_url = redact::url(&args.url);
    let (url_text, basic_auth) = split_userinfo(&args.url);
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
    if !args.http2 && !static_headers.contains_key(http::header::HOST) {
        // HTTP/1.1 sends origin-form URIs with a Host header; set it once here
        // rather than on every request.
        if let Some(authority) = probe_uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            static_headers.insert(http::header::HOST, authority);
        }
    }
    let body = body_spec(args)?;
    // A body that starts like JSON is sent as JSON unless the user said otherwise.
    let first_text = match &body {
        BodySpec::Empty => String::new(),
        BodySpec::Static(bytes) => {
            String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned()
        }
        BodySpec::Templated(template) => template.render(0),
    };
    if first_text.trim_start().starts_with(['{', '['])
        && !static_headers.contains_key(http::header::CONTENT_TYPE)
    {
        static_headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(RequestSpec {
        method,
        url,
        static_uri,
        endpoint: probe_uri,
        static_headers,
        templated_headers,
        body,
        display_url,
        display_headers,
    })
}

/// The authority of `scheme://authority/…`: up to the first `/`, `?` or `#`.
pub fn authority_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    Some(&rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())])
}

/// Checks the port of an absolute URL strictly: digits only, 1–65535. The
/// `http` crate turns `:99999`, `:-1` or `:80abc` into "no port", which would
/// send the run to port 80 or 443 — another service than the one meant.
pub fn check_port(url: &str) -> Result<(), String> {
    let Some(authority) = authority_of(url) else {
        return Ok(());
    };
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    let port = if let Some(rest) = host_port.strip_prefix('[') {
        match rest.split_once(']') {
            Some((_, "")) => None,
            Some((_, after)) => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err("expected ':PORT' after the IPv6 address".to_string()),
            },
            None => return Err("an IPv6 address needs its closing ']'".to_string()),
        }
    } else {
        host_port.rsplit_once(':').map(|(_, port)| port)
    };
    match port {
        None => Ok(()),
        Some(port)
            if !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && (1..=65535).contains(&port.parse::<u32>().unwrap_or(0)) =>
        {
            Ok(())
        }
        Some(port) => Err(format!(
            "port '{}' is not a port: expected a number from 1 to 65535",
            crate::console::escape_controls(port)
        )),
    }
}

/// Splits `scheme://user:pass@host/…` into the URL without credentials and
/// the credentials, which become a (secret) Basic Authorization header.
fn split_userinfo(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => (
            format!("{scheme}://{host}{}", &rest[authority_end..]),
            Some(userinfo.to_string()),
        ),
        None => (url.to_string(), None),
    }
}

/// Parses 'Name: value'. The text is never echoed back: it may hold a secret.
fn parse_header(
    position: usize,
    text: &str,
    marked: &[String],
) -> Result<(HeaderName, String), UsageError> {
    let Some((name, value)) = text.split_once(':') else {
        return usage(format!(
            "-H/--header #{position}: expected 'Name: value' (no ':' found)"
        ));
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes()).or_else(|_| {
        usage(format!("-H/--header #{position}: expected 'Name: value'; the name before ':' is not a valid header name"))
    })?;
    let value = value.trim().to_string();
    if value.is_empty() && redact::is_secret_header(name.as_str(), marked) {
        return usage(format!(
            "-H/--header '{name}' (#{position}): the value is empty"
        ));
    }
    Ok((name, value))
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

/// A report path must be writable later; say so now rather than after the run.
pub fn check_output_path(flag: &str, path: &std::path::Path) -> Result<(), UsageError> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent {
        if !parent.is_dir() {
            return usage(format!(
                "{flag} {}: the folder {} does not exist",
                path.display(),
                parent.display()
            ));
        }
    }
    if path.is_dir() {
        return usage(format!(
            "{flag} {}: is a folder; expected a file path",
            path.display()
        ));
    }
    Ok(())
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
