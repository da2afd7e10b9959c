//! The messages of #[kafka_listener]'s compile errors, each spanned on the token at fault.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test macro_errors`
//! and review the diff.

#[test]
fn macro_compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
