//! Terminal output that never panics: `println!` panics when stdout is a
//! closed pipe (`gateprobe … | head -1`) or a full device (`> /dev/full`),
//! and that panic used to lose the run's reports. Everything gateprobe prints
//! goes through these macros, which drop a failed write: the terminal is a
//! courtesy, the report files are the record.

/// Like `print!`, ignoring write errors.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Like `println!`, ignoring write errors.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Like `eprint!`, ignoring write errors.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Like `eprintln!`, ignoring write errors.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Flushes stdout, ignoring errors (a closed pipe is not the run's failure).
pub fn flush() {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().flush();
}

/// Makes untrusted text safe for one terminal line: control characters
/// (newlines, escape sequences, NUL…) are shown as `\n`, `\u{1b}`, so input
/// echoed in an error can neither forge lines nor drive the terminal.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::escape_controls("plain"), "plain");
        assert_eq!(
            super::escape_controls("a\nb\x1b[31mc\0"),
            "a\\nb\\u{1b}[31mc\\u{0}"
        );
    }
}
