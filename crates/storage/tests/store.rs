//! The storage layer against real databases: a fresh SQLite file per test, and a fresh
//! PostgreSQL database per test when `HOOKFLOW_TEST_POSTGRES_URL` is set.

mod common;

use common::{postgres, sqlite};
use std::collections::HashSet;
use std::sync::Arc;

use hookflow_engine::model::{
    ActionRef, Attempt, CallId, CallStatus, ClaimedCall, Completion, Method, NewCall, NewEvent,
    Next, QueueFilter, ShopId, Timestamp, TriggerId,
};
use hookflow_engine::store::{
    AttemptBudget, CancelOutcome, CatalogStore, ClaimFilter, EventFilter, EventLogStore, Handoff,
    IngestRejection, PlannedEvent, Planner, QueueStore, RetryOutcome,
};
use hookflow_storage::DbStore;
use sea_orm::ConnectionTrait;

const NO_HANDOFF: Handoff = Handoff {
    max_calls: 0,
    lease_until: Timestamp(0),
    hosts: None,
};

/// Queues one call per event; the priority is taken from `entity.priority`.
struct OneCallPerEvent;

impl Planner for OneCallPerEvent {
    fn plan(
        &self,
        p: &PlannedEvent<'_>,
        out: &mut Vec<NewCall>,
        _evaluations: &mut Vec<hookflow_engine::store::Evaluation>,
    ) {
        let priority = p
            .event
            .entity
            .get("priority")
            .and_then(|v| v.as_i64())
            .unwrap_or(0) as i32;
        out.push(NewCall {
            webhook_id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            event_id: p.id,
            action: ActionRef::new(TriggerId(1), 0),
            shop_id: p.event.shop_id,
            event_type: p.event.event_type.clone(),
            entity_id: p.event.entity_id.clone(),
            method: Method::Post,
            url: "http://receiver/hook".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(format!("{{\"event\": {}}}", p.id)),
            priority,
            status: CallStatus::Pending,
            max_attempts: 3,
            last_error: None,
            unique: false,
            ordered: false,
            target_host: "receiver:80".into(),
            coalesced: 0,
        });
    }
}

macro_rules! both_backends {
    ($name:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let db = sqlite().await;
            $name(db.store.clone()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            if let Some(db) = postgres().await {
                $name(db.store.clone()).await;
            }
        }
    };
}

fn event(shop: i64, entity: &str, key: Option<&str>, priority: i64) -> NewEvent {
    NewEvent {
        event_type: "OrderChanged".into(),
        shop_id: ShopId(shop),
        entity_id: entity.into(),
        entity: serde_json::json!({"OrderId": 1, "priority": priority})
            .as_object()
            .unwrap()
            .clone(),
        previous: None,
        occurred_at: Timestamp(1_000),
        idempotency_key: key.map(Into::into),
    }
}

fn attempt(n: i32, status: Option<i32>) -> Attempt {
    Attempt {
        attempt: n,
        started_at: Timestamp::now(),
        duration_ms: 3,
        status_code: status,
        request_headers: vec![("webhook-id".into(), "msg_1".into())],
        response_headers: vec![("x-test".into(), "1".into())],
        response_body: "ok".into(),
        error: None,
    }
}

both_backends!(
    migrations_are_idempotent,
    migrations_are_idempotent_sqlite,
    migrations_are_idempotent_postgres
);
async fn migrations_are_idempotent(store: DbStore) {
    store.migrate().await.unwrap();
    assert!(store.list_shops().await.unwrap().is_empty());
}

both_backends!(
    ingest_commits_events_with_their_calls_and_rejects_unknown_shops,
    ingest_commits_events_with_their_calls_and_rejects_unknown_shops_sqlite,
    ingest_commits_events_with_their_calls_and_rejects_unknown_shops_postgres
);
async fn ingest_commits_events_with_their_calls_and_rejects_unknown_shops(store: DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    let requests = vec![
        vec![
            event(shop.id.0, "a", None, 0),
            event(shop.id.0, "b", None, 0),
        ],
        vec![event(shop.id.0, "c", None, 0), event(999, "d", None, 0)],
        vec![event(shop.id.0, "e", None, 0)],
    ];
    let results = store
        .ingest(&requests, &OneCallPerEvent, NO_HANDOFF, Timestamp::now())
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits")
        .results;
    let first = results[0].as_ref().unwrap();
    assert_eq!(first.len(), 2);
    assert!(first[0].event_id < first[1].event_id);
    assert_eq!(first[0].calls_queued, 1);
    assert_eq!(results[1], Err(IngestRejection::UnknownShop(ShopId(999))));
    assert_eq!(results[2].as_ref().unwrap().len(), 1);
    // Only the accepted requests' calls exist, and each body names its own event.
    let items = store
        .list_queue(&QueueFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(items.len(), 3);
    for item in &items {
        assert_eq!(
            item.body.as_deref(),
            Some(format!("{{\"event\": {}}}", item.event_id).as_str())
        );
        assert_eq!(item.status, CallStatus::Pending);
    }
    let entities: HashSet<_> = items.iter().map(|i| i.entity_id.as_str()).collect();
    assert_eq!(entities, HashSet::from(["a", "b", "e"]));
}

both_backends!(
    a_repeated_idempotency_key_returns_the_first_result,
    a_repeated_idempotency_key_returns_the_first_result_sqlite,
    a_repeated_idempotency_key_returns_the_first_result_postgres
);
async fn a_repeated_idempotency_key_returns_the_first_result(store: DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    let other = store
        .create_shop("Other", None, Timestamp::now())
        .await
        .unwrap();
    let first = store
        .ingest(
            &[vec![event(shop.id.0, "a", Some("k1"), 0)]],
            &OneCallPerEvent,
            NO_HANDOFF,
            Timestamp::now(),
        )
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits")
        .results;
    let first = first[0].as_ref().unwrap()[0];
    // Again, twice in one batch, and the same key in another shop.
    let again = store
        .ingest(
            &[
                vec![event(shop.id.0, "a", Some("k1"), 0)],
                vec![
                    event(other.id.0, "a", Some("k1"), 0),
                    event(other.id.0, "a", Some("k1"), 0),
                ],
            ],
            &OneCallPerEvent,
            NO_HANDOFF,
            Timestamp::now(),
        )
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits")
        .results;
    let replay = again[0].as_ref().unwrap()[0];
    assert!(replay.duplicate);
    assert_eq!(replay.event_id, first.event_id);
    assert_eq!(replay.calls_queued, 1);
    let other_shop = again[1].as_ref().unwrap();
    assert!(!other_shop[0].duplicate);
    assert_ne!(other_shop[0].event_id, first.event_id);
    assert!(other_shop[1].duplicate);
    assert_eq!(other_shop[1].event_id, other_shop[0].event_id);
    let items = store
        .list_queue(&QueueFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
}

both_backends!(
    claims_go_highest_priority_first_and_respect_leases,
    claims_go_highest_priority_first_and_respect_leases_sqlite,
    claims_go_highest_priority_first_and_respect_leases_postgres
);
async fn claims_go_highest_priority_first_and_respect_leases(store: DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    let batch = vec![(0..6)
        .map(|i| event(shop.id.0, &format!("e{i}"), None, i % 3))
        .collect::<Vec<_>>()];
    store
        .ingest(&batch, &OneCallPerEvent, NO_HANDOFF, Timestamp::now())
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits");
    let now = Timestamp::now().plus_millis(1);
    let first = store
        .claim(now, now.plus_millis(60_000), 2, &ClaimFilter::default())
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let items = store
        .list_queue(&QueueFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    for call in &first {
        let item = items.iter().find(|i| i.id == call.id).unwrap();
        assert_eq!(item.priority, 2, "highest priority is claimed first");
        assert_eq!(item.status, CallStatus::InFlight);
    }
    // Leased calls are not claimed again; the rest are.
    let rest = store
        .claim(now, now.plus_millis(60_000), 100, &ClaimFilter::default())
        .await
        .unwrap();
    assert_eq!(rest.len(), 4);
    assert!(store
        .claim(now, now.plus_millis(60_000), 100, &ClaimFilter::default())
        .await
        .unwrap()
        .is_empty());
    // Nothing has expired yet; once the leases run out every call is back.
    assert_eq!(store.release_expired_leases(now).await.unwrap(), 0);
    assert_eq!(
        store
            .release_expired_leases(now.plus_millis(61_000))
            .await
            .unwrap(),
        6
    );
    assert_eq!(
        store
            .claim(
                now.plus_millis(61_000),
                now.plus_millis(120_000),
                100,
                &ClaimFilter::default()
            )
            .await
            .unwrap()
            .len(),
        6
    );
}

both_backends!(
    a_lost_lease_is_recovered_and_its_late_outcome_is_not_recorded,
    a_lost_lease_is_recovered_and_its_late_outcome_is_not_recorded_sqlite,
    a_lost_lease_is_recovered_and_its_late_outcome_is_not_recorded_postgres
);
async fn a_lost_lease_is_recovered_and_its_late_outcome_is_not_recorded(store: DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    let batch = vec![vec![event(shop.id.0, "e", None, 0)]];
    store
        .ingest(&batch, &OneCallPerEvent, NO_HANDOFF, Timestamp::now())
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits");
    let now = Timestamp::now().plus_millis(1);
    let first = store
        .claim(now, now.plus_millis(1_000), 10, &ClaimFilter::default())
        .await
        .unwrap()
        .remove(0);
    // The lease runs out (the worker hangs or died): the call is due at once, the attempt
    // counted and logged as interrupted, and another worker claims it.
    let later = now.plus_millis(2_000);
    assert_eq!(store.release_expired_leases(later).await.unwrap(), 1);
    let (item, log) = store.get_call(first.id).await.unwrap().unwrap();
    assert_eq!((item.status, item.attempts), (CallStatus::Pending, 1));
    assert!(item.next_attempt_at <= later);
    assert_eq!(log.len(), 1);
    assert!(log[0].error.as_deref().unwrap().starts_with("interrupted"));
    let second = store
        .claim(
            later,
            later.plus_millis(60_000),
            10,
            &ClaimFilter::default(),
        )
        .await
        .unwrap()
        .remove(0);
    assert_eq!((second.id, second.attempts), (first.id, 1));
    assert_eq!(second.webhook_id, first.webhook_id);
    let done = |call: &ClaimedCall, status: i32| Completion {
        action: ActionRef::new(TriggerId(1), 0),
        deactivate_after: None,
        deactivate_now: false,
        call: call.id,
        lease_until: call.lease_until,
        attempt: attempt(call.attempts + 1, Some(status)),
        next: Next::Failed,
    };
    // The first worker's late outcome does not touch the call the second one holds.
    store.complete(&[done(&first, 404)], later).await.unwrap();
    let (item, _) = store.get_call(first.id).await.unwrap().unwrap();
    assert_eq!(item.status, CallStatus::InFlight);
    store
        .complete(
            &[Completion {
                next: Next::Succeeded,
                ..done(&second, 200)
            }],
            later,
        )
        .await
        .unwrap();
    let (item, _) = store.get_call(first.id).await.unwrap().unwrap();
    assert_eq!((item.status, item.attempts), (CallStatus::Succeeded, 2));
}

both_backends!(
    completions_record_attempts_and_move_calls_on,
    completions_record_attempts_and_move_calls_on_sqlite,
    completions_record_attempts_and_move_calls_on_postgres
);
async fn completions_record_attempts_and_move_calls_on(store: DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    let batch = vec![(0..3)
        .map(|i| event(shop.id.0, &format!("e{i}"), None, 0))
        .collect::<Vec<_>>()];
    store
        .ingest(&batch, &OneCallPerEvent, NO_HANDOFF, Timestamp::now())
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits");
    let now = Timestamp::now().plus_millis(1);
    let calls = store
        .claim(now, now.plus_millis(60_000), 10, &ClaimFilter::default())
        .await
        .unwrap();
    assert_eq!(calls.len(), 3);
    let retry_at = now.plus_millis(5_000);
    let done = vec![
        Completion {
            action: ActionRef::new(TriggerId(1), 0),
            deactivate_after: None,
            deactivate_now: false,
            call: calls[0].id,
            lease_until: calls[0].lease_until,
            attempt: attempt(1, Some(200)),
            next: Next::Succeeded,
        },
        Completion {
            action: ActionRef::new(TriggerId(1), 0),
            deactivate_after: None,
            deactivate_now: false,
            call: calls[1].id,
            lease_until: calls[1].lease_until,
            attempt: attempt(1, Some(503)),
            next: Next::RetryAt(retry_at),
        },
        Completion {
            action: ActionRef::new(TriggerId(1), 0),
            deactivate_after: None,
            deactivate_now: false,
            call: calls[2].id,
            lease_until: calls[2].lease_until,
            attempt: attempt(1, Some(404)),
            next: Next::Failed,
        },
    ];
    store.complete(&done, now).await.unwrap();
    let (ok, log) = store.get_call(calls[0].id).await.unwrap().unwrap();
    assert_eq!(
        (ok.status, ok.attempts, ok.last_status_code),
        (CallStatus::Succeeded, 1, Some(200))
    );
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].response_headers,
        vec![("x-test".to_string(), "1".to_string())]
    );
    let (retry, _) = store.get_call(calls[1].id).await.unwrap().unwrap();
    assert_eq!(
        (retry.status, retry.attempts, retry.next_attempt_at),
        (CallStatus::Pending, 1, retry_at)
    );
    let (failed, _) = store.get_call(calls[2].id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.last_error.as_deref()),
        (CallStatus::Failed, Some("HTTP 404"))
    );
    // The retry is not due yet; at its time it is claimed again with its attempt count.
    assert!(store
        .claim(now, now.plus_millis(60_000), 10, &ClaimFilter::default())
        .await
        .unwrap()
        .is_empty());
    let again = store
        .claim(
            retry_at,
            retry_at.plus_millis(60_000),
            10,
            &ClaimFilter::default(),
        )
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    // Manual retry resends the succeeded call with a fresh budget; cancel stops the pending one.
    match store
        .retry_call(calls[0].id, &AttemptBudget::uniform(3), now)
        .await
        .unwrap()
    {
        RetryOutcome::Queued(item) => {
            assert_eq!((item.status, item.max_attempts), (CallStatus::Pending, 4))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        store
            .retry_call(calls[1].id, &AttemptBudget::uniform(3), now)
            .await
            .unwrap(),
        RetryOutcome::InFlight(_)
    ));
    assert!(matches!(
        store.cancel_call(calls[0].id, now).await.unwrap(),
        CancelOutcome::Cancelled(_)
    ));
    assert!(matches!(
        store.cancel_call(calls[2].id, now).await.unwrap(),
        CancelOutcome::Finished(_)
    ));
    assert!(matches!(
        store.cancel_call(CallId(9999), now).await.unwrap(),
        CancelOutcome::NotFound
    ));
}

/// PostgreSQL only: many concurrent claimers never get the same call (SKIP LOCKED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_share_a_call_postgres() {
    let Some(db) = postgres().await else { return };
    let store = Arc::new(db.store.clone());
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    let batch = vec![(0..500)
        .map(|i| event(shop.id.0, &format!("e{i}"), None, 0))
        .collect::<Vec<_>>()];
    store
        .ingest(&batch, &OneCallPerEvent, NO_HANDOFF, Timestamp::now())
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits");
    let now = Timestamp::now().plus_millis(1);
    let claimers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim(now, now.plus_millis(60_000), 7, &ClaimFilter::default())
                    .await
                    .unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| c.id));
            }
        })
    });
    let all: Vec<_> = futures::future::join_all(claimers)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 500);
    assert_eq!(unique.len(), 500);
}

both_backends!(
    handed_off_calls_are_stored_claimed_and_returned,
    handed_off_calls_are_stored_claimed_and_returned_sqlite,
    handed_off_calls_are_stored_claimed_and_returned_postgres
);
async fn handed_off_calls_are_stored_claimed_and_returned(store: DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    let batch = vec![(0..5)
        .map(|i| event(shop.id.0, &format!("e{i}"), None, 0))
        .collect::<Vec<_>>()];
    let lease_until = Timestamp::now().plus_millis(60_000);
    let outcome = store
        .ingest(
            &batch,
            &OneCallPerEvent,
            Handoff {
                max_calls: 3,
                lease_until,
                hosts: None,
            },
            Timestamp::now(),
        )
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits");
    assert_eq!(outcome.handed_off.len(), 3);
    let items = store
        .list_queue(&QueueFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    for call in &outcome.handed_off {
        let item = items.iter().find(|i| i.id == call.id).unwrap();
        assert_eq!(item.status, CallStatus::InFlight);
        assert_eq!(item.webhook_id, call.webhook_id);
        assert_eq!(
            item.body, call.body,
            "the handed-over call is the stored one"
        );
    }
    // The other two wait in the queue; the handed-over ones are not claimed again.
    let now = Timestamp::now().plus_millis(1);
    assert_eq!(
        store
            .claim(now, now.plus_millis(1_000), 100, &ClaimFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
    // Their lease protects them like a claim's would.
    assert_eq!(
        store
            .release_expired_leases(lease_until.plus_millis(1))
            .await
            .unwrap(),
        5
    );
}

both_backends!(
    concurrent_failures_add_to_one_alert,
    concurrent_failures_add_to_one_alert_sqlite,
    concurrent_failures_add_to_one_alert_postgres
);
async fn concurrent_failures_add_to_one_alert(store: DbStore) {
    let store = Arc::new(store);
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    let batch = vec![(0..8)
        .map(|i| event(shop.id.0, &format!("e{i}"), None, 0))
        .collect::<Vec<_>>()];
    store
        .ingest(&batch, &OneCallPerEvent, NO_HANDOFF, Timestamp::now())
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits");
    let now = Timestamp::now().plus_millis(1);
    let calls = store
        .claim(now, now.plus_millis(60_000), 100, &ClaimFilter::default())
        .await
        .unwrap();
    assert_eq!(calls.len(), 8);
    // Eight recorders record one failure each, at the same time.
    let recorders = calls.into_iter().map(|call| {
        let store = store.clone();
        tokio::spawn(async move {
            let done = Completion {
                action: ActionRef::new(TriggerId(1), 0),
                deactivate_after: None,
                deactivate_now: false,
                call: call.id,
                lease_until: call.lease_until,
                attempt: attempt(1, Some(500)),
                next: Next::Failed,
            };
            store.complete(&[done], Timestamp::now()).await.unwrap()
        })
    });
    for outcome in futures::future::join_all(recorders).await {
        assert_eq!(outcome.unwrap().failed.len(), 1);
    }
    let alerts = store.list_alerts(Some(false)).await.unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].count, 8);
    // Acknowledged, the next failure opens a new one.
    store
        .ack_alert(alerts[0].id, Timestamp::now())
        .await
        .unwrap();
    assert!(store.list_alerts(Some(false)).await.unwrap().is_empty());
}

both_backends!(
    time_ranges_list_exactly_the_calls_made_in_them_whatever_the_plan,
    time_ranges_list_exactly_the_calls_made_in_them_whatever_the_plan_sqlite,
    time_ranges_list_exactly_the_calls_made_in_them_whatever_the_plan_postgres
);
/// SQLite chooses between two plans for a `from`/`to` listing by estimating the range from
/// the ids at its edges (see `queue::list`); whichever it takes, the answer is the same.
/// Here ids do not follow creation time everywhere: the last batch was made "earlier".
async fn time_ranges_list_exactly_the_calls_made_in_them_whatever_the_plan(store: DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    // Six batches of 600 calls, made at t = 1..=6 seconds, then one more at t = 2.5 s.
    let at = |tenths: i64| Timestamp(1_000_000 + tenths * 100);
    let mut made = Vec::new(); // (id, created_at)
    for (n, tenths) in [10, 20, 30, 40, 50, 60, 25].into_iter().enumerate() {
        let batch: Vec<_> = (0..600)
            .map(|i| event(shop.id.0, &format!("{n}-{i}"), None, 0))
            .collect();
        store
            .ingest(&[batch], &OneCallPerEvent, NO_HANDOFF, at(tenths))
            .await
            .unwrap()
            .committed()
            .expect("no planner generation: always commits");
        let all = store
            .list_queue(&QueueFilter {
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap();
        for item in all {
            if !made.iter().any(|(id, _)| *id == item.id) {
                made.push((item.id, at(tenths)));
            }
        }
    }
    assert_eq!(made.len(), 4200);
    made.sort_by_key(|m| std::cmp::Reverse(m.0));
    for (from, to, before) in [
        (Some(at(15)), Some(at(55)), None), // wide
        (Some(at(5)), Some(at(65)), None),  // everything
        (Some(at(45)), Some(at(55)), None), // one batch, newest but one
        (Some(at(5)), Some(at(15)), None),  // the oldest batch
        (Some(at(22)), Some(at(28)), None), // only the late "earlier" batch
        (Some(at(15)), None, None),
        (None, Some(at(35)), None),
        (Some(at(5)), Some(at(65)), Some(made[1000].0)),
    ] {
        let expected: Vec<_> = made
            .iter()
            .filter(|(id, t)| {
                from.is_none_or(|f| *t >= f)
                    && to.is_none_or(|u| *t < u)
                    && before.is_none_or(|b| *id < b)
            })
            .map(|(id, _)| *id)
            .take(50)
            .collect();
        let listed: Vec<_> = store
            .list_queue(&QueueFilter {
                from,
                to,
                before,
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(
            listed, expected,
            "from {from:?} to {to:?} before {before:?}"
        );
    }
}

// ---- closed columns: a stored value that is none of the known ones is an error ----

/// Queues one call, pending and due.
async fn one_call(store: &DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap();
    store
        .ingest(
            &[vec![event(shop.id.0, "a", None, 0)]],
            &OneCallPerEvent,
            NO_HANDOFF,
            Timestamp::now(),
        )
        .await
        .unwrap()
        .committed()
        .expect("no planner generation: always commits");
}

/// Writes `sql` as a hand on the database would, around hookflow.
async fn corrupt(store: &DbStore, sql: &str) {
    store.connection().execute_unprepared(sql).await.unwrap();
}

/// The error names the table, the column and the value found.
#[track_caller]
fn names_corruption<T: std::fmt::Debug>(
    result: Result<T, hookflow_engine::store::StoreError>,
    column: &str,
    value: &str,
) {
    let err = result.expect_err("a corrupt value must not read as a known one");
    assert!(
        err.message.contains(column) && err.message.contains(value),
        "{err}"
    );
    assert!(!err.unavailable, "{err:?}");
}

both_backends!(
    an_unknown_call_status_is_an_error_naming_it,
    an_unknown_call_status_is_an_error_naming_it_sqlite,
    an_unknown_call_status_is_an_error_naming_it_postgres
);
async fn an_unknown_call_status_is_an_error_naming_it(store: DbStore) {
    one_call(&store).await;
    corrupt(&store, "UPDATE queue_items SET status = 'paused'").await;
    let all = QueueFilter {
        limit: 10,
        ..Default::default()
    };
    names_corruption(store.list_queue(&all).await, "queue_items.status", "paused");
    names_corruption(
        store.get_call(CallId(1)).await,
        "queue_items.status",
        "paused",
    );
    let events = EventFilter {
        limit: 10,
        ..Default::default()
    };
    names_corruption(
        store.list_events(&events).await,
        "queue_items.status",
        "paused",
    );
}

both_backends!(
    an_unknown_call_method_is_an_error_not_a_post,
    an_unknown_call_method_is_an_error_not_a_post_sqlite,
    an_unknown_call_method_is_an_error_not_a_post_postgres
);
async fn an_unknown_call_method_is_an_error_not_a_post(store: DbStore) {
    one_call(&store).await;
    corrupt(&store, "UPDATE queue_items SET method = 'PATCH'").await;
    let all = QueueFilter {
        limit: 10,
        ..Default::default()
    };
    names_corruption(store.list_queue(&all).await, "queue_items.method", "PATCH");
    let now = Timestamp::now().plus_millis(1);
    names_corruption(
        store
            .claim(now, now.plus_millis(60_000), 10, &ClaimFilter::default())
            .await,
        "queue_items.method",
        "PATCH",
    );
}

both_backends!(
    an_unknown_alert_kind_is_an_error_naming_it,
    an_unknown_alert_kind_is_an_error_naming_it_sqlite,
    an_unknown_alert_kind_is_an_error_naming_it_postgres
);
async fn an_unknown_alert_kind_is_an_error_naming_it(store: DbStore) {
    one_call(&store).await;
    let now = Timestamp::now().plus_millis(1);
    let call = store
        .claim(now, now.plus_millis(60_000), 10, &ClaimFilter::default())
        .await
        .unwrap()
        .remove(0);
    let failed = Completion {
        call: call.id,
        action: call.action,
        deactivate_after: None,
        deactivate_now: false,
        lease_until: call.lease_until,
        attempt: attempt(1, Some(500)),
        next: Next::Failed,
    };
    store.complete(&[failed], Timestamp::now()).await.unwrap();
    let alerts = store.list_alerts(None).await.unwrap();
    assert_eq!(
        alerts[0].kind,
        hookflow_engine::notify::NoticeKind::CallFailed
    );
    corrupt(&store, "UPDATE alerts SET kind = 'callExploded'").await;
    names_corruption(store.list_alerts(None).await, "alerts.kind", "callExploded");
}

both_backends!(
    a_negative_action_index_is_an_error_naming_it,
    a_negative_action_index_is_an_error_naming_it_sqlite,
    a_negative_action_index_is_an_error_naming_it_postgres
);
async fn a_negative_action_index_is_an_error_naming_it(store: DbStore) {
    corrupt(
        &store,
        "INSERT INTO action_states (trigger_id, action_index, consecutive_failures, \
         deactivated_at, deactivated_reason) VALUES (1, -1, 0, 5, 'by hand')",
    )
    .await;
    names_corruption(
        store.deactivated_actions().await,
        "action_states.action_index",
        "-1",
    );
}
