use std::ops::{Deref, DerefMut};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{ConversionError, FromRecord, ListenerContext, OptionalFromRecord, Record, RecordPart};

/// A JSON payload (or, in `Key<Json<T>>`, a JSON key), decoded with serde.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// The payload, or a conversion error saying the record is a tombstone.
pub(super) fn payload<'r, T>(record: &'r Record<'_>) -> Result<&'r [u8], ConversionError> {
    record.payload().ok_or_else(|| tombstone::<T>(record))
}

fn tombstone<T>(record: &Record<'_>) -> ConversionError {
    ConversionError::null::<T>(record, RecordPart::Payload)
}

fn decode<T: DeserializeOwned>(record: &Record<'_>, bytes: &[u8]) -> Result<Json<T>, ConversionError> {
    serde_json::from_slice(bytes).map(Json).map_err(|e| ConversionError::new::<Json<T>>(record, RecordPart::Payload, e))
}

/// A JSON value. A tombstone (null value) reads as JSON `null`, so `Json<Option<T>>` gets `None`
/// for it (and for a payload `null`); for a `T` that cannot be null it is a conversion error.
impl<T: DeserializeOwned> FromRecord for Json<T> {
    fn from_record(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        match record.payload() {
            Some(bytes) => decode(record, bytes),
            None => serde_json::from_value(serde_json::Value::Null).map(Json).map_err(|_| tombstone::<Self>(record)),
        }
    }
}

/// `Option<Json<T>>`: `None` for a tombstone; a payload that is not JSON for `T` is still a
/// conversion error.
impl<T: DeserializeOwned> OptionalFromRecord for Json<T> {
    fn from_record_optional(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Option<Self>, ConversionError> {
        record.payload().map(|bytes| decode(record, bytes)).transpose()
    }
}

/// `Option<String>`: `None` for a tombstone; a payload that is not UTF-8 is still an error.
impl OptionalFromRecord for String {
    fn from_record_optional(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Option<Self>, ConversionError> {
        record.payload().map(|_| String::from_record(record, cx)).transpose()
    }
}

/// `Option<Vec<u8>>`: `None` for a tombstone.
impl OptionalFromRecord for Vec<u8> {
    fn from_record_optional(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Option<Self>, ConversionError> {
        Ok(record.payload().map(<[u8]>::to_vec))
    }
}

/// `Option<Bytes>`: `None` for a tombstone.
impl OptionalFromRecord for Bytes {
    fn from_record_optional(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Option<Self>, ConversionError> {
        Ok(record.payload().map(Bytes::copy_from_slice))
    }
}

impl FromRecord for String {
    fn from_record(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        let bytes = payload::<Self>(record)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|e| ConversionError::new::<Self>(record, RecordPart::Payload, e))
    }
}

impl FromRecord for Vec<u8> {
    fn from_record(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        payload::<Self>(record).map(<[u8]>::to_vec)
    }
}

impl FromRecord for Bytes {
    fn from_record(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        payload::<Self>(record).map(Bytes::copy_from_slice)
    }
}
