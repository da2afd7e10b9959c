use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;

use crate::extract::Json;

/// What a template sends as a record's value or key: the mirror of the extractors.
///
/// Built in: `Json<T>` (serde; `Json(&value)` borrows), `String`, `&str`, `Vec<u8>`, `&[u8]`, `Bytes`, a
/// reference to any of them (`&String`), and
/// `Option<P>` (`None` is a null value: a tombstone). Implement it for Avro, Protobuf, ...
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent as a record value or key",
    note = "send Json(&value), String, &str, Vec<u8>, &[u8], Bytes, Option<_> of those, or implement `Payload`"
)]
pub trait Payload {
    /// The bytes to send; `None` for a null (tombstone).
    fn to_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>>;
}

impl<T: Serialize> Payload for Json<T> {
    fn to_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Some(Cow::Owned(serde_json::to_vec(&self.0)?)))
    }
}

impl Payload for String {
    fn to_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Some(Cow::Borrowed(self.as_bytes())))
    }
}

impl Payload for str {
    fn to_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Some(Cow::Borrowed(self.as_bytes())))
    }
}

impl Payload for Vec<u8> {
    fn to_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Some(Cow::Borrowed(self)))
    }
}

impl Payload for [u8] {
    fn to_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Some(Cow::Borrowed(self)))
    }
}

impl Payload for Bytes {
    fn to_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Some(Cow::Borrowed(self)))
    }
}

/// A reference sends what it points at: `&String`, `&Vec<u8>`, `&Json<T>`, and `&str`, `&[u8]`.
impl<P: Payload + ?Sized> Payload for &P {
    fn to_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>> {
        (**self).to_bytes()
    }
}

impl<P: Payload> Payload for Option<P> {
    fn to_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Some(p) => p.to_bytes(),
            None => Ok(None),
        }
    }
}
