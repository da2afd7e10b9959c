use std::fmt;

use super::Record;

/// Which part of a record a conversion read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordPart {
    /// The value.
    Payload,
    /// The key.
    Key,
    /// A header.
    Header,
    /// Something else (state, context).
    Other,
}

impl fmt::Display for RecordPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordPart::Payload => "payload",
            RecordPart::Key => "key",
            RecordPart::Header => "header",
            RecordPart::Other => "context",
        })
    }
}

/// A record could not be converted into a handler argument: bad JSON, bad UTF-8, no key, ...
///
/// It carries where the record is and the cause; the error handler gets it and does not retry it.
#[derive(Debug, thiserror::Error)]
#[error("cannot convert the {part} of {topic}-{partition}@{offset} into `{}`: {source}", short_path(target))]
pub struct ConversionError {
    /// The record's topic.
    pub topic: String,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// What was being read.
    pub part: RecordPart,
    /// The type being built, with its module paths (`kafka_listener::extract::payload::Json<app::Order>`);
    /// messages show it without them (`Json<Order>`).
    pub target: &'static str,
    /// Why it failed.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl ConversionError {
    /// `part` of `record` is null (a tombstone's value, a keyless record's key) and `T` cannot
    /// be built from nothing: the message names `Option<T>`, which can.
    pub(crate) fn null<T>(record: &Record<'_>, part: RecordPart) -> Self {
        let (what, records) = match part {
            RecordPart::Key => ("has no key", "keyless records"),
            _ => ("has no payload (a tombstone)", "tombstones"),
        };
        let reason = format!("the record {what}; take Option<{}> to receive {records} as None", short_type_name::<T>());
        ConversionError::new::<T>(record, part, reason)
    }

    /// A failure to build `T` from `part` of `record`.
    pub fn new<T>(
        record: &Record<'_>,
        part: RecordPart,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        ConversionError {
            topic: record.topic().to_string(),
            partition: record.partition(),
            offset: record.offset(),
            part,
            target: std::any::type_name::<T>(),
            source: cause.into(),
        }
    }
}

/// `T`'s name without module paths, as a user writes it (`Json<Order>`, not
/// `kafka_listener::extract::payload::Json<app::Order>`).
pub(crate) fn short_type_name<T>() -> String {
    short_path(std::any::type_name::<T>())
}

/// A type name without module paths.
pub(crate) fn short_path(full: &str) -> String {
    let mut short = String::with_capacity(full.len());
    let mut ident_start = 0;
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            // `path::` before a name: drop the path.
            chars.next();
            short.truncate(ident_start);
            continue;
        }
        short.push(c);
        // `{{closure}}` is a path segment too (types declared inside functions).
        if !(c.is_alphanumeric() || matches!(c, '_' | '{' | '}')) {
            ident_start = short.len();
        }
    }
    short
}

#[cfg(test)]
mod tests {
    #[test]
    fn type_names_lose_their_module_paths() {
        struct Order;
        assert_eq!(super::short_type_name::<Option<crate::Json<Order>>>(), "Option<Json<Order>>");
        assert_eq!(super::short_type_name::<crate::Key<String>>(), "Key<String>");
        assert_eq!(super::short_type_name::<(u8, Vec<i32>)>(), "(u8, Vec<i32>)");
        struct Local;
        let in_closure = || super::short_type_name::<crate::Json<Local>>();
        assert_eq!(in_closure(), "Json<Local>");
        assert_eq!(super::short_path("app::run::{{closure}}::Order"), "Order");
    }
}
