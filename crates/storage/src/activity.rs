//! Each trigger's activity: its evaluations (written by ingest, in the same transaction as
//! the event) read back newest first, with the calls they made.

use std::collections::HashMap;

use hookflow_engine::model::{CallId, CallStatus, EventId, ShopId, Timestamp, TriggerId};
use hookflow_engine::store::{Activity, ActivityCall, ActivityFilter, StoreError};
use sea_orm::sea_query::{Expr, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::db_err;
use crate::entities::{event, queue_item, trigger_evaluation as te};

/// A page of a trigger's evaluations (`trigger_evaluations_trigger`), joined to their events,
/// then the calls of the whole page in one more statement (`queue_items_event`).
pub(crate) async fn list(
    db: &DatabaseConnection,
    trigger: TriggerId,
    filter: &ActivityFilter,
) -> Result<Vec<Activity>, StoreError> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .columns([
            (te::Entity, te::Column::EventId),
            (te::Entity, te::Column::Matched),
            (te::Entity, te::Column::DecidedBy),
            (te::Entity, te::Column::EvaluatedAt),
        ])
        .columns([
            (event::Entity, event::Column::ShopId),
            (event::Entity, event::Column::EntityId),
        ])
        .from(te::Entity)
        .inner_join(
            event::Entity,
            Expr::col((event::Entity, event::Column::Id)).equals((te::Entity, te::Column::EventId)),
        )
        .and_where(Expr::col((te::Entity, te::Column::TriggerId)).eq(trigger.0));
    if let Some(matched) = filter.matched {
        select.and_where(Expr::col((te::Entity, te::Column::Matched)).eq(matched));
    }
    if let Some(from) = filter.from {
        select.and_where(Expr::col((te::Entity, te::Column::EvaluatedAt)).gte(from.0));
    }
    if let Some(to) = filter.to {
        select.and_where(Expr::col((te::Entity, te::Column::EvaluatedAt)).lt(to.0));
    }
    if let Some(entity_id) = &filter.entity_id {
        select
            .and_where(Expr::col((event::Entity, event::Column::EntityId)).eq(entity_id.as_str()));
    }
    if let Some(before) = filter.before {
        select.and_where(Expr::col((te::Entity, te::Column::EventId)).lt(before.0));
    }
    select
        .order_by((te::Entity, te::Column::EventId), Order::Desc)
        .limit(u64::from(filter.limit));
    let rows = db.query_all(backend.build(&select)).await.map_err(db_err)?;
    let mut page = Vec::with_capacity(rows.len());
    for row in &rows {
        page.push(Activity {
            event_id: EventId(row.try_get_by_index(0).map_err(db_err)?),
            matched: row.try_get_by_index(1).map_err(db_err)?,
            decided_by: row.try_get_by_index(2).map_err(db_err)?,
            evaluated_at: Timestamp(row.try_get_by_index(3).map_err(db_err)?),
            shop_id: ShopId(row.try_get_by_index(4).map_err(db_err)?),
            entity_id: row.try_get_by_index(5).map_err(db_err)?,
            calls: Vec::new(),
        });
    }
    let fired: Vec<i64> = page
        .iter()
        .filter(|a| a.matched)
        .map(|a| a.event_id.0)
        .collect();
    if fired.is_empty() {
        return Ok(page);
    }
    let calls = Query::select()
        .columns([
            queue_item::Column::Id,
            queue_item::Column::EventId,
            queue_item::Column::ActionIndex,
            queue_item::Column::Status,
            queue_item::Column::LastStatusCode,
        ])
        .from(queue_item::Entity)
        .and_where(Expr::col(queue_item::Column::EventId).is_in(fired))
        .and_where(Expr::col(queue_item::Column::TriggerId).eq(trigger.0))
        .order_by(queue_item::Column::Id, Order::Asc)
        .to_owned();
    let mut by_event: HashMap<i64, Vec<ActivityCall>> = HashMap::new();
    for row in db.query_all(backend.build(&calls)).await.map_err(db_err)? {
        let status: queue_item::Status = row.try_get_by_index(3).map_err(db_err)?;
        by_event
            .entry(row.try_get_by_index(1).map_err(db_err)?)
            .or_default()
            .push(ActivityCall {
                id: CallId(row.try_get_by_index(0).map_err(db_err)?),
                action_index: row.try_get_by_index(2).map_err(db_err)?,
                status: CallStatus::from(status),
                status_code: row.try_get_by_index(4).map_err(db_err)?,
            });
    }
    for activity in &mut page {
        activity.calls = by_event.remove(&activity.event_id.0).unwrap_or_default();
    }
    Ok(page)
}
