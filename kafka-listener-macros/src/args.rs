//! The attribute's arguments, parsed into a typed struct with every error collected.

use proc_macro2::Span;
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
];

/// The ack modes `ack_mode = "..."` accepts, with their `AckMode` variants.
pub(crate) const ACK_MODES: &[(&str, &str)] = &[
    ("record", "Record"),
    ("batch", "Batch"),
    ("time", "Time"),
    ("count", "Count"),
    ("count_time", "CountTime"),
    ("manual", "Manual"),
    ("manual_immediate", "ManualImmediate"),
];

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
    /// The `AckMode` variant name and the span of the value.
    pub(crate) ack_mode: Option<(&'static str, Span)>,
}

/// Collects errors so that all of them are reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn add(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn into_result(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
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
        for meta in metas {
            let Meta::NameValue(nv) = meta else {
                errors.add(meta.span(), format!("expected `key = value`; valid keys: {}", KEYS.join(", ")));
                continue;
            };
            let key = nv.path.get_ident().map(ToString::to_string).unwrap_or_default();
            let span = nv.path.span();
            let value = &nv.value;
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
                "error_handler" => {
                    let path = match value {
                        Expr::Path(p) => Some(p.path.clone()),
                        other => {
                            errors.add(other.span(), "`error_handler` takes the path of a `fn() -> impl ErrorHandler`, e.g. error_handler = handlers::dead_letters");
                            None
                        }
                    };
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
                        Some(Lit::Str(s)) => Some(s.clone()),
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
                        Some(Lit::Str(s)) => Some(s.clone()),
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
                        let name = mode.value().trim().to_ascii_lowercase();
                        match ACK_MODES.iter().find(|(n, _)| *n == name) {
                            Some((_, variant)) => {
                                set_once(&mut args.ack_mode, Some((*variant, mode.span())), &key, span, errors)
                            }
                            None => errors.add(
                                mode.span(),
                                format!(
                                    "unknown ack mode `{}`; expected one of: {}",
                                    mode.value(),
                                    ACK_MODES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                                ),
                            ),
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
        }
        if args.topics.is_empty() && args.topic_pattern.is_none() {
            errors.add(
                Span::call_site(),
                "a listener needs `topic = \"...\"`, `topics = [...]` or `topic_pattern = \"...\"`",
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
