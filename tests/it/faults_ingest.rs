//! Ingest under faults: poison input among good traffic, a database that refuses one row of a
//! group commit, PostgreSQL backends terminated mid-ingest, and a database that refuses
//! connections for a while. Acknowledged (202) events are never lost; only the culprits fail;
//! an unreachable database is a 503 with `Retry-After`, never a 500, and recovery needs no
//! restart.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::common::*;

/// An answer: status, `Retry-After`, body.
type Answer = (StatusCode, Option<String>, Value);

/// One POST of one event.
async fn post(client: &reqwest::Client, url: &str, event: &Value) -> Answer {
    match client
        .post(url)
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(event)
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or("").to_owned());
            (status, retry, r.json().await.unwrap_or_default())
        }
        Err(e) => panic!("hookflow did not answer: {e}"),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

both_backends! {
    async fn poison_events_among_good_traffic_are_the_only_ones_refused(backend: Backend) {
        let db = TestDb::new(backend).await;
        let app = TestApp::spawn_binary_with(&db, &[]).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        // A row the database itself refuses (as an operator's constraint would): it passes the
        // edge, so it reaches a group commit beside good events.
        let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
        let refuse = match backend {
            Backend::Sqlite => vec![
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON events WHEN NEW.entity_id LIKE 'refused-%' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the database'); END",
            ],
            Backend::Postgres => vec![
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.entity_id LIKE 'refused-%' THEN RAISE EXCEPTION 'refused by the database'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
            ],
        };
        for sql in refuse {
            conn.execute_unprepared(sql).await.unwrap();
        }
        let url = app.url("/api/v1/events");
        let client = client();
        let answers: Vec<(i64, Answer)> = futures::stream::iter(0..300i64)
            .map(|n| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let event = match n % 10 {
                        3 => event("OrderChanged", shop, format!("nul-{n}\u{0}"), json!({})),
                        6 => event("OrderChanged", shop, n, json!({"Note": "a\u{0}b"})),
                        8 => event("OrderChanged", shop, format!("refused-{n}"), json!({})),
                        _ => event("OrderChanged", shop, n, json!({"OrderId": n})),
                    };
                    (n, post(&client, &url, &event).await)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut good = HashSet::new();
        for (n, (status, _, body)) in &answers {
            match n % 10 {
                3 => {
                    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
                    assert_eq!(body["error"]["field"], "entityId", "{body}");
                }
                6 => {
                    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
                    assert_eq!(body["error"]["field"], "entityData.Note", "{body}");
                }
                8 => assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR, "{body}"),
                _ => {
                    assert_eq!(*status, StatusCode::ACCEPTED, "a good event failed beside a poisoned one: {body}");
                    good.insert(body["eventId"].as_i64().unwrap());
                }
            }
        }
        assert_eq!(good.len(), 210);
        assert!(
            app.log_contains("group commit failed; committing its requests one by one"),
            "no group commit held a refused row beside good ones: the test proved nothing"
        );
        wait_until(WAIT, "every good event is delivered", async || {
            let got: HashSet<i64> = receiver.requests().iter().map(|r| r.json()["eventId"].as_i64().unwrap()).collect();
            good.is_subset(&got)
        })
        .await;
        assert_eq!(receiver.count(), 210, "nothing refused was delivered");
        let _ = conn.close().await;
    }
}

/// Runs `statement` against the test database every `every` until `stop`, from a connection of
/// its own (reconnecting when the statement killed it).
async fn keep_running(
    admin_url: String,
    statement: String,
    every: Duration,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(conn) = sea_orm::Database::connect(admin_url.as_str()).await {
            let _ = conn.execute_unprepared(&statement).await;
            let _ = conn.close().await;
        }
        tokio::time::sleep(every).await;
    }
}

fn admin_url() -> String {
    std::env::var("HOOKFLOW_TEST_POSTGRES_URL").unwrap()
}

fn db_name(db: &TestDb) -> String {
    reqwest::Url::parse(&db.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned()
}

postgres_only! {
    async fn backends_terminated_mid_ingest_lose_nothing_acknowledged(backend: Backend) {
        let db = TestDb::new(backend).await;
        let app = TestApp::start_with(&db, &[]).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        let stop = Arc::new(AtomicBool::new(false));
        let killer = tokio::spawn(keep_running(
            admin_url(),
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{}' AND pid <> pg_backend_pid()",
                db_name(&db)
            ),
            Duration::from_millis(250),
            stop.clone(),
        ));
        let acked = Arc::new(Mutex::new(HashSet::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let url = app.url("/api/v1/events");
        let client = client();
        let started = Instant::now();
        let mut n = 0i64;
        while started.elapsed() < Duration::from_secs(4) {
            let batch: Vec<_> = (0..8)
                .map(|_| {
                    n += 1;
                    let (client, url, acked, refused) = (client.clone(), url.clone(), acked.clone(), refused.clone());
                    let event = event("OrderChanged", shop, n, json!({"OrderId": n}));
                    tokio::spawn(async move {
                        let (status, retry, body) = post(&client, &url, &event).await;
                        if status == StatusCode::ACCEPTED {
                            acked.lock().unwrap().insert(body["eventId"].as_i64().unwrap());
                        } else {
                            refused.lock().unwrap().push((status, retry, body));
                        }
                    })
                })
                .collect();
            for t in batch {
                t.await.unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
        killer.await.unwrap();
        let refused = refused.lock().unwrap().clone();
        for (status, retry, body) in &refused {
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(retry.as_deref(), Some("2"), "{body}");
            assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
        }
        let acked = acked.lock().unwrap().clone();
        assert!(acked.len() >= 20, "only {} of {n} events were acknowledged ({} refused)", acked.len(), refused.len());
        // Acknowledged means committed: every one is delivered (calls whose recording was cut
        // off come back when their lease ends).
        wait_until(Duration::from_secs(60), "every acknowledged event is delivered", async || {
            let got: HashSet<i64> = receiver.requests().iter().filter_map(|r| r.json()["eventId"].as_i64()).collect();
            acked.is_subset(&got)
        })
        .await;
        // And it still works, without a restart.
        let answer = app.post_event(event("OrderChanged", shop, "after", json!({}))).await;
        assert_eq!(answer["callsQueued"], 1);
    }

    async fn a_database_refusing_connections_gives_503_and_recovers_by_itself(backend: Backend) {
        let db = TestDb::new(backend).await;
        let app = TestApp::start_with(&db, &[]).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let name = db_name(&db);
        let admin = sea_orm::Database::connect(admin_url().as_str()).await.unwrap();
        admin.execute_unprepared(&format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false")).await.unwrap();
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .await
            .unwrap();
        let url = app.url("/api/v1/events");
        let client = client();
        let asked = Instant::now();
        let (status, retry, body) = post(&client, &url, &event("OrderChanged", shop, 2, json!({}))).await;
        let took = asked.elapsed();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(retry.as_deref(), Some("2"));
        assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
        assert!(took < Duration::from_secs(10), "the 503 took {took:?}");
        // The queue page says so too, instead of a 500.
        let (status, body) = app.get_json("/api/v1/queue").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

        admin.execute_unprepared(&format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true")).await.unwrap();
        let _ = admin.close().await;
        // Back without a restart: the next events are accepted and delivered.
        let mut accepted = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let (status, _, body) = post(&client, &url, &event("OrderChanged", shop, 3, json!({}))).await;
            if status == StatusCode::ACCEPTED {
                accepted = Some(body);
                break;
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let accepted = accepted.expect("ingest recovered once the database took connections again");
        assert_eq!(accepted["callsQueued"], 1);
        let got = receiver.wait_for_requests(2, WAIT).await;
        assert_eq!(got[1].json()["eventId"], accepted["eventId"]);
    }
}
