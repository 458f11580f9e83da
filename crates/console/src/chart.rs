//! The case page's picture of the money over time, as inline SVG, drawn from what the alerts'
//! evidence carries: scatter-in collections (`inflow_total` over the window, then the
//! `concentrated_outflow`), pass-through (`total_in`, `total_out`), large-value days
//! (`day_total` by `direction`) and the periodic rule's payout batches (`event_starts`, with
//! `current_batch_total` for the latest). The balance line is the running net of those flows,
//! not the account's bank balance (the alerts do not carry every transaction).

use std::fmt::Write;

use crate::money::{format_fen, json_fen};
use crate::records::rfc3339_ms;
use crate::store::AlertView;

/// One flow on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Positive in, negative out.
    pub fen: i64,
    pub label: String,
}

/// One payout batch of the periodic rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub at_ms: i64,
    /// Known for the batch that raised the alert only.
    pub fen: Option<i64>,
    pub account: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoneyPicture {
    pub flows: Vec<Flow>,
    pub batches: Vec<Batch>,
}

fn ev_fen(a: &AlertView, key: &str) -> Option<i64> {
    a.record.get("evidence")?.get(key).and_then(json_fen)
}

fn ms(text: &str) -> Option<i64> {
    rfc3339_ms("time", text).ok()
}

/// What the alerts' evidence tells about money moving, in time order.
pub fn picture(alerts: &[AlertView]) -> MoneyPicture {
    let mut p = MoneyPicture::default();
    for a in alerts {
        let (Some(start), Some(end)) = (ms(&a.window_start), ms(&a.window_end)) else {
            continue;
        };
        let evidence = a.record.get("evidence");
        match a.rule.as_str() {
            "scatter_in_concentrated_out" => {
                if let Some(f) = ev_fen(a, "inflow_total") {
                    p.flows.push(Flow {
                        start_ms: start,
                        end_ms: end,
                        fen: f,
                        label: format!("{} collected", a.account),
                    });
                }
                if let Some(f) = ev_fen(a, "concentrated_outflow") {
                    p.flows.push(Flow {
                        start_ms: end,
                        end_ms: end,
                        fen: -f,
                        label: format!("{} moved on", a.account),
                    });
                }
            }
            "rapid_pass_through" => {
                if let Some(f) = ev_fen(a, "total_in") {
                    p.flows.push(Flow {
                        start_ms: start,
                        end_ms: end,
                        fen: f,
                        label: format!("{} passed in", a.account),
                    });
                }
                if let Some(f) = ev_fen(a, "total_out") {
                    p.flows.push(Flow {
                        start_ms: start,
                        end_ms: end,
                        fen: -f,
                        label: format!("{} passed out", a.account),
                    });
                }
            }
            "large_value" => {
                let out = evidence.and_then(|e| e.get("direction")).and_then(|d| d.as_str()) == Some("out");
                if let Some(f) = ev_fen(a, "day_total") {
                    let fen = if out { -f } else { f };
                    p.flows.push(Flow {
                        start_ms: start,
                        end_ms: end,
                        fen,
                        label: format!("{} large-value day", a.account),
                    });
                }
            }
            "periodic_batch_small_out" => {
                let starts: Vec<i64> = evidence
                    .and_then(|e| e.get("event_starts"))
                    .and_then(|v| v.as_array())
                    .map(|v| v.iter().filter_map(|s| s.as_str().and_then(ms)).collect())
                    .unwrap_or_default();
                let last_total = ev_fen(a, "current_batch_total");
                let n = starts.len();
                for (i, at) in starts.into_iter().enumerate() {
                    p.batches.push(Batch {
                        at_ms: at,
                        fen: if i + 1 == n { last_total } else { None },
                        account: a.account.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    p.flows.sort_by_key(|f| (f.end_ms, f.start_ms));
    p.batches.sort_by_key(|b| b.at_ms);
    p.batches.dedup_by(|a, b| a.at_ms == b.at_ms && a.account == b.account);
    p
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The picture as an SVG element; a sentence instead when the alerts carry no flows.
pub fn svg(p: &MoneyPicture) -> String {
    if p.flows.is_empty() && p.batches.is_empty() {
        return "<p class=muted>The alerts of this case carry no flow figures to draw.</p>".into();
    }
    let (w, h, left, right, top, bottom) = (820.0_f64, 280.0_f64, 90.0, 20.0, 20.0, 40.0);
    let times = p
        .flows
        .iter()
        .flat_map(|f| [f.start_ms, f.end_ms])
        .chain(p.batches.iter().map(|b| b.at_ms));
    let (t0, t1) = times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let span = ((t1 - t0).max(3_600_000)) as f64;
    // Running net of the flows, stepped at each flow's end.
    let mut net = 0i64;
    let mut balance = vec![(t0, 0i64)];
    for f in &p.flows {
        net += f.fen;
        balance.push((f.end_ms, net));
    }
    let peak = p
        .flows
        .iter()
        .map(|f| f.fen.abs())
        .chain(balance.iter().map(|(_, b)| b.abs()))
        .chain(p.batches.iter().filter_map(|b| b.fen))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |t: i64| left + (t - t0) as f64 / span * (w - left - right);
    let mid = top + (h - top - bottom) / 2.0;
    let y = |fen: i64| mid - fen as f64 / peak * ((h - top - bottom) / 2.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=chart viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=img aria-label=\"money over time\">"
    );
    let _ = write!(s, "<line x1={left} y1={mid} x2={} y2={mid} stroke=#888 />", w - right);
    let _ = write!(
        s,
        "<text x=4 y={} font-size=11>+{}</text><text x=4 y={} font-size=11>-{}</text><text x=4 y={} font-size=11>0</text>",
        top + 10.0,
        format_fen(peak as i64),
        h - bottom,
        format_fen(peak as i64),
        mid + 4.0
    );
    for f in &p.flows {
        let (x0, x1) = (x(f.start_ms), x(f.end_ms));
        let width = (x1 - x0).max(3.0);
        let (y0, y1) = if f.fen >= 0 { (y(f.fen), mid) } else { (mid, y(f.fen)) };
        let colour = if f.fen >= 0 { "#2e8b57" } else { "#c0392b" };
        let _ = write!(
            s,
            "<rect x={x0:.1} y={y0:.1} width={width:.1} height={:.1} fill={colour} fill-opacity=0.55><title>{}: {} yuan, {} – {}</title></rect>",
            (y1 - y0).max(1.0),
            esc(&f.label),
            format_fen(f.fen),
            crate::format_beijing(f.start_ms),
            crate::format_beijing(f.end_ms)
        );
    }
    for b in &p.batches {
        let bx = x(b.at_ms);
        let by = b.fen.map(|f| y(-f)).unwrap_or(mid + 14.0);
        let amount = b
            .fen
            .map(|f| format!("{} yuan", format_fen(f)))
            .unwrap_or_else(|| "amount not in evidence".into());
        let _ = write!(
            s,
            "<path d=\"M{bx:.1} {mid:.1} L{bx:.1} {by:.1}\" stroke=#e67e22 stroke-width=2 /><circle cx={bx:.1} cy={by:.1} r=4 fill=#e67e22><title>payout batch by {} on {}: {}</title></circle>",
            esc(&b.account),
            crate::format_beijing(b.at_ms),
            amount
        );
    }
    let points: Vec<String> = balance
        .iter()
        .map(|(t, b)| format!("{:.1},{:.1}", x(*t), y(*b)))
        .collect();
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=none stroke=#1f4e9c stroke-width=2 />",
        points.join(" ")
    );
    let _ = write!(
        s,
        "<text x={left} y={} font-size=11>{}</text><text x={} y={} font-size=11 text-anchor=end>{}</text>",
        h - 8.0,
        crate::format_beijing(t0),
        w - right,
        h - 8.0,
        crate::format_beijing(t1)
    );
    s.push_str("</svg><p class=legend><span style=\"color:#2e8b57\">■</span> inflows <span style=\"color:#c0392b\">■</span> outflows <span style=\"color:#e67e22\">●</span> payout batches <span style=\"color:#1f4e9c\">━</span> running net of these flows (yuan, Beijing time)</p>");
    s
}
