//! The config file: documented defaults equal the built-in ones, and every mistake is named
//! by field with its allowed range.

use fundwatch_record::AccountType;
use fundwatch_rules::config::SegmentKey;
use fundwatch_rules::{Config, ConfigError};

fn shipped() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/fundwatch.toml"))
        .expect("config/fundwatch.toml")
}

fn problems(text: &str) -> String {
    match Config::from_toml(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn shipped_file_is_the_default() {
    assert_eq!(Config::from_toml(&shipped()).unwrap(), Config::default());
    assert_eq!(Config::from_toml("").unwrap(), Config::default());
    // The effective config round-trips through its own TOML.
    let d = Config::default();
    assert_eq!(Config::from_toml(&d.to_toml()).unwrap(), d);
}

#[test]
fn unknown_fields_are_refused_by_name() {
    let e = problems("[rules.structuring]\nmin_event = 3\n");
    assert!(e.contains("min_event"), "{e}");
    let e = problems("[engine]\nlateness = \"5m\"\n");
    assert!(e.contains("lateness"), "{e}");
}

#[test]
fn ranges_name_the_field_and_the_allowed_range() {
    let e = problems("[rules.scatter_in_concentrated_out]\nmin_distinct_payers = 1\nmin_out_share = 1.5\n[engine]\nallowed_lateness = \"2d\"\n");
    assert!(e.contains("3 problem(s)"), "{e}");
    assert!(
        e.contains("rules.scatter_in_concentrated_out.min_distinct_payers: 1 is out of range (allowed 2 to 100000)"),
        "{e}"
    );
    assert!(
        e.contains("rules.scatter_in_concentrated_out.min_out_share: 1.5 is out of range (allowed 0.05 to 1)"),
        "{e}"
    );
    assert!(
        e.contains("engine.allowed_lateness: 2d is out of range (allowed 0ms to 1d)"),
        "{e}"
    );
    let e = problems("[rules.periodic_batch_small_out]\nmin_period = \"30d\"\nmax_period = \"10d\"\n");
    assert!(
        e.contains("rules.periodic_batch_small_out.min_period: must not exceed max_period"),
        "{e}"
    );
    let e = problems("[rules.large_value]\ncash_line = \"50000.001\"\n");
    assert!(e.contains("3 decimals"), "{e}");
    let e = problems("[rules.rapid_pass_through]\nmax_hold = \"12 parsecs\"\n");
    assert!(e.contains("duration"), "{e}");
    let e = problems("[rules.periodic_batch_small_out]\nhorizon = \"200d\"\n");
    assert!(e.contains("engine.max_history"), "{e}");
}

#[test]
fn overrides_resolve_by_segment() {
    let cfg = Config::from_toml(
        r#"
[[rules.scatter_in_concentrated_out.overrides]]
match = { industry = ["investment", "elderly_care"] }
min_distinct_payers = 5

[[rules.scatter_in_concentrated_out.overrides]]
match = { account_type = "corporate", region = ["3301*"] }
confirm_score = 50.0
"#,
    )
    .unwrap();
    let key = |t, i, r| SegmentKey {
        account_type: t,
        industry: i,
        region: r,
    };
    let base = cfg.rules.resolve(&key(AccountType::Personal, "", "110101"));
    assert_eq!(base.scatter.min_distinct_payers, 8);
    let inv = cfg.rules.resolve(&key(AccountType::Personal, "investment", "110101"));
    assert_eq!(inv.scatter.min_distinct_payers, 5);
    assert_eq!(inv.scatter.confirm_score, 60.0);
    let both = cfg
        .rules
        .resolve(&key(AccountType::Corporate, "elderly_care", "330106"));
    assert_eq!(
        (both.scatter.min_distinct_payers, both.scatter.confirm_score),
        (5, 50.0)
    );
    let hz_personal = cfg.rules.resolve(&key(AccountType::Personal, "", "330106"));
    assert_eq!(hz_personal.scatter.confirm_score, 60.0);
}

#[test]
fn bad_overrides_are_named_with_their_index() {
    let e = problems("[[rules.structuring.overrides]]\nmatch = { industry = [\"investment\"] }\nmin_events = 1\n");
    assert!(
        e.contains("rules.structuring.overrides[0].min_events: 1 is out of range"),
        "{e}"
    );
    let e = problems("[[rules.structuring.overrides]]\nmin_events = 4\n");
    assert!(e.contains("match"), "{e}");
    let e = problems("[[rules.structuring.overrides]]\nmatch = { industri = [\"x\"] }\nmin_events = 4\n");
    assert!(e.contains("industri"), "{e}");
    let e = problems("[[rules.structuring.overrides]]\nmatch = { account_type = \"company\" }\n");
    assert!(e.contains("overrides[0].match.account_type"), "{e}");
    assert!(matches!(
        Config::from_toml("[[rules.structuring.overrides]]\nmatch = {}\nmin_evnts = 4\n"),
        Err(ConfigError::Parse(_))
    ));
}

#[test]
fn input_section_parses_and_builds_its_decoder() {
    let cfg = Config::from_toml(
        r#"
[input]
format = "debezium"
timestamp_zone = "+08:00"
timestamp_unit = "us"
amount_scale = 2
[input.fields]
tx_id = "TXN_ID"
counterparty = "CP.ACCT_NO"
direction = "DR_CR_FLG"
[input.values.direction]
in = ["C", "贷"]
out = ["D ", "借"]
"#,
    )
    .unwrap();
    let m = cfg.input.mapping();
    assert_eq!(m.format, fundwatch_record::SourceFormat::Debezium);
    assert_eq!(m.timestamp_zone_s, Some(8 * 3600));
    assert_eq!(m.epoch_unit, fundwatch_record::EpochUnit::Micros);
    assert_eq!(m.amount_scale, Some(2));
    assert_eq!(
        m.direction_out,
        vec!["D".to_owned(), "借".to_owned()],
        "values are trimmed"
    );
    assert!(m
        .fields
        .contains(&(fundwatch_record::Field::Counterparty, "CP.ACCT_NO".into())));
    assert!(!cfg.input.decoder().unwrap().is_default());
    assert!(Config::default().input.decoder().unwrap().is_default());
    // The effective config round-trips with its [input].
    assert_eq!(Config::from_toml(&cfg.to_toml()).unwrap(), cfg);
}

#[test]
fn input_mistakes_are_named_by_field() {
    let e = problems("[input.fields]\nammount = \"TXN_AMT\"\n");
    assert!(
        e.contains("input.fields.ammount: is not a field of the transaction record (allowed: tx_id, ts, account, counterparty, direction, amount, currency, channel, memo, account_type, industry, region, cross_border)"),
        "{e}"
    );
    let e = problems("[input.fields]\nmemo = \"a..b\"\n");
    assert!(
        e.contains("input.fields.memo: \"a..b\" is not a source field name"),
        "{e}"
    );
    let e = problems("[input.fields]\nmemo = \"\"\n");
    assert!(e.contains("input.fields.memo:"), "{e}");
    let e = problems("[input.fields]\nmemo = \"RMK\"\nregion = \"RMK\"\n");
    assert!(
        e.contains("input.fields.region: reads \"RMK\", which memo reads too"),
        "{e}"
    );
    let e = problems("[input.fields]\nmemo = \"tx_id\"\n");
    assert!(e.contains("reads \"tx_id\", which tx_id reads too"), "{e}");
    let e = problems("[input]\ntimestamp_zone = \"Asia/Shanghai\"\n");
    assert!(
        e.contains("input.timestamp_zone: \"Asia/Shanghai\" is not an offset like \"+08:00\" or \"Z\""),
        "{e}"
    );
    let e = problems("[input]\ntimestamp_zone = \"+25:00\"\n");
    assert!(e.contains("input.timestamp_zone"), "{e}");
    let e = problems("[input]\namount_scale = 30\n");
    assert!(
        e.contains("input.amount_scale: 30 is out of range (allowed 0 to 18)"),
        "{e}"
    );
    let e = problems("[input]\ndirection_from_sign = true\n[input.fields]\ndirection = \"DR_CR_FLG\"\n");
    assert!(
        e.contains("input.direction_from_sign: cannot be combined with fields.direction"),
        "{e}"
    );
    let e = problems("[input.values.direction]\nin = [\"C\"]\nout = [\"C\", \"D\"]\n");
    assert!(
        e.contains("input.values.direction: \"C\" is listed both as in and as out"),
        "{e}"
    );
    let e = problems("[input.values.direction]\nin = []\n");
    assert!(
        e.contains("input.values.direction.in: must list at least one value"),
        "{e}"
    );
    let e = problems("[input.values.direction]\nout = [\" \"]\n");
    assert!(
        e.contains("input.values.direction.out: values must not be empty strings"),
        "{e}"
    );
    // Names outside the section's vocabulary fail at parse time, naming the key.
    let e = problems("[input]\nformat = \"avro\"\n");
    assert!(e.contains("avro") && e.contains("debezium"), "{e}");
    let e = problems("[input]\ntimestamp_unit = \"ns\"\n");
    assert!(e.contains("ns"), "{e}");
    let e = problems("[input]\nzone = \"+08:00\"\n");
    assert!(e.contains("zone"), "{e}");
    let e = problems("[input.values]\nchannel = {}\n");
    assert!(e.contains("channel"), "{e}");
}

#[test]
fn input_and_max_future_leave_the_thresholds_hash_alone() {
    let base = Config::default().thresholds_toml();
    assert!(
        base.starts_with("[engine]\nallowed_lateness = \"10m\"\nmax_history = \"100d\"\n"),
        "the [engine] part hashed is what it was before max_future: {base}"
    );
    let mapped = Config::from_toml(
        "[engine]\nmax_future = \"3h\"\n[input]\nformat = \"debezium\"\ntimestamp_zone = \"+08:00\"\n[input.fields]\namount = \"TXN_AMT\"\n",
    )
    .unwrap();
    assert_eq!(mapped.thresholds_toml(), base);
    let e = problems("[engine]\nmax_future = \"10s\"\n");
    assert!(
        e.contains("engine.max_future: 10s is out of range (allowed 1m to 1w)"),
        "{e}"
    );
}

#[test]
fn keyed_by_is_checked_and_left_out_of_the_thresholds() {
    let d = Config::default();
    assert_eq!(d.input.keyed_by, fundwatch_rules::KeyedBy::Account);
    let other = Config::from_toml("[input]\nkeyed_by = \"other\"\nmax_misrouted_share = 0.2\n").unwrap();
    assert_eq!(other.input.keyed_by, fundwatch_rules::KeyedBy::Other);
    assert_eq!(
        other.thresholds_toml(),
        d.thresholds_toml(),
        "keyed_by is not part of config_version"
    );
    let e = problems("[input]\nkeyed_by = \"tx_id\"\n");
    assert!(
        e.contains("keyed_by") && e.contains("`account`") && e.contains("`other`"),
        "{e}"
    );
    let e = problems("[input]\nmax_misrouted_share = 0.9\n");
    assert!(
        e.contains("input.max_misrouted_share: 0.9 is out of range (allowed 0 to 0.5)"),
        "{e}"
    );
    let e = problems("[kafka]\nrekey_partitions = 20000\n");
    assert!(e.contains("kafka.rekey_partitions: 20000 is out of range"), "{e}");
    // The share counts at least 1,000 records: 10 of the first 100 are tolerated, 11 are not.
    assert!(!d.input.misrouted_exceeded(10, 100));
    assert!(d.input.misrouted_exceeded(11, 100));
    assert!(!d.input.misrouted_exceeded(20, 2_000));
    assert!(d.input.misrouted_exceeded(21, 2_000));
    let strict = Config::from_toml("[input]\nmax_misrouted_share = 0\n").unwrap();
    assert!(strict.input.misrouted_exceeded(1, 1));
    assert!(!strict.input.misrouted_exceeded(0, 1));
    assert_eq!(d.kafka.rekey_topic(), "fundwatch.transactions.by-account");
}

#[test]
fn console_section_is_checked_by_field_and_left_out_of_the_thresholds() {
    let e = problems(
        "[console]\ndatabase_url = \"mysql://x\"\nlisten = \"here\"\nsession_ttl = \"1m\"\nreported_topic = \"fundwatch-alerts\"\n",
    );
    assert!(e.contains("console.database_url"), "{e}");
    assert!(e.contains("console.listen"), "{e}");
    assert!(
        e.contains("console.session_ttl: 1m is out of range (allowed 5m to 1w)"),
        "{e}"
    );
    assert!(
        e.contains("console.reported_topic: must not be the alert or the case topic"),
        "{e}"
    );
    let e = problems("[console]\nreported = \"x\"\n");
    assert!(e.contains("reported"), "{e}");
    let other = Config::from_toml("[console]\nreported_topic = \"office-reported\"\nsession_ttl = \"1h\"\n").unwrap();
    assert_eq!(
        other.thresholds_toml(),
        Config::default().thresholds_toml(),
        "not part of config_version"
    );
}
