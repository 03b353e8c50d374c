//! The dashboard: calls per minute by outcome over the last 24 hours (every HTTP call made,
//! retries included, as a server-rendered SVG chart), queue depth, the oldest pending call and the failing actions.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Response;
use hookflow_engine::dashboard::{Dashboard, CHART_HOURS};
use hookflow_engine::model::Timestamp;
use minijinja::context;
use serde::Serialize;

use crate::auth::Session;
use crate::ui::{render, UiError};
use crate::v1::alerts::AlertOut;
use crate::AppState;

/// The chart's series, bottom to top: calls answered 2xx, and the others (an error status,
/// a timeout, no connection).
const SERIES: [(&str, &str); 2] = [
    ("succeeded", "Answered 2xx"),
    ("failed", "Failed (error status or no answer)"),
];
/// Height of the chart's drawing area, in its own units (one unit wide per minute).
const CHART_HEIGHT: f64 = 200.0;

#[derive(Serialize)]
struct Series {
    key: &'static str,
    label: &'static str,
    /// SVG path data: one rectangle per minute with calls.
    path: String,
    total: u64,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, UiError> {
    let now = Timestamp::now();
    let scope = session.principal.shop_scope().map(<[_]>::to_vec);
    let dash = state.engine.dashboard(now, scope.as_deref()).await?;
    let minutes = (CHART_HOURS * 60) as usize;

    let counts = counts_per_minute(&dash, minutes);
    let peak = counts
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let series = chart_series(&counts, peak);
    let total = series.iter().map(|s| s.total).sum::<u64>();
    let ticks = hour_ticks(dash.first_minute);

    // Names and event types of the failing actions' triggers, from one read.
    let names: HashMap<_, _> = state
        .engine
        .list_triggers()
        .await?
        .into_iter()
        .map(|t| (t.id, (t.draft.name, t.draft.event_type)))
        .collect();
    let failing: Vec<_> = dash
        .failing
        .iter()
        .map(|a| {
            let trigger = names.get(&a.action.trigger);
            context! {
                alert => AlertOut::from(a),
                trigger_name => trigger.map(|(name, _)| name.clone()).unwrap_or_else(|| format!("trigger {}", a.action.trigger)),
                event_type => trigger.map(|(_, event_type)| event_type.clone()),
            }
        })
        .collect();
    let oldest_age = dash
        .oldest_pending
        .as_ref()
        .map(|o| human_age(now.0 - o.created_at.0));
    render::page(
        &session,
        "dashboard.html",
        "dashboard",
        context! {
            event_names => render::event_names(state.engine.catalog()),
            series,
            ticks,
            peak,
            chart_width => minutes,
            chart_height => CHART_HEIGHT,
            pending => dash.pending,
            in_flight => dash.in_flight,
            oldest => dash.oldest_pending.as_ref().map(|o| context! { id => o.id, createdAt => o.created_at }),
            oldest_age,
            failing,
            total,
        },
    )
}

/// Calls per minute of the chart and series (succeeded, failed), oldest minute first.
fn counts_per_minute(dash: &Dashboard, minutes: usize) -> Vec<[u64; SERIES.len()]> {
    let mut counts = vec![[0u64; SERIES.len()]; minutes];
    for m in &dash.per_minute {
        let Some(offset) = usize::try_from(m.minute - dash.first_minute)
            .ok()
            .filter(|o| *o < minutes)
        else {
            continue;
        };
        counts[offset][usize::from(!m.succeeded)] += m.calls;
    }
    counts
}

/// Each series as SVG path data, the minutes stacked and scaled so `peak` fills the chart.
fn chart_series(counts: &[[u64; SERIES.len()]], peak: u64) -> Vec<Series> {
    let scale = CHART_HEIGHT / peak as f64;
    let mut paths = vec![String::new(); SERIES.len()];
    let mut totals = [0u64; SERIES.len()];
    for (x, minute) in counts.iter().enumerate() {
        let mut base = CHART_HEIGHT;
        for (i, calls) in minute.iter().enumerate() {
            if *calls == 0 {
                continue;
            }
            totals[i] += calls;
            let h = *calls as f64 * scale;
            let _ = write!(paths[i], "M{x} {:.2}h1v{:.2}h-1z", base - h, h);
            base -= h;
        }
    }
    SERIES
        .iter()
        .zip(paths)
        .zip(totals)
        .map(|(((key, label), path), total)| Series {
            key,
            label,
            path,
            total,
        })
        .collect()
}

/// Marks at every third hour of the day (UTC), placed along the chart in percent.
fn hour_ticks(first_minute: i64) -> Vec<minijinja::Value> {
    let start_ms = first_minute * 60_000;
    let span_ms = CHART_HOURS * 3_600_000;
    let first_hour = start_ms.div_euclid(3_600_000) + 1;
    (first_hour..)
        .map(|h| h * 3_600_000)
        .take_while(|at| *at < start_ms + span_ms)
        .filter(|at| (at / 3_600_000).rem_euclid(24) % 3 == 0)
        .map(|at| {
            let label = format!("{:02}:00", (at / 3_600_000).rem_euclid(24));
            context! { left => (at - start_ms) as f64 * 100.0 / span_ms as f64, label }
        })
        .collect()
}

/// `3 h 12 min`, `5 min`, `40 s`.
pub(crate) fn human_age(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}
