//! The messages of #[kafka_listener]'s compile errors, each spanned on the token at fault.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test macro_errors`
//! and review the diff. Type errors of listener functions, whose rustc output also lists other
//! implementing types (which changes with the toolchain), are in tests/ui-types and checked by
//! tests/macro_type_errors.rs on their message, span and notes only.

#[test]
fn macro_compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
