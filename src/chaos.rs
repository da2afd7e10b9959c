//! The event log and the invariant checker of the randomized fault campaign
//! (`src/bin/chaos.rs`). Pure: the checker reads the log's lines and finds violations; it is
//! tested here without a broker.
//!
//! Every process of a campaign appends to one log file (`O_APPEND`, one `write` per line), so
//! the file's order is the order in which things happened. The lines:
//!
//! | line | written by | meaning |
//! |---|---|---|
//! | `D <inst> <group> <topic> <partition> <offset> <attempt> [key=<key> \| unordered]` | an instance | a delivery began (handler called); the last field says the listener's processing order when it is not by partition |
//! | `A <inst> <group> <topic> <partition> <offset>` | an instance | handled, or acknowledged (written before the ack) |
//! | `R <inst> <group> <topic> <partition> <offset>` | an instance | dead-lettered (written once the dead letter landed) |
//! | `V <inst> <group> <topic> <partition>` | an instance | the partition was revoked or lost |
//! | `S <inst> <group> <topic> <partition>` | the driver | a seek from outside is about to be made |
//! | `K <inst>` | the driver | the instance is about to be killed (SIGKILL) |
//! | `C <group> <topic> <partition> <offset>` | the driver | the group's committed offset, read back |
//! | `E <group> <topic> <partition> <committed> <end>` | the driver | after the final graceful stop |
//! | `F <seconds> <description>` | the driver | a fault injected (the schedule) |
//!
//! The invariants: every record handled or dead-lettered at least once; first deliveries in
//! offset order per partition and group (per key, for a listener by key; none for an unordered
//! one); a committed offset never past the contiguous prefix of
//! records handled (or dead-lettered) by the time it was read; committed == end after the final
//! stop; a record handled twice only after its handler's instance was killed, or the partition
//! was revoked from it, or sought back from outside.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// A partition of a group: (group, topic, partition).
pub type GroupPartition = (String, String, i32);

/// The order first deliveries keep, as the listener's processing order says.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// Offset order in the partition (`ProcessingOrder::Partition`).
    Partition,
    /// Offset order among the partition's records with this key (`ProcessingOrder::Key`).
    Key(String),
    /// None (`ProcessingOrder::Unordered`).
    Unordered,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A delivery began.
    Delivered { instance: u32, at: GroupPartition, offset: i64, attempt: u32, order: Order },
    /// Handled, or acknowledged.
    Handled { instance: u32, at: GroupPartition, offset: i64 },
    /// Dead-lettered.
    Recovered { instance: u32, at: GroupPartition, offset: i64 },
    /// Revoked from, or lost by, the instance.
    Revoked { instance: u32, at: GroupPartition },
    /// A seek from outside on an instance.
    Sought { instance: u32, at: GroupPartition },
    /// The instance is killed.
    Killed { instance: u32 },
    /// A committed offset read back.
    Committed { at: GroupPartition, offset: i64 },
    /// After the final stop: the committed offset and the end.
    Final { at: GroupPartition, committed: i64, end: i64 },
    /// A fault injected, `seconds` into the campaign.
    Fault { seconds: f64, description: String },
}

impl Event {
    /// The event as a log line (with its newline).
    pub fn line(&self) -> String {
        let gp = |(g, t, p): &GroupPartition| format!("{g} {t} {p}");
        let mut line = match self {
            Event::Delivered { instance, at, offset, attempt, order } => {
                let order = match order {
                    Order::Partition => String::new(),
                    Order::Key(key) => format!(" key={key}"),
                    Order::Unordered => " unordered".to_string(),
                };
                format!("D {instance} {} {offset} {attempt}{order}", gp(at))
            }
            Event::Handled { instance, at, offset } => format!("A {instance} {} {offset}", gp(at)),
            Event::Recovered { instance, at, offset } => format!("R {instance} {} {offset}", gp(at)),
            Event::Revoked { instance, at } => format!("V {instance} {}", gp(at)),
            Event::Sought { instance, at } => format!("S {instance} {}", gp(at)),
            Event::Killed { instance } => format!("K {instance}"),
            Event::Committed { at, offset } => format!("C {} {offset}", gp(at)),
            Event::Final { at, committed, end } => format!("E {} {committed} {end}", gp(at)),
            Event::Fault { seconds, description } => format!("F {seconds:.1} {description}"),
        };
        line.push('\n');
        line
    }

    /// Parses a log line; `None` for a line that is not one (e.g. cut short by a kill).
    pub fn parse(line: &str) -> Option<Event> {
        let mut f = line.split(' ');
        let kind = f.next()?;
        if kind == "F" {
            let seconds = f.next()?.parse().ok()?;
            return Some(Event::Fault { seconds, description: f.collect::<Vec<_>>().join(" ") });
        }
        let fields: Vec<&str> = f.collect();
        let num = |i: usize| -> Option<i64> { fields.get(i)?.parse().ok() };
        let gp = |i: usize| -> Option<GroupPartition> {
            Some((fields.get(i)?.to_string(), fields.get(i + 1)?.to_string(), fields.get(i + 2)?.parse().ok()?))
        };
        let instance = || -> Option<u32> { fields.first()?.parse().ok() };
        let event = match (kind, fields.len()) {
            ("D", 6 | 7) => {
                let order = match fields.get(6) {
                    None => Order::Partition,
                    Some(&"unordered") => Order::Unordered,
                    Some(field) => Order::Key(field.strip_prefix("key=")?.to_string()),
                };
                Event::Delivered { instance: instance()?, at: gp(1)?, offset: num(4)?, attempt: num(5)? as u32, order }
            }
            ("A", 5) => Event::Handled { instance: instance()?, at: gp(1)?, offset: num(4)? },
            ("R", 5) => Event::Recovered { instance: instance()?, at: gp(1)?, offset: num(4)? },
            ("V", 4) => Event::Revoked { instance: instance()?, at: gp(1)? },
            ("S", 4) => Event::Sought { instance: instance()?, at: gp(1)? },
            ("K", 1) => Event::Killed { instance: instance()? },
            ("C", 4) => Event::Committed { at: gp(0)?, offset: num(3)? },
            ("E", 5) => Event::Final { at: gp(0)?, committed: num(3)?, end: num(4)? },
            _ => return None,
        };
        Some(event)
    }
}

/// What a campaign's log shows.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per violation: what, where, and the records concerned.
    pub violations: Vec<String>,
    /// Records handled more than once (each extra handling counts).
    pub duplicates: usize,
    /// Distinct records handled or dead-lettered.
    pub records: usize,
    /// Faults injected.
    pub faults: usize,
}

/// Per group partition: what was handled, and what makes a second handling legitimate.
#[derive(Default)]
struct PartitionState {
    /// Offsets handled or dead-lettered: the instance, and the log line of the delivery it
    /// handled (an acknowledgment can be written after a revocation that made it stale).
    done: BTreeMap<i64, (u32, usize)>,
    /// The end of the contiguous prefix of `done` from offset 0.
    prefix: i64,
    /// The highest offset delivered for the first time so far, in the partition or the key.
    first_delivered: Option<i64>,
    first_delivered_by_key: HashMap<String, Option<i64>>,
    delivered: BTreeSet<i64>,
    /// Log lines of revocations (by instance) and seeks on this partition.
    excuses: Vec<(usize, Option<u32>)>,
    /// Seeks from outside: (log line, the instance told to seek). A seek takes effect when its
    /// consumer next polls, which can be after records handled meanwhile.
    seeks: Vec<(usize, u32)>,
    /// The log line of the latest delivery of each offset, by instance.
    last_delivery: HashMap<(i64, u32), usize>,
    /// Committed offsets read back: (log line, offset).
    commits: Vec<(usize, i64)>,
}

/// A record handled a second time, to be judged once every revocation is known.
struct Suspect {
    index: usize,
    faults: usize,
    at: GroupPartition,
    offset: i64,
    instance: u32,
    delivered: usize,
    first_instance: u32,
    first_line: usize,
    /// A committed offset past the record read back before this delivery: (line, offset).
    committed_past: Option<(usize, i64)>,
}

/// Checks a campaign's log lines. `schedule` lines (faults) are quoted with each violation, up
/// to where it happened, so that a run can be replayed.
pub fn check(lines: &[String], seed: u64) -> Report {
    let mut report = Report::default();
    let mut partitions: HashMap<GroupPartition, PartitionState> = HashMap::new();
    let mut kills: Vec<(usize, u32)> = Vec::new();
    let mut faults: Vec<String> = Vec::new();
    let mut finals: BTreeSet<GroupPartition> = BTreeSet::new();
    let mut suspects: Vec<Suspect> = Vec::new();
    let violation = |report: &mut Report, faults: &[String], index: usize, what: String| {
        let mut text = format!("VIOLATION seed={seed} line={} {what}", index + 1);
        let schedule = faults.iter().rev().take(8).rev().cloned().collect::<Vec<_>>().join("; ");
        let _ = write!(text, " | faults so far ({}): {schedule}", faults.len());
        report.violations.push(text);
    };
    for (index, line) in lines.iter().enumerate() {
        let Some(event) = Event::parse(line.trim_end()) else { continue };
        match event {
            Event::Fault { seconds, description } => {
                report.faults += 1;
                faults.push(format!("{seconds:.1}s {description}"));
            }
            Event::Killed { instance } => kills.push((index, instance)),
            Event::Revoked { instance, at } => partitions.entry(at).or_default().excuses.push((index, Some(instance))),
            Event::Sought { instance, at } => {
                let state = partitions.entry(at).or_default();
                state.excuses.push((index, None));
                state.seeks.push((index, instance));
            }
            Event::Delivered { instance, at, offset, order, .. } => {
                let state = partitions.entry(at.clone()).or_default();
                state.last_delivery.insert((offset, instance), index);
                if state.delivered.insert(offset) {
                    // The highest first delivery before this one, in the partition or the key.
                    let (highest, of_key) = match order {
                        Order::Partition => (Some(&mut state.first_delivered), String::new()),
                        Order::Key(key) => {
                            let of_key = format!(" (key {key})");
                            (Some(state.first_delivered_by_key.entry(key).or_default()), of_key)
                        }
                        Order::Unordered => (None, String::new()),
                    };
                    if let Some(highest) = highest {
                        if let Some(before) = *highest {
                            if offset < before {
                                violation(
                                    &mut report,
                                    &faults,
                                    index,
                                    format!(
                                        "order: {} {}-{} offset {offset} delivered for the first time after offset \
                                         {before}{of_key}",
                                        at.0, at.1, at.2
                                    ),
                                );
                            }
                        }
                        *highest = Some(highest.map_or(offset, |b| b.max(offset)));
                    }
                }
            }
            Event::Handled { instance, at, offset } | Event::Recovered { instance, at, offset } => {
                let state = partitions.entry(at.clone()).or_default();
                let delivered = state.last_delivery.get(&(offset, instance)).copied().unwrap_or(index);
                match state.done.get(&offset).copied() {
                    None => {
                        state.done.insert(offset, (instance, delivered));
                        state.prefix = prefix_from(state.prefix, |o| state.done.contains_key(&o));
                    }
                    Some((first_instance, first_line)) => {
                        report.duplicates += 1;
                        // Only what was not committed may be delivered again: a delivery that
                        // began after a committed offset past it was read back re-ran committed
                        // work. Judged at the end, with the other duplicates: a revocation (or
                        // loss) can be told after the fact.
                        let committed_past = state
                            .commits
                            .iter()
                            .find(|(l, c)| *l > first_line && *l < delivered && *c > offset)
                            .copied();
                        suspects.push(Suspect {
                            index,
                            faults: faults.len(),
                            at: at.clone(),
                            offset,
                            instance,
                            delivered,
                            first_instance,
                            first_line,
                            committed_past,
                        });
                    }
                }
            }
            Event::Committed { at, offset } => {
                partitions.entry(at.clone()).or_default().commits.push((index, offset));
                let prefix = partitions.get(&at).map_or(0, |s| s.prefix);
                if offset > prefix {
                    let missing: Vec<i64> = (prefix..offset)
                        .filter(|o| partitions.get(&at).is_none_or(|s| !s.done.contains_key(o)))
                        .take(10)
                        .collect();
                    violation(
                        &mut report,
                        &faults,
                        index,
                        format!(
                            "commit past unprocessed work: {} {}-{} committed {offset} while handled only up to \
                             {prefix} (not handled: {missing:?})",
                            at.0, at.1, at.2
                        ),
                    );
                }
            }
            Event::Final { at, committed, end } => {
                finals.insert(at.clone());
                let state = partitions.entry(at.clone()).or_default();
                let lost: Vec<i64> = (0..end).filter(|o| !state.done.contains_key(o)).take(10).collect();
                if !lost.is_empty() {
                    violation(
                        &mut report,
                        &faults,
                        index,
                        format!("lost: {} {}-{} records never handled nor dead-lettered: {lost:?}", at.0, at.1, at.2),
                    );
                }
                if committed != end {
                    violation(
                        &mut report,
                        &faults,
                        index,
                        format!("final: {} {}-{} committed {committed}, end {end}", at.0, at.1, at.2),
                    );
                }
            }
        }
    }
    for suspect in suspects {
        let Suspect { index, at, offset, instance, delivered, first_instance, first_line, .. } = &suspect;
        let excuses = partitions.get(at).map(|s| s.excuses.as_slice()).unwrap_or_default();
        // Excused: the first handler's instance killed, or the partition revoked from (or lost
        // by) it, after it got the record; or revoked from this one after it got the record (a
        // consumer that lost the partition while its handler ran finishes it, and is told after);
        // or a seek from outside.
        let killed = kills.iter().any(|(l, i)| l > first_line && i == first_instance);
        let excused = excuses.iter().any(|(l, i)| match i {
            None => l > first_line,
            Some(i) => (i == first_instance && l > first_line) || (i == instance && l > delivered),
        });
        // A consumer that lost the partition while its handler ran (a zombie: Kafka fences its
        // commits, not its handler) may redo even committed work; nothing else may.
        let zombie = excuses.iter().any(|(l, i)| *i == Some(*instance) && l > delivered);
        let seeks = partitions.get(at).map(|s| s.seeks.as_slice()).unwrap_or_default();
        let sought = excuses.iter().any(|(l, i)| i.is_none() && l > first_line)
            || seeks.iter().any(|(l, i)| i == instance && l < delivered);
        if let (Some((line, committed)), false, false) = (suspect.committed_past, zombie, sought) {
            violation(
                &mut report,
                &faults[..suspect.faults],
                *index,
                format!(
                    "committed work redone: {} {}-{} offset {offset} delivered again (line {}) after committed \
                     offset {committed} was read back (line {})",
                    at.0,
                    at.1,
                    at.2,
                    delivered + 1,
                    line + 1
                ),
            );
        } else if !killed && !excused && !sought {
            violation(
                &mut report,
                &faults[..suspect.faults],
                *index,
                format!(
                    "duplicate: {} {}-{} offset {offset} handled again by instance {instance} (first by instance \
                     {first_instance}, delivered at line {}), with no kill, revocation or seek after the deliveries",
                    at.0,
                    at.1,
                    at.2,
                    first_line + 1
                ),
            );
        }
    }
    if finals.is_empty() {
        report
            .violations
            .push(format!("VIOLATION seed={seed} the log has no final offsets (the campaign did not finish)"));
    }
    report.records = partitions.values().map(|s| s.done.len()).sum();
    report
}

/// Per group partition, the end of the contiguous prefix of records handled or dead-lettered
/// from offset 0, as the log shows so far.
pub fn handled_prefixes(lines: &[String]) -> HashMap<GroupPartition, i64> {
    let mut done: HashMap<GroupPartition, BTreeSet<i64>> = HashMap::new();
    for line in lines {
        if let Some(Event::Handled { at, offset, .. } | Event::Recovered { at, offset, .. }) =
            Event::parse(line.trim_end())
        {
            done.entry(at).or_default().insert(offset);
        }
    }
    done.into_iter().map(|(at, offsets)| (at, prefix_from(0, |o| offsets.contains(&o)))).collect()
}

/// The end of the contiguous run of done offsets that starts at `from`.
fn prefix_from(mut from: i64, done: impl Fn(i64) -> bool) -> i64 {
    while done(from) {
        from += 1;
    }
    from
}

/// A small seeded generator (SplitMix64): the same seed gives the same fault schedule.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..high` (`low` when the range is empty).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gp() -> GroupPartition {
        ("g".to_string(), "t".to_string(), 0)
    }

    fn lines(events: &[Event]) -> Vec<String> {
        events.iter().map(Event::line).collect()
    }

    fn d(instance: u32, offset: i64) -> Event {
        Event::Delivered { instance, at: gp(), offset, attempt: 1, order: Order::Partition }
    }

    fn dk(offset: i64, key: &str) -> Event {
        Event::Delivered { instance: 1, at: gp(), offset, attempt: 1, order: Order::Key(key.into()) }
    }

    fn a(instance: u32, offset: i64) -> Event {
        Event::Handled { instance, at: gp(), offset }
    }

    fn end(committed: i64, end: i64) -> Event {
        Event::Final { at: gp(), committed, end }
    }

    #[test]
    fn lines_parse_back() {
        let events = [
            d(1, 5),
            dk(6, "k1"),
            Event::Delivered { instance: 1, at: gp(), offset: 7, attempt: 2, order: Order::Unordered },
            a(1, 5),
            Event::Recovered { instance: 2, at: gp(), offset: 6 },
            Event::Revoked { instance: 2, at: gp() },
            Event::Sought { instance: 3, at: gp() },
            Event::Killed { instance: 4 },
            Event::Committed { at: gp(), offset: 7 },
            end(8, 9),
            Event::Fault { seconds: 1.5, description: "kill instance 2".into() },
        ];
        for event in events {
            assert_eq!(Event::parse(event.line().trim_end()), Some(event));
        }
        assert_eq!(Event::parse("D 1 g t"), None, "a line cut short");
    }

    #[test]
    fn a_clean_run_has_no_violation() {
        let report = check(
            &lines(&[d(1, 0), a(1, 0), d(1, 1), a(1, 1), Event::Committed { at: gp(), offset: 2 }, end(2, 2)]),
            7,
        );
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert_eq!((report.records, report.duplicates), (2, 0));
    }

    #[test]
    fn a_commit_past_unhandled_work_is_a_violation() {
        let report = check(&lines(&[d(1, 0), d(1, 1), a(1, 1), Event::Committed { at: gp(), offset: 2 }]), 7);
        assert!(report.violations[0].contains("commit past unprocessed work"), "{:?}", report.violations);
        assert!(report.violations[0].contains("not handled: [0]"), "{:?}", report.violations);
    }

    #[test]
    fn lost_records_and_a_short_final_commit_are_violations() {
        let report = check(&lines(&[d(1, 0), a(1, 0), end(1, 3)]), 7);
        assert_eq!(report.violations.len(), 2, "{:?}", report.violations);
        assert!(report.violations[0].contains("lost") && report.violations[0].contains("[1, 2]"));
        assert!(report.violations[1].contains("committed 1, end 3"));
    }

    #[test]
    fn first_deliveries_out_of_order_are_a_violation() {
        let report = check(&lines(&[d(1, 1), d(1, 0)]), 7);
        assert!(report.violations.iter().any(|v| v.contains("order")), "{:?}", report.violations);
        // A delivery again of an earlier record is not a first delivery.
        let report = check(&lines(&[d(1, 0), d(1, 1), d(2, 0), d(2, 1), d(2, 2)]), 7);
        assert!(!report.violations.iter().any(|v| v.contains("order")), "{:?}", report.violations);
    }

    #[test]
    fn by_key_only_one_keys_first_deliveries_must_be_in_order() {
        let report = check(&lines(&[dk(1, "a"), dk(0, "b"), dk(3, "b"), dk(2, "a")]), 7);
        assert!(!report.violations.iter().any(|v| v.contains("order")), "{:?}", report.violations);
        let report = check(&lines(&[dk(0, "a"), dk(3, "a"), dk(2, "a")]), 7);
        assert!(report.violations[0].contains("offset 2") && report.violations[0].contains("(key a)"));
        let unordered =
            |offset| Event::Delivered { instance: 1, at: gp(), offset, attempt: 1, order: Order::Unordered };
        let report = check(&lines(&[unordered(3), unordered(0)]), 7);
        assert!(!report.violations.iter().any(|v| v.contains("order")), "{:?}", report.violations);
    }

    #[test]
    fn duplicates_need_a_kill_a_revocation_or_a_seek() {
        let unexplained = check(&lines(&[d(1, 0), a(1, 0), d(2, 0), a(2, 0)]), 7);
        assert!(unexplained.violations.iter().any(|v| v.contains("duplicate")), "{:?}", unexplained.violations);
        for excuse in [
            Event::Killed { instance: 1 },
            Event::Revoked { instance: 1, at: gp() },
            Event::Sought { instance: 2, at: gp() },
        ] {
            let report = check(&lines(&[d(1, 0), a(1, 0), excuse.clone(), d(2, 0), a(2, 0), end(1, 1)]), 7);
            assert!(report.violations.is_empty(), "{excuse:?}: {:?}", report.violations);
            assert_eq!(report.duplicates, 1);
        }
        // Another instance's revocation does not excuse it.
        let report = check(&lines(&[d(1, 0), a(1, 0), Event::Revoked { instance: 3, at: gp() }, d(2, 0), a(2, 0)]), 7);
        assert!(report.violations.iter().any(|v| v.contains("duplicate")), "{:?}", report.violations);
    }

    #[test]
    fn a_revocation_between_delivery_and_acknowledgment_excuses_the_duplicate() {
        // Delivered to 1, revoked from 1, acknowledged late by 1 (stale), handled again by 2.
        let revoked = Event::Revoked { instance: 1, at: gp() };
        let report = check(&lines(&[d(1, 0), revoked, a(1, 0), d(2, 0), a(2, 0), end(1, 1)]), 7);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        // 1 lost the partition while handling; 2 handled it first; 1 finished and was told later.
        let lost = Event::Revoked { instance: 1, at: gp() };
        let report = check(&lines(&[d(1, 0), d(2, 0), a(2, 0), a(1, 0), lost, end(1, 1)]), 7);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
    }

    #[test]
    fn committed_work_may_be_redone_only_after_a_seek() {
        let committed = Event::Committed { at: gp(), offset: 1 };
        let kill = Event::Killed { instance: 1 };
        let report = check(&lines(&[d(1, 0), a(1, 0), committed.clone(), kill.clone(), d(2, 0), a(2, 0)]), 7);
        assert!(report.violations.iter().any(|v| v.contains("committed work redone")), "{:?}", report.violations);
        let seek = Event::Sought { instance: 1, at: gp() };
        let report = check(&lines(&[d(1, 0), a(1, 0), committed, seek, d(1, 0), a(1, 0), end(1, 1)]), 7);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        // Uncommitted work redone after a kill is fine.
        let report = check(&lines(&[d(1, 0), a(1, 0), kill, d(2, 0), a(2, 0), end(1, 1)]), 7);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
    }

    #[test]
    fn violations_quote_the_seed_and_the_faults_before_them() {
        let report = check(
            &lines(&[
                Event::Fault { seconds: 2.0, description: "fail OffsetCommit x3".into() },
                d(1, 1),
                Event::Committed { at: gp(), offset: 2 },
            ]),
            42,
        );
        assert!(report.violations[0].starts_with("VIOLATION seed=42"), "{:?}", report.violations);
        assert!(report.violations[0].contains("2.0s fail OffsetCommit x3"), "{:?}", report.violations);
        assert_eq!(report.faults, 1);
    }

    #[test]
    fn prefixes_stop_at_the_first_record_not_done() {
        let prefixes = handled_prefixes(&lines(&[
            a(1, 0),
            a(1, 1),
            a(1, 3),
            Event::Recovered { instance: 1, at: gp(), offset: 2 },
            a(1, 5),
        ]));
        assert_eq!(prefixes[&gp()], 4);
    }

    #[test]
    fn the_generator_repeats_for_a_seed() {
        let (mut a, mut b) = (Rng::new(5), Rng::new(5));
        let first: Vec<u64> = (0..5).map(|_| a.range(0, 100)).collect();
        assert_eq!(first, (0..5).map(|_| b.range(0, 100)).collect::<Vec<_>>());
        assert!(first.iter().all(|n| *n < 100));
    }
}
