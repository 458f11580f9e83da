//! `fundwatch backtest` from the command line: its comparison always prints, and the HTML
//! report is written only by a build with the `report` feature (polars) — a default build
//! says so plainly instead of failing late or pretending.

use std::process::Command;

fn backtest(args: &[&str]) -> std::process::Output {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/stream-20k.jsonl");
    let labels = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/stream-20k.labels.jsonl");
    Command::new(env!("CARGO_BIN_EXE_fundwatch"))
        .args(["backtest", "--input", fixture, "--labels", labels, "--no-cases"])
        .args(args)
        .output()
        .expect("fundwatch backtest starts")
}

#[test]
fn report_is_written_only_by_a_report_build() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    let out_arg = out_dir.to_str().unwrap();
    let explicit = backtest(&["--out", out_arg]);
    let stdout = String::from_utf8_lossy(&explicit.stdout);
    let stderr = String::from_utf8_lossy(&explicit.stderr);
    if cfg!(feature = "report") {
        assert!(explicit.status.success(), "{stderr}");
        assert!(out_dir.join("report.html").is_file(), "{stdout}");
        assert!(stdout.contains("report: "), "{stdout}");
    } else {
        // Refused before the run, naming the feature and the command that builds it.
        assert!(!explicit.status.success(), "{stdout}");
        assert!(stderr.contains("--features report"), "{stderr}");
        assert!(!out_dir.exists());
        // Without --out the comparison still runs and prints; the report line says why
        // there is no file.
        let plain = Command::new(env!("CARGO_BIN_EXE_fundwatch"))
            .current_dir(dir.path())
            .args([
                "backtest",
                "--input",
                concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/stream-20k.jsonl"),
                "--no-cases",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&plain.stdout);
        assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
        assert!(stdout.contains("report: not written"), "{stdout}");
        assert!(stdout.contains("--features report"), "{stdout}");
        assert!(!dir.path().join("fundwatch-report").exists());
    }
}
