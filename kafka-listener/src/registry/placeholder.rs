//! `${ENV}` and `${ENV:default}` placeholders in attribute values, resolved at start.

/// Replaces every placeholder with its environment variable (or default). On failure, returns
/// the name of the variable that is unset and has no default.
pub(crate) fn resolve(value: &str) -> Result<String, String> {
    resolve_with(value, |name| std::env::var(name).ok())
}

fn resolve_with(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // No closing brace: not a placeholder.
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let body = &after[..end];
        let (name, default) = match body.split_once(':') {
            Some((name, default)) => (name.trim(), Some(default)),
            None => (body.trim(), None),
        };
        match (lookup(name), default) {
            (Some(found), _) => out.push_str(&found),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::resolve_with;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "value".to_string())
    }

    #[test]
    fn resolves_variables_defaults_and_plain_text() {
        assert_eq!(resolve_with("plain", env), Ok("plain".into()));
        assert_eq!(resolve_with("${SET}", env), Ok("value".into()));
        assert_eq!(resolve_with("a-${SET}-${UNSET:dflt}-b", env), Ok("a-value-dflt-b".into()));
        assert_eq!(resolve_with("${UNSET:}", env), Ok("".into()));
        assert_eq!(resolve_with("${UNSET}", env), Err("UNSET".into()));
        assert_eq!(resolve_with("${open", env), Ok("${open".into()));
    }
}
