//! Locks that survive a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Locks, recovering from poisoning: the guarded data stays consistent because nothing panics
/// while holding these locks (handler panics are caught outside them).
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
