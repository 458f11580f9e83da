//! The inbox of 10,000 cases (and 20,000 alerts) over HTTP on a loopback port: the time per
//! request of the first page under the filters and sorts an analyst uses. The aim is ≤ 200 ms;
//! the run fails when a median is over it.
//!
//! `nice -n 19 cargo bench -p fundwatch-console --bench inbox`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use fundwatch_console::records::{AlertRow, CaseRow, Incoming};

const CASES: usize = 10_000;
const RUNS: usize = 30;
const AIM: Duration = Duration::from_millis(200);

fn items() -> Vec<Incoming> {
    let regions = ["310101", "310104", "320102", "330106", "440305"];
    let rules = [
        "scatter_in_concentrated_out",
        "periodic_batch_small_out",
        "rapid_pass_through",
        "structuring",
    ];
    let mut out = Vec::with_capacity(CASES * 3);
    for i in 0..CASES {
        let lead = regions[i % regions.len()];
        let other = regions[(i / 7) % regions.len()];
        let a1 = format!("al-{i}-1");
        let a2 = format!("al-{i}-2");
        let score = 40.0 + (i * 37 % 600) as f64 / 10.0;
        let day = 1 + (i % 28) as u32;
        for (id, region, rule) in [(&a1, lead, rules[i % 4]), (&a2, other, rules[(i + 1) % 4])] {
            let text = alert_json(id, region, rule, score, day);
            out.push(Incoming::Alert(AlertRow::parse(&text).expect("alert")));
        }
        let raised = format!("{}.{:02}", 10_000 + i * 131, i % 100);
        let text = case_json(
            &format!("case-{i:05}"),
            1 + (i % 5) as i64,
            lead,
            &[lead, other],
            &[a1.as_str(), a2.as_str()],
            10 + (i % 400) as i64,
            &raised,
        );
        out.push(Incoming::Case(CaseRow::parse(&text).expect("case")));
    }
    out
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let built = Instant::now();
        let c = console_with(Vec::new()).await;
        let all = items();
        for chunk in all.chunks(2_000) {
            c.store.ingest(chunk, &[]).await.expect("ingest");
        }
        println!(
            "stored {CASES} cases and {} alerts in {:.1} s",
            CASES * 2,
            built.elapsed().as_secs_f64()
        );
        let mut over = false;
        for user in ["all_super", "sh_super"] {
            let l = login(&c.addr, user).await;
            for path in [
                "/inbox",
                "/inbox?sort=raised",
                "/inbox?sort=investors&status=new",
                "/inbox?region=3201&rule=structuring",
                "/inbox?from=2026-03-01&to=2026-03-10&sort=score",
                "/inbox?page=100",
                "/inbox?kind=alert",
                "/api/inbox?sort=raised",
            ] {
                let mut times = Vec::with_capacity(RUNS);
                for _ in 0..RUNS {
                    let t = Instant::now();
                    let r = request(&c.addr, "GET", path, Some(&l.cookie), &[], None).await;
                    times.push(t.elapsed());
                    assert_eq!(r.status, 200, "{path}");
                }
                times.sort();
                let median = times[RUNS / 2];
                let p95 = times[RUNS * 95 / 100];
                over |= median > AIM;
                println!(
                    "{user:>10} {path:<50} median {:>6.1} ms  p95 {:>6.1} ms",
                    median.as_secs_f64() * 1e3,
                    p95.as_secs_f64() * 1e3
                );
            }
        }
        if over {
            eprintln!("a median is over the aim of {} ms", AIM.as_millis());
            std::process::exit(1);
        }
    });
}
