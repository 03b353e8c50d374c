//! The ingest transaction: events and the calls planned from them, committed together.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use hookflow_engine::model::{
    ActionRef, CallId, CallStatus, ClaimedCall, EventId, Ingested, NewCall, NewEvent, Shop, ShopId,
    Timestamp,
};
use hookflow_engine::queue::{plan_ingest, FreshCall, IngestPlan, Placement, Unfinished};
use hookflow_engine::store::{
    Evaluation, Handoff, IngestOutcome, IngestRejection, IngestResult, PlannedEvent, Planner,
    StoreError,
};
use sea_orm::sea_query::{Alias, Expr, Func, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};

use crate::entities::{event, queue_item, shop, trigger_evaluation};
use crate::{action_ref, db_err, json_err};

/// Rows per multi-row INSERT: stays under SQLite's 32 766 bound parameters (events have 8
/// columns, calls 24, evaluations 5).
const EVENT_CHUNK: usize = 1000;
const CALL_CHUNK: usize = 500;
const EVALUATION_CHUNK: usize = 2000;

/// The columns a new call is inserted with, in the order `insert_calls` gives the values.
const CALL_COLUMNS: [queue_item::Column; 24] = [
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
    queue_item::Column::Body,
    queue_item::Column::Priority,
    queue_item::Column::Status,
    queue_item::Column::Attempts,
    queue_item::Column::MaxAttempts,
    queue_item::Column::NextAttemptAt,
    queue_item::Column::LastError,
    queue_item::Column::LeaseUntil,
    queue_item::Column::Coalesced,
    queue_item::Column::TargetHost,
    queue_item::Column::Ordered,
    queue_item::Column::UniqueItem,
    queue_item::Column::CreatedAt,
    queue_item::Column::UpdatedAt,
];

/// Where an event of a request ends up.
enum Slot {
    /// Index into the fresh events inserted by this batch.
    Fresh(usize),
    /// The same key as a fresh event earlier in this batch.
    SameAsFresh(usize),
    /// The key was committed before.
    Known(EventId),
}

/// A request's events placed, or the request refused.
type RequestSlots = Result<Vec<Slot>, IngestRejection>;

pub(crate) async fn ingest(
    db: &DatabaseConnection,
    shop_cache: &RwLock<HashMap<ShopId, Shop>>,
    requests: &[Vec<NewEvent>],
    planner: &dyn Planner,
    handoff: Handoff,
    now: Timestamp,
) -> Result<IngestResult, StoreError> {
    // Reads first, outside the transaction: on SQLite a transaction that reads before it writes
    // can fail to upgrade its lock. Shops are never deleted, and idempotency keys are serialised
    // by the single ingest task of this process (and by the unique index across processes).
    let shops = shops_of(db, shop_cache, requests).await?;
    let known = known_keys(db, requests).await?;
    let (fresh, plans) = slot_events(requests, &shops, &known);

    let txn = db.begin().await.map_err(db_err)?;
    let backend = txn.get_database_backend();
    // Match against the triggers as committed: if they moved on since the planner was built,
    // write nothing and let the engine reload. On PostgreSQL the share lock keeps a change from
    // committing until this transaction has (see `generation`). (On SQLite the write turn keeps
    // every other writer out, so reading before writing cannot fail to upgrade.)
    if let Some(ours) = planner.generation() {
        let committed = crate::generation::read(&txn, true).await?;
        if committed != ours {
            txn.rollback().await.map_err(db_err)?;
            return Ok(IngestResult::TriggersMoved {
                generation: committed,
            });
        }
    }
    let event_ids = insert_events(&txn, backend, &fresh, now).await?;
    // Match and render inside the transaction: the calls commit with their event or not at all.
    let (mut calls, queued_per_event, evaluations) =
        plan_calls(planner, &fresh, &event_ids, &shops);
    insert_evaluations(&txn, backend, &evaluations, now).await?;
    // Where each call goes (unique items, order): the queue policy decides.
    let plan = arrange(&txn, backend, &calls).await?;
    let (blocked, coalesced) = place(&mut calls, &plan);
    let blocked_calls = blocked.iter().filter(|b| **b).count() as u64;
    let handed = hand_over(&mut calls, &blocked, &handoff);
    // Ids are needed for the calls handed over and for links to superseding calls.
    let need_ids = handed > 0 || coalesced > 0;
    let call_ids = insert_calls(&txn, backend, &calls, need_ids, handoff.lease_until, now).await?;
    supersede(&txn, backend, &plan, &call_ids, now).await?;
    let replay_counts = replay_counts(&txn, backend, &plans).await?;
    txn.commit().await.map_err(db_err)?;

    let handed_off = if handed == 0 {
        Vec::new()
    } else {
        claimed_calls(calls, call_ids, handoff.lease_until, now)
    };
    Ok(IngestResult::Committed(IngestOutcome {
        results: answers(plans, &event_ids, &queued_per_event, &replay_counts),
        handed_off,
        coalesced,
        blocked: blocked_calls,
    }))
}

/// The shops the batch's events are for: from the cache, and those it lacks from the
/// database (which then fill the cache).
async fn shops_of(
    db: &DatabaseConnection,
    shop_cache: &RwLock<HashMap<ShopId, Shop>>,
    requests: &[Vec<NewEvent>],
) -> Result<HashMap<ShopId, Shop>, StoreError> {
    let mut shops: HashMap<ShopId, Shop> = HashMap::new();
    let mut missing: HashSet<i64> = HashSet::new();
    {
        let cache = shop_cache
            .read()
            .expect("shop cache lock is never poisoned: no panics while held");
        for event in requests.iter().flatten() {
            match cache.get(&event.shop_id) {
                Some(shop) => {
                    shops.entry(event.shop_id).or_insert_with(|| shop.clone());
                }
                None => {
                    missing.insert(event.shop_id.0);
                }
            }
        }
    }
    if !missing.is_empty() {
        let found = shop::Entity::find()
            .filter(shop::Column::Id.is_in(missing))
            .all(db)
            .await
            .map_err(db_err)?;
        let mut cache = shop_cache
            .write()
            .expect("shop cache lock is never poisoned: no panics while held");
        for m in found {
            let shop = crate::shops::to_shop(m);
            cache.insert(shop.id, shop.clone());
            shops.insert(shop.id, shop);
        }
    }
    Ok(shops)
}

/// The events committed before under the batch's idempotency keys.
async fn known_keys(
    db: &DatabaseConnection,
    requests: &[Vec<NewEvent>],
) -> Result<HashMap<(ShopId, String), EventId>, StoreError> {
    let keys: HashSet<&str> = requests
        .iter()
        .flatten()
        .filter_map(|e| e.idempotency_key.as_deref())
        .collect();
    let mut known: HashMap<(ShopId, String), EventId> = HashMap::new();
    if !keys.is_empty() {
        for chunk in keys.into_iter().collect::<Vec<_>>().chunks(EVENT_CHUNK) {
            let rows = event::Entity::find()
                .filter(event::Column::IdempotencyKey.is_not_null())
                .filter(event::Column::IdempotencyKey.is_in(chunk.iter().copied()))
                .all(db)
                .await
                .map_err(db_err)?;
            for row in rows {
                if let Some(key) = row.idempotency_key {
                    known.insert((ShopId(row.shop_id), key), EventId(row.id));
                }
            }
        }
    }
    Ok(known)
}

/// Decides per request: rejected (an unknown shop), or where each of its events goes. Returns
/// the fresh events to insert, and each request's slots.
fn slot_events<'r>(
    requests: &'r [Vec<NewEvent>],
    shops: &HashMap<ShopId, Shop>,
    known: &HashMap<(ShopId, String), EventId>,
) -> (Vec<&'r NewEvent>, Vec<RequestSlots>) {
    let mut fresh: Vec<&NewEvent> = Vec::new();
    let mut in_batch: HashMap<(ShopId, &str), usize> = HashMap::new();
    let mut plans: Vec<RequestSlots> = Vec::with_capacity(requests.len());
    for request in requests {
        if let Some(unknown) = request.iter().find(|e| !shops.contains_key(&e.shop_id)) {
            plans.push(Err(IngestRejection::UnknownShop(unknown.shop_id)));
            continue;
        }
        let mut slots = Vec::with_capacity(request.len());
        for event in request {
            let slot = match event.idempotency_key.as_deref() {
                Some(key) => {
                    if let Some(id) = known.get(&(event.shop_id, key.to_owned())) {
                        Slot::Known(*id)
                    } else if let Some(&i) = in_batch.get(&(event.shop_id, key)) {
                        Slot::SameAsFresh(i)
                    } else {
                        in_batch.insert((event.shop_id, key), fresh.len());
                        fresh.push(event);
                        Slot::Fresh(fresh.len() - 1)
                    }
                }
                None => {
                    fresh.push(event);
                    Slot::Fresh(fresh.len() - 1)
                }
            };
            slots.push(slot);
        }
        plans.push(Ok(slots));
    }
    (fresh, plans)
}

/// Inserts the fresh events; ids come back through RETURNING. Ids of one multi-row INSERT
/// are assigned in VALUES order on both databases, so sorted ids line up with the rows.
async fn insert_events(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DbBackend,
    fresh: &[&NewEvent],
    now: Timestamp,
) -> Result<Vec<EventId>, StoreError> {
    let mut event_ids: Vec<EventId> = Vec::with_capacity(fresh.len());
    for chunk in fresh.chunks(EVENT_CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(event::Entity).columns([
            event::Column::ShopId,
            event::Column::EventType,
            event::Column::EntityId,
            event::Column::EntityData,
            event::Column::PreviousData,
            event::Column::OccurredAt,
            event::Column::ReceivedAt,
            event::Column::IdempotencyKey,
        ]);
        for e in chunk {
            let data = serde_json::to_string(&e.entity).map_err(json_err)?;
            let previous = match &e.previous {
                Some(previous) => Some(serde_json::to_string(previous).map_err(json_err)?),
                None => None,
            };
            insert.values_panic([
                e.shop_id.0.into(),
                e.event_type.as_str().into(),
                e.entity_id.as_str().into(),
                data.into(),
                previous.into(),
                e.occurred_at.0.into(),
                now.0.into(),
                e.idempotency_key.clone().into(),
            ]);
        }
        insert.returning_col(event::Column::Id);
        let rows = txn
            .query_all(backend.build(&insert))
            .await
            .map_err(db_err)?;
        let mut ids = rows
            .iter()
            .map(|r| r.try_get_by_index::<i64>(0).map(EventId))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        ids.sort_unstable();
        event_ids.extend(ids);
    }
    if event_ids.len() != fresh.len() {
        return Err(StoreError::new(format!(
            "inserted {} events but got {} ids",
            fresh.len(),
            event_ids.len()
        )));
    }
    Ok(event_ids)
}

/// Each trigger's evaluation of the fresh events (its activity), in one statement per chunk.
async fn insert_evaluations(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DbBackend,
    evaluations: &[Evaluation],
    now: Timestamp,
) -> Result<(), StoreError> {
    for chunk in evaluations.chunks(EVALUATION_CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(trigger_evaluation::Entity).columns([
            trigger_evaluation::Column::EventId,
            trigger_evaluation::Column::TriggerId,
            trigger_evaluation::Column::Matched,
            trigger_evaluation::Column::DecidedBy,
            trigger_evaluation::Column::EvaluatedAt,
        ]);
        for e in chunk {
            insert.values_panic([
                e.event_id.0.into(),
                e.trigger_id.0.into(),
                e.matched.into(),
                e.decided_by.as_deref().into(),
                now.0.into(),
            ]);
        }
        txn.execute(backend.build(&insert)).await.map_err(db_err)?;
    }
    Ok(())
}

/// The calls the triggers plan for the fresh events, how many each event queued, and each
/// trigger's evaluation.
fn plan_calls(
    planner: &dyn Planner,
    fresh: &[&NewEvent],
    event_ids: &[EventId],
    shops: &HashMap<ShopId, Shop>,
) -> (Vec<NewCall>, Vec<u32>, Vec<Evaluation>) {
    let mut calls: Vec<NewCall> = Vec::new();
    let mut evaluations: Vec<Evaluation> = Vec::with_capacity(fresh.len());
    let mut queued_per_event = vec![0u32; fresh.len()];
    for (i, event) in fresh.iter().enumerate() {
        let before = calls.len();
        let shop = &shops[&event.shop_id];
        planner.plan(
            &PlannedEvent {
                id: event_ids[i],
                event,
                shop,
            },
            &mut calls,
            &mut evaluations,
        );
        queued_per_event[i] = (calls.len() - before) as u32;
    }
    (calls, queued_per_event, evaluations)
}

/// Applies the queue policy's placements to the calls: which wait behind an earlier call of
/// their key (`blocked`), and how many calls were folded into others (`coalesced`).
fn place(calls: &mut [NewCall], plan: &IngestPlan) -> (Vec<bool>, u64) {
    let mut blocked = vec![false; calls.len()];
    let mut coalesced = plan.supersede.len() as u64;
    for (i, placement) in plan.placements.iter().enumerate() {
        match *placement {
            Placement::Queue {
                blocked: b,
                coalesced: n,
            } => {
                blocked[i] = b;
                calls[i].coalesced = n;
            }
            Placement::SupersededBy(_) => {
                calls[i].status = CallStatus::Superseded;
                coalesced += 1;
            }
        }
    }
    (blocked, coalesced)
}

/// Marks the calls handed straight to this process's workers, which are stored already
/// claimed, while the workers and the call's endpoint have room; returns how many.
fn hand_over(calls: &mut [NewCall], blocked: &[bool], handoff: &Handoff) -> usize {
    let mut handed = 0;
    let mut room: HashMap<String, usize> = HashMap::new();
    for (i, call) in calls.iter_mut().enumerate() {
        if handed == handoff.max_calls {
            break;
        }
        if call.status != CallStatus::Pending || blocked[i] {
            continue;
        }
        let left = room.entry(call.target_host.clone()).or_insert_with(|| {
            handoff
                .hosts
                .as_ref()
                .map_or(usize::MAX, |h| h.room(&call.target_host))
        });
        if *left == 0 {
            continue;
        }
        *left -= 1;
        call.status = CallStatus::InFlight;
        handed += 1;
    }
    handed
}

/// Inserts the calls, the handed-over ones leased until `lease_until`; with `need_ids`, their
/// ids come back in order (else none do, and the statement is cheaper).
async fn insert_calls(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DbBackend,
    calls: &[NewCall],
    need_ids: bool,
    lease_until: Timestamp,
    now: Timestamp,
) -> Result<Vec<i64>, StoreError> {
    let mut call_ids: Vec<i64> = Vec::with_capacity(if need_ids { calls.len() } else { 0 });
    for chunk in calls.chunks(CALL_CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(queue_item::Entity).columns(CALL_COLUMNS);
        for c in chunk {
            let lease = (c.status == CallStatus::InFlight).then_some(lease_until.0);
            let headers = serde_json::to_string(&c.headers).map_err(json_err)?;
            insert.values_panic([
                c.webhook_id.as_str().into(),
                c.event_id.0.into(),
                c.action.trigger.0.into(),
                i32::from(c.action.index).into(),
                c.shop_id.0.into(),
                c.event_type.as_str().into(),
                c.entity_id.as_str().into(),
                queue_item::Method::from(c.method).into(),
                c.url.as_str().into(),
                headers.into(),
                c.body.clone().into(),
                c.priority.into(),
                queue_item::Status::from(c.status).into(),
                0i32.into(),
                c.max_attempts.into(),
                now.0.into(),
                c.last_error.clone().into(),
                lease.into(),
                c.coalesced.into(),
                c.target_host.as_str().into(),
                c.ordered.into(),
                c.unique.into(),
                now.0.into(),
                now.0.into(),
            ]);
        }
        if need_ids {
            // Ids come back in VALUES order once sorted (see `insert_events`).
            insert.returning_col(queue_item::Column::Id);
            let rows = txn
                .query_all(backend.build(&insert))
                .await
                .map_err(db_err)?;
            let first = call_ids.len();
            for row in rows {
                call_ids.push(row.try_get_by_index::<i64>(0).map_err(db_err)?);
            }
            call_ids[first..].sort_unstable();
        } else {
            txn.execute(backend.build(&insert)).await.map_err(db_err)?;
        }
    }
    if need_ids && call_ids.len() != calls.len() {
        return Err(StoreError::new(format!(
            "inserted {} calls but got {} ids",
            calls.len(),
            call_ids.len()
        )));
    }
    Ok(call_ids)
}

/// How many calls the first delivery of each replayed key queued: replays of keys committed
/// earlier answer with those.
async fn replay_counts(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DbBackend,
    plans: &[RequestSlots],
) -> Result<HashMap<EventId, u32>, StoreError> {
    let replayed: Vec<i64> = plans
        .iter()
        .flatten()
        .flatten()
        .filter_map(|s| match s {
            Slot::Known(id) => Some(id.0),
            _ => None,
        })
        .collect();
    let mut replay_counts: HashMap<EventId, u32> = HashMap::new();
    if !replayed.is_empty() {
        let count = Alias::new("n");
        let query = Query::select()
            .column(queue_item::Column::EventId)
            .expr_as(Func::count(Expr::col(queue_item::Column::Id)), count)
            .from(queue_item::Entity)
            .and_where(Expr::col(queue_item::Column::EventId).is_in(replayed))
            .group_by_col(queue_item::Column::EventId)
            .to_owned();
        for row in txn.query_all(backend.build(&query)).await.map_err(db_err)? {
            let id: i64 = row.try_get_by_index(0).map_err(db_err)?;
            let n: i64 = row.try_get_by_index(1).map_err(db_err)?;
            replay_counts.insert(EventId(id), n as u32);
        }
    }
    Ok(replay_counts)
}

/// The calls stored already claimed, as the workers take them.
fn claimed_calls(
    calls: Vec<NewCall>,
    call_ids: Vec<i64>,
    lease_until: Timestamp,
    now: Timestamp,
) -> Vec<ClaimedCall> {
    calls
        .into_iter()
        .zip(call_ids)
        .filter(|(c, _)| c.status == CallStatus::InFlight)
        .map(|(c, id)| ClaimedCall {
            id: CallId(id),
            action: c.action,
            target_host: c.target_host,
            webhook_id: c.webhook_id,
            method: c.method,
            url: c.url,
            headers: c.headers,
            body: c.body,
            attempts: 0,
            max_attempts: c.max_attempts,
            created_at: now,
            lease_until,
        })
        .collect()
}

/// Each request's answer: rejected, or each event's id and the calls it queued.
fn answers(
    plans: Vec<RequestSlots>,
    event_ids: &[EventId],
    queued_per_event: &[u32],
    replay_counts: &HashMap<EventId, u32>,
) -> Vec<Result<Vec<Ingested>, IngestRejection>> {
    plans
        .into_iter()
        .map(|plan| {
            plan.map(|slots| {
                slots
                    .into_iter()
                    .map(|slot| match slot {
                        Slot::Fresh(i) => Ingested {
                            event_id: event_ids[i],
                            calls_queued: queued_per_event[i],
                            duplicate: false,
                        },
                        Slot::SameAsFresh(i) => Ingested {
                            event_id: event_ids[i],
                            calls_queued: queued_per_event[i],
                            duplicate: true,
                        },
                        Slot::Known(id) => Ingested {
                            event_id: id,
                            calls_queued: replay_counts.get(&id).copied().unwrap_or(0),
                            duplicate: true,
                        },
                    })
                    .collect()
            })
        })
        .collect()
}

/// Reads what the queue policy needs about the unfinished calls of the batch's keys and asks
/// it where each call goes (see `hookflow_engine::queue::plan_ingest`). On PostgreSQL the keys
/// are locked first (so two nodes ingesting for one entity take turns, and a failing attempt
/// settles before or after, never between) and the stored pending calls are row-locked (so
/// no claim takes one that is being superseded).
async fn arrange(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DbBackend,
    calls: &[NewCall],
) -> Result<IngestPlan, StoreError> {
    let keyed: Vec<usize> = (0..calls.len())
        .filter(|&i| {
            calls[i].status == CallStatus::Pending && (calls[i].unique || calls[i].ordered)
        })
        .collect();
    let fresh: Vec<FreshCall<'_>> = calls
        .iter()
        .map(|c| FreshCall {
            key: (c.action, c.entity_id.as_str()),
            unique: c.unique,
            ordered: c.ordered,
            queued: c.status == CallStatus::Pending,
            coalesced: c.coalesced,
        })
        .collect();
    if keyed.is_empty() {
        return Ok(plan_ingest(&fresh, &[]));
    }
    crate::queue::lock_keys(txn, keyed.iter().map(|&i| fresh[i].key)).await?;
    let rows = unfinished_rows(txn, backend, calls, &keyed).await?;
    let unfinished: Vec<Unfinished<'_>> = rows
        .iter()
        .map(
            |(id, action, entity, status, unique, coalesced)| Unfinished {
                id: CallId(*id),
                key: (*action, entity.as_str()),
                pending: *status == queue_item::Status::Pending,
                unique: *unique,
                coalesced: *coalesced,
            },
        )
        .collect();
    Ok(plan_ingest(&fresh, &unfinished))
}

/// A stored unfinished call as `arrange` reads it: id, action, entity id, status, unique,
/// coalesced.
type UnfinishedRow = (i64, ActionRef, String, queue_item::Status, bool, i32);

/// The unfinished calls already queued for the keyed calls' actions and entities
/// (`queue_items_entity`), row-locked on PostgreSQL.
async fn unfinished_rows(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DbBackend,
    calls: &[NewCall],
    keyed: &[usize],
) -> Result<Vec<UnfinishedRow>, StoreError> {
    let triggers: HashSet<i64> = keyed.iter().map(|&i| calls[i].action.trigger.0).collect();
    let actions: HashSet<i32> = keyed
        .iter()
        .map(|&i| i32::from(calls[i].action.index))
        .collect();
    let entities: Vec<&str> = keyed
        .iter()
        .map(|&i| calls[i].entity_id.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut rows: Vec<UnfinishedRow> = Vec::new();
    for chunk in entities.chunks(EVENT_CHUNK) {
        let mut query = Query::select()
            .columns([
                queue_item::Column::Id,
                queue_item::Column::TriggerId,
                queue_item::Column::ActionIndex,
                queue_item::Column::EntityId,
                queue_item::Column::Status,
                queue_item::Column::UniqueItem,
                queue_item::Column::Coalesced,
            ])
            .from(queue_item::Entity)
            // All three leading columns of `queue_items_entity`, so it is a few index lookups
            // rather than a walk over every call of the trigger.
            .and_where(Expr::col(queue_item::Column::TriggerId).is_in(triggers.iter().copied()))
            .and_where(Expr::col(queue_item::Column::ActionIndex).is_in(actions.iter().copied()))
            .and_where(Expr::col(queue_item::Column::EntityId).is_in(chunk.iter().copied()))
            .and_where(
                Expr::col(queue_item::Column::Status)
                    .is_in([queue_item::Status::Pending, queue_item::Status::InFlight]),
            )
            .to_owned();
        if backend == sea_orm::DbBackend::Postgres {
            query.lock(sea_orm::sea_query::LockType::Update);
        }
        for row in txn.query_all(backend.build(&query)).await.map_err(db_err)? {
            rows.push((
                row.try_get_by_index(0).map_err(db_err)?,
                action_ref(
                    "queue_items",
                    row.try_get_by_index(1).map_err(db_err)?,
                    row.try_get_by_index(2).map_err(db_err)?,
                )?,
                row.try_get_by_index(3).map_err(db_err)?,
                row.try_get_by_index(4).map_err(db_err)?,
                row.try_get_by_index(5).map_err(db_err)?,
                row.try_get_by_index(6).map_err(db_err)?,
            ));
        }
    }
    Ok(rows)
}

/// Links superseded calls to the calls that replaced them: those of this batch (stored as
/// superseded) and the stored pending ones (which become superseded now; they were locked or,
/// on SQLite, nobody else writes).
async fn supersede(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DbBackend,
    plan: &IngestPlan,
    ids: &[i64],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut by_winner: HashMap<usize, Vec<i64>> = HashMap::new();
    for (i, placement) in plan.placements.iter().enumerate() {
        if let Placement::SupersededBy(j) = *placement {
            by_winner.entry(j).or_default().push(ids[i]);
        }
    }
    for (old, j) in &plan.supersede {
        by_winner.entry(*j).or_default().push(old.0);
    }
    for (j, superseded) in by_winner {
        let update = Query::update()
            .table(queue_item::Entity)
            .value(queue_item::Column::Status, queue_item::Status::Superseded)
            .value(queue_item::Column::SupersededBy, ids[j])
            .value(queue_item::Column::UpdatedAt, now.0)
            .and_where(Expr::col(queue_item::Column::Id).is_in(superseded.iter().copied()))
            .and_where(
                Expr::col(queue_item::Column::Status)
                    .is_in([queue_item::Status::Pending, queue_item::Status::Superseded]),
            )
            .to_owned();
        let changed = txn
            .execute(backend.build(&update))
            .await
            .map_err(db_err)?
            .rows_affected();
        if changed != superseded.len() as u64 {
            // A stored pending call left `pending` under its lock: never expected; rolling back
            // keeps two pending calls for one key from being committed.
            return Err(StoreError::new(format!(
                "superseding {} calls changed {changed}",
                superseded.len()
            )));
        }
    }
    Ok(())
}
