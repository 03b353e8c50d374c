//! Alerts and action states: calls that failed for good are counted on one open alert per
//! action, and an action whose policy says so is deactivated.

use hookflow_engine::model::{ActionRef, CallId, Completion, ShopId, Timestamp};
use hookflow_engine::notify::NoticeKind;
use hookflow_engine::store::{Alert, CompleteOutcome, FailedCall, StoreError};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};

use crate::entities::{action_state, alert, queue_item};
use crate::{action_ref, db_err};

fn to_alert(m: alert::Model) -> Result<Alert, StoreError> {
    Ok(Alert {
        id: m.id,
        action: action_ref("alerts", m.trigger_id, m.action_index)?,
        shop_id: m.shop_id.map(ShopId),
        call_id: m.call_id.map(CallId),
        kind: m.kind.into(),
        last_status_code: m.last_status_code,
        last_error: m.last_error,
        count: m.count,
        acknowledged: m.acknowledged,
        created_at: Timestamp(m.created_at),
        updated_at: Timestamp(m.updated_at),
    })
}

/// Adds a failure to the action's open alert of `kind`, or opens one.
async fn raise(
    txn: &impl ConnectionTrait,
    kind: NoticeKind,
    failed: &FailedCall,
    now: Timestamp,
) -> Result<(), StoreError> {
    let shop_id = queue_item::Entity::find_by_id(failed.call.0)
        .one(txn)
        .await
        .map_err(db_err)?
        .map(|item| item.shop_id);
    // One statement, atomic against `alerts_open`: a failure adds to the open alert of its
    // action and kind, or opens it. The conflict target repeats the index's predicate as a
    // constant (not a bound value), so both databases can tell it is that partial index.
    let open = OnConflict::columns([
        alert::Column::TriggerId,
        alert::Column::ActionIndex,
        alert::Column::Kind,
    ])
    .target_and_where(Expr::col(alert::Column::Acknowledged).eq(Expr::cust("false")))
    .value(
        alert::Column::Count,
        Expr::col((alert::Entity, alert::Column::Count)).add(1),
    )
    .update_columns([
        alert::Column::CallId,
        alert::Column::LastStatusCode,
        alert::Column::LastError,
        alert::Column::UpdatedAt,
    ])
    .to_owned();
    let insert = Query::insert()
        .into_table(alert::Entity)
        .columns([
            alert::Column::TriggerId,
            alert::Column::ActionIndex,
            alert::Column::ShopId,
            alert::Column::CallId,
            alert::Column::Kind,
            alert::Column::LastStatusCode,
            alert::Column::LastError,
            alert::Column::Count,
            alert::Column::Acknowledged,
            alert::Column::CreatedAt,
            alert::Column::UpdatedAt,
        ])
        .values_panic([
            failed.action.trigger.0.into(),
            i32::from(failed.action.index).into(),
            shop_id.into(),
            failed.call.0.into(),
            alert::Kind::from(kind).into(),
            failed.status_code.into(),
            failed.error.clone().into(),
            1i32.into(),
            false.into(),
            now.0.into(),
            now.0.into(),
        ])
        .on_conflict(open)
        .to_owned();
    let backend = txn.get_database_backend();
    txn.execute(backend.build(&insert)).await.map_err(db_err)?;
    Ok(())
}

/// A call failed for good: alert, count it against its action, deactivate if the policy says.
pub(crate) async fn call_failed(
    txn: &impl ConnectionTrait,
    c: &Completion,
    now: Timestamp,
    outcome: &mut CompleteOutcome,
) -> Result<(), StoreError> {
    let failed = FailedCall {
        call: c.call,
        action: c.action,
        status_code: c.attempt.status_code,
        error: c
            .attempt
            .error
            .clone()
            .or_else(|| c.attempt.status_code.map(|s| format!("HTTP {s}"))),
    };
    raise(txn, NoticeKind::CallFailed, &failed, now).await?;
    let (failures, deactivated_at) = count_failure(txn, c.action).await?;
    let threshold = c.deactivate_after.is_some_and(|n| failures >= n as i32);
    if deactivated_at.is_none() && (c.deactivate_now || threshold) {
        let reason = if c.deactivate_now {
            "its retry policy ran out".to_owned()
        } else {
            format!("{failures} calls in a row failed")
        };
        action_state::Entity::update_many()
            .col_expr(action_state::Column::DeactivatedAt, Expr::value(now.0))
            .col_expr(action_state::Column::DeactivatedReason, Expr::value(reason))
            .filter(action_state::Column::TriggerId.eq(c.action.trigger.0))
            .filter(action_state::Column::ActionIndex.eq(i32::from(c.action.index)))
            .exec(txn)
            .await
            .map_err(db_err)?;
        // What events match changed: every node's ingest sees it (see `generation`).
        crate::generation::bump(txn).await?;
        raise(txn, NoticeKind::ActionDeactivated, &failed, now).await?;
        outcome.deactivated.push(failed.clone());
    }
    outcome.failed.push(failed);
    Ok(())
}

/// Counts a failure for good against the action, making its state row if it has none, in one
/// statement; answers the failures in a row and when the action was deactivated (if it is).
async fn count_failure(
    txn: &impl ConnectionTrait,
    action: ActionRef,
) -> Result<(i32, Option<i64>), StoreError> {
    // One statement both creates the state row and counts the failure.
    let count = Query::insert()
        .into_table(action_state::Entity)
        .columns([
            action_state::Column::TriggerId,
            action_state::Column::ActionIndex,
            action_state::Column::ConsecutiveFailures,
        ])
        .values_panic([
            action.trigger.0.into(),
            i32::from(action.index).into(),
            1i32.into(),
        ])
        .on_conflict(
            OnConflict::columns([
                action_state::Column::TriggerId,
                action_state::Column::ActionIndex,
            ])
            .value(
                action_state::Column::ConsecutiveFailures,
                Expr::col((
                    action_state::Entity,
                    action_state::Column::ConsecutiveFailures,
                ))
                .add(1),
            )
            .to_owned(),
        )
        .returning(Query::returning().columns([
            action_state::Column::ConsecutiveFailures,
            action_state::Column::DeactivatedAt,
        ]))
        .to_owned();
    let backend = txn.get_database_backend();
    let row = txn
        .query_one(backend.build(&count))
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::new("counting a failure returned nothing"))?;
    let failures: i32 = row.try_get_by_index(0).map_err(db_err)?;
    let deactivated_at: Option<i64> = row.try_get_by_index(1).map_err(db_err)?;
    Ok((failures, deactivated_at))
}

/// A call of the action succeeded: its run of failures is over.
pub(crate) async fn action_succeeded(
    txn: &impl ConnectionTrait,
    action: ActionRef,
) -> Result<(), StoreError> {
    action_state::Entity::update_many()
        .col_expr(action_state::Column::ConsecutiveFailures, Expr::value(0))
        .filter(action_state::Column::TriggerId.eq(action.trigger.0))
        .filter(action_state::Column::ActionIndex.eq(i32::from(action.index)))
        .filter(action_state::Column::ConsecutiveFailures.gt(0))
        .exec(txn)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list(
    db: &DatabaseConnection,
    acknowledged: Option<bool>,
) -> Result<Vec<Alert>, StoreError> {
    let mut query = alert::Entity::find();
    if let Some(ack) = acknowledged {
        query = query.filter(alert::Column::Acknowledged.eq(ack));
    }
    let rows = query
        .order_by_desc(alert::Column::UpdatedAt)
        .order_by_desc(alert::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    rows.into_iter().map(to_alert).collect()
}

pub(crate) async fn ack(
    db: &DatabaseConnection,
    id: i64,
    now: Timestamp,
) -> Result<Option<Alert>, StoreError> {
    let Some(found) = alert::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let mut model: alert::ActiveModel = found.into();
    model.acknowledged = Set(true);
    model.updated_at = Set(now.0);
    to_alert(model.update(db).await.map_err(db_err)?).map(Some)
}

pub(crate) async fn deactivated(
    db: &DatabaseConnection,
) -> Result<Vec<(ActionRef, Timestamp)>, StoreError> {
    let rows = action_state::Entity::find()
        .filter(action_state::Column::DeactivatedAt.is_not_null())
        .all(db)
        .await
        .map_err(db_err)?;
    rows.into_iter()
        .map(|r| {
            Ok((
                action_ref("action_states", r.trigger_id, r.action_index)?,
                Timestamp(r.deactivated_at.unwrap_or_default()),
            ))
        })
        .collect()
}

pub(crate) async fn set_active(
    db: &impl ConnectionTrait,
    action: ActionRef,
    active: bool,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (deactivated_at, reason): (Option<i64>, Option<String>) = if active {
        (None, None)
    } else {
        (
            Some(now.0),
            Some(reason.unwrap_or("deactivated by an admin").to_owned()),
        )
    };
    let upsert = Query::insert()
        .into_table(action_state::Entity)
        .columns([
            action_state::Column::TriggerId,
            action_state::Column::ActionIndex,
            action_state::Column::ConsecutiveFailures,
            action_state::Column::DeactivatedAt,
            action_state::Column::DeactivatedReason,
        ])
        .values_panic([
            action.trigger.0.into(),
            i32::from(action.index).into(),
            0i32.into(),
            deactivated_at.into(),
            reason.into(),
        ])
        .on_conflict(
            OnConflict::columns([
                action_state::Column::TriggerId,
                action_state::Column::ActionIndex,
            ])
            // The run of failures starts again (from the 0 inserted) either way.
            .update_columns([
                action_state::Column::ConsecutiveFailures,
                action_state::Column::DeactivatedAt,
                action_state::Column::DeactivatedReason,
            ])
            .to_owned(),
        )
        .to_owned();
    let backend = db.get_database_backend();
    db.execute(backend.build(&upsert)).await.map_err(db_err)?;
    Ok(())
}
