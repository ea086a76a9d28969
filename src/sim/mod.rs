//! The embedded API-gateway simulator: a real HTTP server on loopback that
//! behaves like the API Gateway parts a release engineer works with — stages,
//! a random per-request canary split, Mock integrations, layered token-bucket
//! throttles, usage plans with API keys and quotas, and a POST that fronts
//! Step Functions `StartExecution`. Used by `gateprobe sim`, `gateprobe
//! demo` and the tests, whose truth it is.
pub mod bucket;
pub mod config;
mod execution;
pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use bucket::Limiter;
use config::{Config, Integration, Route, Throttle};
use execution::Executions;

/// Largest request body the simulator reads.
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// One answer, before it becomes an HTTP response.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    fn message(status: u16, message: &str) -> Self {
        Self::json(status, serde_json::json!({ "message": message }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BucketKey {
    Account,
    Stage(String),
    Method(String, String),
    ApiKey(String),
}

/// Mutable gateway state: limiters and quotas, behind one lock so that a
/// request is admitted through all its layers at once.
#[derive(Default)]
struct Limits {
    buckets: HashMap<BucketKey, Limiter>,
    /// Per API key: (start of the current period, requests used in it).
    quotas: HashMap<String, (f64, u64)>,
    /// Lambda invocations in progress: per deployment, and in the account.
    in_progress: HashMap<String, u64>,
    account_in_progress: u64,
}

/// A Lambda invocation's slot, given back when the invocation ends.
struct Slot<'a> {
    simulator: &'a Simulator,
    deployment: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut limits) = self.simulator.limits.lock() {
            limits.account_in_progress = limits.account_in_progress.saturating_sub(1);
            if let Some(count) = limits.in_progress.get_mut(&self.deployment) {
                *count = count.saturating_sub(1);
            }
        }
    }
}

/// The simulator: configuration plus state.
pub struct Simulator {
    config: Config,
    start: Instant,
    limits: Mutex<Limits>,
    rng: Mutex<StdRng>,
    executions: Mutex<Executions>,
    /// API key → index of its usage plan.
    plan_of_key: HashMap<String, usize>,
    /// Checks SigV4 on `AWS_IAM` routes.
    verifier: crate::sigv4::Verifier,
}

impl Simulator {
    /// A simulator; `seed` makes the canary choice and faults reproducible.
    pub fn new(config: Config, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let plan_of_key = config
            .usage_plans
            .iter()
            .enumerate()
            .flat_map(|(index, plan)| plan.api_keys.iter().map(move |key| (key.clone(), index)))
            .collect();
        Self {
            verifier: config.iam.verifier(),
            config,
            start: Instant::now(),
            limits: Mutex::new(Limits::default()),
            rng: Mutex::new(rng),
            executions: Mutex::new(Executions::default()),
            plan_of_key,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn random(&self) -> f64 {
        self.rng
            .lock()
            .map(|mut rng| rng.random::<f64>())
            .unwrap_or(0.5)
    }

    /// Answers one request, as the gateway would.
    pub async fn handle(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Answer {
        self.handle_on(None, method, path, headers, body).await
    }

    /// [`Simulator::handle`] on a connection whose canary draw is
    /// `connection_draw` (a stage with connection affinity uses it instead
    /// of a fresh one).
    /// Long because it is the gateway's request path in order (stage, canary
    /// choice, route, key, throttles in layers, integration, faults), each
    /// stage able to answer early; the stages that hold logic are their own
    /// modules (`bucket`, `execution`).
    pub async fn handle_on(
        &self,
        connection_draw: Option<f64>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Answer {
        let path_and_query = path;
        let path = path.split('?').next().unwrap_or("");
        let Some((stage_name, resource)) = split_stage(path) else {
            return Answer::message(403, "Forbidden");
        };
        let Some(stage) = self.config.stages.get(stage_name) else {
            return Answer::message(403, "Forbidden");
        };
        // The canary is chosen at random per request, not sticky — unless
        // the stage pins it to the connection.
        let canary = stage.canary.as_ref().filter(|canary| {
            let draw = match (canary.affinity, connection_draw) {
                (config::Affinity::Connection, Some(draw)) => draw,
                _ => self.random(),
            };
            draw * 100.0 < canary.percent_traffic
        });
        let deployment_name = canary.map_or(&stage.deployment, |canary| &canary.deployment);
        let Some(deployment) = self.config.deployments.get(deployment_name) else {
            return Answer::message(500, "Internal server error");
        };
        let Some(route) = deployment
            .routes
            .iter()
            .find(|route| route.path == resource && route.method == method.as_str())
        else {
            return Answer::message(403, "Missing Authentication Token");
        };
        if route.authorization == config::Authorization::AwsIam {
            let verified = self.verifier.verify(
                method.as_str(),
                path_and_query,
                headers,
                body,
                std::time::SystemTime::now(),
            );
            if let Err(rejection) = verified {
                let mut answer = Answer::message(403, rejection.message());
                answer
                    .headers
                    .push(("x-amzn-errortype".into(), rejection.error_type().into()));
                return answer;
            }
        }
        let mut variables = stage.variables.clone();
        if let Some(canary) = canary {
            variables.extend(canary.stage_variable_overrides.clone());
        }
        let api_key = headers
            .get("x-api-key")
            .and_then(|value| value.to_str().ok());
        let plan = if route.api_key_required {
            match api_key.and_then(|key| self.plan_of_key.get(key).map(|plan| (key, *plan))) {
                Some((key, plan)) if self.plan_covers(plan, stage_name) => Some((key, plan)),
                _ => return Answer::message(403, "Forbidden"),
            }
        } else {
            None
        };
        let queued_s = match self.admit(stage_name, stage, route, plan) {
            Ok(queued_s) => queued_s,
            Err(refusal) => return refusal,
        };
        if queued_s > 0.0 {
            // A queueing limiter (nginx limit_req without nodelay) holds the
            // request before passing it on.
            tokio::time::sleep(Duration::from_secs_f64(queued_s)).await;
        }
        // A Lambda function: one slot of its reserved concurrency (and of the
        // account's) for as long as the invocation runs.
        let _slot = match deployment.concurrency {
            Some(_) => match self.invoke(deployment_name, deployment) {
                Some(slot) => Some(slot),
                None => {
                    let throttle = &self.config.account.lambda_throttle;
                    return Answer {
                        status: throttle.status,
                        headers: vec![("content-type".into(), "application/json".into())],
                        body: throttle.body.clone(),
                    };
                }
            },
            None => None,
        };
        let latency = deployment.latency_ms;
        let delay_ms = deployment
            .concurrency
            .map_or(latency.fixed, |concurrency| concurrency.duration_ms)
            + latency.jitter
                * if latency.jitter > 0.0 {
                    self.random()
                } else {
                    0.0
                };
        if delay_ms > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(delay_ms / 1000.0)).await;
        }
        let substitute = |text: &str| substitute(text, &variables);
        if deployment.error_rate > 0.0 && self.random() < deployment.error_rate {
            let mut answer = Answer::message(500, "Internal server error");
            answer.headers.extend(
                integration_headers(&route.integration)
                    .iter()
                    .map(|(k, v)| (k.clone(), substitute(v))),
            );
            return answer;
        }
        match &route.integration {
            Integration::Mock {
                status,
                headers,
                body,
            } => Answer {
                status: *status,
                headers: headers
                    .iter()
                    .map(|(name, value)| (name.clone(), substitute(value)))
                    .collect(),
                body: substitute(body),
            },
            Integration::Json {
                status,
                headers,
                body,
            } => {
                let mut answer_headers =
                    vec![("content-type".to_string(), "application/json".to_string())];
                answer_headers.extend(
                    headers
                        .iter()
                        .map(|(name, value)| (name.clone(), substitute(value))),
                );
                Answer {
                    status: *status,
                    headers: answer_headers,
                    body: substitute(&body.to_string()),
                }
            }
            Integration::StartExecution { headers, access } => {
                let mut answer = match self.executions.lock() {
                    Ok(mut executions) => execution::start(
                        &self.config.state_machines,
                        *access,
                        body,
                        &mut executions,
                    ),
                    Err(_) => Answer::message(500, "Internal server error"),
                };
                answer.headers.extend(
                    headers
                        .iter()
                        .map(|(name, value)| (name.clone(), substitute(value))),
                );
                answer
            }
        }
    }

    /// Takes a slot of the deployment's reserved concurrency and of the
    /// account's, or `None` when either is used up (a Lambda throttle).
    fn invoke(&self, name: &str, deployment: &config::Deployment) -> Option<Slot<'_>> {
        let limit = deployment.concurrency?.limit;
        let mut limits = self.limits.lock().ok()?;
        let in_progress = limits.in_progress.get(name).copied().unwrap_or(0);
        if in_progress >= limit || limits.account_in_progress >= self.config.account.concurrency {
            return None;
        }
        *limits.in_progress.entry(name.to_string()).or_default() += 1;
        limits.account_in_progress += 1;
        Some(Slot {
            simulator: self,
            deployment: name.to_string(),
        })
    }

    fn plan_covers(&self, plan: usize, stage: &str) -> bool {
        let stages = &self.config.usage_plans[plan].stages;
        stages.is_empty() || stages.iter().any(|name| name == stage)
    }

    /// Quota, then throttles in layers: usage-plan key → method → stage →
    /// account. Returns how long a queueing layer holds the request, or the
    /// refusal.
    fn admit(
        &self,
        stage_name: &str,
        stage: &config::Stage,
        route: &Route,
        plan: Option<(&str, usize)>,
    ) -> Result<f64, Answer> {
        let now_s = self.start.elapsed().as_secs_f64();
        let Ok(mut limits) = self.limits.lock() else {
            return Err(Answer::message(500, "Internal server error"));
        };
        let limits = &mut *limits;
        let mut layers: Vec<(BucketKey, Throttle)> = Vec::with_capacity(4);
        if let Some((key, plan)) = plan {
            let usage_plan = &self.config.usage_plans[plan];
            if let Some(quota) = usage_plan.quota {
                let (period_start, used) =
                    limits.quotas.entry(key.to_string()).or_insert((now_s, 0));
                if now_s - *period_start >= quota.period.seconds() {
                    (*period_start, *used) = (now_s, 0);
                }
                if *used >= quota.limit {
                    return Err(Answer::message(429, "Limit Exceeded"));
                }
            }
            if let Some(throttle) = usage_plan.throttle {
                layers.push((BucketKey::ApiKey(key.to_string()), throttle));
            }
        }
        let method_key = format!("{} {}", route.method, route.path);
        if let Some(throttle) = stage.method_throttles.get(&method_key) {
            layers.push((
                BucketKey::Method(stage_name.to_string(), method_key),
                *throttle,
            ));
        }
        if let Some(throttle) = stage.throttle {
            layers.push((BucketKey::Stage(stage_name.to_string()), throttle));
        }
        layers.push((BucketKey::Account, self.config.account.throttle));
        for (key, throttle) in &layers {
            limits
                .buckets
                .entry(key.clone())
                .or_insert_with(|| Limiter::new(*throttle, now_s));
        }
        let keys: Vec<BucketKey> = layers.into_iter().map(|(key, _)| key).collect();
        let Some(queued_s) = bucket::admit(&mut limits.buckets, &keys, now_s) else {
            let mut answer = Answer::message(429, "Too Many Requests");
            answer
                .headers
                .push(("x-amzn-errortype".into(), "TooManyRequestsException".into()));
            return Err(answer);
        };
        if let Some((key, _)) = plan {
            if let Some((_, used)) = limits.quotas.get_mut(key) {
                *used += 1;
            }
        }
        Ok(queued_s)
    }
}

fn integration_headers(integration: &Integration) -> &std::collections::BTreeMap<String, String> {
    match integration {
        Integration::Mock { headers, .. }
        | Integration::Json { headers, .. }
        | Integration::StartExecution { headers, .. } => headers,
    }
}

/// `/PROD/hello` → (`PROD`, `/hello`).
fn split_stage(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (stage, resource) = rest
        .split_once('/')
        .map_or((rest, "/"), |(stage, _)| (stage, &rest[stage.len()..]));
    (!stage.is_empty()).then_some((stage, resource))
}

/// Fills `${stageVariables.NAME}` as a mapping template does (unknown → empty).
fn substitute(text: &str, variables: &std::collections::BTreeMap<String, String>) -> String {
    const OPEN: &str = "${stageVariables.";
    if !text.contains(OPEN) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        match after.find('}') {
            Some(end) => {
                out.push_str(
                    variables
                        .get(&after[..end])
                        .map(String::as_str)
                        .unwrap_or(""),
                );
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn to_response(answer: Answer) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

async fn serve_request(
    simulator: Arc<Simulator>,
    connection_draw: f64,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return to_response(Answer::message(413, "Request Entity Too Large")),
    };
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut headers = parts.headers;
    // HTTP/2 carries the host as :authority; the gateway's checks (SigV4's
    // signed host) read it as Host.
    if !headers.contains_key(http::header::HOST) {
        if let Some(authority) = parts.uri.authority() {
            if let Ok(value) = http::HeaderValue::from_str(authority.as_str()) {
                headers.insert(http::header::HOST, value);
            }
        }
    }
    to_response(
        simulator
            .handle_on(Some(connection_draw), &parts.method, path, &headers, &body)
            .await,
    )
}

/// Serves `simulator` on `listener` until `shutdown`: HTTP/1.1 and h2c, or
/// over TLS with `tls` (h2 or http/1.1 by ALPN).
pub async fn serve(
    simulator: Arc<Simulator>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let (simulator, shutdown, tls) = (simulator.clone(), shutdown.clone(), tls.clone());
        let connection_draw = simulator.random();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let simulator = simulator.clone();
                async move {
                    Ok::<_, Infallible>(serve_request(simulator, connection_draw, request).await)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Some(acceptor) => {
                    // A client that fails the handshake is simply gone.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        });
    }
}

/// A simulator running on loopback; stops when dropped.
pub struct Running {
    pub address: SocketAddr,
    pub simulator: Arc<Simulator>,
    /// `http` or `https`.
    pub scheme: &'static str,
    shutdown: CancellationToken,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// `scheme://address`, with no path.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Binds `listen` (e.g. 127.0.0.1:0) and serves `config` in the background.
pub async fn start(
    config: Config,
    listen: SocketAddr,
    seed: Option<u64>,
) -> std::io::Result<Running> {
    start_with(config, listen, seed, None).await
}

/// [`start`], over TLS when `tls` is given (see [`tls`]).
pub async fn start_with(
    config: Config,
    listen: SocketAddr,
    seed: Option<u64>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<Running> {
    let listener = TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let simulator = Arc::new(Simulator::new(config, seed));
    let shutdown = CancellationToken::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    tokio::spawn(serve(simulator.clone(), listener, tls, shutdown.clone()));
    Ok(Running {
        address,
        simulator,
        scheme,
        shutdown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_stage_and_resource() {
        assert_eq!(split_stage("/PROD/hello"), Some(("PROD", "/hello")));
        assert_eq!(split_stage("/PROD/a/b"), Some(("PROD", "/a/b")));
        assert_eq!(split_stage("/PROD"), Some(("PROD", "/")));
        assert_eq!(split_stage("/"), None);
    }

    #[test]
    fn stage_variables_are_substituted() {
        let variables = [("version".to_string(), "1.5.0".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            substitute(r#"{"v":"${stageVariables.version}"}"#, &variables),
            r#"{"v":"1.5.0"}"#
        );
        assert_eq!(substitute("${stageVariables.missing}!", &variables), "!");
    }
}
