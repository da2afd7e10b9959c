//! The attribute's arguments, parsed into the `Endpoint` builder calls they stand for, with
//! every error collected. Values are checked by the rules the runtime reads them with
//! (`kafka_listener_rules`), except values with `${ENV}` placeholders: those are checked at start.

use kafka_listener_rules::{
    has_placeholder, parse_auto_startup, parse_concurrency, parse_duration, AckMode, ProcessingOrder, StartPosition,
};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
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
    "processing_order",
    "max_concurrency",
];

/// The arguments that name a listener's topics (one of them is needed).
const TOPIC_KEYS: &[&str] = &["topic", "topics", "topic_pattern", "topic_partitions"];

/// The arguments that may be given once.
const ONCE_KEYS: &[&str] = &[
    "topic_pattern",
    "group",
    "id",
    "container_factory",
    "concurrency",
    "auto_startup",
    "batch",
    "client_id_prefix",
    "ack_mode",
    "reply_to",
    "error_handler",
    "retry",
    "auto_offset_reset",
    "on_partitions_assigned",
    "filter",
    "processing_order",
    "max_concurrency",
];

/// The arguments `retry(...)` accepts.
pub(crate) const RETRY_KEYS: &[&str] =
    &["attempts", "backoff", "multiplier", "max_backoff", "single_topic", "partitions", "auto_create"];

/// The path the generated code reaches the runtime through.
pub(crate) fn private() -> TokenStream {
    quote!(::kafka_listener::__private)
}

#[derive(Default)]
pub(crate) struct ListenerArgs {
    /// `id = "..."`: the argument of `Endpoint::new` (else the function's path).
    pub(crate) id: Option<LitStr>,
    /// `batch = true`: the handler takes batches (the signature is checked for it).
    pub(crate) batch: bool,
    /// `ack_mode = "..."`: the signature is checked against it.
    pub(crate) ack_mode: Option<AckMode>,
    /// `processing_order = "..."` other than `partition`, where it is written: a batch listener
    /// cannot have it.
    pub(crate) concurrent_order: Option<(ProcessingOrder, Span)>,
    /// The `Endpoint` builder calls the other arguments stand for, in the order written, each
    /// spanned on its argument, e.g. `.group("billing")`.
    pub(crate) calls: Vec<TokenStream>,
}

/// Parses `[("orders", [0, 1], "beginning"), ("audit", [2])]` into `.topic_partitions(..)`
/// calls, one per topic, and the span of the first topic.
fn topic_partitions(expr: &Expr, errors: &mut Errors) -> (Vec<TokenStream>, Option<Span>) {
    let usage = "`topic_partitions` takes a list of (topic, [partitions], start), e.g. topic_partitions = [(\"orders\", [0, 1], \"beginning\"), (\"audit\", [2], \"offset:42\")]";
    let Expr::Array(list) = expr else {
        errors.add(expr.span(), usage);
        return (Vec::new(), None);
    };
    let (mut calls, mut first) = (Vec::new(), None);
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
        let start = match start.map(|s| string("topic_partitions", s, errors)) {
            Some(Some(start)) => start,
            Some(None) => continue,
            None => LitStr::new("committed", topic.span()),
        };
        if !has_placeholder(&start.value()) {
            if let Err(message) = start.value().parse::<StartPosition>() {
                errors.add(start.span(), message);
            }
        }
        first.get_or_insert(topic.span());
        calls.push(quote_spanned!(topic.span()=> .topic_partitions(#topic, [#(#numbers),*], #start)));
    }
    (calls, first)
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
            let message = match key {
                // Parsed at compile time: no placeholders.
                "ack_mode" => "`ack_mode` takes a string literal naming the mode: ack_mode = \"manual\" (not AckMode::Manual); one of record, batch, time, count, count_time, manual, manual_immediate".to_string(),
                "processing_order" => "`processing_order` takes a string literal naming the order: processing_order = \"key\" (not ProcessingOrder::Key); one of partition, key, unordered".to_string(),
                _ => format!("`{key}` takes a string literal, e.g. {key} = \"...\" (\"${{ENV_VAR}}\" or \"${{ENV_VAR:default}}\" takes it from the environment at start)"),
            };
            errors.add(expr.span(), message);
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
/// the same rule unless it holds a placeholder. The call for a value (`call`) or for the text
/// with its placeholder (`text_call`, checked at start), or `None` after an error.
fn parsed_setting<T>(
    text: &LitStr,
    parse: fn(&str) -> Result<T, String>,
    call: impl FnOnce(T) -> TokenStream,
    text_call: impl FnOnce(&LitStr) -> TokenStream,
    errors: &mut Errors,
) -> Option<TokenStream> {
    if has_placeholder(&text.value()) {
        return Some(text_call(text));
    }
    match parse(&text.value()) {
        Ok(value) => Some(call(value)),
        Err(message) => {
            errors.add(text.span(), message);
            None
        }
    }
}

/// A wrapper function with the signature a callback argument must have, calling the user's
/// path: a function of another signature is reported on the path.
fn callback(path: &syn::Path, method: &str, wrapper: TokenStream) -> TokenStream {
    let method = syn::Ident::new(method, path.span());
    quote_spanned!(path.span()=> .#method({ #wrapper }))
}

impl ListenerArgs {
    pub(crate) fn parse(metas: Punctuated<Meta, Token![,]>, errors: &mut Errors) -> ListenerArgs {
        let private = private();
        let mut args = ListenerArgs::default();
        let mut seen: Vec<String> = Vec::new();
        // What the checks across arguments need: the topics named, the pattern, the first
        // explicitly assigned topic.
        let (mut topics, mut pattern, mut partitions) = (0usize, None::<Span>, None::<Span>);
        // A topic argument whose value was refused (and reported): the listener does name its
        // topics, so "a listener needs a topic" would be a spurious follow-on error.
        let mut topic_value_refused = false;
        for meta in metas {
            let (key, span, calls) = match &meta {
                Meta::List(list) if list.path.is_ident("retry") => {
                    let calls = retry_calls(list, errors);
                    let call =
                        quote_spanned!(list.path.span()=> .retry_topics(#private::RetryTopics::new() #(#calls)*));
                    ("retry".to_string(), list.path.span(), vec![call])
                }
                Meta::NameValue(nv) => {
                    let key = nv.path.get_ident().map(ToString::to_string).unwrap_or_default();
                    let errors_before = errors.count();
                    let calls = args.argument(&key, nv, &mut topics, &mut pattern, &mut partitions, errors);
                    if TOPIC_KEYS.contains(&key.as_str()) && errors.count() > errors_before {
                        topic_value_refused = true;
                    }
                    (key, nv.path.span(), calls)
                }
                _ => {
                    errors.add(meta.span(), format!("expected `key = value`; valid keys: {}", KEYS.join(", ")));
                    continue;
                }
            };
            if ONCE_KEYS.contains(&key.as_str()) {
                if seen.contains(&key) {
                    errors.add(span, format!("`{key}` is given twice"));
                    continue;
                }
                seen.push(key);
            }
            args.calls.extend(calls);
        }
        if topics == 0 && pattern.is_none() && partitions.is_none() && !topic_value_refused {
            errors.add(
                Span::call_site(),
                "a listener needs `topic = \"...\"`, `topics = [...]`, `topic_pattern = \"...\"` or `topic_partitions = [...]`",
            );
        }
        if let Some(partitions) = partitions.filter(|_| topics > 0 || pattern.is_some()) {
            errors.add(partitions, "give either topics, a topic_pattern or topic_partitions, not several");
        }
        if let Some(pattern) = pattern.filter(|_| topics > 0) {
            errors.add(pattern, "give either topics or a topic_pattern, not both");
        }
        if let Some((order, span)) = args.concurrent_order.filter(|_| args.batch) {
            errors.add(
                span,
                format!("a batch listener cannot have processing_order \"{order}\": a batch is handed over whole, in partition order; drop `batch = true` (and take one record) to run records as tasks"),
            );
        }
        args
    }

    /// One `key = value` argument: the builder calls it stands for (none after an error, or for
    /// what `ListenerArgs` keeps), and what the checks across arguments need.
    fn argument(
        &mut self,
        key: &str,
        nv: &syn::MetaNameValue,
        topics: &mut usize,
        pattern: &mut Option<Span>,
        partitions: &mut Option<Span>,
        errors: &mut Errors,
    ) -> Vec<TokenStream> {
        let private = private();
        let value = &nv.value;
        // A string setting taken as it is (placeholders resolved at start) by `.method(value)`.
        let text = |method: &str, errors: &mut Errors| -> Vec<TokenStream> {
            let method = syn::Ident::new(method, nv.path.span());
            string(key, value, errors).map(|s| quote_spanned!(s.span()=> .#method(#s))).into_iter().collect()
        };
        match key {
            "topic" | "topics" => {
                let named = if key == "topic" {
                    string(key, value, errors).into_iter().collect()
                } else {
                    strings(key, value, errors)
                };
                *topics += named.len();
                named.iter().map(|t| quote_spanned!(t.span()=> .topic(#t))).collect()
            }
            "topic_pattern" => {
                let found = string(key, value, errors);
                if let Some(p) = &found {
                    pattern.get_or_insert(p.span());
                }
                found.iter().map(|p| quote_spanned!(p.span()=> .topic_pattern(#p))).collect()
            }
            "topic_partitions" => {
                let (calls, first) = topic_partitions(value, errors);
                if let Some(first) = first {
                    partitions.get_or_insert(first);
                }
                calls
            }
            "id" => {
                if let Some(id) = string(key, value, errors) {
                    self.id.get_or_insert(id);
                }
                Vec::new()
            }
            "group" => text("group", errors),
            "container_factory" => text("container_factory", errors),
            "client_id_prefix" => text("client_id_prefix", errors),
            "reply_to" => text("reply_to", errors),
            "auto_offset_reset" => {
                let Some(reset) = string(key, value, errors) else { return Vec::new() };
                let text = reset.value();
                if matches!(text.trim(), "earliest" | "latest" | "error") || has_placeholder(&text) {
                    vec![quote_spanned!(reset.span()=> .auto_offset_reset(#reset))]
                } else {
                    errors.add(
                        reset.span(),
                        format!("`auto_offset_reset` is \"earliest\", \"latest\" or \"error\", not `{text}`"),
                    );
                    Vec::new()
                }
            }
            "filter" => {
                let usage = "`filter` takes the path of a `fn(&Record<'_>) -> bool` (true: hand the record over), e.g. filter = only_paid";
                path_of(value, usage, errors)
                    .map(|path| {
                        callback(
                            &path,
                            "filter",
                            quote_spanned! {path.span()=>
                                fn __filter(record: &#private::Record<'_>) -> bool {
                                    #path(record)
                                }
                                __filter
                            },
                        )
                    })
                    .into_iter()
                    .collect()
            }
            "on_partitions_assigned" => {
                let usage = "`on_partitions_assigned` takes the path of a `fn(&[TopicPartition], &ConsumerHandle)`, e.g. on_partitions_assigned = rewind";
                path_of(value, usage, errors)
                    .map(|path| {
                        callback(&path, "on_partitions_assigned", quote_spanned! {path.span()=>
                            fn __on_partitions_assigned(partitions: &[#private::TopicPartition], consumer: &#private::ConsumerHandle) {
                                #path(partitions, consumer)
                            }
                            __on_partitions_assigned
                        })
                    })
                    .into_iter()
                    .collect()
            }
            "error_handler" => {
                let usage = "`error_handler` takes the path of a `fn() -> impl ErrorHandler`, e.g. error_handler = handlers::dead_letters";
                path_of(value, usage, errors)
                    .map(|path| quote_spanned!(path.span()=> .error_handler(#path())))
                    .into_iter()
                    .collect()
            }
            "properties" => {
                let properties = strings(key, value, errors);
                for property in &properties {
                    if !property.value().contains('=') {
                        errors.add(property.span(), "a property is written \"key=value\"");
                    }
                }
                vec![quote_spanned!(value.span()=> .properties([#(#properties),*]))]
            }
            "concurrency" => match literal(value) {
                Some(Lit::Int(n)) => match n.base10_parse::<usize>() {
                    Ok(0) => {
                        errors.add(n.span(), "`concurrency` must be at least 1");
                        Vec::new()
                    }
                    Ok(count) => vec![quote_spanned!(n.span()=> .concurrency(#count))],
                    Err(e) => {
                        errors.push(e);
                        Vec::new()
                    }
                },
                Some(Lit::Str(s)) => parsed_setting(
                    s,
                    parse_concurrency,
                    |count| quote_spanned!(s.span()=> .concurrency(#count)),
                    |text| quote_spanned!(s.span()=> .concurrency_text(#text)),
                    errors,
                )
                .into_iter()
                .collect(),
                _ => {
                    errors.add(value.span(), "`concurrency` takes an integer literal (or a \"${ENV_VAR}\" string)");
                    Vec::new()
                }
            },
            "auto_startup" => match literal(value) {
                Some(Lit::Bool(b)) => vec![quote_spanned!(b.span()=> .auto_startup(#b))],
                Some(Lit::Str(s)) => parsed_setting(
                    s,
                    parse_auto_startup,
                    |start| quote_spanned!(s.span()=> .auto_startup(#start)),
                    |text| quote_spanned!(s.span()=> .auto_startup_text(#text)),
                    errors,
                )
                .into_iter()
                .collect(),
                _ => {
                    errors.add(value.span(), "`auto_startup` takes true or false (or a \"${ENV_VAR}\" string)");
                    Vec::new()
                }
            },
            "batch" => {
                match literal(value) {
                    Some(Lit::Bool(b)) => self.batch |= b.value,
                    _ => errors.add(value.span(), "`batch` takes true or false"),
                }
                Vec::new()
            }
            "processing_order" => {
                let Some(order) = string(key, value, errors) else { return Vec::new() };
                match order.value().parse::<ProcessingOrder>() {
                    Ok(parsed) => {
                        if parsed.is_concurrent() {
                            self.concurrent_order = Some((parsed, order.span()));
                        }
                        let variant = syn::Ident::new(&format!("{parsed:?}"), order.span());
                        vec![quote_spanned!(order.span()=> .processing_order(#private::ProcessingOrder::#variant))]
                    }
                    Err(unknown) => {
                        errors.add(order.span(), unknown);
                        Vec::new()
                    }
                }
            }
            "max_concurrency" => match literal(value) {
                Some(Lit::Int(n)) => match n.base10_parse::<usize>() {
                    Ok(0) => {
                        errors.add(n.span(), "`max_concurrency` must be at least 1 (records in flight per consumer)");
                        Vec::new()
                    }
                    Ok(records) => vec![quote_spanned!(n.span()=> .max_concurrency(#records))],
                    Err(e) => {
                        errors.push(e);
                        Vec::new()
                    }
                },
                _ => {
                    errors.add(value.span(), "`max_concurrency` takes an integer literal: max_concurrency = 1000");
                    Vec::new()
                }
            },
            "ack_mode" => {
                let Some(mode) = string(key, value, errors) else { return Vec::new() };
                match mode.value().parse::<AckMode>() {
                    Ok(parsed) => {
                        self.ack_mode.get_or_insert(parsed);
                        let variant = syn::Ident::new(&format!("{parsed:?}"), mode.span());
                        vec![quote_spanned!(mode.span()=> .ack_mode(#private::AckMode::#variant))]
                    }
                    Err(unknown) => {
                        errors.add(mode.span(), unknown);
                        Vec::new()
                    }
                }
            }
            _ => {
                errors.add(
                    nv.path.span(),
                    format!(
                        "unknown argument `{}`;{} valid arguments: {}",
                        if key.is_empty() { "?" } else { key },
                        suggestion(key),
                        KEYS.join(", ")
                    ),
                );
                Vec::new()
            }
        }
    }
}

/// " did you mean `x`?" for a key written as Spring writes it (camelCase: `groupId`,
/// `containerFactory`), or one that belongs inside `retry(...)`; else nothing.
fn suggestion(key: &str) -> String {
    let mut snake = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    let snake = match snake.as_str() {
        "group_id" => "group".to_string(),
        "topic_partition" => "topic_partitions".to_string(),
        other => other.to_string(),
    };
    if snake != key && KEYS.contains(&snake.as_str()) {
        format!(" did you mean `{snake}`?")
    } else if RETRY_KEYS.contains(&snake.as_str()) {
        format!(" `{snake}` belongs inside `retry(...)`, e.g. retry({snake} = ...);")
    } else {
        String::new()
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

    /// The builder calls `#[kafka_listener(<attr>)]`'s arguments stand for, as text.
    fn calls_of(attr: &str) -> String {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse_str(attr).expect("arguments");
        let mut errors = Errors::default();
        let args = ListenerArgs::parse(metas, &mut errors);
        assert!(errors.into_result().is_ok(), "{attr}");
        args.calls.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
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

    #[test]
    fn values_with_placeholders_are_left_to_start() {
        let calls = calls_of("topic_partitions = [(\"t\", [0], \"${START:time:garbage}\")], concurrency = \"${N:x}\", auto_startup = \"${GO}\"");
        assert!(calls.contains(". concurrency_text (\"${N:x}\")"), "{calls}");
        assert!(calls.contains(". auto_startup_text (\"${GO}\")"), "{calls}");
        assert!(calls.contains("\"${START:time:garbage}\""), "{calls}");
    }

    #[test]
    fn values_without_placeholders_become_typed_builder_calls() {
        let calls = calls_of("topic = \"t\", concurrency = \"3\", auto_startup = \"false\", ack_mode = \"ManualImmediate\", retry(backoff = \"1.5s\")");
        assert!(calls.contains(". concurrency (3usize)"), "{calls}");
        assert!(calls.contains(". auto_startup (false)"), "{calls}");
        assert!(calls.contains(":: AckMode :: ManualImmediate"), "{calls}");
        assert!(calls.contains(". backoff (:: core :: time :: Duration :: from_millis (1500u64))"), "{calls}");
        assert!(calls_of("topic_partitions = [(\"t\", [0, 1])]").contains("[0 , 1] , \"committed\""));
    }
}
