//! `hookflow bench`: end-to-end throughput and latency against this machine's raw HTTP limit,
//! at the shipped defaults of `hookflow serve` unless a flag says otherwise.
//!
//! One process holds the receivers, a client and hookflow itself:
//! 1. raw: the client POSTs N copies of a typical webhook body straight to a receiver;
//! 2. hookflow, on a fresh database, one shop, the scenario's triggers; the client POSTs N
//!    events through the real HTTP API, one event per request:
//!    - `burst`: one trigger, one endpoint; ends when the receiver has had every call. Latency
//!      is from the start of an event's ingest request to its call arriving.
//!    - `backlog`: one endpoint that is down — it takes calls but does not answer, so its slots
//!      fill and the other calls wait in the queue (no retry backoff is involved: nothing
//!      failed) — while all N events are ingested; then it comes back. deliveries/s is N over
//!      the time from its return to the last call; latency is from its return (or from the
//!      event, if later) to the call arriving.
//!    - `fanout`: one event matches `--endpoints` triggers, each calling its own endpoint;
//!      deliveries/s counts every call.
//! 3. with `--slow-endpoint` (burst): phase 2 again on a fresh database, with a second trigger
//!    calling a receiver that answers after 2 s; the fast endpoint's throughput is compared.
//!
//! Every phase uses the same client settings, concurrency and receivers, so the ratio says what
//! hookflow costs on top of the HTTP it cannot avoid. With `--unique-entities K` the events
//! are spread over K entities and the trigger keeps queue items unique, so calls coalesce.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use hookflow_delivery::{DeliveryConfig, TargetPolicy};
use hookflow_storage::DbConfig;
use serde_json::{json, Value};

use clap::ValueEnum;

use crate::{defaults, ServeConfig};

/// What the hookflow phase exercises.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// One endpoint, events posted as fast as the client can.
    Burst,
    /// N calls waiting for an endpoint that comes back.
    Backlog,
    /// One event, several endpoints.
    Fanout,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Scenario::Burst)]
    scenario: Scenario,
    /// Events to send.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Requests the client keeps in flight, in every phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Database for the hookflow phases (default: a fresh SQLite file in a temporary directory
    /// per phase). A PostgreSQL URL is used as given: point it at an empty database.
    #[arg(long, env = "HOOKFLOW_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// hookflow's `--concurrency` (default: the server's).
    #[arg(long)]
    delivery_concurrency: Option<usize>,
    /// hookflow's `--per-endpoint-concurrency` (default: the server's).
    #[arg(long)]
    per_endpoint_concurrency: Option<usize>,
    /// `fanout`: endpoints (triggers) one event goes to.
    #[arg(long, default_value_t = 4)]
    endpoints: usize,
    /// Spread the events over this many entities, with unique queue items on.
    #[arg(long)]
    unique_entities: Option<usize>,
    /// Also run with a second endpoint that answers after 2 s, and compare the fast endpoint.
    #[arg(long)]
    slow_endpoint: bool,
    /// How long the second endpoint takes to answer, in milliseconds (0 gives the control: a
    /// second endpoint as fast as the first, so the cost of the extra calls alone shows).
    #[arg(long, default_value_t = 2000)]
    slow_endpoint_delay_ms: u64,
    /// Put a five-clause rule with a list operator (the one `cargo bench --bench rules`
    /// measures) on every trigger; every event matches it.
    #[arg(long)]
    rule: bool,
    /// hookflow's `--trigger-activity` (default: the server's, on): `false` to measure what
    /// keeping each trigger's activity costs.
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
    trigger_activity: bool,
    /// Give up waiting for deliveries after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

/// What a receiver saw.
struct Receiver {
    received: AtomicUsize,
    /// Per event: nanoseconds since `epoch` when its ingest request started (0 = not yet).
    sent_at: Arc<Vec<AtomicU64>>,
    /// Per event: latency in microseconds of its first delivery (0 = not yet).
    latency_us: Vec<AtomicU64>,
    epoch: Instant,
    /// Answer after this long (the slow endpoint).
    delay: Duration,
    /// `false` while the endpoint is down (`backlog`): requests wait unanswered.
    up: tokio::sync::watch::Sender<bool>,
    /// Nanoseconds since `epoch` when it came up (0: it never went down).
    up_since: AtomicU64,
}

impl Receiver {
    fn new(n: usize, sent_at: Arc<Vec<AtomicU64>>, epoch: Instant, delay: Duration) -> Receiver {
        Receiver {
            received: AtomicUsize::new(0),
            sent_at,
            latency_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            epoch,
            delay,
            up: tokio::sync::watch::Sender::new(true),
            up_since: AtomicU64::new(0),
        }
    }

    fn go_down(&self) {
        self.up.send_replace(false);
    }

    fn come_back(&self) {
        self.up_since.store(
            (self.epoch.elapsed().as_nanos() as u64).max(1),
            Ordering::Relaxed,
        );
        self.up.send_replace(true);
    }
}

async fn receive(State(rx): State<Arc<Receiver>>, body: Bytes) -> &'static str {
    if !*rx.up.borrow() {
        let _ = rx.up.subscribe().wait_for(|up| *up).await;
    }
    if !rx.delay.is_zero() {
        tokio::time::sleep(rx.delay).await;
    }
    rx.received.fetch_add(1, Ordering::Relaxed);
    // The default payload carries the bench's event number as entityData.OrderId.
    if let Some(i) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["entityData"]["OrderId"].as_u64())
        .map(|i| i as usize)
        .filter(|i| *i < rx.sent_at.len())
    {
        // Latency counts from when the call could first arrive: its event, or the endpoint's
        // return.
        let sent = rx.sent_at[i]
            .load(Ordering::Relaxed)
            .max(rx.up_since.load(Ordering::Relaxed));
        if sent > 0 {
            let now = rx.epoch.elapsed().as_nanos() as u64;
            let lat = (now.saturating_sub(sent) / 1000).max(1);
            let _ = rx.latency_us[i].compare_exchange(0, lat, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
    "ok"
}

async fn start_receiver(rx: Arc<Receiver>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route("/hook", post(receive)).with_state(rx);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Sends `n` POSTs with `concurrency` workers; `make` builds request `i`.
async fn blast<F>(n: usize, concurrency: usize, make: F) -> anyhow::Result<Duration>
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let make = make.clone();
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let response = make(i).send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                if !status.is_success() {
                    bail!(
                        "request {i} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
        });
    }
    while let Some(result) = workers.join_next().await {
        result??;
    }
    Ok(start.elapsed())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// What one hookflow phase measured at the fast endpoint.
struct Phase {
    /// Calls the fast endpoint got.
    delivered: usize,
    /// From the first event to the last call at the fast endpoint.
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }
}

/// The `--admin-token` of the benchmarked hookflow.
const BENCH_TOKEN: &str = "bench-admin-token";

/// The server configuration the bench runs: `hookflow serve`'s defaults, with the flags given.
fn serve_config(
    args: &BenchArgs,
    url: String,
    dir: &std::path::Path,
) -> anyhow::Result<ServeConfig> {
    let timeout = Duration::from_millis(defaults::DELIVERY_TIMEOUT_MS);
    Ok(ServeConfig {
        database: DbConfig {
            url,
            max_connections: None,
        },
        listen: "127.0.0.1:0".parse()?,
        admin_token: Some(BENCH_TOKEN.to_owned()),
        secret_key: None,
        secret_key_file: Some(dir.join("bench.key")),
        delivery: DeliveryConfig {
            timeout,
            policy: TargetPolicy::parse("127.0.0.0/8").map_err(anyhow::Error::msg)?,
        },
        dispatch: defaults::dispatch(
            args.delivery_concurrency.unwrap_or(defaults::CONCURRENCY),
            args.per_endpoint_concurrency
                .unwrap_or(defaults::PER_ENDPOINT_CONCURRENCY),
            timeout,
            defaults::retry(
                defaults::MAX_RETRIES,
                defaults::RETRY_BASE_MS,
                defaults::RETRY_MAX_MS,
            ),
        ),
        notify: hookflow_delivery::notify::NotifyConfig::default(),
        retention: hookflow_engine::event_log::RetentionPolicy::default(),
        trigger_activity: args.trigger_activity,
    })
}

async fn hookflow_phase(
    args: &BenchArgs,
    http: &reqwest::Client,
    slow: bool,
    label: &str,
) -> anyhow::Result<Phase> {
    let n = args.events.max(1);
    let epoch = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let (receivers, mut endpoints) = measured_receivers(args, n, &sent_at, epoch).await?;
    let backlog = args.scenario == Scenario::Backlog;
    if backlog {
        receivers[0].go_down();
    }

    let dir = tempfile::tempdir()?;
    let url = args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let running = crate::start(serve_config(args, url, dir.path())?).await?;
    let api = format!("http://{}/api/v1", running.addr);
    let shop_id = create_shop(http, &api).await?;
    let unique = args.unique_entities.is_some();
    if slow {
        let slow = Arc::new(Receiver::new(
            0,
            Arc::new(Vec::new()),
            epoch,
            Duration::from_millis(args.slow_endpoint_delay_ms),
        ));
        endpoints.push(format!("http://{}/hook", start_receiver(slow).await?));
    }
    create_triggers(http, &api, shop_id, &endpoints, unique, args.rule).await?;

    let start = Instant::now();
    let ingest = send_events(args, http, &api, shop_id, &sent_at, epoch).await?;
    println!(
        "{label}: {n} events ingested in {:.2}s = {:.0}/s",
        ingest.as_secs_f64(),
        n as f64 / ingest.as_secs_f64()
    );
    let start = if backlog {
        // Every call is queued (or on the wire, unanswered); the endpoint comes back now.
        receivers[0].come_back();
        Instant::now()
    } else {
        start
    };
    wait_for_calls(args, http, &api, &receivers, n * receivers.len()).await?;
    let elapsed = start.elapsed();
    let delivered = received(&receivers);
    println!(
        "{label}: {delivered} calls delivered {:.2}s after {} = {:.0}/s{}",
        elapsed.as_secs_f64(),
        if backlog {
            "the endpoint came back"
        } else {
            "the first event"
        },
        delivered as f64 / elapsed.as_secs_f64(),
        if unique {
            format!(" ({} events coalesced)", n - delivered)
        } else {
            String::new()
        }
    );
    running.shutdown();
    running.wait().await?;
    Ok(Phase {
        delivered,
        elapsed,
        latencies_us: latencies_us(&receivers),
    })
}

/// Every delivery's latency the measured receivers saw, in microseconds, sorted.
fn latencies_us(receivers: &[Arc<Receiver>]) -> Vec<u64> {
    let mut latencies_us: Vec<u64> = receivers
        .iter()
        .flat_map(|r| r.latency_us.iter().map(|a| a.load(Ordering::Relaxed)))
        .filter(|l| *l > 0)
        .collect();
    latencies_us.sort_unstable();
    latencies_us
}

/// The measured receivers, started, and their URLs: one, or `--endpoints` for fanout.
async fn measured_receivers(
    args: &BenchArgs,
    n: usize,
    sent_at: &Arc<Vec<AtomicU64>>,
    epoch: Instant,
) -> anyhow::Result<(Vec<Arc<Receiver>>, Vec<String>)> {
    let measured = if args.scenario == Scenario::Fanout {
        args.endpoints.max(1)
    } else {
        1
    };
    let mut receivers = Vec::with_capacity(measured);
    let mut endpoints = Vec::new();
    for _ in 0..measured {
        let rx = Arc::new(Receiver::new(n, sent_at.clone(), epoch, Duration::ZERO));
        endpoints.push(format!("http://{}/hook", start_receiver(rx.clone()).await?));
        receivers.push(rx);
    }
    Ok((receivers, endpoints))
}

/// Creates the shop the bench's events are for; returns its id.
async fn create_shop(http: &reqwest::Client, api: &str) -> anyhow::Result<i64> {
    let shop: Value = http
        .post(format!("{api}/shops"))
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    shop["id"].as_i64().context("shop id")
}

/// The `--rule` rule: five clauses, one a list operator; every bench event matches it (the
/// list clause finds the last line). OrderChanged's catalog describes none of these fields, so
/// each clause declares its type, as an admin does for a ShopCtrl type.
fn bench_rule() -> Value {
    json!({"all": [
        {"field": "entity.Status", "op": "in", "value": ["Shipped", "Delivered"], "type": "text"},
        {"field": "entity.Total", "op": "greaterThan", "value": 100, "type": "number"},
        {"field": "entity.Currency", "op": "equals", "value": "EUR", "type": "text"},
        {"field": "entity.Paid", "op": "equals", "value": true, "type": "boolean"},
        {"field": "entity.Lines", "op": "anyItem", "type": "list", "where":
            {"field": "Sku", "op": "startsWith", "value": "SKU-3", "type": "text"}}
    ]})
}

/// One trigger per endpoint, each calling it on every `OrderChanged` of the shop (that its
/// rule, with `--rule`, lets through: all of them).
async fn create_triggers(
    http: &reqwest::Client,
    api: &str,
    shop_id: i64,
    endpoints: &[String],
    unique: bool,
    rule: bool,
) -> anyhow::Result<()> {
    for (i, endpoint) in endpoints.iter().enumerate() {
        let mut body = json!({"name": format!("bench {i}"), "eventType": "OrderChanged", "shopId": shop_id,
            "actions": [{"type": "callWebhook", "url": endpoint, "method": "POST", "uniqueQueueItems": unique}]});
        if rule {
            body["rules"] = bench_rule();
        }
        let trigger = http
            .post(format!("{api}/triggers"))
            .json(&body)
            .send()
            .await?;
        if !trigger.status().is_success() {
            bail!(
                "could not create the bench trigger: {}",
                trigger.text().await?
            );
        }
    }
    Ok(())
}

/// POSTs the bench's events, noting when each was sent; returns how long ingest took.
async fn send_events(
    args: &BenchArgs,
    http: &reqwest::Client,
    api: &str,
    shop_id: i64,
    sent_at: &Arc<Vec<AtomicU64>>,
    epoch: Instant,
) -> anyhow::Result<Duration> {
    let n = args.events.max(1);
    let events_url = format!("{api}/events");
    let entities = args.unique_entities.unwrap_or(n).max(1);
    let http = http.clone();
    let sent_at = sent_at.clone();
    blast(n, args.concurrency.max(1), move |i| {
        sent_at[i].store(
            (epoch.elapsed().as_nanos() as u64).max(1),
            Ordering::Relaxed,
        );
        // A realistic order: the default payload carries the catalog's two fields; the rest
        // is what a rule reads.
        let body = json!({"eventType": "OrderChanged", "shopId": shop_id, "entityId": i % entities,
            "entityData": {"OrderId": i, "OrderCode": format!("ORD-{i:07}"), "Status": "Shipped",
                "Total": 208.95, "Currency": "EUR", "Paid": true,
                "Lines": [{"Sku": "SKU-1", "Qty": 1}, {"Sku": "SKU-2", "Qty": 2}, {"Sku": "SKU-3", "Qty": 3}]}})
        .to_string();
        http.post(&events_url)
            .header("content-type", "application/json")
            .body(body)
    })
    .await
}

/// Calls the measured receivers got so far.
fn received(receivers: &[Arc<Receiver>]) -> usize {
    receivers
        .iter()
        .map(|r| r.received.load(Ordering::Relaxed))
        .sum::<usize>()
}

/// Waits until the measured receivers got `expected` calls or, with coalescing, the fast
/// trigger has nothing left to send; fails at `--timeout-secs`.
async fn wait_for_calls(
    args: &BenchArgs,
    http: &reqwest::Client,
    api: &str,
    receivers: &[Arc<Receiver>],
    expected: usize,
) -> anyhow::Result<()> {
    let unique = args.unique_entities.is_some();
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let fast_trigger_idle = || async {
        // With coalescing the number of calls is not known up front: done when the fast
        // trigger has nothing pending or in flight.
        for status in ["pending", "in_flight"] {
            let page: Value = http
                .get(format!("{api}/queue?status={status}&triggerId=1&limit=1"))
                .send()
                .await?
                .json()
                .await?;
            if page["items"].as_array().is_some_and(|a| !a.is_empty()) {
                return Ok::<bool, anyhow::Error>(false);
            }
        }
        Ok(true)
    };
    loop {
        let got = received(receivers);
        if got >= expected || (unique && fast_trigger_idle().await?) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {got} of {expected} calls arrived within {}s",
                args.timeout_secs
            );
        }
        tokio::time::sleep(Duration::from_millis(if unique { 50 } else { 5 })).await;
    }
}

/// Phase 1: the raw limit, with a body shaped like hookflow's default payload; returns the
/// POSTs per second.
async fn raw_phase(http: &reqwest::Client, n: usize, c: usize) -> anyhow::Result<f64> {
    let raw_rx = Arc::new(Receiver::new(
        0,
        Arc::new(Vec::new()),
        Instant::now(),
        Duration::ZERO,
    ));
    let raw_url = format!("http://{}/hook", start_receiver(raw_rx).await?);
    let sample = json!({"eventId": 1, "eventType": "OrderChanged", "shopId": 1,
        "occurredAt": "2026-11-27T10:00:00Z", "entityData": {"OrderId": n, "OrderCode": "ORD-0000001"}})
    .to_string();
    let raw = {
        let http = http.clone();
        let body = Bytes::from(sample);
        blast(n, c, move |_| {
            http.post(&raw_url)
                .header("content-type", "application/json")
                .body(body.clone())
        })
        .await?
    };
    let raw_rate = n as f64 / raw.as_secs_f64();
    println!(
        "raw http: {n} POSTs in {:.2}s = {raw_rate:.0}/s",
        raw.as_secs_f64()
    );
    Ok(raw_rate)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let n = args.events.max(1);
    let c = args.concurrency.max(1);
    // Both phases send the bearer token hookflow needs, so they carry the same headers.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {BENCH_TOKEN}"))?,
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(c)
        .tcp_nodelay(true)
        .build()?;

    let raw_rate = raw_phase(&http, n, c).await?;

    let config = serve_config(&args, String::new(), std::path::Path::new("."))?;
    println!(
        "settings: scenario={:?} events={n} client_concurrency={c} concurrency={} per_endpoint_concurrency={} lease_s={} poll_ms={}",
        args.scenario,
        config.dispatch.concurrency,
        config.dispatch.per_host,
        config.dispatch.lease.as_secs(),
        config.dispatch.poll_interval.as_millis()
    );
    let database = match &args.database_url {
        Some(url) if url.starts_with("postgres") => "postgres",
        _ => "sqlite",
    };
    let main = hookflow_phase(&args, &http, false, &format!("hookflow ({database})")).await?;
    let rate = main.rate();
    let mut extra = String::new();
    if args.slow_endpoint {
        if args.scenario != Scenario::Burst {
            bail!("--slow-endpoint compares bursts: use it with --scenario burst");
        }
        if args.database_url.is_some() {
            bail!("--slow-endpoint runs a second phase and needs a fresh database: leave out --database-url");
        }
        let with_slow = hookflow_phase(&args, &http, true, "hookflow with a slow endpoint").await?;
        extra = format!(
            " fast_with_slow/s={:.0} fast_share={:.2}",
            with_slow.rate(),
            with_slow.rate() / rate
        );
    }
    println!(
        "bench: scenario={} deliveries/s={rate:.0} raw_http/s={raw_rate:.0} ratio={:.3} p50_ms={:.1} p99_ms={:.1} peak_rss_mb={:.0}{extra}",
        args.scenario.to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned()),
        rate / raw_rate,
        percentile(&main.latencies_us, 0.50),
        percentile(&main.latencies_us, 0.99),
        peak_rss_mb()
    );
    let _ = main.delivered;
    Ok(())
}
