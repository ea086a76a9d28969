//! Request templates: `{{seq}}` (request index), `{{uuid}}` (random v4) and
//! `{{unix_ms}}` (wall clock) in the URL, header values and body. Parsed once
//! into parts; rendering appends into a caller-owned buffer that is reused
//! request after request.
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Seq,
    Uuid,
    UnixMs,
}

/// A parsed template. A template without variables is *static* and callers
/// build its value once instead of per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; an unknown `{{name}}` is an error naming it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open + 2..].find("}}") else {
                break;
            };
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let name = rest[open + 2..open + 2 + close].trim();
            parts.push(match name {
                "seq" => Part::Seq,
                "uuid" => Part::Uuid,
                "unix_ms" => Part::UnixMs,
                other => {
                    return Err(format!(
                        "unknown template variable '{{{{{other}}}}}'; expected {{{{seq}}}}, {{{{uuid}}}} or {{{{unix_ms}}}}"
                    ))
                }
            });
            rest = &rest[open + 2 + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// The text when the template has no variables.
    pub fn as_static(&self) -> Option<String> {
        if self
            .parts
            .iter()
            .all(|part| matches!(part, Part::Literal(_)))
        {
            Some(self.render(0))
        } else {
            None
        }
    }

    /// Appends the rendering for request `seq` to `out`.
    pub fn render_into(&self, seq: u64, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Seq => {
                    let _ = write!(out, "{seq}");
                }
                Part::Uuid => {
                    let mut buffer = uuid::Uuid::encode_buffer();
                    out.push_str(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer));
                }
                Part::UnixMs => {
                    let millis = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|elapsed| elapsed.as_millis())
                        .unwrap_or(0);
                    let _ = write!(out, "{millis}");
                }
            }
        }
    }

    /// Renders into a new string (tests and one-off uses).
    pub fn render(&self, seq: u64) -> String {
        let mut out = String::new();
        self.render_into(seq, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables() {
        let template =
            Template::parse(r#"{"name":"run-{{seq}}-{{uuid}}","t":{{unix_ms}}}"#).unwrap();
        assert!(template.as_static().is_none());
        let text = template.render(42);
        assert!(text.starts_with(r#"{"name":"run-42-"#), "{text}");
        let other = template.render(42);
        assert_ne!(text, other, "uuid differs per rendering");
    }

    #[test]
    fn static_and_errors() {
        assert_eq!(
            Template::parse("plain").unwrap().as_static().unwrap(),
            "plain"
        );
        assert_eq!(
            Template::parse("a {{ b").unwrap().as_static().unwrap(),
            "a {{ b"
        );
        let err = Template::parse("x{{nope}}").unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }
}
