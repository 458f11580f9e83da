//! librdkafka settings: the fixed ones the exactly-once design needs, plus `kafka.client`
//! passed through with `${NAME}` expansion from the environment.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::debug;

use crate::KafkaError;

/// Which client a setting is for: keys prefixed `consumer.` or `producer.` in `kafka.client`
/// go to that client only (prefix stripped); other keys go to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Consumer,
    Producer,
    Admin,
}

/// `"${NAME}"` → the value of environment variable NAME; anything else as-is. `${NAME}`
/// may also appear inside a longer value.
pub fn expand_env(key: &str, value: &str) -> Result<String, KafkaError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else { break };
        let var = &rest[start + 2..start + end];
        out.push_str(&rest[..start]);
        match std::env::var(var) {
            Ok(v) => out.push_str(&v),
            Err(_) => {
                return Err(KafkaError::MissingEnv {
                    key: key.to_owned(),
                    var: var.to_owned(),
                })
            }
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every `${NAME}` in `kafka.client` resolves: checked before anything connects, so a
/// missing secret stops the start with the setting's name.
pub fn check_env(passthrough: &BTreeMap<String, String>) -> Result<(), KafkaError> {
    passthrough.iter().try_for_each(|(k, v)| expand_env(k, v).map(drop))
}

/// Base settings for one client: bootstrap servers and the passthrough settings for `role`.
pub fn client_config(
    brokers: &str,
    passthrough: &BTreeMap<String, String>,
    role: Role,
) -> Result<ClientConfig, KafkaError> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers);
    for (k, v) in passthrough {
        let key = match (k.split_once('.'), role) {
            (Some(("consumer", rest)), Role::Consumer) => rest,
            (Some(("producer", rest)), Role::Producer) => rest,
            (Some(("consumer" | "producer", _)), _) => continue,
            _ => k.as_str(),
        };
        cfg.set(key, expand_env(k, v)?);
    }
    Ok(cfg)
}

/// Connect with the producer's and the consumer's settings and wait for the broker's
/// metadata, until `deadline` or `stop()`. A TLS or SASL failure (wrong password, untrusted
/// certificate, host name mismatch) is returned at once as [`KafkaError::Security`] with
/// librdkafka's reason: librdkafka itself would retry it forever, and a transactional
/// producer would only report a timeout. An unreachable broker is not an error here: the
/// caller waits for it as it always has.
pub fn check_connection(
    brokers: &str,
    passthrough: &BTreeMap<String, String>,
    deadline: Instant,
    stop: impl Fn() -> bool,
) -> Result<(), KafkaError> {
    let pc = client_config(brokers, passthrough, Role::Producer)?;
    let cc = client_config(brokers, passthrough, Role::Consumer)?;
    let producer: BaseProducer<Probe> = quiet(pc.clone()).create_with_context(Probe::default())?;
    probe(brokers, producer.client(), producer.context(), deadline, &stop, || {
        producer.poll(Duration::from_millis(50));
        None
    })?;
    // The consumer only needs a probe of its own when `consumer.`-prefixed settings change
    // how it connects.
    if security_settings(&pc) == security_settings(&cc) {
        return Ok(());
    }
    let consumer: BaseConsumer<Probe> = quiet(cc).create_with_context(Probe::default())?;
    probe(brokers, consumer.client(), consumer.context(), deadline, &stop, || {
        // A consumer hands error events to `poll`, not to the context.
        match consumer.poll(Duration::from_millis(50)) {
            Some(Err(RdError::MessageConsumption(code))) if is_security(code) => Some(code),
            _ => None,
        }
    })
}

fn probe<C: ClientContext>(
    brokers: &str,
    client: &rdkafka::client::Client<C>,
    ctx: &Probe,
    deadline: Instant,
    stop: &impl Fn() -> bool,
    mut serve: impl FnMut() -> Option<RDKafkaErrorCode>,
) -> Result<(), KafkaError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.fetch_metadata(None, left.clamp(Duration::from_millis(100), Duration::from_secs(2))) {
            Ok(_) => return Ok(()),
            Err(e) => debug!(error = %e, "no metadata from the brokers yet"),
        }
        let code = serve();
        if let Some(reason) = ctx.failure(code) {
            return Err(KafkaError::Security {
                brokers: brokers.to_owned(),
                reason,
            });
        }
        if Instant::now() >= deadline || stop() {
            return Ok(());
        }
    }
}

/// The probe's own settings: no librdkafka log lines of its own beyond errors (the real
/// clients log everything again).
fn quiet(mut cfg: ClientConfig) -> ClientConfig {
    cfg.set_log_level(RDKafkaLogLevel::Error);
    cfg
}

fn security_settings(cfg: &ClientConfig) -> Vec<(&String, &String)> {
    let mut v: Vec<_> = cfg
        .config_map()
        .iter()
        .filter(|(k, _)| k.starts_with("security.") || k.starts_with("ssl.") || k.starts_with("sasl."))
        .collect();
    v.sort();
    v
}

fn is_security(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL | RDKafkaErrorCode::SaslAuthenticationFailed
    )
}

/// Context of the connection probe: keeps what a TLS or SASL failure said.
#[derive(Default)]
struct Probe {
    /// Reason given with a TLS/SASL error event.
    error: Mutex<Option<String>>,
    /// The last connection failure librdkafka logged (its reason, for a consumer's error event).
    last_fail: Mutex<Option<String>>,
}

impl Probe {
    fn failure(&self, consumer_code: Option<RDKafkaErrorCode>) -> Option<String> {
        let lock = |m: &Mutex<Option<String>>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
        lock(&self.error).or_else(|| consumer_code.map(|c| lock(&self.last_fail).unwrap_or_else(|| c.to_string())))
    }
}

impl ClientContext for Probe {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        if fac == "FAIL" {
            *self.last_fail.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.to_owned());
        }
        debug!(?level, fac, "librdkafka (connection probe): {msg}");
    }

    fn error(&self, error: RdError, reason: &str) {
        if let RdError::Global(code) = error {
            if is_security(code) {
                *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_owned());
            }
        }
    }
}

impl ProducerContext for Probe {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

impl ConsumerContext for Probe {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_env() {
        std::env::set_var("FW_TEST_SECRET", "s3cret");
        assert_eq!(expand_env("k", "${FW_TEST_SECRET}").unwrap(), "s3cret");
        assert_eq!(expand_env("k", "a-${FW_TEST_SECRET}-b").unwrap(), "a-s3cret-b");
        assert_eq!(expand_env("k", "plain").unwrap(), "plain");
        assert!(expand_env("k", "${FW_TEST_NOT_SET_123}").is_err());
    }

    #[test]
    fn role_prefixes() {
        let mut m = BTreeMap::new();
        m.insert("consumer.fetch.max.bytes".to_owned(), "1000".to_owned());
        m.insert("producer.linger.ms".to_owned(), "7".to_owned());
        m.insert("security.protocol".to_owned(), "plaintext".to_owned());
        let c = client_config("b:1", &m, Role::Consumer).unwrap();
        assert_eq!(c.get("fetch.max.bytes"), Some("1000"));
        assert_eq!(c.get("linger.ms"), None);
        assert_eq!(c.get("security.protocol"), Some("plaintext"));
        let p = client_config("b:1", &m, Role::Producer).unwrap();
        assert_eq!(p.get("linger.ms"), Some("7"));
        assert_eq!(p.get("fetch.max.bytes"), None);
    }
}
