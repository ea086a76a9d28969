//! JSON input with positions: every parsed file (the simulator config,
//! scenarios, saved reports) reports a mistake the same way.

/// Parses JSON into `T`; a mistake reads `SOURCE:LINE:COL: field 'a.b': what`
/// (the simulator config, scenarios and saved reports all say it this way).
pub fn parse_json<T: serde::de::DeserializeOwned>(source: &str, text: &str) -> Result<T, String> {
    let source = crate::console::escape_controls(source);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let field = if path == "." {
            String::new()
        } else {
            format!(" field '{path}':")
        };
        let message = inner.to_string();
        let message = message
            .find(" at line ")
            .map_or(message.as_str(), |at| &message[..at]);
        format!(
            "{source}:{}:{}:{field} {message}",
            inner.line(),
            inner.column()
        )
    })?;
    // One JSON document: text after it (a second object, a stray brace) is
    // a mistake, not something to ignore.
    deserializer.end().map_err(|err| {
        format!(
            "{source}:{}:{}: unexpected text after the JSON document",
            err.line(),
            err.column()
        )
    })?;
    Ok(value)
}
