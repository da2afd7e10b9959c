use std::error::Error as StdError;
use std::fmt;

use crate::extract::ConversionError;

/// The error a handler returns: any `std::error::Error`, converted with `?`, or a message.
///
/// Like `anyhow::Error`, it is not itself a `std::error::Error`, so that `?` converts any error.
pub struct ListenerError {
    inner: Box<dyn StdError + Send + Sync + 'static>,
}

impl ListenerError {
    /// An error with just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        ListenerError { inner: message.to_string().into() }
    }

    /// The underlying error.
    pub fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }

    /// The underlying error, owned.
    pub fn into_error(self) -> Box<dyn StdError + Send + Sync + 'static> {
        self.inner
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for ListenerError {
    fn from(error: E) -> Self {
        ListenerError { inner: Box::new(error) }
    }
}

impl fmt::Display for ListenerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for ListenerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// What a handler may return: `()` or `Result<(), E>` where `E` converts into [`ListenerError`].
#[diagnostic::on_unimplemented(
    message = "a kafka listener cannot return `{Self}`",
    note = "return () or Result<(), E> where E: std::error::Error + Send + Sync + 'static (or ListenerError)"
)]
pub trait IntoListenerResult {
    /// The outcome of the invocation.
    fn into_listener_result(self) -> Result<(), ListenerError>;
}

impl IntoListenerResult for () {
    fn into_listener_result(self) -> Result<(), ListenerError> {
        Ok(())
    }
}

impl<E: Into<ListenerError>> IntoListenerResult for Result<(), E> {
    fn into_listener_result(self) -> Result<(), ListenerError> {
        self.map_err(Into::into)
    }
}

/// The outcome of a batch invocation: on failure, the index of the record that could not be
/// converted (if that was the failure) and the failure.
pub type BatchOutcome = Result<(), (Option<usize>, ListenerFailure)>;

/// Why a record (or batch) was not handled: the error handler's input.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListenerFailure {
    /// The record could not be converted into the handler's arguments. Not retried.
    Conversion(ConversionError),
    /// The handler returned an error.
    Handler(ListenerError),
    /// The handler panicked; the message of the panic.
    Panic(String),
}

impl ListenerFailure {
    /// Whether trying again could succeed (handler errors and panics; not conversion failures).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ListenerFailure::Conversion(_))
    }
}

impl fmt::Display for ListenerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerFailure::Conversion(e) => write!(f, "conversion failed: {e}"),
            ListenerFailure::Handler(e) => write!(f, "handler failed: {e}"),
            ListenerFailure::Panic(message) => write!(f, "handler panicked: {message}"),
        }
    }
}

impl StdError for ListenerFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ListenerFailure::Conversion(e) => Some(e),
            ListenerFailure::Handler(e) => Some(e.as_error()),
            ListenerFailure::Panic(_) => None,
        }
    }
}
