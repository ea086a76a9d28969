//! Secret handling: which headers are secret, and how a URL is shown with its
//! credentials removed. Secrets (`x-api-key`, `Authorization`, …) never reach
//! any output; everything that prints a target goes through [`url`].

/// Header names whose values are always secret.
pub const SECRET_HEADERS: [&str; 5] = [
    "x-api-key",
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-amz-security-token",
];

/// What is printed instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// Whether a header's value is secret (built-in list or user-marked).
pub fn is_secret_header(name: &str, marked: &[String]) -> bool {
    SECRET_HEADERS
        .iter()
        .any(|secret| secret.eq_ignore_ascii_case(name))
        || marked
            .iter()
            .any(|secret| secret.eq_ignore_ascii_case(name))
}

/// Query parameters whose values are treated as secret.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "signature",
        "sig",
        "auth",
        "credential",
        "session",
    ]
    .iter()
    .any(|marker| name.contains(marker))
}

/// The URL with any `user:password@` and secret-looking query values redacted.
pub fn url(text: &str) -> String {
    let (without_fragment, fragment) = match text.split_once('#') {
        Some((head, tail)) => (head, Some(tail)),
        None => (text, None),
    };
    let (head, query) = match without_fragment.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (without_fragment, None),
    };
    let mut out = String::with_capacity(text.len());
    match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            out.push_str(scheme);
            out.push_str("://");
            match authority.rsplit_once('@') {
                Some((_, host)) => {
                    out.push_str(REDACTED);
                    out.push('@');
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(head),
    }
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}={REDACTED}"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_and_secret_params() {
        assert_eq!(
            url("http://u:p@h:1/x?a=1&api_key=s3cr3t#f"),
            "http://<redacted>@h:1/x?a=1&api_key=<redacted>#f"
        );
        assert_eq!(url("https://h/p"), "https://h/p");
        assert!(is_secret_header("X-API-Key", &[]));
        assert!(is_secret_header("x-custom", &["X-Custom".to_string()]));
        assert!(!is_secret_header("accept", &[]));
    }
}
