use std::error::Error as StdError;
use std::fmt;

use crate::extract::ConversionError;
use crate::producer::Payload;

/// The error a handler returns: any `std::error::Error`, converted with `?`, or a message.
///
/// Like `anyhow::Error`, it is not itself a `std::error::Error`, so that `?` converts any error.
pub struct ListenerError {
    inner: Box<dyn StdError + Send + Sync + 'static>,
    retryable: bool,
}

impl ListenerError {
    /// An error from anything that converts into a boxed error: a `String`, a `Box<dyn Error>`,
    /// an `anyhow::Error` (its messages only: [`from_anyhow`](Self::from_anyhow), with the
    /// `anyhow` feature, keeps its types for [`find`](Self::find)). For a `std::error::Error`,
    /// `?` and `From` do it.
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        ListenerError { inner: error.into(), retryable: true }
    }

    /// An error with just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        ListenerError { inner: message.to_string().into(), retryable: true }
    }

    /// An error that retrying cannot fix: the record goes to the recoverer (dead-letter topic) at
    /// once instead of being retried.
    pub fn fatal(error: impl Into<ListenerError>) -> Self {
        ListenerError { retryable: false, ..error.into() }
    }

    /// Whether retrying could help (false for [`fatal`](Self::fatal) errors).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    fn from_boxed(error: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        ListenerError { inner: error, retryable: true }
    }

    /// The underlying error.
    pub fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }

    /// The underlying error, owned.
    pub fn into_error(self) -> Box<dyn StdError + Send + Sync + 'static> {
        self.inner
    }

    /// The first error of type `E` in this error or its chain of causes (`source()`): finds
    /// `E` whether the handler returned it with `?`, wrapped it in an error of its own, or went
    /// through `anyhow` (`.context(..)` included) and [`ListenerError::new`]. Use it to classify
    /// failures (`backoff_function`, `not_retryable`) rather than `as_error().is::<E>()`, which
    /// sees only the outermost error.
    pub fn find<E: StdError + 'static>(&self) -> Option<&E> {
        #[cfg(feature = "anyhow")]
        if let Some(AnyhowError(error)) = self.inner.downcast_ref::<AnyhowError>() {
            return error.chain().find_map(|e| e.downcast_ref::<E>());
        }
        find_in_chain(self.as_error())
    }

    /// An `anyhow::Error` as a listener error (cargo feature `anyhow`):
    /// `.map_err(ListenerError::from_anyhow)?`. Unlike [`ListenerError::new`], which sees only
    /// the messages of an anyhow error, it keeps the error's types for [`find`](Self::find).
    #[cfg(feature = "anyhow")]
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        ListenerError { inner: Box::new(AnyhowError(error)), retryable: true }
    }
}

/// An `anyhow::Error` inside a [`ListenerError`]: its message, and its causes as `source()`.
#[cfg(feature = "anyhow")]
#[derive(Debug)]
struct AnyhowError(anyhow::Error);

#[cfg(feature = "anyhow")]
impl fmt::Display for AnyhowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(feature = "anyhow")]
impl StdError for AnyhowError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.chain().nth(1)
    }
}

/// The first `E` in `error` and its causes.
fn find_in_chain<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        next = error.source();
    }
    None
}

impl<E: StdError + Send + Sync + 'static> From<E> for ListenerError {
    fn from(error: E) -> Self {
        ListenerError { inner: Box::new(error), retryable: true }
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

/// The error a batch listener returns to say which record failed (Spring's
/// `BatchListenerFailedException`): the records before `index` count as handled and are committed;
/// the record at `index` is retried (alone, then with the rest of the batch behind it) per the
/// error handler's back-off, then recovered (e.g. dead-lettered); the records after it are
/// delivered again. Any other error from a batch listener retries the whole batch.
///
/// ```
/// use kafka_listener::handler::BatchListenerFailed;
/// use kafka_listener::{Json, ListenerError};
///
/// fn on_batch(amounts: Vec<Json<i64>>) -> Result<(), ListenerError> {
///     for (index, amount) in amounts.iter().enumerate() {
///         if amount.0 < 0 {
///             return Err(BatchListenerFailed::new(index, ListenerError::msg("negative amount")).into());
///         }
///     }
///     Ok(())
/// }
/// # assert!(on_batch(vec![Json(1), Json(-1)]).is_err());
/// ```
///
/// On a transactional factory the batch is one transaction, so the whole batch is retried.
#[derive(Debug)]
pub struct BatchListenerFailed {
    /// The index of the failed record in the batch the listener was given.
    pub index: usize,
    /// Why it failed.
    pub error: ListenerError,
}

impl BatchListenerFailed {
    /// The record at `index` failed with `error`.
    pub fn new(index: usize, error: impl Into<ListenerError>) -> Self {
        BatchListenerFailed { index, error: error.into() }
    }
}

impl fmt::Display for BatchListenerFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} of the batch failed: {}", self.index, self.error)
    }
}

impl StdError for BatchListenerFailed {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.error.as_error())
    }
}

impl ListenerError {
    /// The failed record's index and its error, if this is a [`BatchListenerFailed`].
    pub(crate) fn into_batch_failed(self) -> Result<BatchListenerFailed, ListenerError> {
        if !self.inner.is::<BatchListenerFailed>() {
            return Err(self);
        }
        match self.inner.downcast::<BatchListenerFailed>() {
            Ok(failed) => Ok(*failed),
            Err(inner) => Err(ListenerError { inner, retryable: self.retryable }),
        }
    }
}

/// What a handler produced: nothing, or a reply to publish (listeners that return a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerOutput {
    /// Nothing to publish.
    Done,
    /// The serialized reply value (`None`: a null value).
    Reply(Option<Vec<u8>>),
}

/// What a handler may return: `()` or `Result<(), E>` where `E` converts into [`ListenerError`];
/// or, for a replying listener, a value to publish (`Json(..)`, `String`, bytes, any
/// [`Payload`](crate::producer::Payload)) or `Result` of one.
#[diagnostic::on_unimplemented(
    message = "a kafka listener cannot return `{Self}`",
    note = "return () or Result<(), E> where E: std::error::Error + Send + Sync + 'static (or ListenerError)",
    note = "a listener that replies returns a Payload (Json<T>, String, Vec<u8>, ...) or Result<Payload, E>",
    note = "for anyhow::Result<()>: return Result<(), ListenerError> instead (`?` converts any std error into it) and turn an anyhow::Error into one with `.map_err(ListenerError::from_anyhow)?` (kafka-listener's `anyhow` feature; keeps the error's types for `find`) or `.map_err(ListenerError::new)?`"
)]
pub trait IntoListenerResult {
    /// Whether the handler returns a value to publish as a reply.
    const REPLIES: bool;

    /// The outcome of the invocation.
    fn into_listener_result(self) -> Result<HandlerOutput, ListenerError>;
}

impl IntoListenerResult for () {
    const REPLIES: bool = false;

    fn into_listener_result(self) -> Result<HandlerOutput, ListenerError> {
        Ok(HandlerOutput::Done)
    }
}

impl<E: Into<ListenerError>> IntoListenerResult for Result<(), E> {
    const REPLIES: bool = false;

    fn into_listener_result(self) -> Result<HandlerOutput, ListenerError> {
        self.map(|()| HandlerOutput::Done).map_err(Into::into)
    }
}

impl<T: Payload> IntoListenerResult for T {
    const REPLIES: bool = true;

    fn into_listener_result(self) -> Result<HandlerOutput, ListenerError> {
        let bytes = self.to_bytes().map_err(ListenerError::from_boxed)?;
        Ok(HandlerOutput::Reply(bytes.map(|b| b.into_owned())))
    }
}

impl<T: Payload, E: Into<ListenerError>> IntoListenerResult for Result<T, E> {
    const REPLIES: bool = true;

    fn into_listener_result(self) -> Result<HandlerOutput, ListenerError> {
        self.map_err(Into::into)?.into_listener_result()
    }
}

/// The outcome of a record invocation.
pub type RecordOutcome = Result<HandlerOutput, ListenerFailure>;

/// The outcome of a batch invocation: on failure, the index of the record that could not be
/// converted (if that was the failure) and the failure.
pub type BatchOutcome = Result<HandlerOutput, (Option<usize>, ListenerFailure)>;

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
    /// The handler's reply could not be published.
    Reply(Box<crate::Error>),
    /// The record's transaction could not begin or commit.
    Transaction(Box<crate::Error>),
}

impl ListenerFailure {
    /// A short, low-cardinality name of the kind of failure, for OpenTelemetry's `error.type`
    /// (the `process` span's field and the metrics' label): `conversion`, `handler`, `panic`,
    /// `reply` or `transaction`.
    pub fn error_type(&self) -> &'static str {
        match self {
            ListenerFailure::Conversion(_) => "conversion",
            ListenerFailure::Handler(_) => "handler",
            ListenerFailure::Panic(_) => "panic",
            ListenerFailure::Reply(_) => "reply",
            ListenerFailure::Transaction(_) => "transaction",
        }
    }

    /// The first error of type `E` in the failure's chain of causes (the handler's error and
    /// what it wraps, a conversion's cause, a reply's or transaction's client error), as
    /// [`ListenerError::find`].
    pub fn find<E: StdError + 'static>(&self) -> Option<&E> {
        match self {
            ListenerFailure::Handler(error) => error.find(),
            other => other.source().and_then(find_in_chain),
        }
    }

    /// Whether trying again could succeed (handler errors and panics; not conversion failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            ListenerFailure::Conversion(_) => false,
            ListenerFailure::Reply(error) => !matches!(**error, crate::Error::NoReplyDestination { .. }),
            ListenerFailure::Handler(error) => error.is_retryable(),
            _ => true,
        }
    }
}

impl fmt::Display for ListenerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerFailure::Conversion(e) => write!(f, "conversion failed: {e}"),
            ListenerFailure::Handler(e) => write!(f, "handler failed: {e}"),
            ListenerFailure::Panic(message) => write!(f, "handler panicked: {message}"),
            ListenerFailure::Reply(e) => write!(f, "the reply could not be published: {e}"),
            ListenerFailure::Transaction(e) => write!(f, "the transaction failed: {e}"),
        }
    }
}

impl StdError for ListenerFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ListenerFailure::Conversion(e) => Some(e),
            ListenerFailure::Handler(e) => Some(e.as_error()),
            ListenerFailure::Panic(_) => None,
            ListenerFailure::Reply(e) | ListenerFailure::Transaction(e) => Some(&**e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the database is down")]
    struct DatabaseDown;

    #[derive(Debug, thiserror::Error)]
    #[error("saving the payment")]
    struct Saving(#[source] DatabaseDown);

    #[test]
    fn find_sees_an_error_however_it_was_wrapped() {
        let plain: ListenerError = DatabaseDown.into();
        let wrapped: ListenerError = Saving(DatabaseDown).into();
        #[cfg_attr(not(feature = "anyhow"), allow(unused_mut))]
        let mut errors = vec![plain, wrapped];
        #[cfg(feature = "anyhow")]
        {
            errors.push(ListenerError::from_anyhow(anyhow::Error::from(DatabaseDown)));
            let with_context =
                ListenerError::from_anyhow(anyhow::Error::from(Saving(DatabaseDown)).context("payment 7"));
            assert_eq!(
                crate::error_handler::error_chain(with_context.as_error()),
                "payment 7: saving the payment: the database is down"
            );
            errors.push(with_context);
        }
        for error in errors {
            assert!(error.find::<DatabaseDown>().is_some(), "{error:?}");
            let failure = ListenerFailure::Handler(error);
            assert!(failure.find::<DatabaseDown>().is_some());
            assert!(failure.find::<std::io::Error>().is_none());
        }
    }
}
