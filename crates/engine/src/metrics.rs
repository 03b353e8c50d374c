//! Prometheus metrics: counters and histograms the loops update as they work, and gauges read
//! at scrape time (queue depth, alerts, the process).
//!
//! The hot paths only touch handles made up front: a counter is an atomic increment and a
//! histogram observation a few (the `prometheus` crate's histograms take no lock), with no label
//! set built per call. The one lookup, of an event type's counter once per event, hashes the
//! `&str` under a read lock held for no await. Label values are bounded: event type names come
//! from the catalog, everything else from fixed lists here; never a URL, an id or free text.
//!
//! The metrics are process-wide ([`global`]): one process runs one engine, and the loops can
//! reach them without being handed anything.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Counter, Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing::{debug, info, warn};

use crate::model::{CallStatus, ClaimedCall, Completion, Ingested, NewEvent, Next, Timestamp};
use crate::store::IngestRejection;
use crate::{Engine, EngineError};

/// How an attempt ended, as the `outcome` label says it.
const OUTCOMES: [&str; 3] = ["succeeded", "retry", "failed"];
/// The `status_class` label: the answer's class, or `none` without an answer.
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];
/// Trigger priorities (`policy` accepts 1 to 10).
const PRIORITIES: std::ops::RangeInclusive<i32> = 1..=10;
/// The queue states counted by `hookflow_queue_depth` (finished calls are counted by the
/// attempt counters instead; counting them would scan the retained history).
pub const QUEUE_STATES: [CallStatus; 2] = [CallStatus::Pending, CallStatus::InFlight];
/// The content type of what [`Engine::render_metrics`] returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the queue holds now, for the metrics scrape.
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    /// `(status, priority, calls)` for the [`QUEUE_STATES`].
    pub depth: Vec<(CallStatus, i32, u64)>,
    /// When the longest-waiting due pending call became due.
    pub oldest_due: Option<Timestamp>,
}

/// Every metric hookflow exports.
pub struct Metrics {
    registry: Registry,
    /// By event type: a lookup by the `&str` under a read lock, no allocation once the type's
    /// counter exists. Event types are checked against the catalog before ingest, so the set
    /// of label values is bounded.
    events: IntCounterVec,
    calls_queued: IntCounter,
    calls_coalesced: IntCounter,
    /// `[outcome][status class]`, made up front.
    attempts: [[IntCounter; 6]; 3],
    attempt_duration: Histogram,
    delivery_latency: Histogram,
    queue_depth: IntGaugeVec,
    oldest_due_age: Gauge,
    open_alerts: IntGauge,
    deactivated_actions: IntGauge,
    resident_memory: IntGauge,
    cpu_seconds: Counter,
    open_fds: IntGauge,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Registers a metric made from constant, valid names (so neither step can fail).
fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("metric names and labels here are constant and valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once, under a name of its own");
    metric
}

impl Metrics {
    // Long on purpose: a declarative table of every exported metric (name, help, buckets).
    fn new() -> Metrics {
        let r = Registry::new();
        let events = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "hookflow_events_ingested_total",
                    "Events committed, by event type (repeated idempotency keys not counted).",
                ),
                &["event_type"],
            ),
        );
        let calls_queued = register(
            &r,
            IntCounter::new(
                "hookflow_calls_queued_total",
                "Webhook calls queued by ingested events (unique calls folded into a pending one included).",
            ),
        );
        let calls_coalesced = register(
            &r,
            IntCounter::new(
                "hookflow_calls_coalesced_total",
                "Calls folded into the pending call of their action and entity (unique queue items).",
            ),
        );
        let attempt_family = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "hookflow_delivery_attempts_total",
                    "Delivery attempts, by what they led to (succeeded, retry, failed) and the class of the receiver's answer (none: no answer).",
                ),
                &["outcome", "status_class"],
            ),
        );
        let attempts = OUTCOMES.map(|outcome| {
            STATUS_CLASSES.map(|class| attempt_family.with_label_values(&[outcome, class]))
        });
        let attempt_duration = register(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "hookflow_delivery_attempt_duration_seconds",
                    "Duration of one delivery attempt, request sent to answer read.",
                )
                // From a fast local receiver to the default 10 s timeout and beyond.
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            ),
        );
        let delivery_latency = register(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "hookflow_delivery_latency_seconds",
                    "Time from a call being queued to its successful delivery, retries included.",
                )
                .buckets(vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                    3600.0, 21600.0,
                ]),
            ),
        );
        let queue_depth = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "hookflow_queue_depth",
                    "Calls in the queue, by status (pending, in_flight) and priority.",
                ),
                &["status", "priority"],
            ),
        );
        let oldest_due_age = register(
            &r,
            Gauge::new(
                "hookflow_queue_oldest_due_age_seconds",
                "How long the longest-waiting due pending call has been due (0 when none is).",
            ),
        );
        let open_alerts = register(
            &r,
            IntGauge::new("hookflow_open_alerts", "Alerts not acknowledged yet."),
        );
        let deactivated_actions = register(
            &r,
            IntGauge::new(
                "hookflow_deactivated_actions",
                "Trigger actions deactivated by their retry policy or an admin.",
            ),
        );
        let resident_memory = register(
            &r,
            IntGauge::new(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
        );
        let cpu_seconds = register(
            &r,
            Counter::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            ),
        );
        let open_fds = register(
            &r,
            IntGauge::new("process_open_fds", "Number of open file descriptors."),
        );
        Metrics {
            registry: r,
            events,
            calls_queued,
            calls_coalesced,
            attempts,
            attempt_duration,
            delivery_latency,
            queue_depth,
            oldest_due_age,
            open_alerts,
            deactivated_actions,
            resident_memory,
            cpu_seconds,
            open_fds,
        }
    }

    /// Counts what one group commit stored: `requests[i]` was answered `results[i]`.
    pub fn ingested(
        &self,
        requests: &[Vec<NewEvent>],
        results: &[Result<Vec<Ingested>, IngestRejection>],
        coalesced: u64,
    ) {
        self.calls_coalesced.inc_by(coalesced);
        let mut calls = 0u64;
        for (events, result) in requests.iter().zip(results) {
            let Ok(answers) = result else { continue };
            for (event, answer) in events.iter().zip(answers) {
                if answer.duplicate {
                    continue;
                }
                self.events
                    .with_label_values(&[event.event_type.as_str()])
                    .inc();
                calls += u64::from(answer.calls_queued);
            }
        }
        self.calls_queued.inc_by(calls);
    }

    /// Counts an attempt and, for a delivered call, its end-to-end latency.
    fn attempt(&self, call: &ClaimedCall, done: &Completion) {
        let outcome = match done.next {
            Next::Succeeded => 0,
            Next::RetryAt(_) => 1,
            Next::Failed => 2,
        };
        self.attempts[outcome][status_class(done.attempt.status_code)].inc();
        self.attempt_duration
            .observe(done.attempt.duration_ms.max(0) as f64 / 1000.0);
        if done.next == Next::Succeeded {
            let waited = Timestamp::now().0.saturating_sub(call.created_at.0).max(0);
            self.delivery_latency.observe(waited as f64 / 1000.0);
        }
    }

    /// Sets the scrape-time gauges and renders everything in the Prometheus text format.
    fn render(&self, queue: &QueueStats, open_alerts: usize, deactivated: usize) -> String {
        // Every state and priority is set, zero included, so a series never just vanishes.
        for status in QUEUE_STATES {
            for priority in PRIORITIES {
                let calls = queue
                    .depth
                    .iter()
                    .filter(|(s, p, _)| *s == status && *p == priority)
                    .map(|(_, _, n)| *n)
                    .sum::<u64>();
                self.queue_depth
                    .with_label_values(&[status.as_str(), &priority.to_string()])
                    .set(calls as i64);
            }
        }
        let age = queue
            .oldest_due
            .map_or(0, |at| Timestamp::now().0.saturating_sub(at.0).max(0));
        self.oldest_due_age.set(age as f64 / 1000.0);
        self.open_alerts.set(open_alerts as i64);
        self.deactivated_actions.set(deactivated as i64);
        let process = ProcessStats::read();
        self.resident_memory.set(process.resident_bytes as i64);
        let cpu = process.cpu.as_secs_f64();
        if cpu > self.cpu_seconds.get() {
            self.cpu_seconds.inc_by(cpu - self.cpu_seconds.get());
        }
        self.open_fds.set(process.open_fds as i64);
        let mut text = Vec::new();
        // Only a metric with a bad name could fail to encode; ours are constant.
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            warn!(error = %err, "could not encode the metrics");
        }
        String::from_utf8_lossy(&text).into_owned()
    }
}

/// Records a finished attempt: its metrics, and one log event (inside the call's `deliver`
/// span). Successes log at debug, so a busy node's log is not one line per call; retries at
/// info, final failures at warn.
pub fn observe_attempt(call: &ClaimedCall, done: &Completion) {
    global().attempt(call, done);
    let attempt = &done.attempt;
    let duration_ms = attempt.duration_ms;
    let status = attempt.status_code;
    let trigger_id = call.action.trigger.0;
    let action = call.action.index;
    let n = attempt.attempt;
    // The error is hookflow's own description of a transport failure (no credentials); the
    // response body is never logged.
    let error = attempt.error.as_deref();
    match done.next {
        Next::Succeeded => {
            debug!(
                trigger_id,
                action,
                attempt = n,
                status,
                duration_ms,
                "call delivered"
            )
        }
        Next::RetryAt(at) => info!(
            trigger_id,
            action,
            attempt = n,
            status,
            duration_ms,
            error,
            retry_in_ms = at.0.saturating_sub(Timestamp::now().0),
            "attempt failed; retry scheduled"
        ),
        Next::Failed => warn!(
            trigger_id,
            action,
            attempt = n,
            status,
            duration_ms,
            error,
            "call failed for good"
        ),
    }
}

fn status_class(status: Option<i32>) -> usize {
    match status {
        Some(100..=199) => 0,
        Some(200..=299) => 1,
        Some(300..=399) => 2,
        Some(400..=499) => 3,
        Some(500..=599) => 4,
        _ => 5,
    }
}

impl Engine {
    /// The metrics in the Prometheus text format, with the queue, alerts and the process read
    /// now (a few cheap queries).
    pub async fn render_metrics(&self) -> Result<String, EngineError> {
        let queue = self.store.queue_stats(Timestamp::now()).await?;
        let open_alerts = self.store.list_alerts(Some(false)).await?.len();
        let deactivated = self.store.deactivated_actions().await?.len();
        Ok(global().render(&queue, open_alerts, deactivated))
    }
}

/// What `/proc/self` says about this process (zeros where it cannot be read: not Linux).
#[derive(Debug, Default)]
struct ProcessStats {
    resident_bytes: u64,
    cpu: Duration,
    open_fds: u64,
}

impl ProcessStats {
    fn read() -> ProcessStats {
        let mut stats = ProcessStats::default();
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            stats.resident_bytes = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024);
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may hold spaces, so split after its ')'):
            // utime and stime are the 12th and 13th, in clock ticks. Linux fixes the ticks
            // user space sees (USER_HZ) at 100 per second.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace()
                .collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            stats.cpu = Duration::from_millis((ticks(11) + ticks(12)) * 10);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle itself is one of the entries.
            stats.open_fds = dir.count().saturating_sub(1) as u64;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_cover_every_answer_and_none() {
        assert_eq!(STATUS_CLASSES[status_class(Some(204))], "2xx");
        assert_eq!(STATUS_CLASSES[status_class(Some(429))], "4xx");
        assert_eq!(STATUS_CLASSES[status_class(Some(503))], "5xx");
        assert_eq!(STATUS_CLASSES[status_class(None)], "none");
        assert_eq!(STATUS_CLASSES[status_class(Some(999))], "none");
    }

    #[test]
    fn the_process_reads_its_own_stats() {
        let stats = ProcessStats::read();
        assert!(stats.resident_bytes > 0, "{stats:?}");
        assert!(stats.open_fds > 0, "{stats:?}");
    }

    #[test]
    fn the_text_format_has_every_family() {
        let text = global().render(&QueueStats::default(), 2, 1);
        for name in [
            "hookflow_delivery_attempts_total{outcome=\"retry\",status_class=\"5xx\"}",
            "hookflow_queue_depth{priority=\"5\",status=\"pending\"} 0",
            "hookflow_open_alerts 2",
            "hookflow_deactivated_actions 1",
            "hookflow_delivery_latency_seconds_bucket",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
