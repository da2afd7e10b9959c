//! Back-pressure with `ProcessingOrder::Key` (issue 16): `examples/backpressure.rs key` runs a
//! listener whose handlers wait 5 ms (50 at once) for 10 s over backlogs of 10,000 and 1,000,000
//! records, each in a process of its own, and reports its peak RSS. Memory must not grow with the
//! backlog: the container pauses a partition while enough of its records wait to start (without
//! the bound, the Partition-order case of the same example holds all 1,000,000 records, ~700 MiB).

mod common;

use std::process::Command;

/// `(peak RSS in MiB, records handled)` of the example's line for `case`.
fn result(stdout: &str, case: &str) -> (f64, u64) {
    let line = stdout.lines().find(|l| l.starts_with(case)).unwrap_or_else(|| panic!("no line for {case}:\n{stdout}"));
    let after = |marker: &str| line.split(marker).nth(1).unwrap_or_else(|| panic!("no {marker:?} in {line:?}"));
    let rss = after("peak RSS").split_whitespace().next().unwrap().parse().unwrap();
    let handled = after("MiB,").split_whitespace().next().unwrap().parse().unwrap();
    (rss, handled)
}

#[test]
fn a_million_record_backlog_by_key_peaks_within_64_mib_of_a_ten_thousand_one() {
    common::init_tracing();
    let output = Command::new(common::example("backpressure")).arg("key").output().expect("running the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the example failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let (small_rss, small_handled) = result(&stdout, "10k backlog, by key");
    let (large_rss, large_handled) = result(&stdout, "1M backlog, by key");
    println!("peak RSS by key: 10,000-record backlog {small_rss} MiB, 1,000,000-record backlog {large_rss} MiB");
    assert_eq!(small_handled, 10_000, "the small backlog is handled in full");
    assert!(large_handled >= 1_000, "the large backlog is being handled ({large_handled} records)");
    assert!(large_handled < 1_000_000, "the handler is the bottleneck, so a backlog remains ({large_handled})");
    // Held records cost a few hundred bytes each: 1,000,000 would be hundreds of MiB.
    assert!(
        large_rss < small_rss + 64.0,
        "peak RSS grows with the backlog: {large_rss} MiB for 1,000,000 records vs {small_rss} MiB for 10,000"
    );
}
