//! Container events: started, assigned, idle (per consumer and partition), non-responsive,
//! commit failures, revoked, stopped.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::container::ContainerEvent;
use kafka_listener::embedded::{RDKafkaApiKey, RDKafkaRespErr};
use kafka_listener::prelude::*;

type Events = Arc<Mutex<Vec<ContainerEvent>>>;

fn any(events: &Events, matches: impl Fn(&ContainerEvent) -> bool) -> bool {
    events.lock().unwrap().iter().any(matches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_hears_the_life_of_a_container() {
    let kafka = embedded(&[("observed", 2)]);
    let events: Events = Arc::default();
    let sink = events.clone();
    let factory = factory(&kafka, AckMode::Batch)
        .to_builder()
        .event_listener(move |event| sink.lock().unwrap().push(event.clone()))
        .idle_event_interval(Duration::from_millis(300))
        .non_responsive_after(Duration::from_millis(500))
        .build()
        .unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("observed").topic("observed").group("observed").blocking_handler(|text: String| {
            if text == "slow" {
                std::thread::sleep(Duration::from_millis(1500));
            }
        }))
        .start()
        .await
        .unwrap();
    let both = vec![("observed".to_string(), 0), ("observed".to_string(), 1)];
    wait_until("started and assigned", Duration::from_secs(20), || {
        any(&events, |e| matches!(e, ContainerEvent::Started { consumer: 0, .. }))
            && any(
                &events,
                |e| matches!(e, ContainerEvent::PartitionsAssigned { partitions, .. } if *partitions == both),
            )
    })
    .await;
    wait_until("idle, as a consumer and per partition", Duration::from_secs(20), || {
        any(&events, |e| matches!(e, ContainerEvent::Idle { idle_for, .. } if *idle_for >= Duration::from_millis(300)))
            && (0..2).all(|p| {
                any(&events, |e| matches!(e, ContainerEvent::PartitionIdle { topic_partition, .. } if topic_partition.partition == p))
            })
    })
    .await;

    produce(&kafka, "observed", &[(0, "k", "slow".into())]);
    wait_until("non-responsive while the handler sleeps", Duration::from_secs(20), || {
        any(&events, |e| matches!(e, ContainerEvent::NonResponsive { since_last_poll, .. } if *since_last_poll >= Duration::from_millis(500)))
    })
    .await;

    kafka
        .fail_requests(RDKafkaApiKey::OffsetCommit, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE; 3])
        .unwrap();
    produce(&kafka, "observed", &[(1, "k", "quick".into())]);
    wait_until("a commit failure", Duration::from_secs(20), || {
        any(&events, |e| matches!(e, ContainerEvent::CommitFailed { error, .. } if error.contains("observed-1@1")))
    })
    .await;
    wait_committed(&kafka.bootstrap_servers(), "observed", "observed", [(0, 1), (1, 1)].into()).await;

    running.shutdown().await.unwrap();
    assert!(any(&events, |e| matches!(e, ContainerEvent::PartitionsRevoked { partitions, .. } if *partitions == both)));
    assert!(any(&events, |e| matches!(e, ContainerEvent::Stopped { consumer: 0, .. })));
    assert!(events.lock().unwrap().iter().all(|e| e.listener() == "observed"));
}
