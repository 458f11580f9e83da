//! Creating the service's own topics when missing: the trace topic (compacted, one partition),
//! the case topic (compacted), the office topics of `[routing]` and the re-key topic
//! (`[input] keyed_by = "other"`).

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use tracing::{info, warn};

use crate::KafkaError;

/// A topic to have.
pub(crate) struct Wanted<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub compacted: bool,
    /// What it is for, in messages.
    pub what: &'a str,
    /// Topic configs to create it with.
    pub configs: Vec<(&'static str, String)>,
}

/// The partitions of `topic` (0: it does not exist).
pub(crate) fn partition_count(admin: &ClientConfig, topic: &str, timeout: Duration) -> Result<i32, KafkaError> {
    let client: AdminClient<DefaultClientContext> = admin.create()?;
    partitions(&client, topic, timeout)
}

/// One config value of `topic` as the broker reports it (None: unknown or not readable).
pub(crate) fn topic_config(admin: &ClientConfig, topic: &str, key: &str, timeout: Duration) -> Option<String> {
    let client: AdminClient<DefaultClientContext> = admin.create().ok()?;
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    let res = futures_executor::block_on(client.describe_configs([&ResourceSpecifier::Topic(topic)], &opts)).ok()?;
    res.into_iter()
        .flatten()
        .find_map(|r| r.get(key).and_then(|e| e.value.clone()))
}

fn partitions(client: &AdminClient<DefaultClientContext>, topic: &str, timeout: Duration) -> Result<i32, KafkaError> {
    let md = client.inner().fetch_metadata(Some(topic), timeout)?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map_or(0, |t| t.partitions().len() as i32))
}

/// Create each missing topic of `wanted`, and wait until it is visible. A topic that exists is
/// left as it is (a trace topic with more than one partition is reported: only its partition 0
/// is linked).
pub(crate) fn ensure(admin: &ClientConfig, wanted: &[Wanted<'_>], timeout: Duration) -> Result<(), KafkaError> {
    let client: AdminClient<DefaultClientContext> = admin.create()?;
    for w in wanted {
        let n = partitions(&client, w.name, timeout)?;
        if n > 0 {
            if w.partitions == 1 && w.compacted && n != 1 {
                warn!(
                    topic = w.name,
                    partitions = n,
                    "the {} has more than one partition: the service writes and links only partition 0",
                    w.what
                );
            }
            continue;
        }
        let mut new = NewTopic::new(w.name, w.partitions, TopicReplication::Fixed(-1));
        if w.compacted {
            new = new
                .set("cleanup.policy", "compact")
                .set("min.cleanable.dirty.ratio", "0.1");
        }
        for (k, v) in &w.configs {
            new = new.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(timeout));
        let res = futures_executor::block_on(client.create_topics([&new], &opts))?;
        for r in res {
            match r {
                Ok(_) => info!(
                    topic = w.name,
                    partitions = w.partitions,
                    compacted = w.compacted,
                    "created the {}",
                    w.what
                ),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(KafkaError::Other(format!(
                        "the {} {} does not exist and cannot be created ({code}); create it ({} partition(s){})",
                        w.what,
                        w.name,
                        w.partitions,
                        if w.compacted { ", cleanup.policy=compact" } else { "" }
                    )))
                }
            }
        }
        let until = Instant::now() + timeout;
        while partitions(&client, w.name, timeout)? == 0 {
            if Instant::now() >= until {
                return Err(KafkaError::Other(format!(
                    "{} {} created but not visible yet",
                    w.what, w.name
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}
