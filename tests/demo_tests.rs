//! `fundwatch demo` is the README's first command: it must work on a fresh machine from any
//! directory, with nothing installed (in-process mock cluster, stream generated when the
//! repository's fixture is not at hand).

use std::process::Command;

#[test]
fn demo_runs_outside_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fundwatch"))
        .args(["demo", "--quiet", "--listen", "off"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}");
    assert!(
        stderr.contains("not found (not started from the repository)"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary JSON on stdout");
    // The generated stream is the fixture's, byte for byte: the same counts as from the
    // repository (README: 20,019 records, 54 alerts).
    let run = &summary["run"];
    let consumed = run["records_consumed"].as_u64().expect("record count");
    let alerts = run["alerts"].as_u64().expect("alert count");
    if run["transactions_aborted"] == 0 {
        assert_eq!((consumed, alerts), (20019, 54), "{summary}");
    } else {
        // An aborted transaction's records are read, and its alerts emitted, again.
        assert!(consumed >= 20019 && alerts >= 54, "{summary}");
    }
}
