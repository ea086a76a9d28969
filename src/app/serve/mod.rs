//! `gateprobe serve`: the verdict for the controllers that promote canaries
//! (Flagger's webhooks, Argo Rollouts' Web metric provider). A *profile* is
//! a scenario file in `--profiles` (its name is the file's stem); its
//! target and steps are the server's, and a caller may set only the
//! variables it declares `settable`, each checked against its type. A
//! caller can never name a URL, a command or a rate above the profile's.
//! Routes:
//! - `POST /v1/flagger/{hook}`: one per Flagger webhook type ([`flagger`]);
//! - `PUT /v1/argo/runs/{key}`: start or join, wait, answer ([`argo`]);
//! - `GET`/`DELETE /v1/runs/{key}`, `GET /v1/runs/{key}/report.{json,html,md,xml,prom,txt}`;
//! - `GET /healthz`, `GET /metrics` (Prometheus text: runs by state and verdict).
//!
//! hyper serves it (already the client's and the simulator's HTTP); the
//! routes are a handful of fixed paths, so no router crate is pulled in.
mod argo;
mod flagger;
pub mod runs;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::scenario::{self, Scenario, StepSharding};
use crate::exit::UsageError;
use runs::{Refused, Runs};

/// The largest request body a caller may send.
const BODY_LIMIT: usize = 64 * 1024;

/// One profile: a scenario file, read and parsed when the server starts.
pub struct Profile {
    pub name: String,
    pub source: String,
    pub text: String,
    pub scenario: Scenario,
}

/// What the server is told at start.
pub struct Config {
    pub profiles: BTreeMap<String, Profile>,
    pub state_dir: Option<PathBuf>,
    pub max_runs: usize,
    /// The bearer token (Argo) and `metadata.token` (Flagger); none: open.
    pub token: Option<String>,
    /// Flagger namespaces accepted; empty: any.
    pub allow_namespaces: Vec<String>,
}

/// Refusals counted for `/metrics`, by why.
#[derive(Default)]
struct Refusals {
    auth: AtomicU64,
    busy: AtomicU64,
    input: AtomicU64,
}

pub struct Server {
    config: Config,
    runs: Arc<Runs>,
    refusals: Refusals,
}

pub type Answer = Response<Full<Bytes>>;

/// A caller's profile and variables, checked; or the status and why not.
type Checked<'a> = Result<(&'a Profile, BTreeMap<String, String>), (StatusCode, String)>;

/// An answer with a plain one-line body.
pub fn text(status: StatusCode, body: impl Into<String>) -> Answer {
    let mut body = body.into();
    body.push('\n');
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    answer
}

/// An answer with a JSON body.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Answer {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    answer
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut differ = a.len() ^ b.len();
    for (index, byte) in b.iter().enumerate() {
        differ |= usize::from(a.get(index).copied().unwrap_or(0) ^ byte);
    }
    differ == 0
}

impl Server {
    pub fn new(config: Config) -> std::io::Result<Self> {
        let runs = Arc::new(Runs::open(config.state_dir.clone(), config.max_runs)?);
        Ok(Server {
            config,
            runs,
            refusals: Refusals::default(),
        })
    }

    /// The runs it knows.
    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// Whether `given` is the server's token (any, when it has none).
    fn authorised(&self, given: Option<&str>) -> bool {
        match &self.config.token {
            None => true,
            Some(token) => given.is_some_and(|given| same_secret(given, token)),
        }
    }

    fn unauthorised(&self) -> Answer {
        self.refusals.auth.fetch_add(1, Ordering::Relaxed);
        text(
            StatusCode::UNAUTHORIZED,
            "a missing or wrong token: nothing started",
        )
    }

    fn bad_input(&self, status: StatusCode, why: impl Into<String>) -> Answer {
        self.refusals.input.fetch_add(1, Ordering::Relaxed);
        text(status, why)
    }

    /// The bearer token of a request, if it carries one.
    fn bearer(request: &Request<Incoming>) -> Option<String> {
        let value = request.headers().get(http::header::AUTHORIZATION)?;
        let value = value.to_str().ok()?;
        value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
    }

    /// The profile and variables a caller asked for, checked: the profile
    /// exists, every variable is settable and of its type, and the steps
    /// plan (nothing is sent).
    fn checked(&self, profile: &str, given: &BTreeMap<String, String>) -> Checked<'_> {
        let Some(found) = self.config.profiles.get(profile) else {
            let names: Vec<&str> = self.config.profiles.keys().map(String::as_str).collect();
            return Err((
                StatusCode::NOT_FOUND,
                format!(
                    "no profile '{}' (profiles: {})",
                    crate::console::escape_controls(profile),
                    names.join(", ")
                ),
            ));
        };
        let unprocessable = |err: UsageError| (StatusCode::UNPROCESSABLE_ENTITY, err.0);
        let vars =
            scenario::caller_vars(&found.scenario, &found.source, given).map_err(unprocessable)?;
        scenario::plan_text(
            &found.source,
            &found.text,
            &vars,
            None,
            true,
            &StepSharding::default(),
        )
        .map_err(unprocessable)?;
        Ok((found, vars))
    }

    /// Starts (or joins) the run `key` of `profile` with `vars`.
    fn start(
        &self,
        key: &str,
        profile: &Profile,
        vars: &BTreeMap<String, String>,
    ) -> Option<Answer> {
        let (source, scenario_text) = (profile.source.clone(), profile.text.clone());
        let owned = vars.clone();
        let started = self
            .runs
            .start_or_join(key, &profile.name, vars, move || async move {
                let sharding = StepSharding::default();
                scenario::run_text(&source, &scenario_text, &owned, None, true, &sharding).await
            });
        match started {
            Ok(_) => None,
            Err(Refused::Busy(running)) => {
                self.refusals.busy.fetch_add(1, Ordering::Relaxed);
                let mut answer = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("{running} runs are running (--max-runs): try again later"),
                );
                answer.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("30"),
                );
                Some(answer)
            }
            Err(Refused::Conflict(why)) => Some(self.bad_input(StatusCode::CONFLICT, why)),
        }
    }

    /// Answers one request.
    pub async fn answer(self: &Arc<Self>, request: Request<Incoming>) -> Answer {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (&method, parts.as_slice()) {
            (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok"),
            (&Method::GET, ["metrics"]) => self.metrics(),
            (&Method::POST, ["v1", "flagger", hook]) => {
                let hook = hook.to_string();
                match body(request).await {
                    Ok(bytes) => self.flagger(&hook, &bytes),
                    Err(answer) => answer,
                }
            }
            (&Method::PUT, ["v1", "argo", "runs", key]) => {
                let key = key.to_string();
                let token = Self::bearer(&request);
                match body(request).await {
                    Ok(bytes) => self.argo(&key, token.as_deref(), &bytes).await,
                    Err(answer) => answer,
                }
            }
            (_, ["v1", "runs", key, ..]) => {
                let (key, rest) = (key.to_string(), parts[3..].join("/"));
                if !self.authorised(Self::bearer(&request).as_deref()) {
                    return self.unauthorised();
                }
                self.run_resource(&method, &key, &rest)
            }
            _ => self.bad_input(
                StatusCode::NOT_FOUND,
                format!(
                    "no route {method} {}",
                    crate::console::escape_controls(&path)
                ),
            ),
        }
    }

    /// `GET`/`DELETE /v1/runs/{key}` and `GET /v1/runs/{key}/report.EXT`.
    fn run_resource(&self, method: &Method, key: &str, rest: &str) -> Answer {
        let Some(record) = self.runs.get(key) else {
            return self.bad_input(
                StatusCode::NOT_FOUND,
                format!("no run '{}'", crate::console::escape_controls(key)),
            );
        };
        match (method, rest) {
            (&Method::GET, "") => json(StatusCode::OK, &record),
            (&Method::DELETE, "") => {
                self.runs.remove(key);
                json(StatusCode::OK, &record)
            }
            (&Method::GET, report) if report.starts_with("report.") => {
                let Some(saved) = self.runs.report(key) else {
                    return text(
                        StatusCode::NOT_FOUND,
                        format!("run '{key}' has no report yet ({})", record.state),
                    );
                };
                render(&saved, &report["report.".len()..])
                    .unwrap_or_else(|why| self.bad_input(StatusCode::NOT_FOUND, why))
            }
            _ => self.bad_input(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed here"),
            ),
        }
    }

    /// `/metrics`: runs by state and verdict, and refusals by why. Keys,
    /// variables and tokens are never labels.
    fn metrics(&self) -> Answer {
        let mut out = String::from(
            "# HELP gateprobe_serve_runs Runs the server knows, by state and verdict.\n# TYPE gateprobe_serve_runs gauge\n",
        );
        for ((state, verdict), count) in self.runs.counts() {
            out.push_str(&format!(
                "gateprobe_serve_runs{{state=\"{state}\",verdict=\"{verdict}\"}} {count}\n"
            ));
        }
        out.push_str("# HELP gateprobe_serve_refused_total Requests refused, by why.\n# TYPE gateprobe_serve_refused_total counter\n");
        for (why, count) in [
            ("auth", &self.refusals.auth),
            ("busy", &self.refusals.busy),
            ("input", &self.refusals.input),
        ] {
            out.push_str(&format!(
                "gateprobe_serve_refused_total{{reason=\"{why}\"}} {}\n",
                count.load(Ordering::Relaxed)
            ));
        }
        let mut answer = text(StatusCode::OK, out.trim_end());
        answer.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        answer
    }
}

/// A saved report in the format its extension names.
fn render(report: &crate::report::Report, extension: &str) -> Result<Answer, String> {
    let (bytes, kind) = match extension {
        "txt" => (
            crate::output::text::render(report).into_bytes(),
            "text/plain; charset=utf-8",
        ),
        _ => {
            let format = crate::output::FORMATS
                .iter()
                .find(|f| f.extension() == extension)
                .ok_or_else(|| {
                    let known: Vec<&str> = crate::output::FORMATS
                        .iter()
                        .map(|f| f.extension())
                        .chain(["txt"])
                        .collect();
                    format!(
                        "no report format '{}' ({})",
                        crate::console::escape_controls(extension),
                        known.join(", ")
                    )
                })?;
            let bytes = format.render(report).map_err(|e| e.to_string())?;
            (bytes, format.media_type())
        }
    };
    let mut answer = Response::new(Full::new(Bytes::from(bytes)));
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(kind),
    );
    Ok(answer)
}

/// A request's body, at most [`BODY_LIMIT`] bytes.
async fn body(request: Request<Incoming>) -> Result<Bytes, Answer> {
    match Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a request body is at most {BODY_LIMIT} bytes"),
        )),
    }
}

/// Reads every `*.json` scenario in `dir` as a profile, named by its stem.
pub fn read_profiles(dir: &Path) -> Result<BTreeMap<String, Profile>, UsageError> {
    let shown = dir.display();
    let entries =
        std::fs::read_dir(dir).map_err(|err| UsageError(format!("--profiles {shown}: {err}")))?;
    let mut profiles = BTreeMap::new();
    for entry in entries {
        let path = entry
            .map_err(|err| UsageError(format!("--profiles {shown}: {err}")))?
            .path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if !runs::valid_key(&name) {
            return Err(UsageError(format!(
                "{}: a profile's name is its file's stem: letters, digits, '.', '_' and '-'",
                path.display()
            )));
        }
        // Callers see the profile's name, not the server's paths.
        let source = format!("profile '{name}'");
        let text = crate::input::read_text(&path, "profile", crate::input::CONFIG_LIMIT)?;
        let scenario = scenario::parse(&source, &text)?;
        profiles.insert(
            name.clone(),
            Profile {
                name,
                source,
                text,
                scenario,
            },
        );
    }
    if profiles.is_empty() {
        return Err(UsageError(format!(
            "--profiles {shown}: no *.json scenario files"
        )));
    }
    Ok(profiles)
}

/// A server running on `address`; stops when told or dropped.
pub struct Running {
    pub address: SocketAddr,
    pub server: Arc<Server>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, stops every run and waits for each to be recorded.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.server
            .runs
            .stop_all(std::time::Duration::from_secs(10))
            .await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts serving `config` on `listen`.
pub async fn start(config: Config, listen: SocketAddr) -> std::io::Result<Running> {
    let server = Arc::new(Server::new(config)?);
    let listener = TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(accept(server.clone(), listener, shutdown.clone()));
    Ok(Running {
        address,
        server,
        shutdown,
        task: Some(task),
    })
}

async fn accept(server: Arc<Server>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (server, shutdown) = (server.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.answer(request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

/// `gateprobe serve`: serves until SIGTERM or Ctrl-C, then stops every run
/// (each is recorded as interrupted, with its partial report) and exits 0.
pub async fn run(args: crate::cli::ServeArgs) -> Result<u8> {
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        UsageError(format!(
            "--listen '{}': expected ADDRESS:PORT, e.g. 127.0.0.1:8484",
            args.listen
        ))
    })?;
    let token = match &args.token_file {
        Some(path) => {
            let text = crate::input::read_text(path, "token file", 4096)?;
            let token = text.trim().to_string();
            if token.len() < 16 {
                return Err(UsageError(format!(
                    "--token-file {}: expected a token of at least 16 characters",
                    path.display()
                ))
                .into());
            }
            Some(token)
        }
        None if !listen.ip().is_loopback() => {
            return Err(UsageError(format!(
                "--listen {listen}: beyond loopback the server needs --token-file (anyone who reaches it could start load)"
            ))
            .into());
        }
        None => None,
    };
    let config = Config {
        profiles: read_profiles(&args.profiles)?,
        state_dir: args.state_dir.clone(),
        max_runs: args.max_runs,
        token,
        allow_namespaces: args.allow_namespace.clone(),
    };
    let names: Vec<String> = config.profiles.keys().cloned().collect();
    let interrupt = crate::signals::interrupt();
    let running = start(config, listen).await?;
    crate::errln!(
        "gateprobe serve: listening on http://{} · profiles: {} · at most {} runs at once · state: {}",
        running.address,
        names.join(", "),
        args.max_runs,
        args.state_dir.as_ref().map_or("not kept (no --state-dir)".to_string(), |d| d.display().to_string())
    );
    interrupt.cancelled().await;
    crate::errln!("gateprobe serve: stopping: every running run ends interrupted and is recorded");
    running.stop().await;
    Ok(crate::exit::PASS)
}
