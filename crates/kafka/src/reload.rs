//! Live config reload for `fundwatch run`: the config file is checked for a change of content
//! every `--config-poll-ms` (default 1 s) and SIGHUP forces a re-read. A new config is
//! validated with [`Config::load`] and either applied (the service commits, then rebuilds
//! every partition under it, see `Pipeline::apply_config`) or refused, the service keeping
//! the config it runs.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fundwatch_rules::Config;

use crate::KafkaError;

/// Default interval between checks of the config file's content.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// Watches one config file; see [`ConfigWatcher::due`].
pub(crate) struct ConfigWatcher {
    path: PathBuf,
    /// `None`: only SIGHUP triggers a reload.
    poll: Option<Duration>,
    last_check: Instant,
    /// Hash of the content last seen (`None`: unreadable).
    seen: Option<u64>,
    hup: Arc<AtomicBool>,
    hup_id: signal_hook::SigId,
}

fn content_hash(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

impl ConfigWatcher {
    pub fn new(path: PathBuf, poll: Option<Duration>) -> Result<ConfigWatcher, KafkaError> {
        let hup = Arc::new(AtomicBool::new(false));
        let hup_id = signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
            .map_err(|e| KafkaError::Other(format!("cannot install the SIGHUP handler: {e}")))?;
        Ok(ConfigWatcher {
            seen: content_hash(&path),
            path,
            poll,
            last_check: Instant::now(),
            hup,
            hup_id,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the config should be re-read now ("SIGHUP", "file changed"), if it should.
    pub fn due(&mut self) -> Option<&'static str> {
        if self.hup.swap(false, Ordering::SeqCst) {
            // The content read now is what the reload applies: the poll must not fire for it again.
            self.seen = content_hash(&self.path);
            self.last_check = Instant::now();
            return Some("SIGHUP");
        }
        let poll = self.poll?;
        if self.last_check.elapsed() < poll {
            return None;
        }
        self.last_check = Instant::now();
        let now = content_hash(&self.path);
        if now != self.seen {
            self.seen = now;
            return Some("file changed");
        }
        None
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.hup_id);
    }
}

/// What to do with a re-read config.
#[derive(Debug)]
pub(crate) enum Verdict {
    Apply(Box<Config>),
    Unchanged,
    Refused(String),
}

/// Kafka-client and listener settings: fixed for the life of the process (the consumer
/// group, transactional id and topics would change under the running transactions).
fn fixed_fields_changed(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.kafka, &new.kafka);
    let mut out = Vec::new();
    for (name, changed) in [
        ("kafka.brokers", a.brokers != b.brokers),
        ("kafka.group_id", a.group_id != b.group_id),
        ("kafka.input_topic", a.input_topic != b.input_topic),
        ("kafka.alert_topic", a.alert_topic != b.alert_topic),
        ("kafka.dead_letter_topic", a.dead_letter_topic != b.dead_letter_topic),
        ("kafka.state_topic", a.state_topic != b.state_topic),
        ("kafka.trace_topic", a.trace_topic != b.trace_topic),
        ("kafka.case_topic", a.case_topic != b.case_topic),
        ("kafka.rekey_topic", a.rekey_topic != b.rekey_topic),
        ("kafka.rekey_partitions", a.rekey_partitions != b.rekey_partitions),
        // The linker's state and the engines' ledgers are built under them.
        ("cases", old.cases != new.cases),
        ("routing", old.routing != new.routing),
        // Records already consumed were decoded with it; a new mapping needs a restart.
        ("input", old.input != new.input),
        (
            "kafka.checkpoint_interval",
            a.checkpoint_interval != b.checkpoint_interval,
        ),
        (
            "kafka.transactional_id_prefix",
            a.transactional_id_prefix != b.transactional_id_prefix,
        ),
        ("kafka.client", a.client != b.client),
        ("service.listen", old.service.listen != new.service.listen),
    ] {
        if changed {
            out.push(name);
        }
    }
    out
}

/// Re-read and validate `path` against the running config.
pub(crate) fn evaluate(current: &Config, path: &Path) -> Verdict {
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    let fixed = fixed_fields_changed(current, &new);
    if !fixed.is_empty() {
        return Verdict::Refused(format!(
            "{} cannot change while the service runs: restart it to apply them",
            fixed.join(", ")
        ));
    }
    if new == *current {
        Verdict::Unchanged
    } else {
        Verdict::Apply(Box::new(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reload_verdicts_name_the_reason() {
        let dir = std::env::temp_dir().join(format!("fw-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let current = Config::default();
        let same = write(&dir, "same.toml", &current.to_toml());
        assert!(matches!(evaluate(&current, &same), Verdict::Unchanged));
        let changed = write(&dir, "changed.toml", "[rules.large_value]\ncash_line = \"20000\"\n");
        assert!(matches!(evaluate(&current, &changed), Verdict::Apply(_)));
        let invalid = write(&dir, "invalid.toml", "[engine]\nallowed_lateness = \"5d\"\n");
        match evaluate(&current, &invalid) {
            Verdict::Refused(why) => assert!(why.contains("allowed_lateness"), "{why}"),
            v => panic!("{v:?}"),
        }
        let group = write(&dir, "group.toml", "[kafka]\ngroup_id = \"other\"\n");
        match evaluate(&current, &group) {
            Verdict::Refused(why) => assert!(why.contains("kafka.group_id") && why.contains("restart"), "{why}"),
            v => panic!("{v:?}"),
        }
        for (name, text, field) in [
            ("traces.toml", "[kafka]\ntrace_topic = \"other\"\n", "kafka.trace_topic"),
            ("cases.toml", "[kafka]\ncase_topic = \"other\"\n", "kafka.case_topic"),
            ("linking.toml", "[cases]\nmin_shared_people = 7\n", "cases"),
            (
                "routing.toml",
                "[routing.regions]\n\"3301\" = \"office-hz\"\n",
                "routing",
            ),
            ("input.toml", "[input]\nformat = \"debezium\"\n", "input"),
        ] {
            let p = write(&dir, name, text);
            match evaluate(&current, &p) {
                Verdict::Refused(why) => assert!(why.contains(field) && why.contains("restart"), "{why}"),
                v => panic!("{name}: {v:?}"),
            }
        }
        let missing = dir.join("missing.toml");
        assert!(matches!(evaluate(&current, &missing), Verdict::Refused(_)));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn watcher_fires_once_per_content_change() {
        let dir = std::env::temp_dir().join(format!("fw-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = write(&dir, "w.toml", "version = \"a\"\n");
        let mut w = ConfigWatcher::new(p.clone(), Some(Duration::ZERO)).unwrap();
        assert_eq!(w.due(), None);
        std::fs::write(&p, "version = \"b\"\n").unwrap();
        assert_eq!(w.due(), Some("file changed"));
        assert_eq!(w.due(), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
