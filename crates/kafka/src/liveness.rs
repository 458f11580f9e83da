//! Liveness of the polling loop, for `/healthz` and a watchdog log line.
//!
//! Every call the loop makes into librdkafka has a timeout, so a loop that has not come
//! round for minutes is wedged (a client-library bug, or a deadlock), not waiting on the
//! broker: `/healthz` then answers 503 so that an orchestrator restarts the instance, which
//! is safe by the exactly-once argument (a restart rebuilds from the committed offsets).
//! The watchdog logs the phase the loop is stuck in well before that, for diagnosis.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, warn};

/// No beat for this long: `/healthz` fails. Longer than the longest legitimate iteration
/// (a hung-transaction recovery makes a handful of calls of up to 30 s each).
pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(300);
/// No beat for this long: the watchdog starts logging where the loop is.
pub const WARN_AFTER: Duration = Duration::from_secs(60);

/// What the polling loop is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Polling,
    Processing,
    Committing,
    Resetting,
    Rebalancing,
    Reloading,
    RecreatingClient,
    Stopping,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Polling,
            2 => Phase::Processing,
            3 => Phase::Committing,
            4 => Phase::Resetting,
            5 => Phase::Rebalancing,
            6 => Phase::Reloading,
            7 => Phase::RecreatingClient,
            8 => Phase::Stopping,
            _ => Phase::Starting,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Polling => "polling",
            Phase::Processing => "processing",
            Phase::Committing => "committing",
            Phase::Resetting => "resetting",
            Phase::Rebalancing => "rebalancing",
            Phase::Reloading => "reloading",
            Phase::RecreatingClient => "recreating a client",
            Phase::Stopping => "stopping",
        }
    }
}

/// The loop's last beat.
#[derive(Debug)]
pub struct Liveness {
    origin: Instant,
    last_ms: AtomicU64,
    phase: AtomicU8,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            phase: AtomicU8::new(Phase::Starting as u8),
        }
    }
}

impl Liveness {
    /// A loop whose last beat was `ago` ago (tests); None if the clock started too recently.
    #[cfg(test)]
    pub fn stalled_for(ago: Duration, phase: Phase) -> Option<Liveness> {
        Some(Liveness {
            origin: Instant::now().checked_sub(ago)?,
            last_ms: AtomicU64::new(0),
            phase: AtomicU8::new(phase as u8),
        })
    }

    /// The loop is alive and entering `phase`.
    pub fn beat(&self, phase: Phase) {
        self.last_ms
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Time since the last beat, and the phase entered then.
    pub fn since_beat(&self) -> (Duration, Phase) {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        (
            self.origin.elapsed().saturating_sub(last),
            Phase::from_u8(self.phase.load(Ordering::Relaxed)),
        )
    }

    /// None when healthy; else why not.
    pub fn unhealthy(&self) -> Option<String> {
        let (age, phase) = self.since_beat();
        (age >= UNHEALTHY_AFTER).then(|| format!("polling loop stalled for {}s while {}", age.as_secs(), phase.name()))
    }
}

/// A named thread that runs until dropped; its body watches the stop flag.
pub struct StoppableThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl StoppableThread {
    pub fn spawn(name: &str, body: impl FnOnce(&AtomicBool) + Send + 'static) -> std::io::Result<StoppableThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&flag))?;
        Ok(StoppableThread {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for StoppableThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Logs while the loop is stalled (every 30 s), until dropped.
pub struct Watchdog {
    _thread: Option<StoppableThread>,
}

impl Watchdog {
    pub fn start(liveness: Arc<Liveness>) -> Watchdog {
        let thread = StoppableThread::spawn("fundwatch-watchdog", move |stop| {
            let mut last_log: Option<Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let (age, phase) = liveness.since_beat();
                if age >= WARN_AFTER && last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                    last_log = Some(Instant::now());
                    if age >= UNHEALTHY_AFTER {
                        error!(
                            seconds = age.as_secs(),
                            phase = phase.name(),
                            "polling loop stalled: /healthz now fails; restarting the instance is safe"
                        );
                    } else {
                        warn!(
                            seconds = age.as_secs(),
                            phase = phase.name(),
                            "polling loop has made no progress"
                        );
                    }
                }
            }
        });
        Watchdog { _thread: thread.ok() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_until_the_loop_stops_beating() {
        let l = Liveness::default();
        l.beat(Phase::Committing);
        assert!(l.unhealthy().is_none());
        let (age, phase) = l.since_beat();
        assert!(age < Duration::from_secs(1));
        assert_eq!(phase, Phase::Committing);
        // A beat long ago (origin moved back).
        let Some(old) = Liveness::stalled_for(UNHEALTHY_AFTER + Duration::from_secs(1), Phase::Resetting) else {
            return; // the clock starts too recently to fake an old beat
        };
        let why = old.unhealthy().expect("stalled");
        assert!(why.contains("while resetting"), "{why}");
        old.beat(Phase::Polling);
        assert!(old.unhealthy().is_none());
    }
}
