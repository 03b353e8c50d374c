//! The event log: events newest first with the state of their calls, and resending calls
//! (one event's, or many matching a filter).
//!
//! A page costs a fixed number of queries whatever its size: the events, then the calls of
//! all of them (`queue_items_event` index), then, when asked for, the attempts of all those
//! calls (`attempts_queue_item` index).

use std::collections::HashMap;

use hookflow_engine::model::{Attempt, CallId, CallStatus, EventId, ShopId, Timestamp, TriggerId};
use hookflow_engine::store::{
    AttemptBudget, EventDetail, EventFilter, LoggedCall, LoggedEvent, ResendFilter, StoreError,
};
use sea_orm::sea_query::{Expr, Order, Query, SelectStatement, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QueryResult,
};

use crate::entities::{attempt, event, queue_item};
use crate::{db_err, json_err};

/// Ids per `IN (...)` list: far below SQLite's 32 766 bound parameters.
const IN_CHUNK: usize = 1000;

/// The calls of an event that keep it from counting as a success.
fn unsucceeded_calls() -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(queue_item::Entity)
        .and_where(
            Expr::col((queue_item::Entity, queue_item::Column::EventId))
                .equals((event::Entity, event::Column::Id)),
        )
        .and_where(
            Expr::col((queue_item::Entity, queue_item::Column::Status))
                .ne(queue_item::Status::Succeeded),
        )
        .to_owned()
}

/// Any call of the event (over `queue_items_event`).
fn any_calls() -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(queue_item::Entity)
        .and_where(
            Expr::col((queue_item::Entity, queue_item::Column::EventId))
                .equals((event::Entity, event::Column::Id)),
        )
        .to_owned()
}

pub(crate) async fn list(
    db: &DatabaseConnection,
    f: &EventFilter,
) -> Result<Vec<LoggedEvent>, StoreError> {
    let mut conditions: Vec<SimpleExpr> = Vec::new();
    if let Some(shop) = f.shop_id {
        conditions.push(Expr::col((event::Entity, event::Column::ShopId)).eq(shop.0));
    }
    if let Some(shops) = &f.shops {
        conditions.push(
            Expr::col((event::Entity, event::Column::ShopId)).is_in(shops.iter().map(|s| s.0)),
        );
    }
    if let Some(from) = f.from {
        conditions.push(Expr::col((event::Entity, event::Column::ReceivedAt)).gte(from.0));
    }
    if let Some(to) = f.to {
        conditions.push(Expr::col((event::Entity, event::Column::ReceivedAt)).lt(to.0));
    }
    if let Some(before) = f.before {
        conditions.push(Expr::col((event::Entity, event::Column::Id)).lt(before.0));
    }
    if let Some(event_type) = &f.event_type {
        conditions.push(Expr::col((event::Entity, event::Column::EventType)).eq(event_type));
    }
    if let Some(entity_id) = &f.entity_id {
        conditions.push(Expr::col((event::Entity, event::Column::EntityId)).eq(entity_id));
    }
    match f.has_calls {
        Some(true) => conditions.push(Expr::exists(any_calls())),
        Some(false) => conditions.push(Expr::exists(any_calls()).not()),
        None => {}
    }
    match f.success {
        Some(true) => conditions.push(Expr::exists(unsucceeded_calls()).not()),
        Some(false) => conditions.push(Expr::exists(unsucceeded_calls())),
        None => {}
    }
    load(db, conditions, f.limit, f.detail).await
}

pub(crate) async fn get(
    db: &DatabaseConnection,
    id: EventId,
    detail: EventDetail,
) -> Result<Option<LoggedEvent>, StoreError> {
    let condition = Expr::col((event::Entity, event::Column::Id)).eq(id.0);
    Ok(load(db, vec![condition], 1, detail).await?.pop())
}

/// The events matching `conditions` (newest first, at most `limit`), with their calls.
async fn load(
    db: &DatabaseConnection,
    conditions: Vec<SimpleExpr>,
    limit: u32,
    detail: EventDetail,
) -> Result<Vec<LoggedEvent>, StoreError> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .columns([
            (event::Entity, event::Column::Id),
            (event::Entity, event::Column::ShopId),
            (event::Entity, event::Column::EventType),
            (event::Entity, event::Column::EntityId),
            (event::Entity, event::Column::OccurredAt),
            (event::Entity, event::Column::ReceivedAt),
        ])
        .from(event::Entity);
    // Entity data can be large; it is read only when it is shown.
    if detail.payload {
        select.column((event::Entity, event::Column::EntityData));
        select.column((event::Entity, event::Column::PreviousData));
    }
    for condition in conditions {
        select.and_where(condition);
    }
    select
        .order_by((event::Entity, event::Column::Id), Order::Desc)
        .limit(u64::from(limit));
    let rows = db.query_all(backend.build(&select)).await.map_err(db_err)?;
    let mut events = rows
        .iter()
        .map(|row| to_event(row, detail.payload))
        .collect::<Result<Vec<_>, _>>()?;
    if events.is_empty() {
        return Ok(events);
    }

    let event_ids: Vec<i64> = events.iter().map(|e| e.id.0).collect();
    let (mut calls_by_event, call_ids) = calls_of(db, &event_ids).await?;
    if detail.attempts {
        let mut log = attempts_of(db, &call_ids).await?;
        for call in calls_by_event.values_mut().flatten() {
            call.attempt_log = Some(log.remove(&call.id.0).unwrap_or_default());
        }
    }
    for event in &mut events {
        event.calls = calls_by_event.remove(&event.id.0).unwrap_or_default();
    }
    Ok(events)
}

/// The calls of the events, by event id, and all their ids (`queue_items_event`).
async fn calls_of(
    db: &DatabaseConnection,
    event_ids: &[i64],
) -> Result<(HashMap<i64, Vec<LoggedCall>>, Vec<i64>), StoreError> {
    let backend = db.get_database_backend();
    let mut calls_by_event: HashMap<i64, Vec<LoggedCall>> = HashMap::new();
    let mut call_ids: Vec<i64> = Vec::new();
    for chunk in event_ids.chunks(IN_CHUNK) {
        let query = Query::select()
            .columns([
                queue_item::Column::Id,
                queue_item::Column::EventId,
                queue_item::Column::TriggerId,
                queue_item::Column::ActionIndex,
                queue_item::Column::Status,
                queue_item::Column::LastStatusCode,
                queue_item::Column::Attempts,
            ])
            .from(queue_item::Entity)
            .and_where(Expr::col(queue_item::Column::EventId).is_in(chunk.iter().copied()))
            .order_by(queue_item::Column::Id, Order::Asc)
            .to_owned();
        for row in db.query_all(backend.build(&query)).await.map_err(db_err)? {
            let (event_id, call) = to_call(&row)?;
            call_ids.push(call.id.0);
            calls_by_event.entry(event_id).or_default().push(call);
        }
    }
    Ok((calls_by_event, call_ids))
}

/// The attempts of the calls, by call id, oldest first (`attempts_queue_item`).
async fn attempts_of(
    db: &DatabaseConnection,
    call_ids: &[i64],
) -> Result<HashMap<i64, Vec<Attempt>>, StoreError> {
    let mut log: HashMap<i64, Vec<Attempt>> = HashMap::new();
    for chunk in call_ids.chunks(IN_CHUNK) {
        let rows = attempt::Entity::find()
            .filter(attempt::Column::QueueItemId.is_in(chunk.iter().copied()))
            .order_by_asc(attempt::Column::Id)
            .all(db)
            .await
            .map_err(db_err)?;
        for m in rows {
            log.entry(m.queue_item_id)
                .or_default()
                .push(crate::queue::to_attempt(m)?);
        }
    }
    Ok(log)
}

fn to_event(row: &QueryResult, with_payload: bool) -> Result<LoggedEvent, StoreError> {
    let (entity, previous) = if with_payload {
        let text: String = row.try_get_by_index(6).map_err(db_err)?;
        let previous: Option<String> = row.try_get_by_index(7).map_err(db_err)?;
        (
            Some(serde_json::from_str(&text).map_err(json_err)?),
            previous
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(json_err)?,
        )
    } else {
        (None, None)
    };
    Ok(LoggedEvent {
        id: EventId(row.try_get_by_index(0).map_err(db_err)?),
        shop_id: ShopId(row.try_get_by_index(1).map_err(db_err)?),
        event_type: row.try_get_by_index(2).map_err(db_err)?,
        entity_id: row.try_get_by_index(3).map_err(db_err)?,
        occurred_at: Timestamp(row.try_get_by_index(4).map_err(db_err)?),
        received_at: Timestamp(row.try_get_by_index(5).map_err(db_err)?),
        entity,
        previous,
        calls: Vec::new(),
    })
}

/// A call row and the event it belongs to.
fn to_call(row: &QueryResult) -> Result<(i64, LoggedCall), StoreError> {
    let status: queue_item::Status = row.try_get_by_index(4).map_err(db_err)?;
    let status = CallStatus::from(status);
    Ok((
        row.try_get_by_index(1).map_err(db_err)?,
        LoggedCall {
            id: CallId(row.try_get_by_index(0).map_err(db_err)?),
            trigger_id: TriggerId(row.try_get_by_index(2).map_err(db_err)?),
            action_index: row.try_get_by_index(3).map_err(db_err)?,
            status,
            status_code: row.try_get_by_index(5).map_err(db_err)?,
            success: status == CallStatus::Succeeded,
            attempts: row.try_get_by_index(6).map_err(db_err)?,
            attempt_log: None,
        },
    ))
}

/// `None` when there is no such event.
pub(crate) async fn resend_event(
    db: &DatabaseConnection,
    id: EventId,
    budget: &AttemptBudget,
    now: Timestamp,
) -> Result<Option<u64>, StoreError> {
    let result = crate::queue::requeue(budget, now)
        .filter(queue_item::Column::EventId.eq(id.0))
        .filter(crate::queue::action_not_deactivated())
        .exec(db)
        .await
        .map_err(db_err)?;
    if result.rows_affected > 0 {
        return Ok(Some(result.rows_affected));
    }
    // Nothing queued: an event whose calls are all in flight (or that queued none), or no
    // event at all.
    let exists = Query::select()
        .column(event::Column::Id)
        .from(event::Entity)
        .and_where(Expr::col(event::Column::Id).eq(id.0))
        .to_owned();
    let backend = db.get_database_backend();
    let found = db.query_one(backend.build(&exists)).await.map_err(db_err)?;
    Ok(found.map(|_| 0))
}

pub(crate) async fn resend_calls(
    db: &DatabaseConnection,
    f: &ResendFilter,
    budget: &AttemptBudget,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let update = crate::queue::requeue(budget, now)
        .filter(crate::queue::selection(
            Some(f.status),
            f.trigger_id,
            f.event_type.as_deref(),
            (f.from, f.to),
            f.shop_id,
            f.shops.as_deref(),
        ))
        .filter(crate::queue::action_not_deactivated());
    Ok(update.exec(db).await.map_err(db_err)?.rows_affected)
}
