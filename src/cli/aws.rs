//! Declared settings as expectations: the JSON `aws apigateway get-stage`
//! and `get-usage-plan` print (`--aws-stage FILE`, `--aws-usage-plan FILE`).
//! Every field those commands print is known; any other is a typo or another
//! file, and exits 2 naming it. Each expectation keeps where it came from,
//! so the report can say "declared by stage.json canarySettings.percentTraffic".
use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::exit::UsageError;

/// `get-stage` output (the fields AWS documents for GetStage).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Stage {
    pub stage_name: Option<String>,
    pub deployment_id: Option<String>,
    pub client_certificate_id: Option<String>,
    pub description: Option<String>,
    pub cache_cluster_enabled: Option<bool>,
    pub cache_cluster_size: Option<String>,
    pub cache_cluster_status: Option<String>,
    #[serde(default)]
    pub method_settings: BTreeMap<String, MethodSetting>,
    pub variables: Option<BTreeMap<String, String>>,
    pub documentation_version: Option<String>,
    pub access_log_settings: Option<Value>,
    pub canary_settings: Option<CanarySettings>,
    pub tracing_enabled: Option<bool>,
    pub web_acl_arn: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub created_date: Option<Value>,
    pub last_updated_date: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MethodSetting {
    pub metrics_enabled: Option<bool>,
    pub logging_level: Option<String>,
    pub data_trace_enabled: Option<bool>,
    pub throttling_burst_limit: Option<f64>,
    pub throttling_rate_limit: Option<f64>,
    pub caching_enabled: Option<bool>,
    pub cache_ttl_in_seconds: Option<f64>,
    pub cache_data_encrypted: Option<bool>,
    pub require_authorization_for_cache_control: Option<bool>,
    pub unauthorized_cache_control_header_strategy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CanarySettings {
    pub percent_traffic: Option<f64>,
    pub deployment_id: Option<String>,
    pub stage_variable_overrides: Option<BTreeMap<String, String>>,
    pub use_stage_cache: Option<bool>,
}

/// `get-usage-plan` output.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UsagePlan {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub api_stages: Vec<ApiStage>,
    pub throttle: Option<Throttle>,
    pub quota: Option<Quota>,
    pub product_code: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiStage {
    pub api_id: Option<String>,
    pub stage: Option<String>,
    /// Per method, keyed `/path/METHOD`.
    #[serde(default)]
    pub throttle: BTreeMap<String, Throttle>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Throttle {
    pub burst_limit: Option<f64>,
    pub rate_limit: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Quota {
    pub limit: Option<f64>,
    pub offset: Option<f64>,
    pub period: Option<String>,
}

fn read<T: serde::de::DeserializeOwned>(flag: &str, path: &Path) -> Result<T, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|why| {
        UsageError(format!(
            "{flag} {}: cannot read the file: {why}",
            path.display()
        ))
    })?;
    crate::json::parse_json(&format!("{flag} {}", path.display()), &text).map_err(UsageError)
}

pub fn stage(path: &Path) -> Result<Stage, UsageError> {
    read("--aws-stage", path)
}

pub fn usage_plan(path: &Path) -> Result<UsagePlan, UsageError> {
    read("--aws-usage-plan", path)
}

/// The canary's declared share, as a fraction, and where it was declared.
pub fn canary_share(path: &Path) -> Result<(f64, String), UsageError> {
    let stage = stage(path)?;
    let share = stage
        .canary_settings
        .as_ref()
        .and_then(|canary| canary.percent_traffic)
        .ok_or_else(|| {
            UsageError(format!(
                "--aws-stage {}: no canarySettings.percentTraffic: the stage declares no canary",
                path.display()
            ))
        })?;
    if !(0.0..=100.0).contains(&share) {
        return Err(UsageError(format!(
            "--aws-stage {}: canarySettings.percentTraffic {share}: expected 0 to 100",
            path.display()
        )));
    }
    Ok((
        share / 100.0,
        format!("{} canarySettings.percentTraffic", path.display()),
    ))
}

/// A declared throttle: rate, burst, and where they were declared.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub rate: f64,
    pub burst: Option<f64>,
    pub source: String,
}

/// The limits that apply to `METHOD /resource` (the URL's path below the
/// stage): the stage's `methodSettings` entry for the method (`~1resource/GET`),
/// else its default (`*/*`); the usage plan's per-method `apiStages[].throttle`,
/// else its `throttle`. With both, the tighter rate governs (layers in
/// series admit no more than their slowest).
pub fn declared_throttle(
    stage_file: Option<&Path>,
    plan_file: Option<&Path>,
    url_path: &str,
    method: &str,
) -> Result<Option<Declared>, UsageError> {
    let mut found: Vec<Declared> = Vec::new();
    if let Some(path) = stage_file {
        let stage = stage(path)?;
        let resource = resource_below(url_path, stage.stage_name.as_deref());
        let key = format!("{}/{}", resource.replace('/', "~1"), method);
        for key in [key, "*/*".to_string()] {
            let Some(setting) = stage.method_settings.get(&key) else {
                continue;
            };
            if let Some(rate) = setting.throttling_rate_limit {
                found.push(Declared {
                    rate,
                    burst: setting.throttling_burst_limit,
                    source: format!(
                        "{} methodSettings[\"{key}\"].throttlingRateLimit/throttlingBurstLimit",
                        path.display()
                    ),
                });
                break;
            }
        }
    }
    if let Some(path) = plan_file {
        let plan = usage_plan(path)?;
        let mut from_plan = None;
        for (index, api_stage) in plan.api_stages.iter().enumerate() {
            let resource = resource_below(url_path, api_stage.stage.as_deref());
            let key = format!("{resource}/{method}");
            if let Some(throttle) = api_stage.throttle.get(&key) {
                if let Some(rate) = throttle.rate_limit {
                    from_plan = Some(Declared {
                        rate,
                        burst: throttle.burst_limit,
                        source: format!(
                            "{} apiStages[{index}].throttle[\"{key}\"]",
                            path.display()
                        ),
                    });
                }
            }
        }
        if from_plan.is_none() {
            if let Some(rate) = plan.throttle.and_then(|t| t.rate_limit) {
                from_plan = Some(Declared {
                    rate,
                    burst: plan.throttle.and_then(|t| t.burst_limit),
                    source: format!("{} throttle.rateLimit/burstLimit", path.display()),
                });
            }
        }
        found.extend(from_plan);
    }
    if (stage_file.is_some() || plan_file.is_some()) && found.is_empty() {
        return Err(UsageError(format!(
            "--aws-stage/--aws-usage-plan: no throttle is declared for {method} {url_path} (no matching methodSettings, */* or usage-plan throttle)"
        )));
    }
    Ok(found.into_iter().min_by(|a, b| a.rate.total_cmp(&b.rate)))
}

/// The usage plan's quota as (requests per period, period, where declared),
/// if the plan declares one.
pub fn declared_quota(
    plan_file: Option<&Path>,
) -> Result<Option<(u64, String, String)>, UsageError> {
    let Some(path) = plan_file else {
        return Ok(None);
    };
    let Some(quota) = usage_plan(path)?.quota else {
        return Ok(None);
    };
    let at = |field: &str| format!("--aws-usage-plan {}: quota.{field}", path.display());
    let limit = match quota.limit {
        Some(limit) if limit >= 0.0 && limit.fract() == 0.0 && limit < 1e15 => limit as u64,
        Some(limit) => {
            return Err(UsageError(format!(
                "{} {limit}: expected a whole number of requests",
                at("limit")
            )))
        }
        None => {
            return Err(UsageError(format!(
                "{}: missing (a quota needs its limit)",
                at("limit")
            )))
        }
    };
    let period = match quota.period.as_deref() {
        Some(period @ ("DAY" | "WEEK" | "MONTH")) => period.to_string(),
        Some(other) => {
            return Err(UsageError(format!(
                "{} '{other}': expected DAY, WEEK or MONTH",
                at("period")
            )))
        }
        None => {
            return Err(UsageError(format!(
                "{}: missing (DAY, WEEK or MONTH)",
                at("period")
            )))
        }
    };
    Ok(Some((limit, period, format!("{} quota", path.display()))))
}

/// `/PROD/orders/7` below stage `PROD` is `/orders/7`; without a stage
/// name the first segment is taken as the stage.
fn resource_below(url_path: &str, stage: Option<&str>) -> String {
    let trimmed = url_path.trim_start_matches('/');
    let (first, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let below = match stage {
        Some(stage) if stage != first => trimmed,
        _ => rest,
    };
    format!("/{below}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_read_and_their_fields_checked() {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws/get-usage-plan.json");
        let (limit, period, source) = declared_quota(Some(&fixture)).unwrap().unwrap();
        assert_eq!((limit, period.as_str()), (500, "MONTH"));
        assert!(source.ends_with("get-usage-plan.json quota"), "{source}");
        assert_eq!(declared_quota(None).unwrap(), None);
        let dir = std::env::temp_dir().join(format!("gateprobe-quota-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, quota, says) in [
            (
                "period.json",
                r#"{"limit": 5, "period": "YEAR"}"#,
                "quota.period 'YEAR': expected DAY, WEEK or MONTH",
            ),
            (
                "fraction.json",
                r#"{"limit": 2.5, "period": "DAY"}"#,
                "quota.limit 2.5: expected a whole number",
            ),
            (
                "no-limit.json",
                r#"{"period": "DAY"}"#,
                "quota.limit: missing",
            ),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, format!(r#"{{"id": "a1", "quota": {quota}}}"#)).unwrap();
            let error = declared_quota(Some(&path)).unwrap_err().0;
            assert!(error.contains(says) && error.contains(name), "{error}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn resources_and_keys() {
        assert_eq!(resource_below("/PROD/orders/7", Some("PROD")), "/orders/7");
        assert_eq!(resource_below("/PROD", Some("PROD")), "/");
        assert_eq!(resource_below("/orders", Some("PROD")), "/orders");
        assert_eq!(resource_below("/PROD/hello", None), "/hello");
    }
}
