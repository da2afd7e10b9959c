//! Handlers: functions of extractors, invoked by listener type (the adapter layer).
//!
//! `#[kafka_listener]` generates the invocation of an annotated function. Listeners built in code
//! ([`Endpoint`](crate::Endpoint)) take any function or closure whose parameters are extractors,
//! through [`Handler`], [`BlockingHandler`] and [`BatchHandler`], implemented for functions of up
//! to 12 parameters (as axum's handlers are).

mod error;
mod interceptor;
mod invoke;

pub use error::{
    BatchListenerFailed, BatchOutcome, HandlerOutput, IntoListenerResult, ListenerError, ListenerFailure, RecordOutcome,
};
pub use interceptor::{BatchInterceptor, RecordFilter, RecordInterceptor};
#[doc(hidden)]
pub use invoke::{drive, Job};
pub(crate) use invoke::{BatchInvoker, RecordInvoker, RecordStarter};

use std::future::Future;

use crate::extract::{FromBatch, FromRecord, ListenerContext, Record, Requirements};

/// An async function (or closure) whose parameters are record extractors.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an async record handler",
    note = "a handler is an async fn or closure whose parameters implement `FromRecord` and which returns () or Result<(), E>",
    note = "for a plain (non-async) fn, use `blocking_handler`"
)]
pub trait Handler<Args>: Send + Sync + 'static {
    /// Converts the record into the arguments and runs the handler to completion.
    fn call(&self, record: &Record<'_>, cx: &ListenerContext<'_>) -> RecordOutcome;
    /// Converts the record into the arguments and returns the handler's future, to run as a task
    /// (`ProcessingOrder::Key` and `Unordered`); a conversion failure is returned as it is.
    #[doc(hidden)]
    fn start(&self, record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Job, ListenerFailure>;
    /// What the parameters need from the container.
    fn requirements(requirements: &mut Requirements);
}

/// A plain function (or closure) whose parameters are record extractors.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a blocking record handler",
    note = "a blocking handler is a fn or closure whose parameters implement `FromRecord` and which returns () or Result<(), E>"
)]
pub trait BlockingHandler<Args>: Send + Sync + 'static {
    /// Converts the record into the arguments and calls the handler.
    fn call(&self, record: &Record<'_>, cx: &ListenerContext<'_>) -> RecordOutcome;
    /// Converts the record into the arguments and returns the call, to run on the blocking pool
    /// (`ProcessingOrder::Key` and `Unordered`); a conversion failure is returned as it is.
    #[doc(hidden)]
    fn start(self: std::sync::Arc<Self>, record: &Record<'_>, cx: &ListenerContext<'_>)
        -> Result<Job, ListenerFailure>;
    /// What the parameters need from the container.
    fn requirements(requirements: &mut Requirements);
}

/// An async function (or closure) whose parameters are batch extractors.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an async batch handler",
    note = "a batch handler is an async fn or closure whose parameters implement `FromBatch` (Vec<X>, Acknowledgment, ConsumerHandle, State<T>)"
)]
pub trait BatchHandler<Args>: Send + Sync + 'static {
    /// Converts the batch into the arguments and runs the handler to completion. A conversion
    /// failure comes with the index of the record that failed.
    fn call(&self, records: &[Record<'_>], cx: &ListenerContext<'_>) -> BatchOutcome;
    /// What the parameters need from the container.
    fn requirements(requirements: &mut Requirements);
}

macro_rules! impl_handlers {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, $($ty,)*> Handler<($($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoListenerResult,
            $($ty: FromRecord,)*
        {
            fn call(&self, record: &Record<'_>, cx: &ListenerContext<'_>) -> RecordOutcome {
                $(let $ty = $ty::from_record(record, cx).map_err(ListenerFailure::Conversion)?;)*
                drive(self($($ty),*)).into_listener_result().map_err(ListenerFailure::Handler)
            }

            fn start(&self, record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Job, ListenerFailure> {
                $(let $ty = $ty::from_record(record, cx).map_err(ListenerFailure::Conversion)?;)*
                let future = self($($ty),*);
                Ok(Job::Async(Box::pin(async move {
                    future.await.into_listener_result().map_err(ListenerFailure::Handler)
                })))
            }

            fn requirements(requirements: &mut Requirements) {
                $($ty::requirements(requirements);)*
                requirements.replies = R::REPLIES;
            }
        }

        #[allow(non_snake_case, unused_variables)]
        impl<F, R, $($ty,)*> BlockingHandler<($($ty,)*)> for F
        where
            F: Fn($($ty),*) -> R + Send + Sync + 'static,
            R: IntoListenerResult,
            $($ty: FromRecord + Send + 'static,)*
        {
            fn call(&self, record: &Record<'_>, cx: &ListenerContext<'_>) -> RecordOutcome {
                $(let $ty = $ty::from_record(record, cx).map_err(ListenerFailure::Conversion)?;)*
                self($($ty),*).into_listener_result().map_err(ListenerFailure::Handler)
            }

            fn start(self: std::sync::Arc<Self>, record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Job, ListenerFailure> {
                $(let $ty = $ty::from_record(record, cx).map_err(ListenerFailure::Conversion)?;)*
                Ok(Job::Blocking(Box::new(move || {
                    self($($ty),*).into_listener_result().map_err(ListenerFailure::Handler)
                })))
            }

            fn requirements(requirements: &mut Requirements) {
                $($ty::requirements(requirements);)*
                requirements.replies = R::REPLIES;
            }
        }

        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, R, $($ty,)*> BatchHandler<($($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R>,
            R: IntoListenerResult,
            $($ty: FromBatch,)*
        {
            fn call(&self, records: &[Record<'_>], cx: &ListenerContext<'_>) -> BatchOutcome {
                $(let $ty = $ty::from_batch(records, cx).map_err(|(i, e)| (Some(i), ListenerFailure::Conversion(e)))?;)*
                drive(self($($ty),*)).into_listener_result().map_err(|e| (None, ListenerFailure::Handler(e)))
            }

            fn requirements(requirements: &mut Requirements) {
                $($ty::requirements(requirements);)*
                requirements.replies = R::REPLIES;
            }
        }
    };
}

impl_handlers!();
impl_handlers!(T1);
impl_handlers!(T1, T2);
impl_handlers!(T1, T2, T3);
impl_handlers!(T1, T2, T3, T4);
impl_handlers!(T1, T2, T3, T4, T5);
impl_handlers!(T1, T2, T3, T4, T5, T6);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);
