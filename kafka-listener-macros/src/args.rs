//! The attribute's arguments, parsed into a typed struct with every error collected. Values are
//! checked by the rules the runtime reads them with (`kafka_listener_rules`), except values with
//! `${ENV}` placeholders: those are checked at start.

use kafka_listener_rules::{
    has_placeholder, parse_auto_startup, parse_concurrency, parse_duration, AckMode, StartPosition,
};
use proc_macro2::{Span, TokenStream};
use quote::quote_spanned;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprArray, ExprLit, Lit, LitStr, Meta, Token};

/// The arguments `#[kafka_listener(...)]` accepts.
pub(crate) const KEYS: &[&str] = &[
    "topic",
    "topics",
    "topic_pattern",
    "group",
    "id",
    "container_factory",
    "concurrency",
    "auto_startup",
    "batch",
    "client_id_prefix",
    "properties",
    "ack_mode",
    "reply_to",
    "error_handler",
    "retry",
    "topic_partitions",
    "auto_offset_reset",
    "on_partitions_assigned",
    "filter",
];

/// The arguments that name a listener's topics (one of them is needed).
const TOPIC_KEYS: &[&str] = &["topic", "topics", "topic_pattern", "topic_partitions"];

/// The arguments `retry(...)` accepts.
pub(crate) const RETRY_KEYS: &[&str] =
    &["attempts", "backoff", "multiplier", "max_backoff", "single_topic", "partitions", "auto_create"];

#[derive(Default)]
pub(crate) struct ListenerArgs {
    pub(crate) topics: Vec<LitStr>,
    pub(crate) topic_pattern: Option<LitStr>,
    pub(crate) group: Option<LitStr>,
    pub(crate) id: Option<LitStr>,
    pub(crate) container_factory: Option<LitStr>,
    pub(crate) concurrency: Option<LitStr>,
    pub(crate) auto_startup: Option<LitStr>,
    pub(crate) batch: bool,
    pub(crate) client_id_prefix: Option<LitStr>,
    pub(crate) properties: Vec<LitStr>,
    pub(crate) reply_to: Option<LitStr>,
    /// A path to a `fn() -> impl ErrorHandler`.
    pub(crate) error_handler: Option<syn::Path>,
    /// The ack mode and the span of the value.
    pub(crate) ack_mode: Option<(AckMode, Span)>,
    /// `retry(...)`: the `RetryTopics` builder calls it makes, e.g. `.attempts(4)`.
    pub(crate) retry: Option<Vec<TokenStream>>,
    /// `topic_partitions = [("topic", [0, 1], "start"), ...]`.
    pub(crate) topic_partitions: Vec<(LitStr, Vec<syn::LitInt>, Option<LitStr>)>,
    /// A path to a `fn(&[(String, i32)], &ConsumerHandle)`.
    pub(crate) on_partitions_assigned: Option<syn::Path>,
    /// A path to a `fn(&Record<'_>) -> bool`.
    pub(crate) filter: Option<syn::Path>,
}

/// Parses `[("orders", [0, 1], "beginning"), ("audit", [2])]`.
fn topic_partitions(expr: &Expr, errors: &mut Errors) -> Vec<(LitStr, Vec<syn::LitInt>, Option<LitStr>)> {
    let usage = "`topic_partitions` takes a list of (topic, [partitions], start), e.g. topic_partitions = [(\"orders\", [0, 1], \"beginning\"), (\"audit\", [2], \"offset:42\")]";
    let Expr::Array(list) = expr else {
        errors.add(expr.span(), usage);
        return Vec::new();
    };
    let mut parsed = Vec::new();
    for element in &list.elems {
        let Expr::Tuple(tuple) = element else {
            errors.add(element.span(), usage);
            continue;
        };
        let items: Vec<&Expr> = tuple.elems.iter().collect();
        let (topic, partitions, start) = match items.as_slice() {
            [topic, partitions] => (*topic, *partitions, None),
            [topic, partitions, start] => (*topic, *partitions, Some(*start)),
            _ => {
                errors.add(tuple.span(), usage);
                continue;
            }
        };
        let Some(topic) = string("topic_partitions", topic, errors) else { continue };
        let numbers: Vec<syn::LitInt> = match partitions {
            Expr::Array(ExprArray { elems, .. }) => elems
                .iter()
                .filter_map(|e| match literal(e) {
                    Some(Lit::Int(n)) if n.base10_parse::<i32>().is_ok_and(|p| p >= 0) => Some(n.clone()),
                    _ => {
                        errors.add(e.span(), "a partition is a non-negative integer literal");
                        None
                    }
                })
                .collect(),
            other => {
                errors.add(other.span(), "the partitions are a list of integers, e.g. [0, 1]");
                continue;
            }
        };
        if numbers.is_empty() {
            errors.add(partitions.span(), "list at least one partition");
        }
        let start = start.and_then(|s| string("topic_partitions", s, errors));
        if let Some(start) = start.as_ref().filter(|s| !has_placeholder(&s.value())) {
            if let Err(message) = start.value().parse::<StartPosition>() {
                errors.add(start.span(), message);
            }
        }
        parsed.push((topic, numbers, start));
    }
    parsed
}

/// Parses `retry(attempts = 4, backoff = "1s", ...)` into `RetryTopics` builder calls.
fn retry_calls(list: &syn::MetaList, errors: &mut Errors) -> Vec<TokenStream> {
    let metas = match list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
        Ok(metas) => metas,
        Err(error) => {
            errors.push(error);
            return Vec::new();
        }
    };
    let mut calls = Vec::new();
    for meta in metas {
        let Meta::NameValue(nv) = meta else {
            errors.add(
                meta.span(),
                format!("expected `key = value` in retry(...); valid keys: {}", RETRY_KEYS.join(", ")),
            );
            continue;
        };
        let key = nv.path.get_ident().map(ToString::to_string).unwrap_or_default();
        let value = &nv.value;
        let lit = literal(value);
        let call = match (key.as_str(), lit) {
            ("attempts", Some(Lit::Int(n))) => match n.base10_parse::<u32>() {
                Ok(0) | Err(_) => {
                    errors.add(n.span(), "`attempts` counts deliveries, the first included: at least 1");
                    None
                }
                Ok(_) => Some(quote_spanned!(n.span()=> .attempts(#n))),
            },
            ("partitions", Some(Lit::Int(n))) => match n.base10_parse::<i32>() {
                Ok(p) if p >= 1 => Some(quote_spanned!(n.span()=> .partitions(#n))),
                _ => {
                    errors.add(n.span(), "`partitions` must be at least 1");
                    None
                }
            },
            ("multiplier", Some(Lit::Float(f))) => match f.base10_parse::<f64>() {
                Ok(m) if m > 0.0 && m.is_finite() => Some(quote_spanned!(f.span()=> .multiplier(#m))),
                _ => {
                    errors.add(f.span(), "`multiplier` must be a positive number");
                    None
                }
            },
            ("multiplier", Some(Lit::Int(n))) => match n.base10_parse::<u32>() {
                Ok(m) if m > 0 => {
                    let m = f64::from(m);
                    Some(quote_spanned!(n.span()=> .multiplier(#m)))
                }
                _ => {
                    errors.add(n.span(), "`multiplier` must be a positive number");
                    None
                }
            },
            ("backoff" | "max_backoff", Some(Lit::Str(s))) => match parse_duration(&s.value()) {
                Ok(duration) => {
                    let method = syn::Ident::new(&key, s.span());
                    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
                    Some(quote_spanned!(s.span()=> .#method(::core::time::Duration::from_millis(#ms))))
                }
                Err(message) => {
                    errors.add(s.span(), message);
                    None
                }
            },
            ("single_topic" | "auto_create", Some(Lit::Bool(b))) => {
                let method = syn::Ident::new(&key, b.span());
                Some(quote_spanned!(b.span()=> .#method(#b)))
            }
            ("attempts" | "partitions", _) => {
                errors.add(value.span(), format!("`{key}` takes an integer literal"));
                None
            }
            ("multiplier", _) => {
                errors.add(value.span(), "`multiplier` takes a number, e.g. multiplier = 2.0");
                None
            }
            ("backoff" | "max_backoff", _) => {
                errors.add(value.span(), format!("`{key}` takes a duration string, e.g. {key} = \"1s\""));
                None
            }
            ("single_topic" | "auto_create", _) => {
                errors.add(value.span(), format!("`{key}` takes true or false"));
                None
            }
            _ => {
                errors.add(
                    nv.path.span(),
                    format!("unknown retry argument `{key}`; valid arguments: {}", RETRY_KEYS.join(", ")),
                );
                None
            }
        };
        calls.extend(call);
    }
    calls
}

/// Collects errors so that all of them are reported at once.
#[derive(Default)]
pub(crate) struct Errors {
    all: Option<syn::Error>,
    count: usize,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.count += 1;
        match &mut self.all {
            Some(all) => all.combine(error),
            None => self.all = Some(error),
        }
    }

    /// How many errors were pushed so far.
    fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn add(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn into_result(self) -> Result<(), syn::Error> {
        self.all.map_or(Ok(()), Err)
    }
}

fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

fn string(key: &str, expr: &Expr, errors: &mut Errors) -> Option<LitStr> {
    match literal(expr) {
        Some(Lit::Str(s)) => Some(s.clone()),
        _ => {
            errors.add(expr.span(), format!("`{key}` takes a string literal, e.g. {key} = \"...\" (use \"${{ENV_VAR}}\" for a value from the environment)"));
            None
        }
    }
}

fn strings(key: &str, expr: &Expr, errors: &mut Errors) -> Vec<LitStr> {
    match expr {
        Expr::Array(ExprArray { elems, .. }) => elems.iter().filter_map(|e| string(key, e, errors)).collect(),
        other => match literal(other) {
            Some(Lit::Str(s)) => vec![s.clone()],
            _ => {
                errors
                    .add(other.span(), format!("`{key}` takes a list of string literals, e.g. {key} = [\"a\", \"b\"]"));
                Vec::new()
            }
        },
    }
}

/// A value that names a function: its path, or the error `usage` spanned on it.
fn path_of(value: &Expr, usage: &str, errors: &mut Errors) -> Option<syn::Path> {
    match value {
        Expr::Path(p) => Some(p.path.clone()),
        other => {
            errors.add(other.span(), usage);
            None
        }
    }
}

/// A string setting the runtime reads with `parse` (e.g. `concurrency = "3"`): checked now by
/// the same rule unless it holds a placeholder (then at start).
fn checked<T>(text: &LitStr, parse: fn(&str) -> Result<T, String>, errors: &mut Errors) -> Option<LitStr> {
    if !has_placeholder(&text.value()) {
        if let Err(message) = parse(&text.value()) {
            errors.add(text.span(), message);
            return None;
        }
    }
    Some(text.clone())
}

fn set_once<T>(slot: &mut Option<T>, value: Option<T>, key: &str, span: Span, errors: &mut Errors) {
    if slot.is_some() {
        errors.add(span, format!("`{key}` is given twice"));
    } else {
        *slot = value;
    }
}

impl ListenerArgs {
    pub(crate) fn parse(metas: Punctuated<Meta, Token![,]>, errors: &mut Errors) -> ListenerArgs {
        let mut args = ListenerArgs::default();
        let mut batch_seen = false;
        // A topic argument whose value was refused (and reported): the listener does name its
        // topics, so "a listener needs a topic" would be a spurious follow-on error.
        let mut topic_value_refused = false;
        for meta in metas {
            if let Meta::List(list) = &meta {
                if list.path.is_ident("retry") {
                    let calls = retry_calls(list, errors);
                    set_once(&mut args.retry, Some(calls), "retry", list.path.span(), errors);
                    continue;
                }
            }
            let Meta::NameValue(nv) = meta else {
                errors.add(meta.span(), format!("expected `key = value`; valid keys: {}", KEYS.join(", ")));
                continue;
            };
            let key = nv.path.get_ident().map(ToString::to_string).unwrap_or_default();
            let span = nv.path.span();
            let value = &nv.value;
            let errors_before = errors.count();
            match key.as_str() {
                "topic" => args.topics.extend(string(&key, value, errors)),
                "topics" => args.topics.extend(strings(&key, value, errors)),
                "topic_pattern" => set_once(&mut args.topic_pattern, string(&key, value, errors), &key, span, errors),
                "group" => set_once(&mut args.group, string(&key, value, errors), &key, span, errors),
                "id" => set_once(&mut args.id, string(&key, value, errors), &key, span, errors),
                "container_factory" => {
                    set_once(&mut args.container_factory, string(&key, value, errors), &key, span, errors)
                }
                "client_id_prefix" => {
                    set_once(&mut args.client_id_prefix, string(&key, value, errors), &key, span, errors)
                }
                "reply_to" => set_once(&mut args.reply_to, string(&key, value, errors), &key, span, errors),
                "topic_partitions" => args.topic_partitions.extend(topic_partitions(value, errors)),
                "auto_offset_reset" => {
                    if let Some(reset) = string(&key, value, errors) {
                        let text = reset.value();
                        if matches!(text.trim(), "earliest" | "latest" | "error") || text.contains("${") {
                            let property = LitStr::new(&format!("auto.offset.reset={}", text.trim()), reset.span());
                            args.properties.push(property);
                        } else {
                            errors.add(
                                reset.span(),
                                format!("`auto_offset_reset` is \"earliest\", \"latest\" or \"error\", not `{text}`"),
                            );
                        }
                    }
                }
                "filter" => {
                    let path = path_of(value, "`filter` takes the path of a `fn(&Record<'_>) -> bool` (true: hand the record over), e.g. filter = only_paid", errors);
                    set_once(&mut args.filter, path, &key, span, errors);
                }
                "on_partitions_assigned" => {
                    let path = path_of(value, "`on_partitions_assigned` takes the path of a `fn(&[(String, i32)], &ConsumerHandle)`, e.g. on_partitions_assigned = rewind", errors);
                    set_once(&mut args.on_partitions_assigned, path, &key, span, errors);
                }
                "error_handler" => {
                    let path = path_of(value, "`error_handler` takes the path of a `fn() -> impl ErrorHandler`, e.g. error_handler = handlers::dead_letters", errors);
                    set_once(&mut args.error_handler, path, &key, span, errors);
                }
                "properties" => {
                    for property in strings(&key, value, errors) {
                        if !property.value().contains('=') {
                            errors.add(property.span(), "a property is written \"key=value\"");
                        }
                        args.properties.push(property);
                    }
                }
                "concurrency" => {
                    let parsed = match literal(value) {
                        Some(Lit::Int(n)) => match n.base10_parse::<usize>() {
                            Ok(0) => {
                                errors.add(n.span(), "`concurrency` must be at least 1");
                                None
                            }
                            Ok(count) => Some(LitStr::new(&count.to_string(), n.span())),
                            Err(e) => {
                                errors.push(e);
                                None
                            }
                        },
                        Some(Lit::Str(s)) => checked(s, parse_concurrency, errors),
                        _ => {
                            errors.add(
                                value.span(),
                                "`concurrency` takes an integer literal (or a \"${ENV_VAR}\" string)",
                            );
                            None
                        }
                    };
                    set_once(&mut args.concurrency, parsed, &key, span, errors);
                }
                "auto_startup" => {
                    let parsed = match literal(value) {
                        Some(Lit::Bool(b)) => Some(LitStr::new(&b.value.to_string(), b.span())),
                        Some(Lit::Str(s)) => checked(s, parse_auto_startup, errors),
                        _ => {
                            errors.add(value.span(), "`auto_startup` takes true or false (or a \"${ENV_VAR}\" string)");
                            None
                        }
                    };
                    set_once(&mut args.auto_startup, parsed, &key, span, errors);
                }
                "batch" => {
                    if batch_seen {
                        errors.add(span, "`batch` is given twice");
                    }
                    batch_seen = true;
                    match literal(value) {
                        Some(Lit::Bool(b)) => args.batch = b.value,
                        _ => errors.add(value.span(), "`batch` takes true or false"),
                    }
                }
                "ack_mode" => {
                    if let Some(mode) = string(&key, value, errors) {
                        match mode.value().parse::<AckMode>() {
                            Ok(parsed) => set_once(&mut args.ack_mode, Some((parsed, mode.span())), &key, span, errors),
                            Err(unknown) => errors.add(mode.span(), unknown),
                        }
                    }
                }
                _ => errors.add(
                    span,
                    format!(
                        "unknown argument `{}`; valid arguments: {}",
                        nv.path.get_ident().map(ToString::to_string).unwrap_or_else(|| "?".into()),
                        KEYS.join(", ")
                    ),
                ),
            }
            if TOPIC_KEYS.contains(&key.as_str()) && errors.count() > errors_before {
                topic_value_refused = true;
            }
        }
        if args.topics.is_empty()
            && args.topic_pattern.is_none()
            && args.topic_partitions.is_empty()
            && !topic_value_refused
        {
            errors.add(
                Span::call_site(),
                "a listener needs `topic = \"...\"`, `topics = [...]`, `topic_pattern = \"...\"` or `topic_partitions = [...]`",
            );
        }
        if !args.topic_partitions.is_empty() && (!args.topics.is_empty() || args.topic_pattern.is_some()) {
            errors.add(
                args.topic_partitions[0].0.span(),
                "give either topics, a topic_pattern or topic_partitions, not several",
            );
        }
        if !args.topics.is_empty() {
            if let Some(pattern) = &args.topic_pattern {
                errors.add(pattern.span(), "give either topics or a topic_pattern, not both");
            }
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use syn::parse::Parser;

    use super::*;

    /// The messages of the errors `#[kafka_listener(<attr>)]`'s arguments give.
    fn errors_of(attr: &str) -> Vec<String> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse_str(attr).expect("arguments");
        let mut errors = Errors::default();
        ListenerArgs::parse(metas, &mut errors);
        match errors.into_result() {
            Ok(()) => Vec::new(),
            Err(all) => all.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_refused_topic_value_is_the_only_error_about_topics() {
        for attr in ["topic = TOPIC", "topics = [TOPIC]", "topic_pattern = PATTERN", "topic_partitions = PARTITIONS"] {
            let errors = errors_of(attr);
            assert_eq!(errors.len(), 1, "{attr}: {errors:?}");
            assert!(!errors[0].contains("a listener needs"), "{attr}: {errors:?}");
        }
    }

    #[test]
    fn a_listener_without_topics_needs_one() {
        for attr in ["group = \"g\"", "topics = []", "group = GROUP"] {
            let errors = errors_of(attr);
            assert!(errors.iter().any(|e| e.starts_with("a listener needs `topic")), "{attr}: {errors:?}");
        }
        assert!(errors_of("topic = \"orders\"").is_empty());
    }

    #[test]
    fn values_are_checked_by_the_runtime_rules_at_compile_time() {
        let rejected = [
            (
                "topic_partitions = [(\"t\", [0], \"time:garbage\")]",
                "`time:garbage` is not a start position: `garbage` is not a time",
            ),
            (
                "topic_partitions = [(\"t\", [0], \"offset:-1\")]",
                "`offset:-1` is not a start position; write \"committed\"",
            ),
            (
                "topic = \"t\", ack_mode = \"sometimes\"",
                "unknown ack mode `sometimes`; expected one of: record, batch,",
            ),
            ("topic = \"t\", retry(backoff = \"5\")", "duration `5` has no unit; write e.g. \"500ms\""),
            ("topic = \"t\", concurrency = \"three\"", "concurrency `three` is not a number of at least 1"),
            ("topic = \"t\", concurrency = \"0\"", "concurrency `0` is not a number of at least 1"),
            ("topic = \"t\", auto_startup = \"yes\"", "auto_startup `yes` is neither true nor false"),
        ];
        for (attr, message) in rejected {
            let errors = errors_of(attr);
            assert_eq!(errors.len(), 1, "{attr}: {errors:?}");
            assert!(errors[0].starts_with(message), "{attr}: {errors:?}");
        }
    }
}
