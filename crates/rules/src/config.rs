//! The configuration file: every threshold the engine uses, with its default, its allowed
//! range and per-segment overrides. `config/fundwatch.toml` is the documented copy of
//! [`Config::default`] (a test keeps them equal).
//!
//! Layering: built-in defaults, then the file (a partial file is fine), then per-segment
//! overrides resolved per account. Unknown keys are errors (typos must not silently fall
//! back to defaults), and every range violation names the field and its allowed range.

use std::fmt;
use std::path::Path;

use fundwatch_record::AccountType;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{Span, Yuan};

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config is not valid TOML for fundwatch: {0}")]
    Parse(String),
    #[error("config has {} problem(s):\n{}", .0.len(), .0.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigIssue>),
}

/// Collects range problems with the field's full path.
pub struct Checker<'a> {
    prefix: String,
    issues: &'a mut Vec<ConfigIssue>,
}

impl<'a> Checker<'a> {
    pub fn new(prefix: &str, issues: &'a mut Vec<ConfigIssue>) -> Self {
        Checker {
            prefix: prefix.to_owned(),
            issues,
        }
    }

    fn push(&mut self, name: &str, problem: String) {
        let field = if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        };
        self.issues.push(ConfigIssue { field, problem });
    }

    pub fn range<T: PartialOrd + fmt::Display + Copy>(&mut self, name: &str, v: T, lo: T, hi: T) {
        if v < lo || v > hi {
            self.push(name, format!("{v} is out of range (allowed {lo} to {hi})"));
        }
    }

    pub fn ratio(&mut self, name: &str, v: f64, lo: f64, hi: f64) {
        if !v.is_finite() || v < lo || v > hi {
            self.push(name, format!("{v} is out of range (allowed {lo} to {hi})"));
        }
    }

    pub fn span(&mut self, name: &str, v: Span, lo: Span, hi: Span) {
        if v < lo || v > hi {
            self.push(name, format!("{v} is out of range (allowed {lo} to {hi})"));
        }
    }

    pub fn money(&mut self, name: &str, v: Yuan, lo: Yuan, hi: Yuan) {
        if v < lo || v > hi {
            self.push(name, format!("{v} yuan is out of range (allowed {lo} to {hi} yuan)"));
        }
    }

    pub fn require(&mut self, ok: bool, name: &str, problem: &str) {
        if !ok {
            self.push(name, problem.to_owned());
        }
    }
}

/// Range checks of one parameter set.
pub trait Validate {
    fn validate(&self, c: &mut Checker<'_>);
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Names the thresholds in every alert's `config_version`. Empty: a hash of the
    /// effective configuration is used, so any change of a threshold changes the version.
    pub version: String,
    pub engine: EngineParams,
    pub memo: MemoKeywords,
    pub segments: SegmentParams,
    pub rules: RulesConfig,
    /// Used by `fundwatch run` only.
    pub kafka: KafkaParams,
    /// Used by `fundwatch run` only.
    pub service: ServiceParams,
    /// The case-linking stage (not part of `config_version`).
    pub cases: crate::cases_config::CasesParams,
    /// Office topics by region (not part of `config_version`).
    pub routing: crate::cases_config::RoutingParams,
    /// How the feed's records map onto the spec's record (not part of `config_version`).
    pub input: crate::input_config::InputParams,
    /// The review console (not part of `config_version`).
    pub console: crate::console_config::ConsoleParams,
}

impl Config {
    /// Parse and validate TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text)
    }

    /// All problems at once, each naming its field.
    pub fn check(&self) -> Result<(), ConfigError> {
        let mut issues = Vec::new();
        self.engine.validate(&mut Checker::new("engine", &mut issues));
        self.memo.validate(&mut Checker::new("memo", &mut issues));
        self.rules.validate(&mut issues);
        self.kafka.validate(&mut Checker::new("kafka", &mut issues));
        self.service.validate(&mut Checker::new("service", &mut issues));
        self.cases.validate(&mut Checker::new("cases", &mut issues));
        self.routing.validate(&mut issues);
        self.input.validate(&mut Checker::new("input", &mut issues));
        self.console.validate(&mut Checker::new("console", &mut issues));
        let reported = self.console.reported_topic.trim();
        Checker::new("console", &mut issues).require(
            reported != self.kafka.alert_topic.trim() && reported != self.kafka.case_topic.trim(),
            "reported_topic",
            "must not be the alert or the case topic",
        );
        // Every rule's horizon must fit in what the engine keeps.
        let keep = self.engine.max_history;
        let mut c = Checker::new("engine", &mut issues);
        c.require(
            keep >= self.rules.longest_horizon(),
            "max_history",
            &format!(
                "{keep} is shorter than the longest rule horizon ({}); raise it or shorten the rule",
                self.rules.longest_horizon()
            ),
        );
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }

    /// The canonical TOML of the effective configuration (defaults filled in).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// The canonical TOML of what decides detection: `[engine]`, `[memo]`, `[segments]` and
    /// `[rules]`, without `version`, `[kafka]`, `[service]` or `[input]`, so that where the
    /// service connects to, how its feed is encoded (or a new operational setting) never
    /// changes what is hashed from it. `engine.max_future` is left out too: it only decides
    /// which implausible records are dead-lettered, and leaving it out keeps the alert ids
    /// of configs written before it.
    pub fn thresholds_toml(&self) -> String {
        #[derive(Serialize)]
        struct EngineThresholds<'a> {
            allowed_lateness: &'a Span,
            max_history: &'a Span,
        }
        #[derive(Serialize)]
        struct Thresholds<'a> {
            engine: EngineThresholds<'a>,
            memo: &'a MemoKeywords,
            segments: &'a SegmentParams,
            rules: &'a RulesConfig,
        }
        toml::to_string(&Thresholds {
            engine: EngineThresholds {
                allowed_lateness: &self.engine.allowed_lateness,
                max_history: &self.engine.max_history,
            },
            memo: &self.memo,
            segments: &self.segments,
            rules: &self.rules,
        })
        .unwrap_or_default()
    }
}

/// `[kafka]`: where `fundwatch run` reads and writes. Plain data here; the Kafka crate
/// turns it into client settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaParams {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Consumer group; every instance of one deployment uses the same id.
    pub group_id: String,
    /// Transactions topic (key = account, value = the spec's JSON record).
    pub input_topic: String,
    /// Confirmed alerts (key = account, value = the spec's alert JSON).
    pub alert_topic: String,
    /// Rejected records: the original bytes, the reason in headers.
    pub dead_letter_topic: String,
    /// Prefix of each instance's transactional id (the instance id is appended).
    pub transactional_id_prefix: String,
    /// Longest time between transaction commits (alerts, dead letters and offsets together).
    /// Range 10ms–60s.
    pub commit_interval: Span,
    /// Compacted topic holding each partition's engine state (checkpoints), written in the
    /// same transactions as the alerts and offsets. Created (compacted, as many partitions as
    /// the input) at start if missing. One topic can serve several groups.
    pub state_topic: String,
    /// Longest time between checkpoints of a partition's state; also written at shutdown,
    /// at the end of a drained input and when partitions are revoked. A restart re-reads only
    /// what came after its partitions' last checkpoint. "0s" turns checkpoints off: every
    /// restart then rebuilds from the input topic, which must retain the longest rule horizon
    /// (see the README). Range 0s or 1s–1h.
    pub checkpoint_interval: Span,
    /// Account traces (key = account, compacted): what each partition's engine tells the
    /// case-linking stage, written in the same transactions as its alerts. Created if
    /// missing, with one partition (one linker is active per group; the others stand by).
    pub trace_topic: String,
    /// Case records (key = `case_id`, compacted, header `fundwatch.region` = lead region),
    /// written by the linking stage in its own exactly-once transactions. Created if missing.
    pub case_topic: String,
    /// With `[input] keyed_by = "other"`: the internal topic the re-key stage writes the input's
    /// records to, unchanged but keyed by account, and detection reads. Empty (default):
    /// `<group_id>.<input_topic>.by-account`. Created if missing (retention as the input's).
    pub rekey_topic: String,
    /// Partitions of the re-key topic when the service creates it; 0 (default): as many as the
    /// input topic. Range 0–10,000.
    pub rekey_partitions: u32,
    /// librdkafka settings passed through as-is (`security.protocol`, `ssl.ca.location`,
    /// `sasl.mechanisms`, `sasl.username`, …). A value `"${NAME}"` is read from the
    /// environment variable NAME at start, so secrets stay out of the file.
    pub client: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaParams {
    fn default() -> Self {
        KafkaParams {
            brokers: "127.0.0.1:9092".into(),
            group_id: "fundwatch".into(),
            input_topic: "transactions".into(),
            alert_topic: "fundwatch-alerts".into(),
            dead_letter_topic: "fundwatch-dead-letters".into(),
            transactional_id_prefix: "fundwatch".into(),
            commit_interval: Span(500),
            state_topic: "fundwatch-state".into(),
            checkpoint_interval: Span(30_000),
            trace_topic: "fundwatch-traces".into(),
            case_topic: "fundwatch-cases".into(),
            rekey_topic: String::new(),
            rekey_partitions: 0,
            client: Default::default(),
        }
    }
}

impl KafkaParams {
    /// The re-key stage's topic (`rekey_topic`, or its default name).
    pub fn rekey_topic(&self) -> String {
        if self.rekey_topic.trim().is_empty() {
            format!("{}.{}.by-account", self.group_id, self.input_topic)
        } else {
            self.rekey_topic.trim().to_owned()
        }
    }
}

impl Validate for KafkaParams {
    fn validate(&self, c: &mut Checker<'_>) {
        for (name, v) in [
            ("brokers", &self.brokers),
            ("group_id", &self.group_id),
            ("input_topic", &self.input_topic),
            ("alert_topic", &self.alert_topic),
            ("dead_letter_topic", &self.dead_letter_topic),
            ("transactional_id_prefix", &self.transactional_id_prefix),
            ("state_topic", &self.state_topic),
            ("trace_topic", &self.trace_topic),
            ("case_topic", &self.case_topic),
        ] {
            c.require(!v.trim().is_empty(), name, "must not be empty");
        }
        c.span("commit_interval", self.commit_interval, Span(10), Span(60_000));
        c.range("rekey_partitions", self.rekey_partitions, 0, 10_000);
        c.require(
            self.rekey_topic.trim() != self.input_topic.trim(),
            "rekey_topic",
            "must not be the input topic",
        );
        if self.checkpoint_interval != Span(0) {
            // The message names both allowed forms.
            if self.checkpoint_interval < Span(1_000) || self.checkpoint_interval > Span(3_600_000) {
                c.push(
                    "checkpoint_interval",
                    format!("{} is out of range (allowed 0s, or 1s to 1h)", self.checkpoint_interval),
                );
            }
        }
    }
}

/// `[service]`: the operational side of `fundwatch run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceParams {
    /// Address of the HTTP endpoints `/metrics`, `/healthz` and `/readyz`.
    pub listen: String,
    /// On SIGTERM/SIGINT, how long to finish the open transaction before exiting. Range 1s–5m.
    pub shutdown_grace: Span,
}

impl Default for ServiceParams {
    fn default() -> Self {
        ServiceParams {
            listen: "127.0.0.1:9898".into(),
            shutdown_grace: Span(10_000),
        }
    }
}

impl Validate for ServiceParams {
    fn validate(&self, c: &mut Checker<'_>) {
        c.require(
            self.listen.parse::<std::net::SocketAddr>().is_ok(),
            "listen",
            "must be an address like \"127.0.0.1:9898\"",
        );
        c.span("shutdown_grace", self.shutdown_grace, Span(1_000), Span(300_000));
    }
}

/// `[engine]`: event time and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineParams {
    /// How late (in event time, behind the newest record seen) a record may arrive and still
    /// be processed in its event-time place. Alerts are the same whatever the arrival order
    /// within this bound; a record later than this is still processed, on arrival, and
    /// counted as late. Larger values delay alerts by as much. Range 0s–1d.
    pub allowed_lateness: Span,
    /// How much event-time history the window keeps per account. Must cover the longest
    /// rule horizon. Range 1h–400d. A record older than this behind the newest one seen
    /// has no place in the windows any more: it is dead-lettered (`too_old`).
    pub max_history: Span,
    /// How far ahead of the stream (its newest event time so far) a record may jump before
    /// it needs later records to follow it: a record further ahead is held aside, without
    /// moving the watermark, until two later records reach its time less this span (a quiet
    /// stream's next records after a night do), and is dead-lettered (`future_time`) when
    /// eight later records stay behind it, so one mistyped year cannot make the rest of the
    /// stream late. The first records of a stream are held the same way until followed. `fundwatch run` also dead-letters records further than this ahead
    /// of the wall clock. Not part of `config_version`. Range 1m–7d.
    pub max_future: Span,
}

impl Default for EngineParams {
    fn default() -> Self {
        EngineParams {
            allowed_lateness: Span::minutes(10),
            max_history: Span::days(100),
            max_future: Span::hours(1),
        }
    }
}

impl Validate for EngineParams {
    fn validate(&self, c: &mut Checker<'_>) {
        c.span("allowed_lateness", self.allowed_lateness, Span(0), Span::days(1));
        c.span("max_history", self.max_history, Span::hours(1), Span::days(400));
        c.span("max_future", self.max_future, Span::minutes(1), Span::days(7));
    }
}

/// `[memo]`: keyword lists that tag a record's payment note (交易附言). Matching is by
/// substring; a memo may carry several tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoKeywords {
    /// Investment-solicitation words on inflows (raises scatter-in scores).
    pub investment: Vec<String>,
    /// Return-on-investment words on outflows (raises periodic-payout scores).
    pub payout: Vec<String>,
    /// Wages (lowers periodic-payout scores: payroll).
    pub salary: Vec<String>,
    /// Trade payments (lowers scatter-in scores: wholesalers, suppliers).
    pub goods: Vec<String>,
    /// Retail spending (lowers scatter-in scores: shops, QR merchants).
    pub consumption: Vec<String>,
    /// Donations (lowers scatter-in scores: charity and medical crowdfunding).
    pub donation: Vec<String>,
    /// Commissions and service fees (lowers periodic-payout scores: gig platforms).
    pub commission: Vec<String>,
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for MemoKeywords {
    fn default() -> Self {
        MemoKeywords {
            investment: words(&[
                "投资",
                "理财",
                "认购",
                "入股",
                "集资",
                "股权",
                "项目款",
                "期权",
                "私募",
                "众筹",
                "本金",
                "认筹",
                "加盟",
            ]),
            payout: words(&[
                "利息",
                "分红",
                "收益",
                "返利",
                "返本",
                "回报",
                "付息",
                "派息",
                "红利",
                "月息",
                "佣金返还",
            ]),
            salary: words(&["工资", "薪", "奖金", "代发", "报销", "社保", "公积金"]),
            goods: words(&[
                "货款",
                "采购",
                "进货",
                "发票",
                "结算款",
                "运费",
                "合同款",
                "咨询费",
                "租金",
                "房租",
                "工程款",
                "设计费",
                "技术服务",
                "加工费",
                "维修",
                "材料款",
                "设备款",
                "物流费",
                "广告费",
            ]),
            consumption: words(&[
                "消费",
                "餐",
                "超市",
                "购物",
                "扫码",
                "收款码",
                "外卖",
                "零售",
                "学费",
                "床位费",
                "护理费",
                "伙食费",
                "管理费",
                "物业费",
                "会费",
                "培训费",
                "保教费",
                "水电",
            ]),
            donation: words(&["捐", "爱心", "救助", "医疗", "善款", "筹款", "慈善", "治疗"]),
            commission: words(&["佣金", "劳务", "提成", "骑手", "跑腿", "服务费", "结算", "劳务费"]),
        }
    }
}

impl Validate for MemoKeywords {
    fn validate(&self, c: &mut Checker<'_>) {
        for (name, list) in [
            ("investment", &self.investment),
            ("payout", &self.payout),
            ("salary", &self.salary),
            ("goods", &self.goods),
            ("consumption", &self.consumption),
            ("donation", &self.donation),
            ("commission", &self.commission),
        ] {
            c.require(
                list.iter().all(|w| !w.trim().is_empty()),
                name,
                "keywords must not be empty strings",
            );
            c.range(&format!("{name} (count)"), list.len(), 0, 200);
        }
    }
}

/// `[segments]`: account segments the policy singles out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentParams {
    /// Industries of the policy's periodic risk screening (clause 十二): investment and wealth
    /// management, online lending, investment companies, farmers' cooperatives, private
    /// schools, elderly care. Their accounts score higher on every behavioural rule.
    pub key_sectors: Vec<String>,
}

impl Default for SegmentParams {
    fn default() -> Self {
        SegmentParams {
            key_sectors: words(&[
                "investment",
                "wealth_management",
                "online_lending",
                "p2p",
                "elderly_care",
                "cooperative",
                "private_education",
            ]),
        }
    }
}

/// The account attributes overrides can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentKey<'a> {
    pub account_type: AccountType,
    pub industry: &'a str,
    pub region: &'a str,
}

/// `match = { … }` of an override: all given conditions must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentMatch {
    pub account_type: Option<String>,
    /// Any of these industries.
    pub industry: Vec<String>,
    /// Any of these regions; a trailing `*` matches a prefix (`"3301*"`: all of Hangzhou).
    pub region: Vec<String>,
}

impl SegmentMatch {
    pub fn matches(&self, k: &SegmentKey<'_>) -> bool {
        let ty = self
            .account_type
            .as_deref()
            .is_none_or(|t| t == k.account_type.as_str());
        let ind = self.industry.is_empty() || self.industry.iter().any(|i| i == k.industry);
        let reg = self.region.is_empty()
            || self.region.iter().any(|r| match r.strip_suffix('*') {
                Some(prefix) => k.region.starts_with(prefix),
                None => r == k.region,
            });
        ty && ind && reg
    }
}

/// A rule's section: its parameters plus `[[….overrides]]` for segments.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSection<P> {
    pub params: P,
    pub overrides: Vec<Override>,
}

/// One override: a segment and the parameters that differ for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub when: SegmentMatch,
    pub set: toml::Table,
}

impl<P: Default> Default for RuleSection<P> {
    fn default() -> Self {
        RuleSection {
            params: P::default(),
            overrides: Vec::new(),
        }
    }
}

impl<P: Serialize> Serialize for RuleSection<P> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut table = toml::Table::try_from(&self.params).map_err(serde::ser::Error::custom)?;
        if !self.overrides.is_empty() {
            let list = self
                .overrides
                .iter()
                .map(|o| {
                    let mut t = o.set.clone();
                    if let Ok(m) = toml::Value::try_from(&o.when) {
                        t.insert("match".into(), m);
                    }
                    toml::Value::Table(t)
                })
                .collect();
            table.insert("overrides".into(), toml::Value::Array(list));
        }
        table.serialize(s)
    }
}

impl<'de, P: DeserializeOwned + Serialize + Clone> Deserialize<'de> for RuleSection<P> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let overrides = match table.remove("overrides") {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    let toml::Value::Table(mut t) = item else {
                        return Err(D::Error::custom(format!("overrides[{i}] must be a table")));
                    };
                    let when: SegmentMatch = match t.remove("match") {
                        Some(m) => m
                            .try_into()
                            .map_err(|e| D::Error::custom(format!("overrides[{i}].match: {e}")))?,
                        None => return Err(D::Error::custom(format!("overrides[{i}] needs a `match = {{ … }}`"))),
                    };
                    out.push(Override { when, set: t });
                }
                out
            }
            Some(_) => {
                return Err(D::Error::custom(
                    "overrides must be an array of tables ([[…overrides]])",
                ))
            }
        };
        let params: P = toml::Value::Table(table).try_into().map_err(D::Error::custom)?;
        let section = RuleSection { params, overrides };
        // Each override must itself produce valid parameters (unknown keys included).
        for (i, _) in section.overrides.iter().enumerate() {
            section
                .apply(&[i])
                .map_err(|e| D::Error::custom(format!("overrides[{i}]: {e}")))?;
        }
        Ok(section)
    }
}

impl<P: DeserializeOwned + Serialize + Clone> RuleSection<P> {
    /// Parameters with the given overrides applied in order.
    fn apply(&self, which: &[usize]) -> Result<P, String> {
        if which.is_empty() {
            return Ok(self.params.clone());
        }
        let mut table = toml::Table::try_from(&self.params).map_err(|e| e.to_string())?;
        for &i in which {
            for (k, v) in &self.overrides[i].set {
                table.insert(k.clone(), v.clone());
            }
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())
    }

    /// Effective parameters for a segment: every matching override, in file order.
    pub fn resolve(&self, key: &SegmentKey<'_>) -> P {
        let which: Vec<usize> = self
            .overrides
            .iter()
            .enumerate()
            .filter(|(_, o)| o.when.matches(key))
            .map(|(i, _)| i)
            .collect();
        // Each override was checked when the file was read, so this cannot fail; should it,
        // the base parameters are the safe answer.
        self.apply(&which).unwrap_or_else(|_| self.params.clone())
    }
}

impl<P: Validate + DeserializeOwned + Serialize + Clone> RuleSection<P> {
    fn validate(&self, path: &str, issues: &mut Vec<ConfigIssue>) {
        self.params.validate(&mut Checker::new(path, issues));
        for (i, o) in self.overrides.iter().enumerate() {
            let p = format!("{path}.overrides[{i}]");
            if let Some(t) = &o.when.account_type {
                if t != "personal" && t != "corporate" {
                    issues.push(ConfigIssue {
                        field: format!("{p}.match.account_type"),
                        problem: format!("{t:?} is not \"personal\" or \"corporate\""),
                    });
                }
            }
            if let Ok(resolved) = self.apply(&[i]) {
                resolved.validate(&mut Checker::new(&p, issues));
            }
        }
    }
}

/// `[rules.*]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    pub scatter_in_concentrated_out: RuleSection<crate::scatter::ScatterParams>,
    pub periodic_batch_small_out: RuleSection<crate::periodic::PeriodicParams>,
    pub rapid_pass_through: RuleSection<crate::rapid::RapidParams>,
    pub structuring: RuleSection<crate::structuring::StructuringParams>,
    pub large_value: crate::large_value::LargeValueParams,
}

/// All rules' parameters for one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRules {
    pub scatter: crate::scatter::ScatterParams,
    pub periodic: crate::periodic::PeriodicParams,
    pub rapid: crate::rapid::RapidParams,
    pub structuring: crate::structuring::StructuringParams,
}

impl RulesConfig {
    fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        self.scatter_in_concentrated_out
            .validate("rules.scatter_in_concentrated_out", issues);
        self.periodic_batch_small_out
            .validate("rules.periodic_batch_small_out", issues);
        self.rapid_pass_through.validate("rules.rapid_pass_through", issues);
        self.structuring.validate("rules.structuring", issues);
        self.large_value
            .validate(&mut Checker::new("rules.large_value", issues));
    }

    pub fn resolve(&self, key: &SegmentKey<'_>) -> ResolvedRules {
        ResolvedRules {
            scatter: self.scatter_in_concentrated_out.resolve(key),
            periodic: self.periodic_batch_small_out.resolve(key),
            rapid: self.rapid_pass_through.resolve(key),
            structuring: self.structuring.resolve(key),
        }
    }

    /// The longest look-back any rule (or override) needs.
    pub fn longest_horizon(&self) -> Span {
        // large_value keeps a day, plus slack for late records
        Span::days(2)
            .max(longest(&self.scatter_in_concentrated_out, |p| {
                p.horizon.max(p.out_window)
            }))
            .max(longest(&self.periodic_batch_small_out, |p| p.horizon))
            .max(longest(&self.rapid_pass_through, |p| p.horizon))
            .max(longest(&self.structuring, |p| p.horizon))
    }

    /// The longest cooldown of any behavioural rule (or override): how long an alert keeps
    /// deciding later ones.
    pub fn longest_cooldown(&self) -> Span {
        longest(&self.scatter_in_concentrated_out, |p| p.cooldown)
            .max(longest(&self.periodic_batch_small_out, |p| p.cooldown))
            .max(longest(&self.rapid_pass_through, |p| p.cooldown))
            .max(longest(&self.structuring, |p| p.cooldown))
    }
}

/// The largest `f` over a rule section's parameters and each of its overrides applied.
fn longest<P: DeserializeOwned + Serialize + Clone>(sec: &RuleSection<P>, f: impl Fn(&P) -> Span) -> Span {
    let mut h = f(&sec.params);
    for i in 0..sec.overrides.len() {
        if let Ok(p) = sec.apply(&[i]) {
            h = h.max(f(&p));
        }
    }
    h
}
