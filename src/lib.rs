//! The examples, integration tests and benchmark of kafka-listener live in this package
//! (folders `examples/` and `tests/` at the workspace root); it has no library of its own.
