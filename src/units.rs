//! Parsers for the human units on the command line and in scenarios:
//! durations (`500ms`, `30s`, `2m`, `1h`), rates, counts and byte sizes.
use std::time::Duration;

/// Parses `500ms`, `1.5s`, `30s`, `2m`, `1h`. A bare number is refused so
/// that `--duration 30` never silently means 30 ms or 30 minutes.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("expected a duration with a unit like 30s, 500ms, 2m; got '{text}'")
        })?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 30s, 500ms, 2m; got '{text}'"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "expected a duration unit ms, s, m or h; got '{text}'"
            ))
        }
    };
    // Below a millisecond is below the engine's timer: a run that short
    // measures nothing, so it is a mistake, not a request.
    if !(0.001..=7.0 * 86400.0).contains(&seconds) {
        return Err(format!(
            "expected a duration from 1ms to 7 days; got '{text}'"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Like [`parse_duration`], but zero is allowed, with or without a unit
/// (`0`, `0s`, `0ms`): for waits that may be skipped, such as `--idle`.
pub fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    let number = text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if !number.is_empty() && number.parse::<f64>().is_ok_and(|value| value == 0.0) {
        let unit = &text.trim()[number.len()..];
        if ["", "ms", "s", "m", "h"].contains(&unit) {
            return Ok(Duration::ZERO);
        }
    }
    parse_duration(text).map_err(|why| why.replace("from 1ms", "of 0, or from 1ms"))
}

/// Highest rate gateprobe offers from one process (requests per second).
pub const MAX_RATE_PER_S: f64 = 1_000_000.0;
/// Lowest rate: one request every 1,000 s. Anything slower is a typo, and
/// would make a run's planned length meaningless.
pub const MIN_RATE_PER_S: f64 = 0.001;

/// Parses a positive, finite rate in requests per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (MIN_RATE_PER_S..=MAX_RATE_PER_S).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "expected a rate from 0.001 to 1000000 requests per second (e.g. 500); got '{text}'"
        )),
    }
}

/// Parses a rate that may be zero (ramp and step endpoints).
pub fn parse_rate_or_zero(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate == 0.0 || (MIN_RATE_PER_S..=MAX_RATE_PER_S).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "expected a rate of 0, or from 0.001 to 1000000 requests per second; got '{text}'"
        )),
    }
}

/// Parses a positive whole number.
pub fn parse_count(text: &str) -> Result<u64, String> {
    match text.trim().replace('_', "").parse::<u64>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(format!("expected a whole number above 0; got '{text}'")),
    }
}

/// Parses `65536`, `64KiB`, `1MiB`, `10kB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: usize = number
        .parse()
        .map_err(|_| format!("expected a size like 65536, 64KiB or 1MiB; got '{text}'"))?;
    let scale = match unit {
        "" | "B" => 1,
        "KiB" => 1024,
        "kB" | "KB" => 1000,
        "MiB" => 1024 * 1024,
        "MB" => 1_000_000,
        _ => return Err(format!("expected a size unit B, KiB or MiB; got '{text}'")),
    };
    value
        .checked_mul(scale)
        .filter(|size| *size <= 64 * 1024 * 1024)
        .ok_or_else(|| format!("expected a size of at most 64MiB; got '{text}'"))
}

/// Parses a number with a suffix (`10%`, `2pp`) into a fraction in [0, 1].
fn parse_suffixed(text: &str, suffix: &str, example: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let value = trimmed
        .strip_suffix(suffix)
        .and_then(|number| number.trim().parse::<f64>().ok())
        .filter(|value| value.is_finite() && (0.0..=100.0).contains(value))
        .ok_or_else(|| format!("expected {example}; got '{text}'"))?;
    Ok(value / 100.0)
}

/// Parses a percentage between 0% and 100% (`10%`, `0.5%`) as a fraction.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    parse_suffixed(text, "%", "a percentage from 0% to 100%, like 10% or 0.5%")
}

/// Parses percentage points (`1pp`, `0.5pp`) as a fraction.
pub fn parse_points(text: &str) -> Result<f64, String> {
    parse_suffixed(
        text,
        "pp",
        "percentage points, like 1pp or 0.5pp (an absolute difference of shares)",
    )
}

/// A number without a needless fraction: 50, 12.5.
pub fn trim_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// A share as a percentage to two decimals, no trailing zeros: 10%, 9.18%, 0.5%.
pub fn percent(share: f64) -> String {
    format!("{}%", trim_float((share * 1e4).round() / 1e2))
}

/// A p-value as people read them: 0.3127, 0.0012, 3.4e-9.
pub fn format_p(p: f64) -> String {
    if p >= 1e-4 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

/// Rounded to two decimals (for display bands and steps).
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Three significant digits, for axes and summaries.
pub fn short(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return trim_float(value);
    }
    let digits = (2 - value.abs().log10().floor() as i32).clamp(0, 6) as usize;
    trim_float(format!("{value:.digits$}").parse().unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("0.5ms").is_err());
        assert!(parse_duration("1ms").is_ok());
        assert_eq!(parse_duration_or_zero("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration_or_zero("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration_or_zero("0ms").unwrap(), Duration::ZERO);
        assert!(parse_duration_or_zero("0x").is_err());
        assert!(parse_duration_or_zero("-1s").is_err());
        assert_eq!(
            parse_duration_or_zero("2s").unwrap(),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn rates_counts_sizes() {
        assert_eq!(parse_rate("2000").unwrap(), 2000.0);
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("1e-9").is_err());
        assert!(parse_rate("1e12").is_err());
        assert!(parse_rate("NaN").is_err());
        assert_eq!(parse_count("1_000").unwrap(), 1000);
        assert!(parse_count("0").is_err());
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert!(parse_size("1GiB").is_err());
    }
}
