//! Argo Rollouts' Web metric provider (argoproj/argo-rollouts
//! `metricproviders/webmetric`): a synchronous call per measurement, with
//! `timeoutSeconds` (default 10) and `successCondition` /
//! `failureCondition` over the JSON; a non-2xx answer or a transport error
//! is the measurement's Error, not Failed, and both conditions false is
//! Inconclusive (the rollout pauses). So `PUT /v1/argo/runs/{key}` answers
//! 200 with the run JSON once the verdict is in or `wait` has passed (keep
//! it under `timeoutSeconds`; poll for longer runs), and a 4xx or 5xx only
//! for a real error.
use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::{json, Answer, Server};

/// The longest `wait` a call may ask for.
const MAX_WAIT: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    profile: String,
    #[serde(default)]
    vars: BTreeMap<String, Value>,
    /// How long to hold the call for the verdict (`50s`); none: answer at once.
    #[serde(default)]
    wait: Option<String>,
}

impl Server {
    /// `PUT /v1/argo/runs/{key}`: starts or joins the run, then answers.
    pub(super) async fn argo(&self, key: &str, token: Option<&str>, body: &[u8]) -> Answer {
        if !self.authorised(token) {
            return self.unauthorised();
        }
        if !super::runs::valid_key(key) {
            return self.bad_input(
                StatusCode::BAD_REQUEST,
                "a run key is 1 to 253 letters, digits, '.', '_' and '-'",
            );
        }
        let body: Body = match serde_json::from_slice(body) {
            Ok(body) => body,
            Err(err) => {
                return self.bad_input(
                    StatusCode::BAD_REQUEST,
                    format!(
                    "the body: {err}: expected {{\"profile\", \"vars\": {{…}}, \"wait\": \"50s\"}}"
                ),
                )
            }
        };
        let mut vars = BTreeMap::new();
        for (name, value) in &body.vars {
            let value = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => {
                    return self.bad_input(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("vars.{name}: expected a string or a number"),
                    )
                }
            };
            vars.insert(name.clone(), value);
        }
        let wait = match body.wait.as_deref().map(humantime::parse_duration) {
            None => Duration::ZERO,
            Some(Ok(wait)) if wait <= MAX_WAIT => wait,
            Some(_) => {
                return self.bad_input(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "wait: expected a duration up to {}s, e.g. \"50s\"",
                        MAX_WAIT.as_secs()
                    ),
                )
            }
        };
        let (found, vars) = match self.checked(&body.profile, &vars) {
            Ok(checked) => checked,
            Err((status, why)) => return self.bad_input(status, why),
        };
        if let Some(refused) = self.start(key, found, &vars) {
            return refused;
        }
        self.runs.wait(key, wait).await;
        match self.runs.get(key) {
            Some(run) => json(StatusCode::OK, &run),
            None => super::text(StatusCode::GONE, "the run was deleted while waiting"),
        }
    }
}
