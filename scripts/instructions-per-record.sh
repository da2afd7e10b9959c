#!/usr/bin/env bash
# Instructions per record of the listener against a raw rdkafka poll loop, counted with
# `valgrind --tool=callgrind` (instruction counts do not swing with the machine's load, as wall
# time does). An embedded broker runs in a process of its own (examples/broker.rs); RECORDS JSON
# records (~60 bytes, lz4, 4 partitions) are produced once; then each consumer of
# examples/instructions.rs reads them all under callgrind, and once more a topic of one record
# up to that record (`--first`: the process exits there), its start-up.
#
#   scripts/instructions-per-record.sh            # RECORDS=200000
#   RECORDS=50000 MODES="raw batch" scripts/instructions-per-record.sh
#   INSTRUCTIONS=/path/to/other/build/instructions scripts/instructions-per-record.sh
#                                                 # count another build's consumers (before/after)
#   KEEP=/tmp/ipr scripts/instructions-per-record.sh   # keep the callgrind files, for callgrind_annotate
#
# Consumers: `raw` (a BaseConsumer poll loop that commits nothing: the issue's baseline),
# `raw-commit` (the same loop committing asynchronously every 500 records, as an at-least-once
# hand-written loop would), `batch` and `record` (the listener in those ack modes).
#
# Prints, per consumer: the process's instructions / records (start-up and shutdown included, as
# a service pays them once), the ratios to raw and to raw-commit, and the instructions from
# process start to the first record handled, with its ratio to raw. Counts vary by about 1-2% between runs (how often
# an idle consumer polls depends on timing); compare consumers of one run, or use KEEP and
# callgrind_annotate for function-level figures.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS="${RECORDS:-200000}"
MODES="${MODES:-raw raw-commit batch record}"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --example broker --example instructions >&2
bin=target/release/examples
consumers="${INSTRUCTIONS:-$bin/instructions}"
work="$(mktemp -d)"
trap 'exec 3>&- 2>/dev/null; kill "$broker_pid" 2>/dev/null; rm -rf "$work"' EXIT

# The broker lives until its standard input closes (fd 3, closed at exit).
mkfifo "$work/broker.in"
"$bin/broker" --topic ipr:4 --topic ipr-first:4 --until-stdin-closes < "$work/broker.in" > "$work/broker.out" &
broker_pid=$!
exec 3> "$work/broker.in"
for _ in $(seq 100); do grep -q KAFKA_BOOTSTRAP_SERVERS "$work/broker.out" && break; sleep 0.1; done
bootstrap="$(sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p' "$work/broker.out")"
[ -n "$bootstrap" ] || { echo "the broker did not start" >&2; exit 1; }
"$bin/instructions" produce --bootstrap "$bootstrap" --records "$RECORDS" >&2

# Total instructions of one consumer process reading `n` records (`first`: up to the first).
count() {
    local mode=$1 n=$2 out="$work/$1-$2.callgrind" limit
    if [ "$n" = first ]; then limit=(--first); else limit=(--records "$n"); fi
    valgrind --tool=callgrind --callgrind-out-file="$out" "$consumers" "$mode" \
        --bootstrap "$bootstrap" "${limit[@]}" > "$work/$mode-$n.stdout" 2> "$work/$mode-$n.stderr" \
        || { cat "$work/$mode-$n.stderr" >&2; exit 1; }
    if [ "$n" = "$RECORDS" ] && ! grep -q "RECORDS $n\$" "$work/$mode-$n.stdout"; then
        echo "$mode read the wrong records: $(cat "$work/$mode-$n.stdout")" >&2; exit 1
    fi
    sed -n 's/^SUM \([0-9]*\).*/\1/p' "$work/$mode-$n.stdout" > "$work/$mode-$n.sum"
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$out" "$KEEP/"; fi
    sed -n 's/^summary: //p; s/^totals: //p' "$out" | head -1
}

printf '%-11s %13s %8s %13s %18s %8s\n' consumer "instr/record" "vs raw" "vs raw-commit" "start-up (instr)" "vs raw"
for mode in $MODES; do
    total=$(count "$mode" "$RECORDS")
    startup=$(count "$mode" first)
    echo "$mode $total $startup" >> "$work/results"
done
if [ "$(sort -u "$work"/*-"$RECORDS".sum | wc -l)" != 1 ]; then echo "the consumers' sums differ" >&2; exit 1; fi
awk -v n="$RECORDS" '
    { mode[NR] = $1; total[NR] = $2; startup[NR] = $3
      if ($1 == "raw") { raw = $2 / n; raw_start = $3 }
      if ($1 == "raw-commit") { rawc = $2 / n } }
    END {
        for (i = 1; i <= NR; i++) {
            ratio = raw > 0 ? sprintf("%.3f", total[i] / n / raw) : "-"
            cratio = rawc > 0 ? sprintf("%.3f", total[i] / n / rawc) : "-"
            sratio = raw_start > 0 ? sprintf("%.2f", startup[i] / raw_start) : "-"
            printf "%-11s %13.0f %8s %13s %18.0f %8s\n", mode[i], total[i] / n, ratio, cratio, startup[i], sratio
        }
    }' "$work/results"
