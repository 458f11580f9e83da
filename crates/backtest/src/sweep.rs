//! `--sweep RULE.PARAM=FROM:TO:STEP` (or `=V1,V2,…`): which config field, which values, and
//! which rules a change of it can affect.
//!
//! A value is written the way the config file writes that field (integers, decimals,
//! durations such as `12h`, money in yuan such as `5000.00`); its type is taken from the
//! field's current value, and every swept config is validated like a config file, so a value
//! outside a field's allowed range is refused with that field's message.

use std::fmt;

use fundwatch_record::{format_fen, parse_amount_text};
use fundwatch_rules::{Config, RuleId, Span};

/// More points than this is a mistake, not a sweep.
pub const MAX_POINTS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("--sweep {0:?}: expected RULE.PARAM=FROM:TO:STEP or RULE.PARAM=V1,V2,… (e.g. scatter_in_concentrated_out.min_distinct_payers=4:12:1)")]
    Syntax(String),
    #[error("--sweep {spec:?}: {problem}")]
    Field { spec: String, problem: String },
    #[error("--sweep {spec:?}: {value:?} is not a valid {kind}")]
    Value {
        spec: String,
        value: String,
        kind: &'static str,
    },
    #[error("--sweep {spec:?}: {n} values (at most {MAX_POINTS}); use a larger step")]
    TooMany { spec: String, n: usize },
    #[error("swept config {setting} is invalid: {reason}")]
    Invalid { setting: String, reason: String },
    #[error("at most two --sweep parameters (got {0})")]
    TooManyAxes(usize),
    #[error("--sweep names {0} twice")]
    Repeated(String),
}

/// How a field's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Decimal,
    /// Milliseconds; written `12h`, `3d`…
    Duration,
    /// Fen; written in yuan.
    Money,
    Bool,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Integer => "integer",
            Kind::Decimal => "number",
            Kind::Duration => "duration (like 90s, 10m, 6h, 30d, 2w)",
            Kind::Money => "amount in yuan (like 5000 or 5000.00)",
            Kind::Bool => "true or false",
        }
    }
}

/// One value of a swept field: what the config gets, what people read, where it goes on a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisValue {
    pub toml: toml::Value,
    pub text: String,
    pub x: f64,
}

/// One swept field and its values.
#[derive(Debug, Clone)]
pub struct SweepAxis {
    /// Full config path, e.g. `rules.scatter_in_concentrated_out.min_distinct_payers`.
    pub path: String,
    /// Without the `rules.` prefix, for tables and plot labels.
    pub label: String,
    pub kind: Kind,
    /// Unit of [`AxisValue::x`] (for plot axes): "", "yuan", "hours", "days".
    pub unit: &'static str,
    pub values: Vec<AxisValue>,
}

/// Rule ids people may shorten.
fn rule_alias(s: &str) -> Option<&'static str> {
    Some(match s {
        "scatter_in_concentrated_out" | "scatter" => "scatter_in_concentrated_out",
        "periodic_batch_small_out" | "periodic" => "periodic_batch_small_out",
        "rapid_pass_through" | "rapid" | "pass_through" => "rapid_pass_through",
        "structuring" => "structuring",
        "large_value" => "large_value",
        _ => return None,
    })
}

fn lookup<'t>(table: &'t toml::Table, path: &str) -> Option<&'t toml::Value> {
    let mut parts = path.split('.');
    let mut cur = table.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_table()?.get(p)?;
    }
    Some(cur)
}

fn set(table: &mut toml::Table, path: &str, value: toml::Value) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, inner)) = parts.split_last() else {
        return false;
    };
    let mut cur = table;
    for p in inner {
        match cur.get_mut(*p).and_then(|v| v.as_table_mut()) {
            Some(t) => cur = t,
            None => return false,
        }
    }
    if !cur.contains_key(*last) {
        return false;
    }
    cur.insert((*last).to_owned(), value);
    true
}

impl SweepAxis {
    /// Parse one `--sweep` against the config it varies.
    pub fn parse(spec: &str, base: &Config) -> Result<SweepAxis, SweepError> {
        let (path, range) = spec.split_once('=').ok_or_else(|| SweepError::Syntax(spec.into()))?;
        let path = path.trim();
        let range = range.trim();
        if path.is_empty() || range.is_empty() {
            return Err(SweepError::Syntax(spec.into()));
        }
        let field_err = |problem: String| SweepError::Field {
            spec: spec.into(),
            problem,
        };
        let parts: Vec<&str> = path.split('.').collect();
        let full = match parts.as_slice() {
            ["rules", rule, param] | [rule, param] if rule_alias(rule).is_some() => {
                format!("rules.{}.{param}", rule_alias(rule).unwrap_or(rule))
            }
            ["engine" | "segments", _] => path.to_owned(),
            // The case stage's thresholds: the rules' alerts stay, the cases change.
            ["cases", ..] => path.to_owned(),
            ["kafka" | "service", ..] => {
                return Err(field_err(format!(
                    "{path} does not change what is detected; sweep a rule or engine threshold"
                )))
            }
            _ => {
                return Err(field_err(format!(
                    "unknown field {path}; name a rule (scatter_in_concentrated_out, periodic_batch_small_out, \
                     rapid_pass_through, structuring, large_value) and one of its thresholds, or a [cases] \
                     threshold (cases.min_shared_people, cases.prosecution.people, …)"
                )))
            }
        };
        let table = toml::Table::try_from(base).map_err(|e| field_err(e.to_string()))?;
        let current = lookup(&table, &full).ok_or_else(|| field_err(format!("{full} is not a config field")))?;
        let kind = match current {
            toml::Value::Integer(_) => Kind::Integer,
            toml::Value::Float(_) => Kind::Decimal,
            toml::Value::Boolean(_) => Kind::Bool,
            toml::Value::String(s) if Span::parse(s).is_ok() => Kind::Duration,
            toml::Value::String(s) if parse_amount_text(s).is_ok() => Kind::Money,
            _ => return Err(field_err(format!("{full} is a list or table, not a threshold"))),
        };
        let texts: Vec<String> = if let Some((from, rest)) = range.split_once(':') {
            let (to, step) = rest.split_once(':').ok_or_else(|| SweepError::Syntax(spec.into()))?;
            expand(spec, kind, from.trim(), to.trim(), step.trim())?
        } else {
            range.split(',').map(|v| v.trim().to_owned()).collect()
        };
        if texts.len() > MAX_POINTS {
            return Err(SweepError::TooMany {
                spec: spec.into(),
                n: texts.len(),
            });
        }
        let mut values = Vec::with_capacity(texts.len());
        for t in &texts {
            values.push(value_of(spec, kind, t)?);
        }
        let unit = match kind {
            Kind::Money => "yuan",
            Kind::Duration if values.iter().all(|v| v.x < 48.0 * 3_600_000.0) => "hours",
            Kind::Duration => "days",
            _ => "",
        };
        if kind == Kind::Duration {
            let div = if unit == "hours" { 3_600_000.0 } else { 86_400_000.0 };
            for v in &mut values {
                v.x /= div;
            }
        }
        Ok(SweepAxis {
            label: full.strip_prefix("rules.").unwrap_or(&full).to_owned(),
            path: full,
            kind,
            unit,
            values,
        })
    }

    /// The rule this field belongs to, if it is a rule's.
    pub fn rule(&self) -> Option<RuleId> {
        self.path
            .strip_prefix("rules.")?
            .split('.')
            .next()
            .and_then(RuleId::parse)
    }

    /// A `[cases]` field: it changes how accounts link into cases, no rule's alerts.
    pub fn cases_only(&self) -> bool {
        self.path.starts_with("cases.")
    }

    /// Rules whose alerts a change of this field can change.
    pub fn affects(&self) -> Vec<RuleId> {
        if self.cases_only() {
            return Vec::new();
        }
        match self.rule() {
            // Structuring watches the amounts just under the large-value lines.
            Some(RuleId::LargeValue) => vec![RuleId::Structuring, RuleId::LargeValue],
            Some(r) => vec![r],
            // Engine, memo and segment settings feed every rule.
            None => RuleId::ALL.to_vec(),
        }
    }
}

fn bad(spec: &str, value: &str, kind: Kind) -> SweepError {
    SweepError::Value {
        spec: spec.into(),
        value: value.into(),
        kind: kind.name(),
    }
}

/// FROM:TO:STEP as exact steps in the field's own unit (fen, ms, integers), so money and
/// durations never drift; decimals are rounded to 9 places.
fn expand(spec: &str, kind: Kind, from: &str, to: &str, step: &str) -> Result<Vec<String>, SweepError> {
    let ints = |f: &dyn Fn(&str) -> Option<i64>| -> Result<(i64, i64, i64), SweepError> {
        let a = f(from).ok_or_else(|| bad(spec, from, kind))?;
        let b = f(to).ok_or_else(|| bad(spec, to, kind))?;
        let s = f(step).ok_or_else(|| bad(spec, step, kind))?;
        if s <= 0 || b < a {
            return Err(SweepError::Syntax(spec.into()));
        }
        let n = (b - a) / s + 1;
        if n as usize > MAX_POINTS {
            return Err(SweepError::TooMany {
                spec: spec.into(),
                n: n as usize,
            });
        }
        Ok((a, b, s))
    };
    let steps = |(a, b, s): (i64, i64, i64)| (0..).map(move |i| a + i * s).take_while(move |v| *v <= b);
    Ok(match kind {
        Kind::Integer => steps(ints(&|t| t.parse().ok())?).map(|v| v.to_string()).collect(),
        Kind::Money => steps(ints(&|t| parse_amount_text(t).ok())?).map(format_fen).collect(),
        Kind::Duration => steps(ints(&|t| Span::parse(t).ok().map(|s| s.ms()))?)
            .map(|ms| Span(ms).to_string())
            .collect(),
        Kind::Decimal => {
            let p = |t: &str| t.parse::<f64>().ok().filter(|v| v.is_finite());
            let a = p(from).ok_or_else(|| bad(spec, from, kind))?;
            let b = p(to).ok_or_else(|| bad(spec, to, kind))?;
            let s = p(step).ok_or_else(|| bad(spec, step, kind))?;
            if s <= 0.0 || b < a {
                return Err(SweepError::Syntax(spec.into()));
            }
            let n = ((b - a) / s + 1e-9).floor() as usize + 1;
            if n > MAX_POINTS {
                return Err(SweepError::TooMany { spec: spec.into(), n });
            }
            (0..n)
                .map(|i| {
                    let v = ((a + i as f64 * s) * 1e9).round() / 1e9;
                    format!("{v}")
                })
                .collect()
        }
        Kind::Bool => return Err(bad(spec, "FROM:TO:STEP", kind)),
    })
}

fn value_of(spec: &str, kind: Kind, t: &str) -> Result<AxisValue, SweepError> {
    let b = || bad(spec, t, kind);
    Ok(match kind {
        Kind::Integer => {
            let v: i64 = t.parse().map_err(|_| b())?;
            AxisValue {
                toml: toml::Value::Integer(v),
                text: v.to_string(),
                x: v as f64,
            }
        }
        Kind::Decimal => {
            let v: f64 = t.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(b)?;
            AxisValue {
                toml: toml::Value::Float(v),
                text: format!("{v}"),
                x: v,
            }
        }
        Kind::Bool => {
            let v: bool = t.parse().map_err(|_| b())?;
            AxisValue {
                toml: toml::Value::Boolean(v),
                text: v.to_string(),
                x: v as u8 as f64,
            }
        }
        Kind::Duration => {
            let s = Span::parse(t).map_err(|_| b())?;
            AxisValue {
                toml: toml::Value::String(s.to_string()),
                text: s.to_string(),
                x: s.ms() as f64,
            }
        }
        Kind::Money => {
            let fen = parse_amount_text(t).map_err(|_| b())?;
            let text = format_fen(fen);
            AxisValue {
                toml: toml::Value::String(text.clone()),
                x: fen as f64 / 100.0,
                text,
            }
        }
    })
}

/// `path = value` settings, shown as `a.b=v, c.d=w`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings(pub Vec<(String, AxisValue)>);

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (p, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}={}", v.text)?;
        }
        Ok(())
    }
}

/// `base` with the settings applied, validated like a config file.
pub fn apply(base: &Config, settings: &Settings) -> Result<Config, SweepError> {
    let invalid = |reason: String| SweepError::Invalid {
        setting: settings.to_string(),
        reason,
    };
    let mut table = toml::Table::try_from(base).map_err(|e| invalid(e.to_string()))?;
    for (path, v) in &settings.0 {
        if !set(&mut table, path, v.toml.clone()) {
            return Err(invalid(format!("{path} is not a config field")));
        }
    }
    let cfg: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
    cfg.check().map_err(|e| invalid(e.to_string()))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_range_expands_inclusively() {
        let a = SweepAxis::parse("scatter.min_distinct_payers=4:12:2", &Config::default()).unwrap();
        assert_eq!(a.path, "rules.scatter_in_concentrated_out.min_distinct_payers");
        let t: Vec<&str> = a.values.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(t, ["4", "6", "8", "10", "12"]);
        assert_eq!(a.affects(), vec![RuleId::ScatterInConcentratedOut]);
    }

    #[test]
    fn money_and_durations_step_exactly() {
        let a = SweepAxis::parse(
            "rules.scatter_in_concentrated_out.min_out_amount=1000:2000.5:500.25",
            &Config::default(),
        )
        .unwrap();
        let t: Vec<&str> = a.values.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(t, ["1000.00", "1500.25", "2000.50"]);
        assert_eq!(a.unit, "yuan");
        let d = SweepAxis::parse("rapid.max_hold=6h:24h:6h", &Config::default()).unwrap();
        let t: Vec<&str> = d.values.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(t, ["6h", "12h", "18h", "1d"]);
        assert_eq!(d.unit, "hours");
        assert_eq!(d.values[3].x, 24.0);
    }

    #[test]
    fn decimals_do_not_drift() {
        let a = SweepAxis::parse("periodic.confirm_score=40:60:0.1", &Config::default()).unwrap();
        assert_eq!(a.values.len(), 201);
        assert_eq!(a.values[3].text, "40.3");
        assert_eq!(a.values.last().unwrap().text, "60");
    }

    #[test]
    fn lists_and_large_value_effects() {
        let a = SweepAxis::parse("large_value.cash_line=30000,50000", &Config::default()).unwrap();
        assert_eq!(a.values[0].text, "30000.00");
        assert!(a.affects().contains(&RuleId::Structuring));
        let e = SweepAxis::parse("scatter.no_such=1:2:1", &Config::default()).unwrap_err();
        assert!(e.to_string().contains("no_such"), "{e}");
        let e = SweepAxis::parse("kafka.brokers=a,b", &Config::default()).unwrap_err();
        assert!(e.to_string().contains("does not change"), "{e}");
        let e = SweepAxis::parse("scatter.min_distinct_payers=4-8", &Config::default()).unwrap_err();
        assert!(matches!(e, SweepError::Value { .. }), "{e}");
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_fields_message() {
        let a = SweepAxis::parse("scatter.min_distinct_payers=1,8", &Config::default()).unwrap();
        let s = Settings(vec![(a.path.clone(), a.values[0].clone())]);
        let e = apply(&Config::default(), &s).unwrap_err().to_string();
        assert!(e.contains("min_distinct_payers"), "{e}");
        let ok = Settings(vec![(a.path.clone(), a.values[1].clone())]);
        assert_eq!(apply(&Config::default(), &ok).unwrap(), Config::default());
    }
}
