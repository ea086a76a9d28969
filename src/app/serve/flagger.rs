//! Flagger's webhooks (fluxcd/flagger `pkg/controller/webhook.go`): it
//! POSTs `{"name","namespace","phase","checksum","metadata":{…}}` to each
//! hook, with no hook type and no weight, and counts any status above 202
//! as a failure; it retries connection errors, 429 and 5xx (but 501), so
//! every verdict here is a 2xx or a 4xx, and every answer comes at once:
//! Flagger's re-calls poll. Flagger cannot send headers, so its token is
//! `metadata.token`.
//!
//! | hook | running | pass | fail | inconclusive |
//! |---|---|---|---|---|
//! | rollout (starts the run) | 202 | 200 | 412 | 200 (412 with `metadata.inconclusive: fail`) |
//! | confirm-promotion, confirm-traffic-increase | 423 | 200 | 423 | 423 |
//! | rollback | 409 | 409 | 200 | 409 |
//! | event | 202; phase Succeeded or Failed stops the run | | | |
//!
//! pre-rollout and confirm-rollout check the profile and its variables and
//! send nothing; post-rollout answers 200.
use std::collections::BTreeMap;

use http::StatusCode;
use serde::Deserialize;

use super::{text, Answer, Server};

#[derive(Deserialize)]
struct Payload {
    name: String,
    namespace: String,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    checksum: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// Metadata keys that are not profile variables.
const RESERVED: [&str; 3] = ["profile", "token", "inconclusive"];

const HOOKS: [&str; 8] = [
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
];

impl Server {
    /// One Flagger webhook call.
    pub(super) fn flagger(&self, hook: &str, body: &[u8]) -> Answer {
        if !HOOKS.contains(&hook) {
            return self.bad_input(
                StatusCode::NOT_FOUND,
                format!(
                    "no Flagger hook '{}' (hooks: {})",
                    crate::console::escape_controls(hook),
                    HOOKS.join(", ")
                ),
            );
        }
        let payload: Payload = match serde_json::from_slice(body) {
            Ok(payload) => payload,
            Err(err) => {
                return self.bad_input(
                    StatusCode::BAD_REQUEST,
                    format!("the webhook body: {err}: expected Flagger's {{\"name\",\"namespace\",\"checksum\",\"metadata\"}}"),
                )
            }
        };
        if !self.authorised(payload.metadata.get("token").map(String::as_str)) {
            return self.unauthorised();
        }
        let allowed = &self.config.allow_namespaces;
        if !allowed.is_empty() && !allowed.contains(&payload.namespace) {
            return self.bad_input(
                StatusCode::FORBIDDEN,
                format!(
                    "namespace '{}' is not allowed (--allow-namespace)",
                    crate::console::escape_controls(&payload.namespace)
                ),
            );
        }
        match hook {
            "post-rollout" => text(StatusCode::OK, "nothing to do after the rollout"),
            "event" => self.flagger_event(&payload),
            _ => self.flagger_hook(hook, &payload),
        }
    }

    /// The run's key: one per canary revision.
    fn flagger_key(payload: &Payload) -> Option<String> {
        let checksum = payload.checksum.as_deref().unwrap_or_default();
        let key = format!("{}.{}.{checksum}", payload.namespace, payload.name);
        (!checksum.is_empty() && super::runs::valid_key(&key)).then_some(key)
    }

    fn flagger_hook(&self, hook: &str, payload: &Payload) -> Answer {
        let Some(profile) = payload.metadata.get("profile") else {
            return self.bad_input(
                StatusCode::BAD_REQUEST,
                "metadata.profile is missing: name the profile to run",
            );
        };
        let mut vars = BTreeMap::new();
        for (name, value) in &payload.metadata {
            if RESERVED.contains(&name.as_str()) {
                continue;
            }
            if value.contains("://") {
                return self.bad_input(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("metadata.{name} holds a URL: the profile fixes where traffic goes"),
                );
            }
            vars.insert(name.clone(), value.clone());
        }
        let (found, vars) = match self.checked(profile, &vars) {
            Ok(checked) => checked,
            Err((status, why)) => return self.bad_input(status, why),
        };
        if matches!(hook, "pre-rollout" | "confirm-rollout") {
            return text(
                StatusCode::OK,
                format!(
                    "profile '{}' and its variables plan; nothing sent",
                    found.name
                ),
            );
        }
        let Some(key) = Self::flagger_key(payload) else {
            return self.bad_input(
                StatusCode::BAD_REQUEST,
                "expected a namespace, a name and a checksum of letters, digits, '.', '_' and '-'",
            );
        };
        if hook == "rollout" {
            if let Some(refused) = self.start(&key, found, &vars) {
                return refused;
            }
        }
        let inconclusive_fails = payload
            .metadata
            .get("inconclusive")
            .is_some_and(|v| v == "fail");
        self.flagger_answer(hook, &key, inconclusive_fails)
    }

    /// The hook's answer for the run's state (see the module's table).
    fn flagger_answer(&self, hook: &str, key: &str, inconclusive_fails: bool) -> Answer {
        let Some(run) = self.runs.get(key) else {
            return text(
                StatusCode::LOCKED,
                format!("no run for this revision yet ({key}): the rollout hook starts it"),
            );
        };
        let verdict = match (run.state.as_str(), run.verdict.as_deref()) {
            ("running", _) => "running",
            (_, Some("inconclusive")) if inconclusive_fails => "fail",
            (_, Some(verdict)) => verdict,
            _ => "error",
        };
        let reason = format!("{verdict}: {}", run.reason.replace('\n', " "));
        let status = match (hook, verdict) {
            ("rollout", "running") => StatusCode::ACCEPTED,
            ("rollout", "pass" | "inconclusive") => StatusCode::OK,
            ("rollout", _) => StatusCode::PRECONDITION_FAILED,
            ("rollback", "fail") => StatusCode::OK,
            ("rollback", _) => StatusCode::CONFLICT,
            (_, "pass") => StatusCode::OK,
            _ => StatusCode::LOCKED,
        };
        text(status, reason)
    }

    /// `event`: Flagger's notices; a finished rollout stops its run.
    fn flagger_event(&self, payload: &Payload) -> Answer {
        let ended = matches!(payload.phase.as_deref(), Some("Succeeded" | "Failed"));
        if ended {
            if let Some(key) = Self::flagger_key(payload) {
                self.runs.stop(&key);
            }
        }
        text(
            StatusCode::ACCEPTED,
            if ended {
                "the rollout ended: its run stops"
            } else {
                "noted"
            },
        )
    }
}
