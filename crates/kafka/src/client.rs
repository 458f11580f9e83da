//! librdkafka settings: the fixed ones the exactly-once design needs, plus `kafka.client`
//! passed through with `${NAME}` expansion from the environment.

use rdkafka::ClientConfig;
use std::collections::BTreeMap;

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
