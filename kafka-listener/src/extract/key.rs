use std::ops::{Deref, DerefMut};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{ConversionError, FromRecord, Json, ListenerContext, OptionalFromRecord, Record, RecordPart};

/// The record's key, decoded as `T`: `String`, `Vec<u8>`, `Bytes`, `Json<T>`, or a big-endian
/// integer (`i32`, `i64`, `u64`, as Java's serializers write them). A record without a key is a
/// conversion error; take `Option<Key<T>>` to receive such records with `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Key<T>(pub T);

impl<T> Deref for Key<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Key<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// A type a key decodes into (see [`Key`]). Implement it for your own key formats.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be decoded from a record key",
    note = "Key<T> takes String, Vec<u8>, Bytes, Json<T>, i32, i64, u64, or a type implementing `FromKey`"
)]
pub trait FromKey: Sized {
    /// Decodes the key bytes.
    fn from_key(key: &[u8]) -> Result<Self, Box<dyn std::error::Error + Send + Sync>>;
}

impl FromKey for String {
    fn from_key(key: &[u8]) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(std::str::from_utf8(key)?.to_string())
    }
}

impl FromKey for Vec<u8> {
    fn from_key(key: &[u8]) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(key.to_vec())
    }
}

impl FromKey for Bytes {
    fn from_key(key: &[u8]) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Bytes::copy_from_slice(key))
    }
}

impl<T: DeserializeOwned> FromKey for Json<T> {
    fn from_key(key: &[u8]) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Json(serde_json::from_slice(key)?))
    }
}

macro_rules! big_endian_keys {
    ($($ty:ty),*) => {$(
        impl FromKey for $ty {
            fn from_key(key: &[u8]) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                let bytes: [u8; std::mem::size_of::<$ty>()] = key.try_into().map_err(|_| {
                    format!("expected {} bytes (big-endian {}), got {}", std::mem::size_of::<$ty>(), stringify!($ty), key.len())
                })?;
                Ok(<$ty>::from_be_bytes(bytes))
            }
        }
    )*};
}
big_endian_keys!(i32, i64, u64);

impl<T: FromKey> FromRecord for Key<T> {
    fn from_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        Self::from_record_optional(record, cx)?.ok_or_else(|| ConversionError::null::<Self>(record, RecordPart::Key))
    }
}

/// `Option<Key<T>>`: `None` for a record without a key; a key that does not decode as `T` is still
/// a conversion error.
impl<T: FromKey> OptionalFromRecord for Key<T> {
    fn from_record_optional(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Option<Self>, ConversionError> {
        let Some(key) = record.key() else { return Ok(None) };
        T::from_key(key).map(|k| Some(Key(k))).map_err(|e| ConversionError::new::<Self>(record, RecordPart::Key, e))
    }
}
