//! Response classification: ordered `NAME=MATCHER` rules, first match wins.
//! A class says which deployment (or failure) a response stands for: an empty
//! Mock body is the canary, a JSON field is the stable version, 429 is a throttle.
use http::{HeaderMap, HeaderName};
use memchr::memmem;
use serde_json::Value;

use crate::sample::ErrorKind;

/// The class every response falls into when no rule matches it.
pub const UNMATCHED: &str = "unmatched";

/// The rules used when the user gives none.
pub const DEFAULT_RULES: [&str; 4] = [
    "throttled=status:429",
    "server_error=status:5xx",
    "error=error",
    "ok=*",
];

/// What a matcher looks at: a response, or the transport error that replaced it.
pub struct Response<'a> {
    pub status: Option<u16>,
    pub headers: Option<&'a HeaderMap>,
    /// The body up to `--max-body` (empty when no rule reads bodies).
    pub body: &'a [u8],
    /// How many body bytes the server sent, whatever was kept: emptiness
    /// is a fact about the response, not about `--max-body`.
    pub body_bytes: u64,
    pub error: Option<ErrorKind>,
}

#[derive(Debug, Clone)]
enum Matcher {
    Status { low: u16, high: u16 },
    BodyEmpty,
    BodyContains(Box<memmem::Finder<'static>>),
    BodyRegex(regex::bytes::Regex),
    Header(HeaderName),
    HeaderEquals(HeaderName, String),
    JsonPresent(String),
    JsonEquals(String, Value),
    Error(Option<ErrorKind>),
    Any,
}

#[derive(Debug, Clone)]
struct Rule {
    class: u16,
    all_of: Vec<Matcher>,
}

/// Ordered rules plus the class names they produce (`unmatched` last).
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Vec<Rule>,
    names: Vec<String>,
    needs_body: bool,
    /// What makes a response an error within its class (default: a 5xx).
    error_if: Vec<Matcher>,
}

impl Classifier {
    /// Builds a classifier from `NAME=MATCHER` rules, or the defaults when
    /// there are none. Errors name the rule and say what was expected.
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<Self, String> {
        let texts: Vec<&str> = if rules.is_empty() {
            DEFAULT_RULES.to_vec()
        } else {
            rules.iter().map(AsRef::as_ref).collect()
        };
        let mut classifier = Self {
            rules: Vec::new(),
            names: Vec::new(),
            needs_body: false,
            error_if: vec![Matcher::Status {
                low: 500,
                high: 599,
            }],
        };
        for text in texts {
            let (name, matcher_text) = text.split_once('=').ok_or_else(|| {
                format!("--classify '{text}': expected NAME=MATCHER, e.g. canary=body:empty")
            })?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(format!(
                    "--classify '{text}': class name '{name}' must be letters, digits, '_', '-' or '.'"
                ));
            }
            let all_of =
                parse_all_of(matcher_text).map_err(|why| format!("--classify '{text}': {why}"))?;
            classifier.needs_body |= all_of.iter().any(Matcher::reads_body);
            let class = classifier.class_index(name)?;
            classifier.rules.push(Rule { class, all_of });
        }
        if classifier.names.iter().any(|name| name == UNMATCHED) {
            return Err(format!(
                "--classify: '{UNMATCHED}' is reserved for responses no rule matches"
            ));
        }
        classifier.names.push(UNMATCHED.to_string());
        Ok(classifier)
    }

    /// Sets what counts as an error within a class (`--error-if MATCHER`,
    /// `&`-joined like a rule's matchers), replacing the default 5xx.
    pub fn set_error_rule(&mut self, text: &str) -> Result<(), String> {
        self.error_if = parse_all_of(text).map_err(|why| format!("--error-if '{text}': {why}"))?;
        self.needs_body |= self.error_if.iter().any(Matcher::reads_body);
        Ok(())
    }

    /// Whether a response counts as an error in its class.
    pub fn is_error(&self, response: &Response<'_>) -> bool {
        let mut json = LazyJson::default();
        self.error_if
            .iter()
            .all(|matcher| matcher.matches(response, &mut json))
    }

    fn class_index(&mut self, name: &str) -> Result<u16, String> {
        if let Some(index) = self.names.iter().position(|known| known == name) {
            return Ok(index as u16);
        }
        if self.names.len() >= 64 {
            return Err("--classify: at most 64 classes".to_string());
        }
        self.names.push(name.to_string());
        Ok((self.names.len() - 1) as u16)
    }

    /// Class names, indexed by class; the last is `unmatched`.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Index of a class by name.
    pub fn index_of(&self, name: &str) -> Option<u16> {
        self.names
            .iter()
            .position(|known| known == name)
            .map(|index| index as u16)
    }

    /// Whether any rule reads the body (if not, bodies are drained unread).
    pub fn needs_body(&self) -> bool {
        self.needs_body
    }

    /// The class of one response: the first rule whose matchers all hold.
    pub fn classify(&self, response: &Response<'_>) -> u16 {
        let mut json = LazyJson::default();
        for rule in &self.rules {
            if rule
                .all_of
                .iter()
                .all(|matcher| matcher.matches(response, &mut json))
            {
                return rule.class;
            }
        }
        (self.names.len() - 1) as u16
    }
}

/// The body parsed as JSON at most once per response, and only if a rule asks.
#[derive(Default)]
struct LazyJson(Option<Option<Value>>);

impl LazyJson {
    fn get(&mut self, body: &[u8]) -> Option<&Value> {
        self.0
            .get_or_insert_with(|| serde_json::from_slice(body).ok())
            .as_ref()
    }
}

impl Matcher {
    fn reads_body(&self) -> bool {
        matches!(
            self,
            Matcher::BodyEmpty
                | Matcher::BodyContains(_)
                | Matcher::BodyRegex(_)
                | Matcher::JsonPresent(_)
                | Matcher::JsonEquals(..)
        )
    }

    fn matches(&self, response: &Response<'_>, json: &mut LazyJson) -> bool {
        if let Matcher::Error(kind) = self {
            return match (kind, response.error) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(wanted), Some(seen)) => *wanted == seen,
            };
        }
        if matches!(self, Matcher::Any) {
            return true;
        }
        let Some(status) = response.status else {
            return false;
        };
        match self {
            Matcher::Status { low, high } => (*low..=*high).contains(&status),
            Matcher::BodyEmpty => response.body_bytes == 0,
            Matcher::BodyContains(finder) => finder.find(response.body).is_some(),
            Matcher::BodyRegex(regex) => regex.is_match(response.body),
            Matcher::Header(name) => response
                .headers
                .is_some_and(|headers| headers.contains_key(name)),
            Matcher::HeaderEquals(name, value) => response
                .headers
                .and_then(|headers| headers.get(name))
                .is_some_and(|seen| seen.as_bytes() == value.as_bytes()),
            Matcher::JsonPresent(pointer) => json
                .get(response.body)
                .is_some_and(|doc| doc.pointer(pointer).is_some()),
            Matcher::JsonEquals(pointer, wanted) => json
                .get(response.body)
                .and_then(|doc| doc.pointer(pointer))
                .is_some_and(|seen| seen == wanted),
            Matcher::Error(_) | Matcher::Any => unreachable!("handled above"),
        }
    }
}

fn parse_all_of(text: &str) -> Result<Vec<Matcher>, String> {
    text.split('&')
        .map(|part| parse_matcher(part.trim()))
        .collect()
}

const MATCHER_HELP: &str = "expected status:429|5xx|200-299, body:empty, body:contains:TEXT, \
body:regex:RE, header:NAME[=VALUE], json:/pointer[=VALUE], error[:KIND] or *";

fn parse_matcher(text: &str) -> Result<Matcher, String> {
    if text == "*" {
        return Ok(Matcher::Any);
    }
    if text == "error" {
        return Ok(Matcher::Error(None));
    }
    let (kind, argument) = text
        .split_once(':')
        .ok_or_else(|| format!("unknown matcher '{text}'; {MATCHER_HELP}"))?;
    match kind {
        "status" => parse_status(argument),
        "body" => parse_body_matcher(argument),
        "header" => parse_header_matcher(argument),
        "json" => parse_json_matcher(argument),
        "error" => ErrorKind::parse(argument).map(|kind| Matcher::Error(Some(kind))).ok_or_else(|| {
            format!("unknown error kind '{argument}'; expected connect, timeout, reset, dns, tls or protocol")
        }),
        _ => Err(format!("unknown matcher '{text}'; {MATCHER_HELP}")),
    }
}

fn parse_status(argument: &str) -> Result<Matcher, String> {
    let bad = || {
        format!("bad status matcher 'status:{argument}'; expected a code (429), a class (5xx) or a range (200-299)")
    };
    let code = |text: &str| -> Result<u16, String> {
        text.parse::<u16>()
            .ok()
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(bad)
    };
    if let Some(digit) = argument.strip_suffix("xx") {
        let hundreds = code(&format!("{digit}00"))?;
        return Ok(Matcher::Status {
            low: hundreds,
            high: hundreds + 99,
        });
    }
    if let Some((low, high)) = argument.split_once('-') {
        let (low, high) = (code(low)?, code(high)?);
        if low > high {
            return Err(bad());
        }
        return Ok(Matcher::Status { low, high });
    }
    let single = code(argument)?;
    Ok(Matcher::Status {
        low: single,
        high: single,
    })
}

fn parse_body_matcher(argument: &str) -> Result<Matcher, String> {
    if argument == "empty" {
        return Ok(Matcher::BodyEmpty);
    }
    if let Some(needle) = argument.strip_prefix("contains:") {
        if needle.is_empty() {
            return Err("body:contains: needs the text to look for".to_string());
        }
        return Ok(Matcher::BodyContains(Box::new(
            memmem::Finder::new(needle.as_bytes()).into_owned(),
        )));
    }
    if let Some(pattern) = argument.strip_prefix("regex:") {
        return regex::bytes::Regex::new(pattern)
            .map(Matcher::BodyRegex)
            .map_err(|err| {
                format!(
                    "invalid regex '{pattern}': {}",
                    first_line(&err.to_string())
                )
            });
    }
    Err(format!("unknown body matcher 'body:{argument}'; expected body:empty, body:contains:TEXT or body:regex:RE"))
}

fn parse_header_matcher(argument: &str) -> Result<Matcher, String> {
    let (name, value) = match argument.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (argument, None),
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("invalid header name '{name}' in 'header:{argument}'"))?;
    Ok(match value {
        Some(value) => Matcher::HeaderEquals(name, value.to_string()),
        None => Matcher::Header(name),
    })
}

fn parse_json_matcher(argument: &str) -> Result<Matcher, String> {
    let (pointer, value) = match argument.split_once('=') {
        Some((pointer, value)) => (pointer, Some(value)),
        None => (argument, None),
    };
    validate_pointer(pointer)?;
    Ok(match value {
        // A value that parses as JSON (number, true, "quoted") compares as
        // that JSON value; anything else compares as a plain string.
        Some(value) => Matcher::JsonEquals(
            pointer.to_string(),
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string())),
        ),
        None => Matcher::JsonPresent(pointer.to_string()),
    })
}

/// RFC 6901: empty, or '/'-separated tokens where '~' is only '~0' or '~1'.
fn validate_pointer(pointer: &str) -> Result<(), String> {
    let bad = |why: &str| {
        format!("invalid JSON pointer '{pointer}': {why} (RFC 6901, e.g. json:/version)")
    };
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(bad("it must start with '/'"));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(bad("'~' must be followed by 0 or 1"));
        }
    }
    Ok(())
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response<'a>(status: u16, headers: &'a HeaderMap, body: &'a [u8]) -> Response<'a> {
        Response {
            status: Some(status),
            headers: Some(headers),
            body,
            body_bytes: body.len() as u64,
            error: None,
        }
    }

    #[test]
    fn first_match_wins_and_defaults() {
        let classifier = Classifier::parse::<&str>(&[]).unwrap();
        let headers = HeaderMap::new();
        let names = classifier.names();
        let name = |class: u16| names[class as usize].as_str();
        assert_eq!(
            name(classifier.classify(&response(429, &headers, b""))),
            "throttled"
        );
        assert_eq!(
            name(classifier.classify(&response(503, &headers, b""))),
            "server_error"
        );
        assert_eq!(
            name(classifier.classify(&response(200, &headers, b""))),
            "ok"
        );
        let failed = Response {
            status: None,
            headers: None,
            body: b"",
            body_bytes: 0,
            error: Some(ErrorKind::Reset),
        };
        assert_eq!(name(classifier.classify(&failed)), "error");
    }

    #[test]
    fn body_header_json_and_conjunctions() {
        let classifier = Classifier::parse(&[
            "canary=body:empty&status:200",
            "v2=json:/version=2",
            "v2=header:x-stage=canary",
            "stable=json:/version",
            "tagged=body:regex:^hel+o",
        ])
        .unwrap();
        let mut headers = HeaderMap::new();
        let class = |c: u16| classifier.names()[c as usize].clone();
        assert_eq!(
            class(classifier.classify(&response(200, &headers, b""))),
            "canary"
        );
        assert_eq!(
            class(classifier.classify(&response(500, &headers, b""))),
            "unmatched"
        );
        assert_eq!(
            class(classifier.classify(&response(200, &headers, br#"{"version":2}"#))),
            "v2"
        );
        assert_eq!(
            class(classifier.classify(&response(200, &headers, br#"{"version":"1"}"#))),
            "stable"
        );
        assert_eq!(
            class(classifier.classify(&response(200, &headers, b"helllo"))),
            "tagged"
        );
        headers.insert("x-stage", "canary".parse().unwrap());
        assert_eq!(
            class(classifier.classify(&response(200, &headers, b"x"))),
            "v2"
        );
        assert!(classifier.needs_body());
        assert_eq!(classifier.names().len(), 5);
    }

    #[test]
    fn bad_rules_say_what_was_expected() {
        for (rule, expected) in [
            ("canary", "NAME=MATCHER"),
            ("c=bogus:1", "unknown matcher"),
            ("c=status:7xx", "status"),
            ("c=body:regex:(", "invalid regex"),
            ("c=json:version", "invalid JSON pointer"),
            ("c=json:/a~2", "invalid JSON pointer"),
            ("c=error:weird", "unknown error kind"),
            ("unmatched=*", "reserved"),
        ] {
            let err = Classifier::parse(&[rule]).unwrap_err();
            assert!(err.contains(expected), "{rule}: {err}");
        }
    }
}
