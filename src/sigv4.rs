//! AWS Signature Version 4: credentials from the standard places, signing a
//! request at its send time, and the simulator's verification with API
//! Gateway's answers.
//!
//! The signature itself is the official `aws-sigv4` crate's. What is written
//! here is around it: the credentials chain (`aws-config` would bring an HTTP
//! client stack, IMDS, SSO and STS for what is here a static key pair read
//! from the environment or the shared files, so that part is by hand and
//! limited to static keys), and the verifier (no crate verifies; it parses
//! the Authorization header and asks `aws-sigv4` for the signature the same
//! inputs give).
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderMap;

/// API Gateway's service name in a credential scope.
pub const DEFAULT_SERVICE: &str = "execute-api";

/// How far a signed time may be from the receiver's clock (API Gateway: 5 min).
pub const MAX_SKEW: Duration = Duration::from_secs(300);

/// A static key pair and its session token. `Debug` shows the key id and
/// where it came from, never the secret or the token.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    /// Where they were read: `environment`, or the file and profile.
    pub source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Self {
        Self {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: session_token.map(str::to_string),
            source: "given".to_string(),
        }
    }

    /// The secret values, for the redaction of outputs.
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![self.secret_access_key.as_str()];
        secrets.extend(self.session_token.as_deref());
        secrets
    }

    /// Credentials from the places the AWS CLI and SDKs read first:
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`,
    /// then the profile `AWS_PROFILE` (default `default`) in the shared
    /// credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
    /// `~/.aws/credentials`), then in the config file (`AWS_CONFIG_FILE`,
    /// default `~/.aws/config`, section `[profile NAME]`). `env` looks a
    /// variable up (tests pass their own).
    pub fn from_environment(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| env(name).filter(|value| !value.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                return Ok(Self {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: var("AWS_SESSION_TOKEN"),
                    source: "environment".to_string(),
                })
            }
            (Some(_), None) => {
                return Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into())
            }
            (None, Some(_)) => {
                return Err("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into())
            }
            (None, None) => {}
        }
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
        let home = var("HOME").map(PathBuf::from);
        let file = |variable: &str, name: &str| {
            var(variable)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| home.join(".aws").join(name)))
        };
        let config_section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        let places = [
            (
                file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
                profile.clone(),
            ),
            (file("AWS_CONFIG_FILE", "config"), config_section),
        ];
        let mut looked = vec!["AWS_ACCESS_KEY_ID".to_string()];
        for (path, section) in places {
            let Some(path) = path else { continue };
            looked.push(format!("[{section}] in {}", path.display()));
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let keys = ini_section(&text, &section);
            let get = |key: &str| keys.get(key).filter(|value| !value.is_empty()).cloned();
            match (get("aws_access_key_id"), get("aws_secret_access_key")) {
                (Some(id), Some(secret)) => {
                    return Ok(Self {
                        access_key_id: id,
                        secret_access_key: secret,
                        session_token: get("aws_session_token"),
                        source: format!("profile {profile} in {}", path.display()),
                    })
                }
                (None, None) => {}
                _ => {
                    return Err(format!(
                    "[{section}] in {} has only one of aws_access_key_id and aws_secret_access_key",
                    path.display()
                ))
                }
            }
        }
        Err(format!(
            "no AWS credentials: looked for {} (only static keys are read: for SSO or a role, export them first, e.g. eval \"$(aws configure export-credentials --format env)\")",
            looked.join(", ")
        ))
    }
}

/// The `key = value` lines of `[section]` in an INI file as the AWS CLI
/// writes it (comments start with `#` or `;`).
fn ini_section(text: &str, section: &str) -> HashMap<String, String> {
    let mut inside = false;
    let mut keys = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((key, value)) = line.split_once('=') {
                keys.insert(key.trim().to_string(), value.trim().to_string());
            }
        }
    }
    keys
}

/// `REGION[:SERVICE]` of `--aws-sigv4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub region: String,
    pub service: String,
}

impl Scope {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (region, service) = match text.split_once(':') {
            Some((region, service)) => (region, service),
            None => (text, DEFAULT_SERVICE),
        };
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !valid(region) || !valid(service) {
            return Err(format!(
                "'{text}': expected REGION[:SERVICE] in lower case, e.g. us-east-1 or eu-west-1:execute-api"
            ));
        }
        Ok(Self {
            region: region.to_string(),
            service: service.to_string(),
        })
    }
}

/// Signs requests with one identity and scope. Cheap to clone.
#[derive(Clone)]
pub struct Signer {
    identity: Identity,
    access_key_id: String,
    scope: Scope,
    settings: SigningSettings,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// What a signer does beyond the defaults API Gateway expects (AWS's test
/// suite varies them).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Normalise the path (`/a/../b` → `/b`) before signing; every service but S3.
    pub normalize_path: bool,
    /// Send and sign `x-amz-content-sha256` (S3 needs it; API Gateway does not).
    pub content_sha256: bool,
    /// Encode the (already encoded) path again for the canonical request, as
    /// every service but S3 wants.
    pub double_encode_path: bool,
    /// Sign `X-Amz-Security-Token` (false: send it unsigned, as some services want).
    pub sign_session_token: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            normalize_path: true,
            content_sha256: false,
            double_encode_path: true,
            sign_session_token: true,
        }
    }
}

impl Signer {
    pub fn new(credentials: &Credentials, scope: Scope, options: Options) -> Self {
        let identity = aws_credential_types::Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.clone(),
            credentials.session_token.clone(),
            None,
            "gateprobe",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.uri_path_normalization_mode = if options.normalize_path {
            UriPathNormalizationMode::Enabled
        } else {
            UriPathNormalizationMode::Disabled
        };
        settings.payload_checksum_kind = if options.content_sha256 {
            PayloadChecksumKind::XAmzSha256
        } else {
            PayloadChecksumKind::NoHeader
        };
        if !options.double_encode_path {
            settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
        }
        if !options.sign_session_token {
            settings.session_token_mode = aws_sigv4::http_request::SessionTokenMode::Exclude;
        }
        Self {
            identity,
            access_key_id: credentials.access_key_id.clone(),
            scope,
            settings,
        }
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Signs `request` (absolute URI, headers final, `body` its body) as of
    /// `time`: adds `X-Amz-Date`, `Authorization` and, with a session token,
    /// `X-Amz-Security-Token` (both marked sensitive). The signed host is the
    /// `Host` header when one is set, else the URI's authority as written,
    /// which is what the client sends.
    pub fn sign<B>(
        &self,
        request: &mut http::Request<B>,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), String> {
        let authority = request.uri().authority().map(|a| a.as_str().to_string());
        let headers = request.headers();
        let mut pairs = Vec::with_capacity(headers.len() + 1);
        if !headers.contains_key(http::header::HOST) {
            pairs.push(("host", authority.as_deref().ok_or("the URL has no host")?));
        }
        for (name, value) in headers {
            let value = value
                .to_str()
                .map_err(|_| format!("header {name} is not text, so it cannot be signed"))?;
            pairs.push((name.as_str(), value));
        }
        let uri = request.uri().to_string();
        let instructions = self.instructions(request.method().as_str(), &uri, pairs, body, time)?;
        instructions.apply_to_request_http1x(request);
        // Never indexed by HPACK, never shown by a Debug of the headers.
        for name in [http::header::AUTHORIZATION.as_str(), "x-amz-security-token"] {
            if let Some(value) = request.headers_mut().get_mut(name) {
                value.set_sensitive(true);
            }
        }
        Ok(())
    }

    fn instructions(
        &self,
        method: &str,
        uri: &str,
        headers: Vec<(&str, &str)>,
        body: &[u8],
        time: SystemTime,
    ) -> Result<aws_sigv4::http_request::SigningInstructions, String> {
        let params = SigningParams::builder()
            .identity(&self.identity)
            .region(&self.scope.region)
            .name(&self.scope.service)
            .time(time)
            .settings(self.settings.clone())
            .build()
            .map_err(|why| why.to_string())?
            .into();
        let signable =
            SignableRequest::new(method, uri, headers.into_iter(), SignableBody::Bytes(body))
                .map_err(|why| format!("cannot sign the request: {why}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|why| format!("cannot sign the request: {why}"))?
            .into_parts();
        Ok(instructions)
    }
}

/// Why a signed request was refused, as API Gateway answers: all 403, each
/// with its `x-amzn-ErrorType` and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No `Authorization` header at all.
    Missing,
    /// The header lacks parts (each named in the message).
    Incomplete(String),
    /// A scope, date or signature that does not check out.
    Invalid(String),
    /// An access key the gateway does not know.
    UnknownKey,
}

/// API Gateway's message when the signature does not match.
pub const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

impl Rejection {
    pub fn error_type(&self) -> &'static str {
        match self {
            Rejection::Missing => "MissingAuthenticationTokenException",
            Rejection::Incomplete(_) => "IncompleteSignatureException",
            Rejection::Invalid(_) => "InvalidSignatureException",
            Rejection::UnknownKey => "UnrecognizedClientException",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Rejection::Missing => "Missing Authentication Token",
            Rejection::Incomplete(message) | Rejection::Invalid(message) => message,
            Rejection::UnknownKey => "The security token included in the request is invalid.",
        }
    }
}

/// Checks signatures for the keys it knows, in one region and service.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: HashMap<String, Credentials>,
    region: String,
    service: String,
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl Verifier {
    pub fn new(keys: &[Credentials], region: &str, service: &str) -> Self {
        Self {
            keys: keys
                .iter()
                .map(|key| (key.access_key_id.clone(), key.clone()))
                .collect(),
            region: region.to_string(),
            service: service.to_string(),
        }
    }

    /// Verifies a request as received (`path_and_query` as sent, `headers`
    /// with `host`) at `now`; the access key id when it checks out.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<String, Rejection> {
        let Some(header) = headers.get(http::header::AUTHORIZATION) else {
            return Err(Rejection::Missing);
        };
        let header = header
            .to_str()
            .map_err(|_| Rejection::Incomplete("Authorization header is not text.".into()))?;
        let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok());
        let auth = parse_authorization(header, amz_date.is_some())?;
        let amz_date = amz_date.unwrap_or_default();
        let signed_at = self.check_scope(&auth, amz_date)?;
        check_skew(amz_date, signed_at, now)?;
        let Some(credentials) = self.keys.get(auth.access_key_id) else {
            return Err(Rejection::UnknownKey);
        };
        // The signer adds x-amz-date from the time and the token from the
        // credentials: pass the other signed headers, exactly those.
        let token_signed = auth.signed_headers.contains(&"x-amz-security-token");
        let token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .filter(|_| token_signed);
        if token_signed && token.is_none() {
            return Err(Rejection::Invalid(MISMATCH.into()));
        }
        let pairs = signed_pairs(headers, &auth)?;
        let mut signer = Signer::new(
            &Credentials {
                session_token: token.map(str::to_string),
                ..credentials.clone()
            },
            Scope {
                region: self.region.clone(),
                service: self.service.clone(),
            },
            Options::default(),
        );
        // Sign exactly the headers the client listed.
        signer.settings.excluded_headers = None;
        // The URI only needs a scheme and host to parse; neither is signed.
        let uri = format!("http://verify{path_and_query}");
        let instructions = signer
            .instructions(method, &uri, pairs, body, signed_at)
            .map_err(|_| Rejection::Invalid(MISMATCH.into()))?;
        let expected = instructions
            .headers()
            .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value.to_string())
            .unwrap_or_default();
        let matches = parse_authorization(&expected, true).is_ok_and(|ours| {
            ours.signature == auth.signature && ours.signed_headers == auth.signed_headers
        });
        if matches {
            Ok(auth.access_key_id.to_string())
        } else {
            Err(Rejection::Invalid(MISMATCH.into()))
        }
    }

    /// The credential scope names this verifier's region and service and
    /// the request's own date; the time the request says it was signed.
    fn check_scope(
        &self,
        auth: &Authorization<'_>,
        amz_date: &str,
    ) -> Result<SystemTime, Rejection> {
        if auth.region != self.region {
            return Err(Rejection::Invalid(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                auth.region
            )));
        }
        if auth.service != self.service {
            return Err(Rejection::Invalid(format!(
                "Credential should be scoped to correct service: '{}'. ",
                self.service
            )));
        }
        let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
            Rejection::Incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })?;
        if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
            return Err(Rejection::Invalid(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
                auth.date,
                &amz_date[..8]
            )));
        }
        Ok(signed_at)
    }
}

/// The signed headers' values as received, in the order the client listed
/// them, less the two the signer adds itself (x-amz-date, the token).
fn signed_pairs<'h>(
    headers: &'h HeaderMap,
    auth: &Authorization<'h>,
) -> Result<Vec<(&'h str, &'h str)>, Rejection> {
    let mut pairs = Vec::new();
    for name in &auth.signed_headers {
        if matches!(*name, "x-amz-date" | "x-amz-security-token") {
            continue;
        }
        let mut values = headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(Rejection::Invalid(MISMATCH.into()));
        }
        for value in values {
            let value = value
                .to_str()
                .map_err(|_| Rejection::Invalid(MISMATCH.into()))?;
            pairs.push((*name, value));
        }
    }
    Ok(pairs)
}

/// Parses the Authorization header; what is missing is named the way API
/// Gateway names it (the header itself is not echoed: it is a credential).
fn parse_authorization(header: &str, has_date: bool) -> Result<Authorization<'_>, Rejection> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ").unwrap_or("");
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    for (name, value) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if value.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !has_date {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .to_string(),
        );
    }
    if !missing.is_empty() {
        return Err(Rejection::Incomplete(missing.join(" ")));
    }
    let (credential, signed_headers, signature) = (
        credential.unwrap_or_default(),
        signed_headers.unwrap_or_default(),
        signature.unwrap_or_default(),
    );
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(Rejection::Incomplete(format!(
            "Credential should have five parts separated by '/', e.g. AKID/20150830/us-east-1/execute-api/aws4_request; got {} part(s).",
            parts.len()
        )));
    };
    if terminator != "aws4_request" {
        return Err(Rejection::Invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
        )));
    }
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed_headers.split(';').collect(),
        signature,
    })
}

/// API Gateway refuses a signature more than five minutes off its clock.
fn check_skew(amz_date: &str, signed_at: SystemTime, now: SystemTime) -> Result<(), Rejection> {
    if let Ok(behind) = now.duration_since(signed_at) {
        if behind > MAX_SKEW {
            return Err(Rejection::Invalid(format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                format_amz_date(now - MAX_SKEW),
                format_amz_date(now)
            )));
        }
    } else if signed_at.duration_since(now).unwrap_or_default() > MAX_SKEW {
        return Err(Rejection::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            format_amz_date(now + MAX_SKEW),
            format_amz_date(now)
        )));
    }
    Ok(())
}

/// `20150830T123600Z` → the time. By hand: two fixed-width fields and the
/// civil-date arithmetic below are all it takes.
pub fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    u64::try_from(seconds)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// The time as `20150830T123600Z`.
pub fn format_amz_date(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_round_trip() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_440_938_160
        );
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert_eq!(
            format_amz_date(parse_amz_date("20240229T235959Z").unwrap()),
            "20240229T235959Z"
        );
        for bad in [
            "2015-08-30T12:36:00Z",
            "20151330T123600Z",
            "20150830T123600",
            "2015083OT123600Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn credentials_come_from_env_then_files_and_never_print() {
        let dir = std::env::temp_dir().join(format!("gateprobe-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s3cretdefault\n\n[ci]\n# a comment\naws_access_key_id=AKIDCI\naws_secret_access_key=s3cretci\naws_session_token=t0ken\n",
        )
        .unwrap();
        let path = file.display().to_string();
        let env = |pairs: Vec<(&'static str, String)>| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            }
        };
        let from_env = Credentials::from_environment(&env(vec![
            ("AWS_ACCESS_KEY_ID", "AKIDENV".into()),
            ("AWS_SECRET_ACCESS_KEY", "s3cretenv".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", path.clone()),
        ]))
        .unwrap();
        assert_eq!(
            (from_env.access_key_id.as_str(), from_env.source.as_str()),
            ("AKIDENV", "environment")
        );
        let ci = Credentials::from_environment(&env(vec![
            ("AWS_PROFILE", "ci".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", path.clone()),
        ]))
        .unwrap();
        assert_eq!(ci.access_key_id, "AKIDCI");
        assert_eq!(ci.secrets(), ["s3cretci", "t0ken"]);
        let debug = format!(
            "{ci:?} {:?}",
            Signer::new(&ci, Scope::parse("us-east-1").unwrap(), Options::default())
        );
        assert!(
            !debug.contains("s3cret") && !debug.contains("t0ken"),
            "{debug}"
        );
        let default =
            Credentials::from_environment(&env(vec![("AWS_SHARED_CREDENTIALS_FILE", path)]))
                .unwrap();
        assert_eq!(default.access_key_id, "AKIDDEFAULT");
        let none = Credentials::from_environment(&env(vec![(
            "HOME",
            dir.join("nowhere").display().to_string(),
        )]))
        .unwrap_err();
        assert!(
            none.contains("no AWS credentials") && none.contains("[default] in"),
            "{none}"
        );
        let half = Credentials::from_environment(&env(vec![("AWS_ACCESS_KEY_ID", "AKID".into())]))
            .unwrap_err();
        assert!(half.contains("AWS_SECRET_ACCESS_KEY is not"), "{half}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn scopes_default_to_execute_api() {
        assert_eq!(Scope::parse("eu-west-1").unwrap().service, "execute-api");
        assert_eq!(Scope::parse("us-east-1:lambda").unwrap().service, "lambda");
        for bad in ["", "US-EAST-1", "us-east-1:", ":execute-api", "us east"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }
}
