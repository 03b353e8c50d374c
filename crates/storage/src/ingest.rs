//! The ingest transaction: events and the calls planned from them, committed together.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use hookflow_engine::model::{
    CallId, CallStatus, ClaimedCall, EventId, Ingested, NewCall, NewEvent, Shop, ShopId, Timestamp,
};
use hookflow_engine::store::{
    Handoff, IngestOutcome, IngestRejection, PlannedEvent, Planner, StoreError,
};
use sea_orm::sea_query::{Alias, Expr, Func, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};

use crate::entities::{event, queue_item, shop};
use crate::{db_err, json_err};

/// Rows per multi-row INSERT: stays under SQLite's 32 766 bound parameters (events have 7
/// columns, calls 21).
const EVENT_CHUNK: usize = 1000;
const CALL_CHUNK: usize = 500;

/// Where an event of a request ends up.
enum Slot {
    /// Index into the fresh events inserted by this batch.
    Fresh(usize),
    /// The same key as a fresh event earlier in this batch.
    SameAsFresh(usize),
    /// The key was committed before.
    Known(EventId),
}

pub(crate) async fn ingest(
    db: &DatabaseConnection,
    shop_cache: &RwLock<HashMap<ShopId, Shop>>,
    requests: &[Vec<NewEvent>],
    planner: &dyn Planner,
    handoff: Handoff,
    now: Timestamp,
) -> Result<IngestOutcome, StoreError> {
    // Reads first, outside the transaction: on SQLite a transaction that reads before it writes
    // can fail to upgrade its lock. Shops are never deleted, and idempotency keys are serialised
    // by the single ingest task of this process (and by the unique index across processes).
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

    // Decide per request: rejected, or where each of its events goes.
    let mut fresh: Vec<&NewEvent> = Vec::new();
    let mut in_batch: HashMap<(ShopId, &str), usize> = HashMap::new();
    let mut plans: Vec<Result<Vec<Slot>, IngestRejection>> = Vec::with_capacity(requests.len());
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

    let txn = db.begin().await.map_err(db_err)?;
    let backend = txn.get_database_backend();

    // Insert the fresh events; ids come back through RETURNING. Ids of one multi-row INSERT
    // are assigned in VALUES order on both databases, so sorted ids line up with the rows.
    let mut event_ids: Vec<EventId> = Vec::with_capacity(fresh.len());
    for chunk in fresh.chunks(EVENT_CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(event::Entity).columns([
            event::Column::ShopId,
            event::Column::EventType,
            event::Column::EntityId,
            event::Column::EntityData,
            event::Column::OccurredAt,
            event::Column::ReceivedAt,
            event::Column::IdempotencyKey,
        ]);
        for e in chunk {
            let data = serde_json::to_string(&e.entity).map_err(json_err)?;
            insert.values_panic([
                e.shop_id.0.into(),
                e.event_type.as_str().into(),
                e.entity_id.as_str().into(),
                data.into(),
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
        return Err(StoreError(format!(
            "inserted {} events but got {} ids",
            fresh.len(),
            event_ids.len()
        )));
    }

    // Match and render inside the transaction: the calls commit with their event or not at all.
    let mut calls: Vec<NewCall> = Vec::new();
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
        );
        queued_per_event[i] = (calls.len() - before) as u32;
    }
    // Unique items coalesce into the pending call of their action and entity; ordered calls
    // behind an unfinished one of theirs must wait for it (and so are not handed over).
    let arranged = arrange(&txn, backend, &mut calls, now).await?;
    let coalesced = arranged.keep.iter().filter(|keep| !**keep).count() as u64;
    let mut calls: Vec<NewCall> = calls
        .into_iter()
        .zip(arranged.keep)
        .filter_map(|(c, keep)| keep.then_some(c))
        .collect();
    let blocked = arranged.blocked;
    let blocked_calls = blocked.iter().filter(|b| **b).count() as u64;

    // Calls handed straight to this process's workers are stored already claimed, while the
    // workers and the call's endpoint have room.
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
    let mut call_ids: Vec<i64> = Vec::with_capacity(if handed > 0 { calls.len() } else { 0 });
    for chunk in calls.chunks(CALL_CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(queue_item::Entity).columns([
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
            queue_item::Column::CreatedAt,
            queue_item::Column::UpdatedAt,
        ]);
        for c in chunk {
            let lease = (c.status == CallStatus::InFlight).then_some(handoff.lease_until.0);
            let headers = serde_json::to_string(&c.headers).map_err(json_err)?;
            insert.values_panic([
                c.webhook_id.as_str().into(),
                c.event_id.0.into(),
                c.trigger_id.0.into(),
                c.action_index.into(),
                c.shop_id.0.into(),
                c.event_type.as_str().into(),
                c.entity_id.as_str().into(),
                c.method.as_str().into(),
                c.url.as_str().into(),
                headers.into(),
                c.body.clone().into(),
                c.priority.into(),
                c.status.as_str().into(),
                0i32.into(),
                c.max_attempts.into(),
                now.0.into(),
                c.last_error.clone().into(),
                lease.into(),
                c.coalesced.into(),
                c.target_host.as_str().into(),
                c.ordered.into(),
                now.0.into(),
                now.0.into(),
            ]);
        }
        if handed > 0 {
            // Ids come back in VALUES order once sorted (see the events insert above).
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
    if handed > 0 && call_ids.len() != calls.len() {
        return Err(StoreError(format!(
            "inserted {} calls but got {} ids",
            calls.len(),
            call_ids.len()
        )));
    }

    // Replays of keys committed earlier answer with the calls their first delivery queued.
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
    txn.commit().await.map_err(db_err)?;

    let handed_off = if handed == 0 {
        Vec::new()
    } else {
        calls
            .into_iter()
            .zip(call_ids)
            .filter(|(c, _)| c.status == CallStatus::InFlight)
            .map(|(c, id)| ClaimedCall {
                id: CallId(id),
                trigger_id: c.trigger_id,
                action_index: c.action_index,
                target_host: c.target_host,
                webhook_id: c.webhook_id,
                method: c.method,
                url: c.url,
                headers: c.headers,
                body: c.body,
                attempts: 0,
                max_attempts: c.max_attempts,
                created_at: now,
            })
            .collect()
    };
    let results = plans
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
        .collect();
    Ok(IngestOutcome {
        results,
        handed_off,
        coalesced,
        blocked: blocked_calls,
    })
}

/// How the calls of a batch relate to the unfinished calls already queued.
struct Arranged {
    /// `false` for calls folded into another (unique items).
    keep: Vec<bool>,
    /// Per kept call: it must wait for an earlier unfinished call of its action and entity.
    blocked: Vec<bool>,
}

type EntityKey = (i64, i32, String);

/// Coalesces unique items and finds ordered calls that must wait. A unique call folds into
/// the pending call of its action and entity — one queued earlier (updated here, if it is
/// still pending) or one earlier in this batch — which then carries the newest payload and
/// counts the fold. A call in flight is never touched: the newer event queues a call of its own.
async fn arrange(
    txn: &impl ConnectionTrait,
    backend: sea_orm::DbBackend,
    calls: &mut [NewCall],
    now: Timestamp,
) -> Result<Arranged, StoreError> {
    let mut keep = vec![true; calls.len()];
    let keyed: Vec<usize> = (0..calls.len())
        .filter(|&i| {
            calls[i].status == CallStatus::Pending && (calls[i].unique || calls[i].ordered)
        })
        .collect();
    if keyed.is_empty() {
        let blocked = vec![false; calls.len()];
        return Ok(Arranged { keep, blocked });
    }
    // Unfinished calls already queued for these actions and entities (`queue_items_entity`).
    let mut unfinished: HashSet<EntityKey> = HashSet::new();
    let mut pending: HashMap<EntityKey, i64> = HashMap::new();
    let triggers: HashSet<i64> = keyed.iter().map(|&i| calls[i].trigger_id.0).collect();
    let actions: HashSet<i32> = keyed.iter().map(|&i| calls[i].action_index).collect();
    let entities: Vec<String> = keyed
        .iter()
        .map(|&i| calls[i].entity_id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for chunk in entities.chunks(EVENT_CHUNK) {
        let query = Query::select()
            .columns([
                queue_item::Column::Id,
                queue_item::Column::TriggerId,
                queue_item::Column::ActionIndex,
                queue_item::Column::EntityId,
                queue_item::Column::Status,
            ])
            .from(queue_item::Entity)
            // All three leading columns of `queue_items_entity`, so it is a few index lookups
            // rather than a walk over every call of the trigger.
            .and_where(Expr::col(queue_item::Column::TriggerId).is_in(triggers.iter().copied()))
            .and_where(Expr::col(queue_item::Column::ActionIndex).is_in(actions.iter().copied()))
            .and_where(Expr::col(queue_item::Column::EntityId).is_in(chunk.iter().cloned()))
            .and_where(
                Expr::col(queue_item::Column::Status)
                    .is_in([CallStatus::Pending.as_str(), CallStatus::InFlight.as_str()]),
            )
            .to_owned();
        for row in txn.query_all(backend.build(&query)).await.map_err(db_err)? {
            let id: i64 = row.try_get_by_index(0).map_err(db_err)?;
            let key: EntityKey = (
                row.try_get_by_index(1).map_err(db_err)?,
                row.try_get_by_index(2).map_err(db_err)?,
                row.try_get_by_index(3).map_err(db_err)?,
            );
            let status: String = row.try_get_by_index(4).map_err(db_err)?;
            if status == CallStatus::Pending.as_str() {
                pending
                    .entry(key.clone())
                    .and_modify(|p| *p = (*p).min(id))
                    .or_insert(id);
            }
            unfinished.insert(key);
        }
    }

    let mut blocked = vec![false; calls.len()];
    let mut in_batch: HashMap<EntityKey, usize> = HashMap::new();
    for i in keyed {
        let key: EntityKey = (
            calls[i].trigger_id.0,
            calls[i].action_index,
            calls[i].entity_id.clone(),
        );
        if calls[i].unique {
            if let Some(&first) = in_batch.get(&key).filter(|&&j| calls[j].unique) {
                let newer = fold(&mut calls[i]);
                apply_fold(&mut calls[first], newer);
                keep[i] = false;
                continue;
            }
            if let Some(&id) = pending.get(&key) {
                let update = Query::update()
                    .table(queue_item::Entity)
                    .value(queue_item::Column::Url, calls[i].url.as_str())
                    .value(
                        queue_item::Column::Headers,
                        serde_json::to_string(&calls[i].headers).map_err(json_err)?,
                    )
                    .value(queue_item::Column::Body, calls[i].body.clone())
                    .value(queue_item::Column::EventId, calls[i].event_id.0)
                    .value(
                        queue_item::Column::TargetHost,
                        calls[i].target_host.as_str(),
                    )
                    .value(
                        queue_item::Column::Coalesced,
                        Expr::col(queue_item::Column::Coalesced).add(1),
                    )
                    .value(queue_item::Column::UpdatedAt, now.0)
                    .and_where(Expr::col(queue_item::Column::Id).eq(id))
                    .and_where(
                        Expr::col(queue_item::Column::Status).eq(CallStatus::Pending.as_str()),
                    )
                    .to_owned();
                if txn
                    .execute(backend.build(&update))
                    .await
                    .map_err(db_err)?
                    .rows_affected()
                    > 0
                {
                    keep[i] = false;
                    continue;
                }
                // Claimed meanwhile (by another node): this one is queued after it.
            }
        }
        blocked[i] = calls[i].ordered && (unfinished.contains(&key) || in_batch.contains_key(&key));
        in_batch.entry(key).or_insert(i);
    }
    let blocked = blocked
        .into_iter()
        .zip(&keep)
        .filter_map(|(b, &k)| k.then_some(b))
        .collect();
    Ok(Arranged { keep, blocked })
}

/// What a newer unique call hands to the pending one it folds into.
struct Fold {
    event_id: hookflow_engine::model::EventId,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    target_host: String,
    coalesced: i32,
}

fn fold(call: &mut NewCall) -> Fold {
    Fold {
        event_id: call.event_id,
        url: std::mem::take(&mut call.url),
        headers: std::mem::take(&mut call.headers),
        body: call.body.take(),
        target_host: std::mem::take(&mut call.target_host),
        coalesced: call.coalesced,
    }
}

fn apply_fold(into: &mut NewCall, newer: Fold) {
    into.event_id = newer.event_id;
    into.url = newer.url;
    into.headers = newer.headers;
    into.body = newer.body;
    into.target_host = newer.target_host;
    into.coalesced += 1 + newer.coalesced;
}
