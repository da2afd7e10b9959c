//! What a factory may run around every listener invocation: record filters and interceptors
//! (Spring's `RecordFilterStrategy`, `RecordInterceptor` and `BatchInterceptor`).

use std::sync::Arc;

use super::ListenerFailure;
use crate::extract::Record;

/// Says which records a listener gets: `true` to hand the record over, `false` to discard it.
/// Discarded records are not handled; they count as processed (committed) unless the factory sets
/// `ack_discarded(false)`.
pub type RecordFilter = Arc<dyn Fn(&Record<'_>) -> bool + Send + Sync>;

/// Runs around each invocation of a record listener (set on the factory).
///
/// ```
/// use kafka_listener::extract::Record;
/// use kafka_listener::handler::RecordInterceptor;
///
/// /// Hands over records without a value as `{}`, and skips those marked as tests.
/// struct Defaults;
///
/// impl RecordInterceptor for Defaults {
///     fn intercept<'r>(&self, record: Record<'r>, _listener_id: &str) -> Option<Record<'r>> {
///         if record.header("test").is_some() {
///             return None;
///         }
///         match record.payload() {
///             None => Some(record.with_payload(Some(b"{}".to_vec()))),
///             Some(_) => Some(record),
///         }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a record interceptor",
    note = "implement `kafka_listener::handler::RecordInterceptor` (intercept, and optionally success and failure)"
)]
pub trait RecordInterceptor: Send + Sync + 'static {
    /// Before the listener: the record to hand over — as it is, changed (`Record::with_payload`,
    /// `with_key`, `with_header`), or `None` to skip it (it then counts as processed).
    fn intercept<'r>(&self, record: Record<'r>, listener_id: &str) -> Option<Record<'r>>;

    /// After the listener handled the record.
    fn success(&self, record: &Record<'_>, listener_id: &str) {
        let _ = (record, listener_id);
    }

    /// After the listener failed on the record (at every failed attempt).
    fn failure(&self, record: &Record<'_>, failure: &ListenerFailure, listener_id: &str) {
        let _ = (record, failure, listener_id);
    }
}

/// Runs around each invocation of a batch listener (set on the factory).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a batch interceptor",
    note = "implement `kafka_listener::handler::BatchInterceptor` (intercept, and optionally success and failure)"
)]
pub trait BatchInterceptor: Send + Sync + 'static {
    /// Before the listener: the records to hand over, changed or fewer; those left out count as
    /// processed.
    fn intercept<'r>(&self, records: Vec<Record<'r>>, listener_id: &str) -> Vec<Record<'r>>;

    /// After the listener handled the records.
    fn success(&self, records: &[Record<'_>], listener_id: &str) {
        let _ = (records, listener_id);
    }

    /// After the listener failed on the records (at every failed attempt).
    fn failure(&self, records: &[Record<'_>], failure: &ListenerFailure, listener_id: &str) {
        let _ = (records, failure, listener_id);
    }
}
