//! TLS + SASL pass-through against a real secured broker (the SASL_SSL listener of
//! `scripts/kafka.sh`, SCRAM-SHA-512, hostname verification on): `produce` and `run` with the
//! config's `[kafka.client]` section and the password from `${FUNDWATCH_KAFKA_PASSWORD}` give
//! replay's alerts; a wrong password or an untrusted certificate stops them with the reason;
//! a missing `${ENV}` is refused at start naming the setting.
//!
//! Where the listener is: `FUNDWATCH_KAFKA_SASL_SSL_BOOTSTRAP` (default
//! 127.0.0.1:$KAFKA_SASL_SSL_PORT, else 19094), `FUNDWATCH_KAFKA_CA` (default
//! `$FUNDWATCH_KAFKA_DATA/tls/ca.pem`), `KAFKA_SASL_USER` / `KAFKA_SASL_PASSWORD` (the
//! script's test-only defaults). Without that listener the tests skip, unless
//! `FUNDWATCH_REQUIRE_SECURED_BROKER` is set (CI sets it).

mod common;

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fundwatch_rules::Config;

/// The environment variable the example config reads the password from.
const PASSWORD_VAR: &str = "FUNDWATCH_KAFKA_PASSWORD";

fn env_or(name: &str, default: impl FnOnce() -> String) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(default)
}

struct Secured {
    /// PLAINTEXT listener of the same broker: topic set-up and read-back only.
    plain: String,
    bootstrap: String,
    ca: PathBuf,
    user: String,
    password: String,
}

fn secured_bootstrap() -> String {
    env_or("FUNDWATCH_KAFKA_SASL_SSL_BOOTSTRAP", || {
        format!("127.0.0.1:{}", env_or("KAFKA_SASL_SSL_PORT", || "19094".into()))
    })
}

/// The secured listener, or None (test skipped) when it is not there and not required.
fn secured(test: &str) -> Option<Secured> {
    let plain = ensure_broker();
    let bootstrap = secured_bootstrap();
    let data = env_or("FUNDWATCH_KAFKA_DATA", || "/var/tmp/fundwatch-kafka-data".into());
    let ca = PathBuf::from(env_or("FUNDWATCH_KAFKA_CA", || format!("{data}/tls/ca.pem")));
    let listening = bootstrap
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    let missing = match (listening, ca.is_file()) {
        (true, true) => None,
        (false, _) => Some(format!("nothing listens on {bootstrap}")),
        (true, false) => Some(format!("no CA certificate at {}", ca.display())),
    };
    if let Some(why) = missing {
        let msg = format!(
            "no secured (SASL_SSL) Kafka listener: {why}. `scripts/kafka.sh start` opens one \
             (a broker started by an older script has none: `scripts/kafka.sh restart`); \
             set FUNDWATCH_KAFKA_SASL_SSL_BOOTSTRAP / FUNDWATCH_KAFKA_CA for another one"
        );
        assert!(
            std::env::var_os("FUNDWATCH_REQUIRE_SECURED_BROKER").is_none(),
            "{msg} (FUNDWATCH_REQUIRE_SECURED_BROKER is set, so this is a failure)"
        );
        eprintln!("SKIPPED {test}: {msg}");
        return None;
    }
    Some(Secured {
        plain,
        bootstrap,
        ca,
        user: env_or("KAFKA_SASL_USER", || "fundwatch".into()),
        password: env_or("KAFKA_SASL_PASSWORD", || "fundwatch-test-secret".into()),
    })
}

/// The shipped example (`config/secured-example.toml`): its `[kafka.client]` section as
/// written, pointed at this broker's address, CA and user, with the test topics and timings.
fn secured_config(brokers: &str, ca: &Path, user: &str, topics: &Topics) -> Config {
    let example = Config::load(&repo_root().join("config/secured-example.toml")).expect("config/secured-example.toml");
    example.check().expect("config/secured-example.toml is valid");
    let client = &example.kafka.client;
    assert_eq!(client["security.protocol"], "SASL_SSL");
    assert_eq!(client["sasl.mechanisms"], "SCRAM-SHA-512");
    assert_eq!(client["sasl.password"], format!("${{{PASSWORD_VAR}}}"));
    assert!(
        !client.contains_key("ssl.endpoint.identification.algorithm"),
        "the example keeps hostname verification on"
    );
    let mut cfg = config(brokers, topics);
    cfg.kafka.client.extend(client.clone());
    cfg.kafka
        .client
        .insert("ssl.ca.location".into(), ca.display().to_string());
    cfg.kafka.client.insert("sasl.username".into(), user.to_owned());
    cfg
}

/// `fundwatch-kafka-test-service --config FILE ARGS…` (the `run` / `produce` code paths of
/// `fundwatch`) with the password variable set to `password`, or unset; waits at most
/// `timeout` and returns the output (stderr is captured to check the reason).
fn service(config: &Path, args: &[&str], password: Option<&str>, timeout: Duration) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fundwatch-kafka-test-service"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn,fundwatch_kafka=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match password {
        Some(p) => cmd.env(PASSWORD_VAR, p),
        None => cmd.env_remove(PASSWORD_VAR),
    };
    let mut child = cmd.spawn().expect("spawn fundwatch-kafka-test-service");
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = read(Box::new(child.stdout.take().expect("stdout")));
    let err = read(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!("{args:?} did not finish within {timeout:?}; stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn succeeded(what: &str, out: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed ({}):\n{stderr}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{what}: summary is not JSON ({e}): {stdout}"))
}

/// The process failed, within `within`, and its stderr says all of `reasons`.
fn refused(what: &str, out: &Output, took: Duration, within: Duration, reasons: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what} should have failed; stderr:\n{stderr}");
    assert!(
        took < within,
        "{what} took {took:?} to fail (want < {within:?}); stderr:\n{stderr}"
    );
    for r in reasons {
        assert!(stderr.contains(r), "{what}: stderr does not say {r:?}:\n{stderr}");
    }
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn sasl_ssl_run_with_password_from_env_equals_replay() {
    let Some(s) = secured("sasl_ssl_run_with_password_from_env_equals_replay") else {
        return;
    };
    let t0 = Instant::now();
    let topics = create_topics(&s.plain, "tls-eq", 4);
    let cfg = secured_config(&s.bootstrap, &s.ca, &s.user, &topics);
    let path = write_config(&cfg, "tls-eq");
    let (want, replay_summary) = replay(&fixture());

    // `produce` through the secured listener, with the same config.
    let fixture = fixture();
    let fixture = fixture.to_str().expect("fixture path");
    let out = service(
        &path,
        &["--produce", fixture],
        Some(&s.password),
        Duration::from_secs(120),
    );
    let produced = succeeded("produce over SASL_SSL", &out);
    assert_eq!(produced["records"].as_u64(), Some(replay_summary.records_read));

    // `run` in drain mode: exits once the input is consumed and committed.
    let out = service(
        &path,
        &["--instance-id", "tls", "--listen", "off", "--exit-when-idle-ms", "2000"],
        Some(&s.password),
        Duration::from_secs(240),
    );
    let summary = succeeded("run over SASL_SSL", &out);
    assert_eq!(summary["records_consumed"].as_u64(), Some(replay_summary.records_read));
    assert_eq!(summary["alerts"].as_u64(), Some(want.len() as u64));
    let (got, n) = committed_alerts(&s.plain, &topics.alerts);
    assert_same_alerts(&got, n, &want);
    let _ = std::fs::remove_file(path);
    eprintln!(
        "sasl_ssl_run_with_password_from_env_equals_replay: {} records, {} alerts over {} in {:.1}s",
        replay_summary.records_read,
        want.len(),
        s.bootstrap,
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn wrong_password_stops_run_and_produce_with_the_reason() {
    let Some(s) = secured("wrong_password_stops_run_and_produce_with_the_reason") else {
        return;
    };
    let topics = create_topics(&s.plain, "tls-badpw", 1);
    let cfg = secured_config(&s.bootstrap, &s.ca, &s.user, &topics);
    let path = write_config(&cfg, "tls-badpw");
    let why = [
        "cannot connect securely",
        "SASL authentication",
        "invalid credentials",
        "[kafka.client]",
    ];
    for (what, args) in [
        ("run", vec!["--instance-id", "tls-badpw", "--listen", "off"]),
        ("produce", vec!["--produce", "/dev/null"]),
    ] {
        let t = Instant::now();
        let out = service(&path, &args, Some("not-the-password"), Duration::from_secs(120));
        let line = refused(what, &out, t.elapsed(), Duration::from_secs(60), &why);
        eprintln!(
            "{what} with a wrong password, after {:.1}s: {line}",
            t.elapsed().as_secs_f64()
        );
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn untrusted_broker_certificate_stops_run_with_the_reason() {
    let Some(s) = secured("untrusted_broker_certificate_stops_run_with_the_reason") else {
        return;
    };
    let topics = create_topics(&s.plain, "tls-untrusted", 1);
    let mut cfg = secured_config(&s.bootstrap, &s.ca, &s.user, &topics);
    // The system's CAs instead of the broker's: its certificate must not verify.
    cfg.kafka.client.remove("ssl.ca.location");
    let path = write_config(&cfg, "tls-untrusted");
    let t = Instant::now();
    let out = service(
        &path,
        &["--instance-id", "tls-untrusted", "--listen", "off"],
        Some(&s.password),
        Duration::from_secs(120),
    );
    let why = [
        "cannot connect securely",
        "SSL handshake failed",
        "certificate verify failed",
    ];
    let line = refused("run", &out, t.elapsed(), Duration::from_secs(60), &why);
    eprintln!(
        "run with an untrusted certificate, after {:.1}s: {line}",
        t.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_file(path);
}

/// Needs no broker: the start is refused before anything connects.
#[test]
fn missing_password_variable_is_refused_at_start_naming_the_setting() {
    let topics = Topics {
        input: unique("tls-noenv-in"),
        alerts: unique("tls-noenv-alerts"),
        dead: unique("tls-noenv-dead"),
        group: unique("tls-noenv-group"),
        state: unique("tls-noenv-state"),
    };
    let cfg = secured_config(
        &secured_bootstrap(),
        Path::new("/nonexistent/ca.pem"),
        "fundwatch",
        &topics,
    );
    let path = write_config(&cfg, "tls-noenv");
    let why = [r#"kafka.client."sasl.password""#, PASSWORD_VAR, "is not set"];
    for (what, args) in [
        ("run", vec!["--instance-id", "tls-noenv", "--listen", "off"]),
        ("produce", vec!["--produce", "/dev/null"]),
    ] {
        let t = Instant::now();
        let out = service(&path, &args, None, Duration::from_secs(60));
        let line = refused(what, &out, t.elapsed(), Duration::from_secs(10), &why);
        eprintln!("{what} without {PASSWORD_VAR}: {line}");
    }
    let _ = std::fs::remove_file(path);
}
