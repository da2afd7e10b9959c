//! Type errors of listener functions (a parameter that is not an extractor, a return type that
//! is not a listener result, ...): the message, the span and the notes come from our
//! `#[diagnostic::on_unimplemented]` and are what users read. rustc adds to these errors a list
//! of the trait's other implementing types and the bounds inside our macro's expansion, which
//! change with the toolchain and our internals; so, unlike tests/macro_errors.rs (trybuild's
//! whole-output comparison), these cases (tests/ui-types/*.rs) are compiled with
//! `cargo check --message-format=json` and only what the user depends on is compared.
//!
//! The cases are checked in a scratch package under the target directory that shares trybuild's
//! build directory, so the dependencies are built once for both.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One expected error: its message, the line and the source text of its primary span, words of
/// the span's label, and notes (each must be in one of the error's notes or helps).
struct Expected {
    message: &'static str,
    line: usize,
    span: &'static str,
    label: &'static str,
    notes: &'static [&'static str],
}

const RECORD_NOTE: &str = "record listener parameters: Json<T>, String, Vec<u8>, Bytes, Key<T> (each also as Option<X> for tombstones and keyless records), Headers, Meta, ConsumerRecord, Acknowledgment, ConsumerHandle, State<T>, or your own type with `impl FromRecord for ...`";
const BATCH_HINT: &str =
    "to receive all records of one poll, add `batch = true` to #[kafka_listener] and take `Vec<X>`";

fn cases() -> Vec<(&'static str, Vec<Expected>)> {
    vec![
        (
            "not_an_extractor",
            vec![Expected {
                message: "`Order` is not a record listener parameter",
                line: 9,
                span: "Order",
                label: "this type does not implement `FromRecord`",
                notes: &[RECORD_NOTE, BATCH_HINT],
            }],
        ),
        (
            "bad_return_type",
            vec![Expected {
                message: "a kafka listener cannot return `u32`",
                line: 5,
                span: "u32",
                label: "Payload` is not implemented for `u32`",
                notes: &[
                    "return () or Result<(), E> where E: std::error::Error + Send + Sync + 'static (or ListenerError)",
                    "a listener that replies returns a Payload (Json<T>, String, Vec<u8>, ...) or Result<Payload, E>",
                ],
            }],
        ),
        (
            "anyhow_return",
            vec![Expected {
                message: "a kafka listener cannot return `Result<(), anyhow::Error>`",
                line: 5,
                span: "anyhow::Result<()>",
                label: "",
                notes: &["for anyhow::Result<()>: return Result<(), ListenerError> instead (`?` converts any std error into it) and turn an anyhow::Error into one with `.map_err(ListenerError::from_anyhow)?` (kafka-listener's `anyhow` feature; keeps the error's types for `find`) or `.map_err(ListenerError::new)?`"],
            }],
        ),
        (
            "option_of_non_nullable",
            vec![Expected {
                message: "`Option<kafka_listener::Meta>` is not a record listener parameter",
                line: 6,
                span: "Option<Meta>",
                label: "`kafka_listener::Meta` does not implement `OptionalFromRecord`",
                notes: &["Option<X> takes the extractors of a part Kafka allows to be null: Option<Json<T>>, Option<String>, Option<Vec<u8>>, Option<Bytes> (tombstones) and Option<Key<T>> (keyless records), or your own type with `impl OptionalFromRecord for ...`"],
            }],
        ),
        (
            "batch_with_record_parameter",
            vec![
                Expected {
                    message: "`kafka_listener::Json<Metric>` is not a batch listener parameter",
                    line: 10,
                    span: "Json<Metric>",
                    label: "this type does not implement `FromBatch`",
                    notes: &[
                        "batch listener parameters: Vec<X> where X is a record extractor (Vec<Json<T>>, Vec<String>, Vec<ConsumerRecord>, ...), Acknowledgment, ConsumerHandle, State<T>",
                        "a listener of single records does not take `batch = true`",
                    ],
                },
                Expected {
                    message: "`Vec<kafka_listener::Json<Metric>>` is not a record listener parameter",
                    line: 13,
                    span: "Vec<Json<Metric>>",
                    label: "this type does not implement `FromRecord`",
                    notes: &[RECORD_NOTE, BATCH_HINT],
                },
            ],
        ),
    ]
}

/// An error as rustc reported it.
#[derive(Debug)]
struct Reported {
    message: String,
    line: usize,
    span: String,
    label: String,
    notes: Vec<String>,
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// Writes the scratch package: one binary per case, depending on this workspace's
/// `kafka-listener` with this workspace's lock file (and on the suite, as trybuild's package
/// does, so that features resolve alike and the dependencies built for one serve both).
fn scratch_package(root: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = format!(
        "[package]\nname = \"kafka-listener-type-errors\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\nkafka-listener = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nanyhow = \"1\"\n\
         kafka-listener-suite = {{ path = {:?}, default-features = false }}\n",
        root.join("kafka-listener"),
        root
    );
    for (case, _) in cases() {
        manifest.push_str(&format!(
            "\n[[bin]]\nname = \"{case}\"\npath = {:?}\n",
            root.join("tests/ui-types").join(format!("{case}.rs"))
        ));
    }
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    Ok(())
}

/// This machine's target triple (`rustc -vV`).
fn host_triple() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc).arg("-vV").output().expect("running rustc -vV");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().find_map(|line| line.strip_prefix("host: ")).expect("rustc -vV names the host").trim().to_string()
}

/// The errors of each case's file, from `cargo check --message-format=json`.
fn check(root: &Path) -> Vec<(String, Reported)> {
    let target = target_dir(root);
    let dir = target.join("tests").join("type-errors");
    scratch_package(root, &dir).expect("writing the scratch package");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // trybuild's flags and target (trybuild 1.0's cargo.rs and rustflags.rs): the same
    // fingerprints, so the dependencies it built are used as they are.
    let host = host_triple();
    let flags = r#"["--cfg", "trybuild", "--verbose", "-A", "dead_code", "--diagnostic-width=140"]"#;
    let output = Command::new(cargo)
        .args(["check", "--bins", "--keep-going", "--quiet", "--message-format=json", "--target", &host])
        .arg(format!("--config=build.rustflags={flags}"))
        .arg(format!("--config=target.{host}.rustflags={flags}"))
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target.join("tests").join("trybuild"))
        .env("CARGO_INCREMENTAL", "0")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("running cargo check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut reported = Vec::new();
    for line in stdout.lines() {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if json["reason"] != "compiler-message" || json["message"]["level"] != "error" {
            continue;
        }
        let message = &json["message"];
        let Some(primary) =
            message["spans"].as_array().and_then(|spans| spans.iter().find(|s| s["is_primary"] == true))
        else {
            continue;
        };
        let file = primary["file_name"].as_str().unwrap_or_default();
        let Some(case) = cases().into_iter().map(|(c, _)| c).find(|c| file.ends_with(&format!("{c}.rs"))) else {
            continue;
        };
        let text = &primary["text"][0];
        let source = text["text"].as_str().unwrap_or_default();
        let (from, to) = (text["highlight_start"].as_u64().unwrap_or(1), text["highlight_end"].as_u64().unwrap_or(1));
        let span = source.chars().skip(from as usize - 1).take((to - from) as usize).collect();
        let notes = message["children"]
            .as_array()
            .map(|children| children.iter().filter_map(|c| c["message"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        // rustc reports some errors twice in JSON (once per obligation); the terminal shows one.
        let line = primary["line_start"].as_u64().unwrap_or(0) as usize;
        let text_message = message["message"].as_str().unwrap_or_default();
        if reported.iter().any(|(c, r): &(String, Reported)| {
            c == case && r.line == line && r.message == text_message && r.span == span
        }) {
            continue;
        }
        reported.push((
            case.to_string(),
            Reported {
                message: message["message"].as_str().unwrap_or_default().to_string(),
                line: primary["line_start"].as_u64().unwrap_or(0) as usize,
                span,
                label: primary["label"].as_str().unwrap_or_default().to_string(),
                notes,
            },
        ));
    }
    assert!(
        !reported.is_empty(),
        "cargo check reported no error of the cases (status {}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    reported
}

#[test]
fn listener_type_errors_name_the_parameter_and_what_to_use() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reported = check(root);
    for (case, expected) in cases() {
        let errors: Vec<&Reported> = reported.iter().filter(|(c, _)| *c == case).map(|(_, r)| r).collect();
        assert_eq!(errors.len(), expected.len(), "{case}: the errors reported: {errors:#?}");
        for want in &expected {
            let Some(got) = errors.iter().find(|r| r.message == want.message) else {
                panic!("{case}: no error `{}` among {errors:#?}", want.message)
            };
            assert_eq!((got.line, got.span.as_str()), (want.line, want.span), "{case}: the span of `{}`", want.message);
            assert!(got.label.contains(want.label), "{case}: label `{}`, expected `{}`", got.label, want.label);
            for note in want.notes {
                assert!(got.notes.iter().any(|n| n == note), "{case}: the note `{note}` missing from {:#?}", got.notes);
            }
        }
    }
}
