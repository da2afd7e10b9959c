//! Containing panics of code the container calls: a panic in a user's callback (or a bug of ours)
//! must never end a consumer thread silently.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into its message.
///
/// `AssertUnwindSafe`: what the callbacks see is either immutable or guarded by locks that
/// recover from poisoning (`shared::lock`), and the container gives every panicking call a defined
/// outcome instead of reusing half-updated state.
pub(crate) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| panic_message(&*panic))
}

/// The message a panic carries.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
