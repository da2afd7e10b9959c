//! Extractors: how a record becomes a handler's arguments (axum-style, one trait per listener kind).
//!
//! Every parameter of a record listener implements [`FromRecord`]; every parameter of a batch
//! listener implements [`FromBatch`]. Implement [`FromRecord`] for your own types (Avro, Protobuf,
//! ...) and they become parameters too.

mod context;
mod error;
mod key;
mod meta;
mod payload;
mod record;
mod state;

pub use context::{ListenerContext, Requirements};
pub use error::{ConversionError, RecordPart};
pub use key::{FromKey, Key};
pub use meta::Meta;
pub use payload::Json;
pub use record::{ConsumerRecord, Headers, Record, DELIVERY_ATTEMPT_HEADER};
pub use state::State;
pub(crate) use state::StateMap;

/// A batch argument, or the index of the record that could not be converted and why.
pub type BatchConversion<T> = Result<T, (usize, ConversionError)>;

/// Builds one handler argument from a record.
///
/// ```
/// use kafka_listener::extract::{ConversionError, FromRecord, ListenerContext, Record, RecordPart};
///
/// /// A payload in a made-up format: a decimal number as text.
/// struct Amount(u64);
///
/// impl FromRecord for Amount {
///     fn from_record(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
///         let text = std::str::from_utf8(record.payload().unwrap_or_default())
///             .map_err(|e| ConversionError::new::<Self>(record, RecordPart::Payload, e))?;
///         text.trim().parse().map(Amount).map_err(|e| ConversionError::new::<Self>(record, RecordPart::Payload, e))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a record listener parameter",
    label = "this type does not implement `FromRecord`",
    note = "record listener parameters: Json<T>, String, Vec<u8>, Bytes, Key<T> (each also as Option<X> for tombstones and keyless records), Headers, Meta, ConsumerRecord, Acknowledgment, ConsumerHandle, State<T>, or your own type with `impl FromRecord for ...`",
    note = "to receive all records of one poll, add `batch = true` to #[kafka_listener] and take `Vec<X>`"
)]
pub trait FromRecord: Sized {
    /// Converts the record, or says why it cannot. Conversion failures are not retried.
    fn from_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError>;

    /// What the parameter needs from its container, checked by `ListenerRegistry::start`.
    fn requirements(requirements: &mut Requirements) {
        let _ = requirements;
    }
}

/// Builds one argument of a batch listener from all records of one poll.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a batch listener parameter",
    label = "this type does not implement `FromBatch`",
    note = "batch listener parameters: Vec<X> where X is a record extractor (Vec<Json<T>>, Vec<String>, Vec<ConsumerRecord>, ...), Acknowledgment, ConsumerHandle, State<T>",
    note = "a listener of single records does not take `batch = true`"
)]
pub trait FromBatch: Sized {
    /// Converts the batch; on failure, says which record (its index in `records`) could not be converted.
    fn from_batch(records: &[Record<'_>], cx: &ListenerContext<'_>) -> BatchConversion<Self>;

    /// What the parameter needs from its container, checked by `ListenerRegistry::start`.
    fn requirements(requirements: &mut Requirements) {
        let _ = requirements;
    }
}

/// An extractor of a part of the record that Kafka allows to be null (the value of a tombstone,
/// the key of a keyless record): `Option<Self>` is then a handler parameter that is `None` for the
/// null part, as Spring's `@Payload(required = false)`. A part that is present but cannot be
/// converted is still a conversion error.
///
/// Implemented for `Json<T>`, `String`, `Vec<u8>`, `Bytes` (the value) and `Key<T>` (the key);
/// implement it for your own payload types to take them as `Option<YourType>`.
///
/// ```
/// use kafka_listener::extract::{ConversionError, FromRecord, ListenerContext, OptionalFromRecord, Record, RecordPart};
///
/// /// A payload in a made-up format: a decimal number as text.
/// struct Amount(u64);
///
/// impl FromRecord for Amount {
///     fn from_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
///         Self::from_record_optional(record, cx)?
///             .ok_or_else(|| ConversionError::new::<Self>(record, RecordPart::Payload, "a tombstone"))
///     }
/// }
///
/// impl OptionalFromRecord for Amount {
///     fn from_record_optional(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Option<Self>, ConversionError> {
///         let Some(bytes) = record.payload() else { return Ok(None) };
///         let text = std::str::from_utf8(bytes).map_err(|e| ConversionError::new::<Self>(record, RecordPart::Payload, e))?;
///         text.trim().parse().map(|n| Some(Amount(n))).map_err(|e| ConversionError::new::<Self>(record, RecordPart::Payload, e))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`Option<{Self}>` is not a record listener parameter",
    label = "`{Self}` does not implement `OptionalFromRecord`",
    note = "Option<X> takes the extractors of a part Kafka allows to be null: Option<Json<T>>, Option<String>, Option<Vec<u8>>, Option<Bytes> (tombstones) and Option<Key<T>> (keyless records), or your own type with `impl OptionalFromRecord for ...`"
)]
pub trait OptionalFromRecord: FromRecord {
    /// Converts the record; `Ok(None)` when the part this extractor reads is null.
    fn from_record_optional(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Option<Self>, ConversionError>;
}

impl<T: OptionalFromRecord> FromRecord for Option<T> {
    fn from_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        T::from_record_optional(record, cx)
    }

    fn requirements(requirements: &mut Requirements) {
        T::requirements(requirements);
    }
}

impl<T: FromRecord> FromBatch for Vec<T> {
    fn from_batch(records: &[Record<'_>], cx: &ListenerContext<'_>) -> BatchConversion<Self> {
        records.iter().enumerate().map(|(i, record)| T::from_record(record, cx).map_err(|e| (i, e))).collect()
    }

    fn requirements(requirements: &mut Requirements) {
        T::requirements(requirements);
    }
}
