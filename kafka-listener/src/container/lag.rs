//! The lag gauge (`kafka_listener.consumer.lag`): every second, for each partition a consumer
//! owns, the partition's high watermark minus its committed offset.
//!
//! Computed off the poll thread, on the runtime: a listener in partition order does not poll
//! while its handler runs, so librdkafka's statistics (served by polls) would go stale exactly
//! when the lag grows. The high watermark is the one librdkafka learned from its last fetch
//! response (`rd_kafka_get_watermark_offsets`: no broker request; the fetcher keeps fetching
//! ahead while the handler runs); the committed offset is the offset tracker's best knowledge
//! (`OffsetTracker::lag_bases`).

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;

use super::context::KafkaConsumer;
use super::shared::ContainerShared;

/// How often the gauge is updated.
const EVERY: Duration = Duration::from_secs(1);

/// Reports the lag of these consumers' partitions until they have all ended.
pub(crate) fn watch(runtime: &tokio::runtime::Handle, consumers: Vec<Arc<ContainerShared>>) {
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(EVERY).await;
            if consumers.iter().all(|c| c.stats().is_finished()) {
                return;
            }
            for shared in consumers.iter().filter(|c| !c.stats().is_finished()) {
                report(shared);
            }
        }
    });
}

fn report(shared: &ContainerShared) {
    let Some(consumer) = shared.consumer() else { return };
    let bases = shared.offsets().lag_bases();
    for (topic, partition, committed) in bases {
        let Some((low, high)) = cached_watermarks(&consumer, &topic, partition) else { continue };
        let lag = match committed {
            Some(committed) => (high - committed).max(0),
            // Nothing delivered or committed yet, and nothing to read: no lag.
            None if low >= 0 && low == high => 0,
            None => continue,
        };
        shared.meters.lag(&topic, partition, lag);
    }
}

/// The partition's low and high watermarks as of librdkafka's last fetch response (`None` before
/// one).
fn cached_watermarks(consumer: &KafkaConsumer, topic: &str, partition: i32) -> Option<(i64, i64)> {
    use rdkafka::bindings as rd;
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client lives while `consumer` is held; librdkafka reads its cached watermarks
    // under the partition's lock and writes the two out-parameters.
    let err = unsafe {
        rd::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some((low, high))
}
