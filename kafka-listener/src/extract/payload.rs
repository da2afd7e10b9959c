use std::ops::{Deref, DerefMut};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{ConversionError, FromRecord, ListenerContext, Record, RecordPart};

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
    record.payload().ok_or_else(|| {
        ConversionError::new::<T>(record, RecordPart::Payload, "the record has no payload (a tombstone)")
    })
}

impl<T: DeserializeOwned> FromRecord for Json<T> {
    fn from_record(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        let bytes = payload::<Self>(record)?;
        serde_json::from_slice(bytes)
            .map(Json)
            .map_err(|e| ConversionError::new::<Self>(record, RecordPart::Payload, e))
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
