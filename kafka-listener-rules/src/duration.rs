//! Durations written as text (`retry(backoff = "1s")`).

use std::time::Duration;

/// What to write instead of a duration that is none.
const DURATIONS: &str = "write e.g. \"500ms\", \"1s\", \"1.5s\", \"2m\" or \"1h\"";

/// A duration written as a non-negative number and a unit, `ms`, `s`, `m` or `h` (`"500ms"`,
/// `"1s"`, `"1.5s"`, `"2m"`, `"1h"`), to the millisecond; or what is wrong with the text and
/// what to write instead.
///
/// ```
/// use std::time::Duration;
/// use kafka_listener_rules::parse_duration;
///
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("1 fortnight").is_err());
/// ```
///
/// # Errors
/// A message naming the text, for a missing or unknown unit, or a number that is none.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "" if !number.is_empty() => return Err(format!("duration `{text}` has no unit; {DURATIONS}")),
        other if !number.is_empty() => return Err(format!("unknown unit `{other}` in duration `{text}`; {DURATIONS}")),
        _ => return Err(format!("`{text}` is not a duration; {DURATIONS}")),
    };
    match number.parse::<f64>() {
        // Below 2^53 ms (285,000 years) every millisecond is exact.
        Ok(value) if value >= 0.0 && value * scale < 9_007_199_254_740_992.0 => {
            Ok(Duration::from_millis((value * scale).round() as u64))
        }
        Ok(_) => Err(format!("duration `{text}` is too long; {DURATIONS}")),
        Err(_) => Err(format!("`{text}` is not a duration; {DURATIONS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_to_the_millisecond() {
        let ms = |text: &str| parse_duration(text).map(|d| d.as_millis());
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("0ms"), Ok(0));
        assert_eq!(ms("1s"), Ok(1_000));
        assert_eq!(ms(" 1.5s "), Ok(1_500));
        assert_eq!(ms("1 s"), Ok(1_000));
        assert_eq!(ms("0.0004s"), Ok(0));
        assert_eq!(ms("2m"), Ok(120_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
    }

    #[test]
    fn a_text_that_is_no_duration_says_what_to_write() {
        let cases = [
            ("1 fortnight", "unknown unit `fortnight` in duration `1 fortnight`; "),
            ("5", "duration `5` has no unit; "),
            ("", "`` is not a duration; "),
            ("s", "`s` is not a duration; "),
            ("1.2.3s", "`1.2.3s` is not a duration; "),
            ("${BACKOFF}", "`${BACKOFF}` is not a duration; "),
            ("-1s", "`-1s` is not a duration; "),
            ("99999999999999999999h", "duration `99999999999999999999h` is too long; "),
        ];
        for (text, start) in cases {
            let error = parse_duration(text).unwrap_err();
            assert_eq!(error, format!("{start}{DURATIONS}"), "{text:?}");
        }
    }
}
