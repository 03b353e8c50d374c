//! `hookflow bench`: end-to-end throughput and latency against this machine's raw HTTP limit.
//!
//! One process holds a receiver, a client and (in the second phase) hookflow itself:
//! 1. raw: the client POSTs N copies of a typical webhook body straight to the receiver;
//! 2. hookflow: a fresh database, one shop, one trigger pointing at the receiver; the client
//!    POSTs N events through the real HTTP API, and the run ends when the receiver has had
//!    every call. Latency is from the start of an event's ingest request to its call arriving.
//!
//! Both phases use the same client settings, concurrency and receiver, so the ratio says what
//! hookflow costs on top of the HTTP it cannot avoid.

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
use hookflow_engine::dispatch::DispatchConfig;
use hookflow_storage::DbConfig;
use serde_json::{json, Value};

use crate::ServeConfig;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Events to send (and calls to deliver).
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Requests the client keeps in flight, in both phases.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Database for the hookflow phase (default: a fresh SQLite file in a temporary directory).
    #[arg(long, env = "HOOKFLOW_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Calls hookflow delivers at once (its `--concurrency`).
    #[arg(long, default_value_t = 512)]
    delivery_concurrency: usize,
    /// Give up waiting for deliveries after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

/// What the receiver saw.
struct Receiver {
    received: AtomicUsize,
    /// Per event: nanoseconds since `epoch` when its ingest request started (0 = not yet).
    sent_at: Vec<AtomicU64>,
    /// Per event: latency in microseconds of its first delivery (0 = not yet).
    latency_us: Vec<AtomicU64>,
    epoch: Instant,
}

impl Receiver {
    fn new(n: usize) -> Receiver {
        Receiver {
            received: AtomicUsize::new(0),
            sent_at: (0..n).map(|_| AtomicU64::new(0)).collect(),
            latency_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

async fn receive(State(rx): State<Arc<Receiver>>, body: Bytes) -> &'static str {
    rx.received.fetch_add(1, Ordering::Relaxed);
    // The default payload carries the bench's event number as entityData.OrderId.
    if let Some(i) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["entityData"]["OrderId"].as_u64())
        .map(|i| i as usize)
        .filter(|i| *i < rx.sent_at.len())
    {
        let sent = rx.sent_at[i].load(Ordering::Relaxed);
        if sent > 0 {
            let lat = ((rx.now_ns() - sent) / 1000).max(1);
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

fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()?)
}

/// Sends `n` POSTs with `concurrency` workers; `make` builds request `i`.
async fn blast<F>(
    client: &reqwest::Client,
    n: usize,
    concurrency: usize,
    make: F,
) -> anyhow::Result<Duration>
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
        let _ = client;
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

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let n = args.events.max(1);
    let c = args.concurrency.max(1);
    let rx = Arc::new(Receiver::new(n));
    let receiver = start_receiver(rx.clone()).await?;
    let hook_url = format!("http://{receiver}/hook");
    let http = client(c)?;

    // Phase 1: the raw limit, with a body shaped like hookflow's default payload.
    let sample = json!({"eventId": 1, "eventType": "OrderChanged", "shopId": 1,
        "occurredAt": "2026-11-27T10:00:00Z", "entityData": {"OrderId": n, "OrderCode": "ORD-0000001"}})
    .to_string();
    let raw = {
        let http = http.clone();
        let url = hook_url.clone();
        let body = Bytes::from(sample);
        blast(&http.clone(), n, c, move |_| {
            http.post(&url)
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
    rx.received.store(0, Ordering::SeqCst);

    // Phase 2: through hookflow.
    let dir = tempfile::tempdir()?;
    let url = args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let config = ServeConfig {
        database: DbConfig {
            url: url.clone(),
            max_connections: None,
        },
        listen: "127.0.0.1:0".parse()?,
        admin_token: None,
        secret_key: None,
        secret_key_file: Some(dir.path().join("bench.key")),
        delivery: DeliveryConfig {
            timeout: Duration::from_secs(10),
            policy: TargetPolicy::parse("127.0.0.0/8").map_err(anyhow::Error::msg)?,
        },
        dispatch: DispatchConfig {
            concurrency: args.delivery_concurrency.max(1),
            ..DispatchConfig::default()
        },
        notify: hookflow_delivery::notify::NotifyConfig::default(),
        retention: hookflow_engine::event_log::RetentionPolicy::default(),
    };
    let running = crate::start(config).await?;
    let api = format!("http://{}/api/v1", running.addr);
    let shop: Value = http
        .post(format!("{api}/shops"))
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let shop_id = shop["id"].as_i64().context("shop id")?;
    let trigger = http
        .post(format!("{api}/triggers"))
        .json(
            &json!({"name": "bench", "eventType": "OrderChanged", "shopId": shop_id,
            "actions": [{"type": "callWebhook", "url": hook_url, "method": "POST"}]}),
        )
        .send()
        .await?;
    if !trigger.status().is_success() {
        bail!(
            "could not create the bench trigger: {}",
            trigger.text().await?
        );
    }

    let events_url = format!("{api}/events");
    let start = Instant::now();
    let ingest = {
        let http = http.clone();
        let rx = rx.clone();
        blast(&http.clone(), n, c, move |i| {
            rx.sent_at[i].store(rx.now_ns().max(1), Ordering::Relaxed);
            let body = json!({"eventType": "OrderChanged", "shopId": shop_id, "entityId": i,
                "entityData": {"OrderId": i, "OrderCode": format!("ORD-{i:07}")}})
            .to_string();
            http.post(&events_url)
                .header("content-type", "application/json")
                .body(body)
        })
        .await?
    };
    println!(
        "hookflow: {n} events ingested in {:.2}s = {:.0}/s (database: {})",
        ingest.as_secs_f64(),
        n as f64 / ingest.as_secs_f64(),
        if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        }
    );
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    while rx.received.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            bail!(
                "only {} of {n} calls arrived within {}s",
                rx.received.load(Ordering::Relaxed),
                args.timeout_secs
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = start.elapsed();
    let rate = n as f64 / total.as_secs_f64();
    println!(
        "hookflow: {n} calls delivered {:.2}s after the first event = {rate:.0}/s",
        total.as_secs_f64()
    );
    running.shutdown();
    running.wait().await?;

    let mut lat: Vec<u64> = rx
        .latency_us
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .filter(|l| *l > 0)
        .collect();
    lat.sort_unstable();
    println!(
        "bench: deliveries/s={rate:.0} raw_http/s={raw_rate:.0} ratio={:.3} p50_ms={:.1} p99_ms={:.1} peak_rss_mb={:.0}",
        rate / raw_rate,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        peak_rss_mb()
    );
    Ok(())
}
