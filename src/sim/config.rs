//! The simulator's configuration (JSON): deployments, stages with canaries and
//! throttles, the account throttle, usage plans and API keys, state machines.
//! Unknown fields are errors; every error names the field path and, for
//! syntax and type errors, the line and column.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The compiled-in default: the seed walkthrough (also `scenarios/sim-default.json`).
pub const DEFAULT_CONFIG: &str = include_str!("../../scenarios/sim-default.json");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub account: Account,
    /// State machine ARNs that `start_execution` integrations know.
    #[serde(default)]
    pub state_machines: Vec<String>,
    pub deployments: BTreeMap<String, Deployment>,
    pub stages: BTreeMap<String, Stage>,
    #[serde(default)]
    pub usage_plans: Vec<UsagePlan>,
    /// Who may call `"authorization": "AWS_IAM"` routes, and in which region.
    #[serde(default)]
    pub iam: Iam,
}

/// The IAM side of `AWS_IAM` routes: the region signatures are scoped to
/// and the access keys the simulator knows (default: AWS's documentation
/// example key pair, `AKIDEXAMPLE`, in us-east-1).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Iam {
    #[serde(default = "Iam::default_region")]
    pub region: String,
    #[serde(default = "Iam::default_keys")]
    pub access_keys: Vec<AccessKey>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Iam {
    fn default_region() -> String {
        "us-east-1".to_string()
    }

    fn default_keys() -> Vec<AccessKey> {
        vec![AccessKey {
            access_key_id: "AKIDEXAMPLE".to_string(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string(),
        }]
    }

    pub fn verifier(&self) -> crate::sigv4::Verifier {
        let keys: Vec<crate::sigv4::Credentials> = self
            .access_keys
            .iter()
            .map(|key| {
                crate::sigv4::Credentials::new(&key.access_key_id, &key.secret_access_key, None)
            })
            .collect();
        crate::sigv4::Verifier::new(&keys, &self.region, crate::sigv4::DEFAULT_SERVICE)
    }
}

impl Default for Iam {
    fn default() -> Self {
        Self {
            region: Self::default_region(),
            access_keys: Self::default_keys(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    #[serde(default = "Account::default_throttle")]
    pub throttle: Throttle,
    /// Lambda's account concurrency: invocations in progress across every
    /// function of the region (default 1,000).
    #[serde(default = "Account::default_concurrency")]
    pub concurrency: u64,
    /// What a throttled Lambda invocation looks like through the gateway.
    #[serde(default)]
    pub lambda_throttle: LambdaThrottle,
}

impl Account {
    /// API Gateway's default account limit: 10,000 rps with a 5,000 burst.
    fn default_throttle() -> Throttle {
        Throttle::token_bucket(10_000.0, 5_000)
    }

    fn default_concurrency() -> u64 {
        1_000
    }
}

impl Default for Account {
    fn default() -> Self {
        Self {
            throttle: Self::default_throttle(),
            concurrency: Self::default_concurrency(),
            lambda_throttle: LambdaThrottle::default(),
        }
    }
}

/// The answer a client gets when the function behind a Lambda proxy
/// integration is throttled. Lambda itself answers 429
/// `{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`,
/// but API Gateway does not pass that on: a REST API with a Lambda proxy
/// integration answers **500 `{"message": "Internal server error"}`** (AWS
/// Knowledge Center, "How do I troubleshoot issues for API Gateway endpoints
/// that integrate with Lambda?", section "Throttling occurs"; the
/// execution log reads "Lambda invocation failed with status: 429"). It is
/// the INTEGRATION_FAILURE gateway response, which an API may remap, so
/// both are configurable here.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaThrottle {
    #[serde(default = "LambdaThrottle::default_status")]
    pub status: u16,
    #[serde(default = "LambdaThrottle::default_body")]
    pub body: String,
}

impl LambdaThrottle {
    fn default_status() -> u16 {
        500
    }

    fn default_body() -> String {
        r#"{"message": "Internal server error"}"#.to_string()
    }
}

impl Default for LambdaThrottle {
    fn default() -> Self {
        Self {
            status: Self::default_status(),
            body: Self::default_body(),
        }
    }
}

/// The kinds of limiter the simulator has (see `sim::bucket`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimiterKind {
    /// API Gateway's: `rate` refills a bucket of `burst`.
    #[default]
    TokenBucket,
    /// nginx `limit_req` without `nodelay`: up to `burst` excess requests wait.
    Queue,
    /// `limit` per `window_s`, reset at each boundary.
    FixedWindow,
    /// `limit` per sliding `window_s`; `counts_refused` locks out a client
    /// that keeps sending above it.
    SlidingWindow,
}

/// A limiter; `{"rate": R, "burst": B}` alone is API Gateway's token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    #[serde(default)]
    pub kind: LimiterKind,
    #[serde(default)]
    pub rate: f64,
    #[serde(default)]
    pub burst: u64,
    #[serde(default)]
    pub limit: u64,
    #[serde(default = "Throttle::default_window_s")]
    pub window_s: f64,
    #[serde(default)]
    pub counts_refused: bool,
}

impl Throttle {
    pub fn token_bucket(rate: f64, burst: u64) -> Self {
        Self {
            kind: LimiterKind::TokenBucket,
            rate,
            burst,
            limit: 0,
            window_s: 1.0,
            counts_refused: false,
        }
    }

    fn default_window_s() -> f64 {
        1.0
    }
}

/// A Lambda function's reserved concurrency: at most `limit` invocations in
/// progress, each taking `duration_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    pub limit: u64,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub routes: Vec<Route>,
    #[serde(default)]
    pub latency_ms: Latency,
    /// Share (0–1) of requests answered 500 by this deployment.
    #[serde(default)]
    pub error_rate: f64,
    /// The deployment is a Lambda function with reserved concurrency.
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    #[serde(default)]
    pub fixed: f64,
    /// Uniform random extra latency from 0 to `jitter` ms.
    #[serde(default)]
    pub jitter: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub method: String,
    /// Path below the stage, e.g. `/hello`.
    pub path: String,
    #[serde(default)]
    pub api_key_required: bool,
    /// `"AWS_IAM"`: callers sign with SigV4 (checked against `iam`), as a
    /// method with IAM authorization; `"NONE"` (the default): anyone.
    #[serde(default)]
    pub authorization: Authorization,
    pub integration: Integration,
}

/// A method's authorization type, spelled as API Gateway spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum Authorization {
    #[default]
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "AWS_IAM")]
    AwsIam,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Integration {
    /// A Mock integration: fixed status, headers and body (may be empty).
    Mock {
        #[serde(default = "ok_status")]
        status: u16,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: String,
    },
    /// A fixed JSON body.
    Json {
        #[serde(default = "ok_status")]
        status: u16,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        body: serde_json::Value,
    },
    /// Step Functions `StartExecution` behind the gateway.
    StartExecution {
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// `denied` answers AccessDeniedException, as a role without permission does.
        #[serde(default)]
        access: Access,
    },
}

fn ok_status() -> u16 {
    200
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    #[default]
    Allowed,
    Denied,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub deployment: String,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub canary: Option<Canary>,
    pub throttle: Option<Throttle>,
    /// Per-method limits keyed `"GET /throttled"`.
    #[serde(default)]
    pub method_throttles: BTreeMap<String, Throttle>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// Share of requests (0.0–100.0) sent to the canary, at random per request.
    pub percent_traffic: f64,
    pub deployment: String,
    #[serde(default)]
    pub stage_variable_overrides: BTreeMap<String, String>,
    /// `request` (API Gateway's: each request drawn afresh) or
    /// `connection` (each client connection drawn once and pinned, as a
    /// gateway with session affinity does): to rehearse a split a client's
    /// keep-alive connections would mislead.
    #[serde(default, skip_serializing_if = "Affinity::is_request")]
    pub affinity: Affinity,
}

/// What a canary choice sticks to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Affinity {
    #[default]
    Request,
    Connection,
}

impl Affinity {
    fn is_request(&self) -> bool {
        *self == Affinity::Request
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePlan {
    pub name: String,
    pub api_keys: Vec<String>,
    /// Stages the plan applies to (all when empty).
    #[serde(default)]
    pub stages: Vec<String>,
    pub throttle: Option<Throttle>,
    pub quota: Option<Quota>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub limit: u64,
    pub period: QuotaPeriod,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

impl QuotaPeriod {
    pub fn seconds(self) -> f64 {
        match self {
            QuotaPeriod::Day => 86_400.0,
            QuotaPeriod::Week => 7.0 * 86_400.0,
            QuotaPeriod::Month => 30.0 * 86_400.0,
        }
    }
}

/// Parses and checks a config; `source` names it in messages.
pub fn parse(source: &str, text: &str) -> Result<Config, String> {
    let config: Config = crate::json::parse_json(source, text)?;
    validate(&config).map_err(|why| format!("{source}: {why}"))?;
    Ok(config)
}

fn check_throttle(field: &str, throttle: &Throttle) -> Result<(), String> {
    let defaults = Throttle::token_bucket(0.0, 0);
    let misplaced = |name: &str| {
        Err(format!(
            "field '{field}.{name}': does not apply to a {:?} limiter",
            throttle.kind
        ))
    };
    match throttle.kind {
        LimiterKind::TokenBucket | LimiterKind::Queue => {
            if !(throttle.rate.is_finite() && throttle.rate >= 0.0 && throttle.rate <= 1e9) {
                return Err(format!(
                    "field '{field}.rate': expected a rate of 0 or more requests per second, got {}",
                    throttle.rate
                ));
            }
            if throttle.kind == LimiterKind::Queue && throttle.rate <= 0.0 {
                return Err(format!(
                    "field '{field}.rate': a queue drains at a rate above 0"
                ));
            }
            if throttle.limit != 0 {
                return misplaced("limit");
            }
            if throttle.window_s != defaults.window_s {
                return misplaced("window_s");
            }
            if throttle.counts_refused {
                return misplaced("counts_refused");
            }
        }
        LimiterKind::FixedWindow | LimiterKind::SlidingWindow => {
            if throttle.limit == 0 {
                return Err(format!(
                    "field '{field}.limit': expected at least 1 request per window"
                ));
            }
            if !(throttle.window_s > 0.0 && throttle.window_s <= 86_400.0) {
                return Err(format!(
                    "field '{field}.window_s': expected a window above 0 and at most a day, got {}",
                    throttle.window_s
                ));
            }
            if throttle.rate != 0.0 {
                return misplaced("rate");
            }
            if throttle.burst != 0 {
                return misplaced("burst");
            }
            if throttle.kind == LimiterKind::FixedWindow && throttle.counts_refused {
                return misplaced("counts_refused");
            }
        }
    }
    Ok(())
}

/// A status a response can carry, and headers a response can carry
/// (no CR/LF or other bytes HTTP forbids).
fn check_integration(field: &str, integration: &Integration) -> Result<(), String> {
    let (status, headers) = match integration {
        Integration::Mock {
            status, headers, ..
        }
        | Integration::Json {
            status, headers, ..
        } => (Some(*status), headers),
        Integration::StartExecution { headers, .. } => (None, headers),
    };
    if let Some(status) = status.filter(|status| !(100..=599).contains(status)) {
        return Err(format!(
            "field '{field}.status': expected an HTTP status from 100 to 599, got {status}"
        ));
    }
    for (name, value) in headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!(
                "field '{field}.headers': '{}' is not a header name",
                crate::console::escape_controls(name)
            ));
        }
        if http::HeaderValue::from_str(value).is_err() {
            return Err(format!(
                "field '{field}.headers.{name}': the value has characters a header cannot carry (CR, LF or other control characters)"
            ));
        }
    }
    Ok(())
}

/// Long because it is a list: one independent check per config rule, each
/// with its own message.
fn validate(config: &Config) -> Result<(), String> {
    crate::sigv4::Scope::parse(&config.iam.region)
        .map_err(|why| format!("field 'iam.region': {why}"))?;
    for (index, key) in config.iam.access_keys.iter().enumerate() {
        if key.access_key_id.is_empty() || key.secret_access_key.is_empty() {
            return Err(format!(
                "field 'iam.access_keys[{index}]': expected a non-empty access_key_id and secret_access_key"
            ));
        }
    }
    check_throttle("account.throttle", &config.account.throttle)?;
    if config.account.concurrency == 0 {
        return Err("field 'account.concurrency': expected at least 1".to_string());
    }
    let throttle = &config.account.lambda_throttle;
    if !(100..=599).contains(&throttle.status) {
        return Err(format!(
            "field 'account.lambda_throttle.status': expected an HTTP status from 100 to 599, got {}",
            throttle.status
        ));
    }
    for (name, deployment) in &config.deployments {
        if !(0.0..=1.0).contains(&deployment.error_rate) {
            return Err(format!(
                "field 'deployments.{name}.error_rate': expected a share from 0 to 1, got {}",
                deployment.error_rate
            ));
        }
        if let Some(concurrency) = deployment.concurrency {
            if concurrency.limit == 0
                || !(concurrency.duration_ms > 0.0 && concurrency.duration_ms <= 60_000.0)
            {
                return Err(format!(
                    "field 'deployments.{name}.concurrency': expected a limit of at least 1 and a duration_ms from above 0 to 60000"
                ));
            }
        }
        let latency = deployment.latency_ms;
        if !(latency.fixed >= 0.0
            && latency.jitter >= 0.0
            && latency.fixed + latency.jitter <= 60_000.0)
        {
            return Err(format!(
                "field 'deployments.{name}.latency_ms': expected 0 to 60000 ms"
            ));
        }
        for (index, route) in deployment.routes.iter().enumerate() {
            if http::Method::from_bytes(route.method.as_bytes()).is_err()
                || !route.path.starts_with('/')
            {
                return Err(format!(
                    "field 'deployments.{name}.routes[{index}]': expected an HTTP method and a path starting with '/'"
                ));
            }
            check_integration(
                &format!("deployments.{name}.routes[{index}].integration"),
                &route.integration,
            )?;
        }
    }
    for (name, stage) in &config.stages {
        if !config.deployments.contains_key(&stage.deployment) {
            return Err(format!(
                "field 'stages.{name}.deployment': no deployment named '{}'",
                stage.deployment
            ));
        }
        if let Some(canary) = &stage.canary {
            if !(0.0..=100.0).contains(&canary.percent_traffic) {
                return Err(format!(
                    "field 'stages.{name}.canary.percent_traffic': expected 0.0 to 100.0, got {}",
                    canary.percent_traffic
                ));
            }
            if !config.deployments.contains_key(&canary.deployment) {
                return Err(format!(
                    "field 'stages.{name}.canary.deployment': no deployment named '{}'",
                    canary.deployment
                ));
            }
        }
        if let Some(throttle) = &stage.throttle {
            check_throttle(&format!("stages.{name}.throttle"), throttle)?;
        }
        for (method, throttle) in &stage.method_throttles {
            check_throttle(
                &format!("stages.{name}.method_throttles.{method}"),
                throttle,
            )?;
            let Some((verb, path)) = method.split_once(' ') else {
                return Err(format!(
                    "field 'stages.{name}.method_throttles': key '{method}' must be 'METHOD /path'"
                ));
            };
            // A throttle on a route no deployment of the stage serves would
            // never apply: a typo, said now rather than discovered in a probe.
            let served = std::iter::once(&stage.deployment)
                .chain(stage.canary.as_ref().map(|canary| &canary.deployment))
                .filter_map(|deployment| config.deployments.get(deployment))
                .any(|deployment| {
                    deployment
                        .routes
                        .iter()
                        .any(|route| route.method == verb && route.path == path)
                });
            if !served {
                return Err(format!(
                    "field 'stages.{name}.method_throttles': key '{method}': no route '{verb} {path}' in deployment '{}'",
                    stage.deployment
                ));
            }
        }
    }
    for (index, plan) in config.usage_plans.iter().enumerate() {
        if let Some(quota) = &plan.quota {
            if quota.limit == 0 {
                return Err(format!(
                    "field 'usage_plans[{index}].quota.limit': expected at least 1 request"
                ));
            }
        }
        for key in &plan.api_keys {
            if key.is_empty() || http::HeaderValue::from_str(key).is_err() {
                return Err(format!(
                    "field 'usage_plans[{index}].api_keys': a key is empty or has characters a header cannot carry"
                ));
            }
        }
        if let Some(throttle) = &plan.throttle {
            check_throttle(&format!("usage_plans[{index}].throttle"), throttle)?;
        }
        for stage in &plan.stages {
            if !config.stages.contains_key(stage) {
                return Err(format!(
                    "field 'usage_plans[{index}].stages': no stage named '{stage}'"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_parses() {
        let config = parse("default", DEFAULT_CONFIG).unwrap();
        assert!(config.stages.contains_key("PROD") && config.stages.contains_key("DEV"));
    }

    #[test]
    fn errors_name_the_field_and_position() {
        let unknown = r#"{"deployments": {}, "stages": {}, "colour": 1}"#;
        let err = parse("c.json", unknown).unwrap_err();
        assert!(err.contains("c.json:1:") && err.contains("colour"), "{err}");
        let wrong_type = "{\"deployments\": {},\n \"stages\": {\"P\": {\"deployment\": 5}}}";
        let err = parse("c.json", wrong_type).unwrap_err();
        assert!(
            err.contains("c.json:2:") && err.contains("stages.P.deployment"),
            "{err}"
        );
        let percent = r#"{"deployments": {"a": {"routes": []}}, "stages": {"P": {"deployment": "a",
            "canary": {"percent_traffic": 120, "deployment": "a"}}}}"#;
        let err = parse("c.json", percent).unwrap_err();
        assert!(err.contains("stages.P.canary.percent_traffic"), "{err}");
        let negative = r#"{"deployments": {"a": {"routes": []}}, "stages": {"P": {"deployment": "a",
            "throttle": {"rate": -5, "burst": 1}}}}"#;
        let err = parse("c.json", negative).unwrap_err();
        assert!(err.contains("stages.P.throttle.rate"), "{err}");
    }
}

/// The simulator's settings as API Gateway prints them, so that a run can
/// take them as declared expectations (`--aws-stage`, `--aws-usage-plan`):
/// `gateprobe sim --print-aws-stage NAME` and `--print-aws-usage-plan NAME`.
/// Only token buckets have an API Gateway form; another limiter kind is left
/// out and said in the second value.
pub mod aws {
    use serde_json::{json, Map, Value};

    use super::{Config, LimiterKind, Throttle};

    fn bucket(throttle: &Throttle) -> Option<(f64, u64)> {
        (throttle.kind == LimiterKind::TokenBucket).then_some((throttle.rate, throttle.burst))
    }

    fn method_setting(rate: f64, burst: u64) -> Value {
        json!({
            "metricsEnabled": false, "loggingLevel": "OFF", "dataTraceEnabled": false,
            "throttlingBurstLimit": burst, "throttlingRateLimit": rate,
            "cachingEnabled": false, "cacheTtlInSeconds": 300, "cacheDataEncrypted": false,
            "requireAuthorizationForCacheControl": true,
            "unauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER"
        })
    }

    /// `get-stage` JSON for stage `name`, and what could not be expressed.
    pub fn stage(config: &Config, name: &str) -> Result<(Value, Vec<String>), String> {
        let stage = config.stages.get(name).ok_or_else(|| {
            let known: Vec<&str> = config.stages.keys().map(String::as_str).collect();
            format!(
                "--print-aws-stage '{name}': no such stage; the stages are {}",
                known.join(", ")
            )
        })?;
        let mut left_out = Vec::new();
        let mut settings = Map::new();
        let mut add = |key: String, throttle: &Throttle, what: &str| match bucket(throttle) {
            Some((rate, burst)) => {
                settings.insert(key, method_setting(rate, burst));
            }
            None => left_out.push(format!(
                "{what}: a {:?} limiter has no API Gateway form",
                throttle.kind
            )),
        };
        if let Some(throttle) = &stage.throttle {
            add("*/*".to_string(), throttle, "the stage throttle");
        }
        for (method_path, throttle) in &stage.method_throttles {
            let (method, path) = method_path.split_once(' ').unwrap_or(("GET", method_path));
            let key = format!("{}/{method}", path.replace('/', "~1"));
            add(key, throttle, method_path);
        }
        let mut out = json!({
            "deploymentId": stage.deployment,
            "stageName": name,
            "cacheClusterEnabled": false,
            "cacheClusterStatus": "NOT_AVAILABLE",
            "methodSettings": settings,
            "variables": stage.variables,
            "tracingEnabled": false,
        });
        if let Some(canary) = &stage.canary {
            out["canarySettings"] = json!({
                "percentTraffic": canary.percent_traffic,
                "deploymentId": canary.deployment,
                "stageVariableOverrides": canary.stage_variable_overrides,
                "useStageCache": false,
            });
        }
        Ok((out, left_out))
    }

    /// `get-usage-plan` JSON for usage plan `name`.
    pub fn usage_plan(config: &Config, name: &str) -> Result<(Value, Vec<String>), String> {
        let plan = config
            .usage_plans
            .iter()
            .find(|plan| plan.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = config.usage_plans.iter().map(|p| p.name.as_str()).collect();
                format!(
                    "--print-aws-usage-plan '{name}': no such usage plan; the plans are {}",
                    known.join(", ")
                )
            })?;
        let stages: Vec<&String> = if plan.stages.is_empty() {
            config.stages.keys().collect()
        } else {
            plan.stages.iter().collect()
        };
        let mut left_out = Vec::new();
        let mut out = json!({
            "id": name,
            "name": name,
            "apiStages": stages.iter().map(|stage| json!({"apiId": "gateprobesim", "stage": stage})).collect::<Vec<_>>(),
        });
        if let Some(throttle) = &plan.throttle {
            match bucket(throttle) {
                Some((rate, burst)) => {
                    out["throttle"] = json!({"rateLimit": rate, "burstLimit": burst})
                }
                None => left_out.push(format!(
                    "the plan's {:?} limiter has no API Gateway form",
                    throttle.kind
                )),
            }
        }
        if let Some(quota) = &plan.quota {
            out["quota"] = json!({"limit": quota.limit, "offset": 0, "period": quota.period});
        }
        Ok((out, left_out))
    }
}
