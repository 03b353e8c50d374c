//! The event log, resends and retention against real databases: a fresh SQLite file per test,
//! and a fresh PostgreSQL database per test when `HOOKFLOW_TEST_POSTGRES_URL` is set.
//!
//! Rows are written straight into the tables, with the times and states each test needs
//! (days-old calls cannot be made by waiting).

mod common;

use common::{postgres, sqlite};
use hookflow_engine::model::{
    ActionRef, CallId, CallStatus, EventId, ShopId, Timestamp, TriggerDraft, TriggerId,
};
use hookflow_engine::store::{
    ActivityFilter, AttemptBudget, CatalogStore, EventDetail, EventFilter, EventLogStore,
    QueueStore, ResendFilter,
};
use hookflow_storage::entities::{attempt, event, queue_item, trigger_evaluation};
use hookflow_storage::DbStore;
use sea_orm::sea_query::{Expr, Func, Query};
use sea_orm::ConnectionTrait;

const DAY: i64 = 86_400_000;

macro_rules! both_backends {
    ($name:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let db = sqlite().await;
            $name(&db.store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            if let Some(db) = postgres().await {
                $name(&db.store).await;
            }
        }
    };
}

/// Inserts an event received at `received_at`.
async fn insert_event(store: &DbStore, shop: ShopId, received_at: Timestamp) -> EventId {
    let mut insert = Query::insert();
    insert
        .into_table(event::Entity)
        .columns([
            event::Column::ShopId,
            event::Column::EventType,
            event::Column::EntityId,
            event::Column::EntityData,
            event::Column::OccurredAt,
            event::Column::ReceivedAt,
        ])
        .values_panic([
            shop.0.into(),
            "OrderChanged".into(),
            "42".into(),
            r#"{"OrderId": 42, "OrderCode": "ORD-42"}"#.into(),
            received_at.0.into(),
            received_at.0.into(),
        ])
        .returning_col(event::Column::Id);
    let db = store.connection();
    let row = db
        .query_one(db.get_database_backend().build(&insert))
        .await
        .unwrap()
        .unwrap();
    EventId(row.try_get_by_index(0).unwrap())
}

/// Records that `trigger` was evaluated for `event` (and did not fire).
async fn insert_evaluation(store: &DbStore, event: EventId, trigger: TriggerId) {
    let mut insert = Query::insert();
    insert
        .into_table(trigger_evaluation::Entity)
        .columns([
            trigger_evaluation::Column::EventId,
            trigger_evaluation::Column::TriggerId,
            trigger_evaluation::Column::Matched,
            trigger_evaluation::Column::DecidedBy,
            trigger_evaluation::Column::EvaluatedAt,
        ])
        .values_panic([
            event.0.into(),
            trigger.0.into(),
            false.into(),
            "rules.all[0]".into(),
            Timestamp::now().0.into(),
        ]);
    let db = store.connection();
    db.execute(db.get_database_backend().build(&insert))
        .await
        .unwrap();
}

/// A call of `event` in `status`, created at `created` and last changed at `updated`.
struct Call {
    trigger: i64,
    status: CallStatus,
    created: Timestamp,
    updated: Timestamp,
    attempts: i32,
    last_status_code: Option<i32>,
}

impl Call {
    fn new(status: CallStatus, created: Timestamp) -> Call {
        Call {
            trigger: 1,
            status,
            created,
            updated: created,
            attempts: 0,
            last_status_code: None,
        }
    }

    fn updated(mut self, at: Timestamp) -> Call {
        self.updated = at;
        self
    }

    fn tried(mut self, attempts: i32, code: i32) -> Call {
        self.attempts = attempts;
        self.last_status_code = Some(code);
        self
    }

    fn trigger(mut self, trigger: i64) -> Call {
        self.trigger = trigger;
        self
    }
}

/// Inserts a call (and one logged attempt per attempt made).
async fn insert_call(store: &DbStore, event: EventId, shop: ShopId, call: Call) -> CallId {
    let mut insert = Query::insert();
    insert
        .into_table(queue_item::Entity)
        .columns([
            queue_item::Column::WebhookId,
            queue_item::Column::EventId,
            queue_item::Column::TriggerId,
            queue_item::Column::ActionIndex,
            queue_item::Column::ShopId,
            queue_item::Column::EventType,
            queue_item::Column::EntityId,
            queue_item::Column::Method,
            queue_item::Column::Url,
            queue_item::Column::Headers,
            queue_item::Column::Priority,
            queue_item::Column::Status,
            queue_item::Column::Attempts,
            queue_item::Column::MaxAttempts,
            queue_item::Column::NextAttemptAt,
            queue_item::Column::LastStatusCode,
            queue_item::Column::CreatedAt,
            queue_item::Column::UpdatedAt,
        ])
        .values_panic([
            format!("msg_{}", uuid::Uuid::new_v4().simple()).into(),
            event.0.into(),
            call.trigger.into(),
            0i32.into(),
            shop.0.into(),
            "OrderChanged".into(),
            "42".into(),
            "POST".into(),
            "http://receiver/hook".into(),
            "[]".into(),
            0i32.into(),
            call.status.as_str().into(),
            call.attempts.into(),
            call.attempts.max(1).into(),
            call.created.0.into(),
            call.last_status_code.into(),
            call.created.0.into(),
            call.updated.0.into(),
        ])
        .returning_col(queue_item::Column::Id);
    let db = store.connection();
    let backend = db.get_database_backend();
    let row = db.query_one(backend.build(&insert)).await.unwrap().unwrap();
    let id = CallId(row.try_get_by_index(0).unwrap());
    for n in 1..=call.attempts {
        let insert = Query::insert()
            .into_table(attempt::Entity)
            .columns([
                attempt::Column::QueueItemId,
                attempt::Column::Attempt,
                attempt::Column::StartedAt,
                attempt::Column::DurationMs,
                attempt::Column::StatusCode,
                attempt::Column::ResponseHeaders,
                attempt::Column::ResponseBody,
            ])
            .values_panic([
                id.0.into(),
                n.into(),
                call.updated.0.into(),
                5i64.into(),
                call.last_status_code.into(),
                "[]".into(),
                "answer".into(),
            ])
            .to_owned();
        db.execute(backend.build(&insert)).await.unwrap();
    }
    id
}

/// How many attempts are logged for `call`.
async fn attempts_of(store: &DbStore, call: CallId) -> i64 {
    let query = Query::select()
        .expr(Func::count(Expr::col(attempt::Column::Id)))
        .from(attempt::Entity)
        .and_where(Expr::col(attempt::Column::QueueItemId).eq(call.0))
        .to_owned();
    let db = store.connection();
    let row = db
        .query_one(db.get_database_backend().build(&query))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

async fn call_exists(store: &DbStore, call: CallId) -> bool {
    store.get_call(call).await.unwrap().is_some()
}

async fn event_exists(store: &DbStore, event: EventId) -> bool {
    store
        .get_event(event, EventDetail::default())
        .await
        .unwrap()
        .is_some()
}

/// Prunes as the engine's retention does with the default bounds (30 days for succeeded
/// calls, 90 for the others and for events), in batches of `batch`, until a batch is short.
async fn prune(store: &DbStore, now: Timestamp, batch: u32) -> (u64, u64, u64) {
    let mut totals = (0, 0, 0);
    loop {
        let n = store
            .prune_calls(&[CallStatus::Succeeded], now.plus_millis(-30 * DAY), batch)
            .await
            .unwrap();
        totals.0 += n;
        if n < u64::from(batch) {
            break;
        }
    }
    let unsuccessful = [
        CallStatus::Failed,
        CallStatus::Cancelled,
        CallStatus::Skipped,
    ];
    loop {
        let n = store
            .prune_calls(&unsuccessful, now.plus_millis(-90 * DAY), batch)
            .await
            .unwrap();
        totals.1 += n;
        if n < u64::from(batch) {
            break;
        }
    }
    loop {
        let n = store
            .prune_events(now.plus_millis(-90 * DAY), batch)
            .await
            .unwrap();
        totals.2 += n;
        if n < u64::from(batch) {
            break;
        }
    }
    totals
}

both_backends!(
    retention_prunes_only_what_is_older_than_its_bound,
    retention_prunes_only_what_is_older_than_its_bound_sqlite,
    retention_prunes_only_what_is_older_than_its_bound_postgres
);
async fn retention_prunes_only_what_is_older_than_its_bound(store: &DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap()
        .id;
    let now = Timestamp::now();
    let ago = |days: i64| now.plus_millis(-days * DAY);

    // 100 days old: its calls are all past their bounds, so the calls go, then the event.
    let ancient = insert_event(store, shop, ago(100)).await;
    let old_ok = insert_call(
        store,
        ancient,
        shop,
        Call::new(CallStatus::Succeeded, ago(100)).tried(1, 200),
    )
    .await;
    let old_failed = insert_call(
        store,
        ancient,
        shop,
        Call::new(CallStatus::Failed, ago(100)).tried(3, 500),
    )
    .await;
    let old_cancelled = insert_call(
        store,
        ancient,
        shop,
        Call::new(CallStatus::Cancelled, ago(95)),
    )
    .await;
    let old_skipped = insert_call(
        store,
        ancient,
        shop,
        Call::new(CallStatus::Skipped, ago(95)),
    )
    .await;

    // 40 days old: the succeeded call goes, the failed one stays (90 days), so does the event.
    let middle = insert_event(store, shop, ago(40)).await;
    let middle_ok = insert_call(
        store,
        middle,
        shop,
        Call::new(CallStatus::Succeeded, ago(40)).tried(2, 200),
    )
    .await;
    let middle_failed = insert_call(
        store,
        middle,
        shop,
        Call::new(CallStatus::Failed, ago(40)).tried(1, 404),
    )
    .await;

    // 100 days old but still pending (a receiver down for months): never pruned, nor its event.
    let stuck = insert_event(store, shop, ago(100)).await;
    let stuck_call =
        insert_call(store, stuck, shop, Call::new(CallStatus::Pending, ago(100))).await;

    // Created 100 days ago but resent and succeeded 10 days ago: it counts from its last change.
    let resent = insert_event(store, shop, ago(100)).await;
    let resent_call = insert_call(
        store,
        resent,
        shop,
        Call::new(CallStatus::Succeeded, ago(100))
            .updated(ago(10))
            .tried(2, 200),
    )
    .await;

    // Events that queued nothing: gone after the larger bound only.
    let quiet_old = insert_event(store, shop, ago(91)).await;
    let quiet_recent = insert_event(store, shop, ago(60)).await;

    // Recent: nothing goes.
    let fresh = insert_event(store, shop, ago(1)).await;
    let fresh_ok = insert_call(
        store,
        fresh,
        shop,
        Call::new(CallStatus::Succeeded, ago(1)).tried(1, 200),
    )
    .await;

    // A trigger's activity: evaluations of events to be pruned go with them.
    let trigger = store
        .create_trigger(
            &TriggerDraft::new("t", "OrderChanged", Vec::new()),
            Timestamp::now(),
        )
        .await
        .unwrap()
        .id;
    for evaluated in [ancient, quiet_old, quiet_recent, fresh] {
        insert_evaluation(store, evaluated, trigger).await;
    }

    // Batches of 2 so that every kind takes more than one.
    let pruned = prune(store, now, 2).await;
    // Succeeded: old_ok, middle_ok. Others: failed, cancelled, skipped of `ancient`.
    // Events: `ancient` (no calls left) and `quiet_old`.
    assert_eq!(pruned, (2, 3, 2));

    for gone in [old_ok, old_failed, old_cancelled, old_skipped, middle_ok] {
        assert!(
            !call_exists(store, gone).await,
            "call {gone} should be pruned"
        );
        assert_eq!(attempts_of(store, gone).await, 0, "attempts of call {gone}");
    }
    for kept in [middle_failed, stuck_call, resent_call, fresh_ok] {
        assert!(call_exists(store, kept).await, "call {kept} should be kept");
    }
    assert_eq!(attempts_of(store, middle_failed).await, 1);
    assert_eq!(attempts_of(store, resent_call).await, 2);
    for gone in [ancient, quiet_old] {
        assert!(
            !event_exists(store, gone).await,
            "event {gone} should be pruned"
        );
    }
    for kept in [middle, stuck, resent, quiet_recent, fresh] {
        assert!(
            event_exists(store, kept).await,
            "event {kept} should be kept"
        );
    }
    let activity = store
        .trigger_activity(
            trigger,
            &ActivityFilter {
                limit: 50,
                ..ActivityFilter::default()
            },
        )
        .await
        .unwrap();
    let events: Vec<EventId> = activity.iter().map(|a| a.event_id).collect();
    assert_eq!(
        events,
        [fresh, quiet_recent],
        "activity is kept as long as its event"
    );

    // A second run finds nothing more.
    assert_eq!(prune(store, now, 2).await, (0, 0, 0));
}

both_backends!(
    the_event_log_shows_events_newest_first_with_their_calls,
    the_event_log_shows_events_newest_first_with_their_calls_sqlite,
    the_event_log_shows_events_newest_first_with_their_calls_postgres
);
async fn the_event_log_shows_events_newest_first_with_their_calls(store: &DbStore) {
    let main = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap()
        .id;
    let other = store
        .create_shop("Other", None, Timestamp::now())
        .await
        .unwrap()
        .id;
    let t0 = Timestamp(1_800_000_000_000);
    let at = |minutes: i64| t0.plus_millis(minutes * 60_000);

    // e1: all calls succeeded. e2: one failed. e3: one pending. e4: no calls. e5: other shop.
    let e1 = insert_event(store, main, at(1)).await;
    let e1_a = insert_call(
        store,
        e1,
        main,
        Call::new(CallStatus::Succeeded, at(1)).tried(1, 200),
    )
    .await;
    let e1_b = insert_call(
        store,
        e1,
        main,
        Call::new(CallStatus::Succeeded, at(1))
            .tried(2, 204)
            .trigger(2),
    )
    .await;
    let e2 = insert_event(store, main, at(2)).await;
    insert_call(
        store,
        e2,
        main,
        Call::new(CallStatus::Succeeded, at(2)).tried(1, 200),
    )
    .await;
    let e2_failed = insert_call(
        store,
        e2,
        main,
        Call::new(CallStatus::Failed, at(2))
            .tried(3, 500)
            .trigger(2),
    )
    .await;
    let e3 = insert_event(store, main, at(3)).await;
    insert_call(store, e3, main, Call::new(CallStatus::Pending, at(3))).await;
    let e4 = insert_event(store, main, at(4)).await;
    let e5 = insert_event(store, other, at(5)).await;
    insert_call(
        store,
        e5,
        other,
        Call::new(CallStatus::Succeeded, at(5)).tried(1, 200),
    )
    .await;

    let list = |f: EventFilter| async move { store.list_events(&f).await.unwrap() };
    let ids = |events: &[hookflow_engine::store::LoggedEvent]| -> Vec<EventId> {
        events.iter().map(|e| e.id).collect()
    };
    let page = EventFilter {
        limit: 50,
        ..EventFilter::default()
    };

    let all = list(page.clone()).await;
    assert_eq!(ids(&all), vec![e5, e4, e3, e2, e1]);
    let first = &all[4];
    assert_eq!(
        (
            first.shop_id,
            first.event_type.as_str(),
            first.entity_id.as_str()
        ),
        (main, "OrderChanged", "42")
    );
    assert_eq!(first.received_at, at(1));
    assert!(first.entity.is_none(), "no payload unless asked for");
    let calls: Vec<_> = first
        .calls
        .iter()
        .map(|c| {
            (
                c.id,
                c.trigger_id,
                c.status,
                c.status_code,
                c.success,
                c.attempts,
            )
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            (
                e1_a,
                TriggerId(1),
                CallStatus::Succeeded,
                Some(200),
                true,
                1
            ),
            (
                e1_b,
                TriggerId(2),
                CallStatus::Succeeded,
                Some(204),
                true,
                2
            ),
        ]
    );
    assert!(first.calls.iter().all(|c| c.attempt_log.is_none()));
    assert!(
        all[1].calls.is_empty(),
        "an event that queued nothing has no calls"
    );

    // success=true: every call succeeded (an event without calls has nothing that failed).
    let succeeded = list(EventFilter {
        success: Some(true),
        ..page.clone()
    })
    .await;
    assert_eq!(ids(&succeeded), vec![e5, e4, e1]);
    let unsucceeded = list(EventFilter {
        success: Some(false),
        ..page.clone()
    })
    .await;
    assert_eq!(ids(&unsucceeded), vec![e3, e2]);

    // An event that matched nothing is found by having no calls.
    let without_calls = list(EventFilter {
        has_calls: Some(false),
        ..page.clone()
    })
    .await;
    assert_eq!(ids(&without_calls), vec![e4]);
    let with_calls = list(EventFilter {
        has_calls: Some(true),
        ..page.clone()
    })
    .await;
    assert_eq!(ids(&with_calls), vec![e5, e3, e2, e1]);
    let by_type = |t: &str| EventFilter {
        event_type: Some(t.into()),
        ..page.clone()
    };
    assert_eq!(ids(&list(by_type("OrderChanged")).await).len(), 5);
    assert!(list(by_type("ProductCreated")).await.is_empty());
    let by_entity = |e: &str| EventFilter {
        entity_id: Some(e.into()),
        shop_id: Some(main),
        ..page.clone()
    };
    assert_eq!(ids(&list(by_entity("42")).await), vec![e4, e3, e2, e1]);
    assert!(list(by_entity("43")).await.is_empty());

    let in_shop = list(EventFilter {
        shop_id: Some(other),
        ..page.clone()
    })
    .await;
    assert_eq!(ids(&in_shop), vec![e5]);
    let window = list(EventFilter {
        from: Some(at(2)),
        to: Some(at(4)),
        ..page.clone()
    })
    .await;
    assert_eq!(ids(&window), vec![e3, e2]);

    // Pages by cursor.
    let head = list(EventFilter {
        limit: 2,
        ..page.clone()
    })
    .await;
    assert_eq!(ids(&head), vec![e5, e4]);
    let rest = list(EventFilter {
        limit: 2,
        before: Some(e4),
        ..page.clone()
    })
    .await;
    assert_eq!(ids(&rest), vec![e3, e2]);

    // With payload and attempts.
    let detailed = store
        .get_event(
            e2,
            EventDetail {
                payload: true,
                attempts: true,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        detailed.entity.as_ref().unwrap()["OrderCode"],
        serde_json::json!("ORD-42")
    );
    let failed = detailed.calls.iter().find(|c| c.id == e2_failed).unwrap();
    assert!(!failed.success);
    let log = failed.attempt_log.as_ref().unwrap();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|a| a.status_code == Some(500)));
    assert!(store
        .get_event(EventId(999_999), EventDetail::default())
        .await
        .unwrap()
        .is_none());
}

both_backends!(
    resending_queues_calls_again_but_leaves_calls_in_flight_alone,
    resending_queues_calls_again_but_leaves_calls_in_flight_alone_sqlite,
    resending_queues_calls_again_but_leaves_calls_in_flight_alone_postgres
);
async fn resending_queues_calls_again_but_leaves_calls_in_flight_alone(store: &DbStore) {
    let shop = store
        .create_shop("Main", None, Timestamp::now())
        .await
        .unwrap()
        .id;
    let t0 = Timestamp(1_800_000_000_000);
    let e1 = insert_event(store, shop, t0).await;
    let ok = insert_call(
        store,
        e1,
        shop,
        Call::new(CallStatus::Succeeded, t0).tried(1, 200),
    )
    .await;
    let failed = insert_call(
        store,
        e1,
        shop,
        Call::new(CallStatus::Failed, t0).tried(3, 500).trigger(2),
    )
    .await;
    let flying = insert_call(store, e1, shop, Call::new(CallStatus::InFlight, t0)).await;

    // Each call gets its own action's budget: trigger 2's policy allows 3 attempts, the
    // rest the default 4.
    let now = t0.plus_millis(DAY);
    let budget = AttemptBudget {
        default: 4,
        by_action: vec![(ActionRef::new(TriggerId(2), 0), 3)],
    };
    assert_eq!(store.resend_event(e1, &budget, now).await.unwrap(), Some(2));
    for (id, fresh) in [(ok, 4), (failed, 3)] {
        let (item, _) = store.get_call(id).await.unwrap().unwrap();
        assert_eq!(item.status, CallStatus::Pending, "call {id}");
        assert_eq!(item.next_attempt_at, now);
        assert_eq!(
            item.max_attempts,
            item.attempts + fresh,
            "a fresh budget for call {id}"
        );
    }
    let (item, _) = store.get_call(flying).await.unwrap().unwrap();
    assert_eq!(item.status, CallStatus::InFlight);
    assert_eq!(
        store
            .resend_event(EventId(999_999), &AttemptBudget::uniform(4), now)
            .await
            .unwrap(),
        None
    );
    let quiet = insert_event(store, shop, t0).await;
    assert_eq!(
        store
            .resend_event(quiet, &AttemptBudget::uniform(4), now)
            .await
            .unwrap(),
        Some(0)
    );

    // In bulk: by status, trigger, event type and creation time, in one statement.
    let e2 = insert_event(store, shop, t0).await;
    let early = insert_call(
        store,
        e2,
        shop,
        Call::new(CallStatus::Failed, t0).tried(1, 500).trigger(7),
    )
    .await;
    let late = insert_call(
        store,
        e2,
        shop,
        Call::new(CallStatus::Failed, t0.plus_millis(60_000))
            .tried(1, 500)
            .trigger(7),
    )
    .await;
    let other_trigger = insert_call(
        store,
        e2,
        shop,
        Call::new(CallStatus::Failed, t0).tried(1, 500).trigger(8),
    )
    .await;
    let cancelled = insert_call(
        store,
        e2,
        shop,
        Call::new(CallStatus::Cancelled, t0).trigger(7),
    )
    .await;
    let filter = ResendFilter {
        status: CallStatus::Failed,
        trigger_id: Some(TriggerId(7)),
        event_type: Some("OrderChanged".into()),
        from: Some(t0),
        to: Some(t0.plus_millis(30_000)),
        shop_id: Some(shop),
        shops: Some(vec![shop]),
    };
    assert_eq!(
        store
            .resend_calls(&filter, &AttemptBudget::uniform(2), now)
            .await
            .unwrap(),
        1
    );
    let status = |id: CallId| async move { store.get_call(id).await.unwrap().unwrap().0.status };
    assert_eq!(status(early).await, CallStatus::Pending);
    assert_eq!(status(late).await, CallStatus::Failed);
    assert_eq!(status(other_trigger).await, CallStatus::Failed);
    assert_eq!(status(cancelled).await, CallStatus::Cancelled);

    let cancelled_ones = ResendFilter {
        status: CallStatus::Cancelled,
        trigger_id: None,
        event_type: None,
        from: None,
        to: None,
        shop_id: None,
        shops: None,
    };
    // A caller who sees other shops only resends nothing here.
    let out_of_scope = ResendFilter {
        shops: Some(vec![ShopId(shop.0 + 1000)]),
        ..cancelled_ones.clone()
    };
    assert_eq!(
        store
            .resend_calls(&out_of_scope, &AttemptBudget::uniform(2), now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .resend_calls(&cancelled_ones, &AttemptBudget::uniform(2), now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(status(cancelled).await, CallStatus::Pending);
    let unknown_type = ResendFilter {
        event_type: Some("ShipmentShipped".into()),
        ..filter
    };
    assert_eq!(
        store
            .resend_calls(&unknown_type, &AttemptBudget::uniform(2), now)
            .await
            .unwrap(),
        0
    );
}
