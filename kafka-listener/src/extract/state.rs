use std::any::{Any, TypeId};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::{
    BatchConversion, ConversionError, FromBatch, FromRecord, ListenerContext, Record, RecordPart, Requirements,
};

/// Application state given to the registry with `ListenerRegistry::with_state`, as in axum.
///
/// `T` is cloned for each invocation: wrap large state in an `Arc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct State<S>(pub S);

impl<S> Deref for State<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S> DerefMut for State<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.0
    }
}

impl<S: Clone + Send + Sync + 'static> State<S> {
    fn extract(cx: &ListenerContext<'_>) -> Option<Self> {
        cx.states.get::<S>().cloned().map(State)
    }
}

impl<S: Clone + Send + Sync + 'static> FromRecord for State<S> {
    fn from_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        Self::extract(cx).ok_or_else(|| missing::<S>(record))
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.state::<S>();
    }
}

impl<S: Clone + Send + Sync + 'static> FromBatch for State<S> {
    fn from_batch(records: &[Record<'_>], cx: &ListenerContext<'_>) -> BatchConversion<Self> {
        match (Self::extract(cx), records.first()) {
            (Some(state), _) => Ok(state),
            (None, Some(first)) => Err((0, missing::<S>(first))),
            // An empty batch is never delivered; nothing can be reported against a record.
            (None, None) => Err((0, missing_without_record::<S>())),
        }
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.state::<S>();
    }
}

fn missing<S>(record: &Record<'_>) -> ConversionError {
    ConversionError::new::<State<S>>(record, RecordPart::Other, missing_message::<S>())
}

fn missing_without_record<S>() -> ConversionError {
    ConversionError {
        topic: String::new(),
        partition: -1,
        offset: -1,
        part: RecordPart::Other,
        target: std::any::type_name::<State<S>>(),
        source: missing_message::<S>().into(),
    }
}

fn missing_message<S>() -> String {
    format!("no state of type `{}`; give it with ListenerRegistry::with_state", std::any::type_name::<S>())
}

/// Application states by type.
#[derive(Clone, Default)]
pub(crate) struct StateMap {
    /// By type; an application has a handful, so a scan beats hashing the `TypeId` for every
    /// record that takes a `State<T>`.
    states: Vec<(TypeId, Arc<dyn Any + Send + Sync>)>,
}

impl StateMap {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, state: T) {
        let id = TypeId::of::<T>();
        let state: Arc<dyn Any + Send + Sync> = Arc::new(state);
        match self.states.iter_mut().find(|(t, _)| *t == id) {
            Some(slot) => slot.1 = state,
            None => self.states.push((id, state)),
        }
    }

    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.states.iter().find(|(t, _)| *t == id).and_then(|(_, s)| s.downcast_ref::<T>())
    }

    pub(crate) fn contains(&self, id: TypeId) -> bool {
        self.states.iter().any(|(t, _)| *t == id)
    }
}
