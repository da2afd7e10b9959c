//! Placeholders, concurrency and `auto_startup`.

/// Whether a value holds a `${ENV}` or `${ENV:default}` placeholder: then it is resolved, and
/// checked, only at start.
///
/// ```
/// assert!(kafka_listener_rules::has_placeholder("${CONCURRENCY:3}"));
/// assert!(!kafka_listener_rules::has_placeholder("3"));
/// ```
pub fn has_placeholder(text: &str) -> bool {
    text.contains("${")
}

/// A listener's `concurrency`: a number of consumers, at least 1.
///
/// # Errors
/// A message naming the text.
pub fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(count) if count >= 1 => Ok(count),
        _ => Err(format!("concurrency `{text}` is not a number of at least 1; write e.g. 3")),
    }
}

/// A listener's `auto_startup`: `true` or `false`.
///
/// # Errors
/// A message naming the text.
pub fn parse_auto_startup(text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("auto_startup `{other}` is neither true nor false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_is_a_number_of_at_least_one() {
        assert_eq!(parse_concurrency("3"), Ok(3));
        assert_eq!(parse_concurrency(" 1 "), Ok(1));
        for bad in ["0", "-1", "three", "", "1.5"] {
            assert_eq!(
                parse_concurrency(bad),
                Err(format!("concurrency `{bad}` is not a number of at least 1; write e.g. 3"))
            );
        }
    }

    #[test]
    fn auto_startup_is_true_or_false() {
        assert_eq!(parse_auto_startup("true"), Ok(true));
        assert_eq!(parse_auto_startup(" false"), Ok(false));
        for bad in ["yes", "True", "", "1"] {
            assert_eq!(parse_auto_startup(bad), Err(format!("auto_startup `{bad}` is neither true nor false")));
        }
    }

    #[test]
    fn placeholders_are_seen_anywhere_in_a_value() {
        assert!(has_placeholder("${N}"));
        assert!(has_placeholder("prefix-${N:1}-suffix"));
        assert!(!has_placeholder("$N"));
        assert!(!has_placeholder("{N}"));
    }
}
