//! `fundwatch produce` never loses records silently: records librdkafka gives up on fail the
//! load, with their count and the broker's reason.

mod common;

use common::*;

#[test]
fn undelivered_records_fail_the_load() {
    init_logs();
    let b = ensure_broker();
    let topics = create_topics(&b, "produce", 1);
    let mut cfg = config(&b, &topics);
    // A name the broker refuses: every record fails at once.
    cfg.kafka.input_topic = "not a valid topic!".into();
    let input = std::env::temp_dir().join(format!("{}.jsonl", unique("produce")));
    let text = std::fs::read_to_string(fixture()).unwrap();
    std::fs::write(&input, text.lines().take(5).collect::<Vec<_>>().join("\n")).unwrap();
    let opts = fundwatch_kafka::ProduceOptions {
        input: input.clone(),
        ..Default::default()
    };
    let err = fundwatch_kafka::produce(&cfg, &opts).expect_err("records to an invalid topic must fail the load");
    let msg = err.to_string();
    assert!(msg.contains("5 of 5 records were not delivered"), "{msg}");
    assert!(msg.contains("Invalid topic"), "{msg}");

    // The same lines to the real topic are all delivered.
    cfg.kafka.input_topic = topics.input.clone();
    let summary = fundwatch_kafka::produce(&cfg, &opts).unwrap();
    assert_eq!(summary.records, 5);
    let _ = std::fs::remove_file(input);
}
