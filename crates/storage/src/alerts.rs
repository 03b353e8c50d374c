//! Alerts and action states: calls that failed for good are counted on one open alert per
//! action, and an action whose policy says so is deactivated.

use hookflow_engine::model::{CallId, Completion, ShopId, Timestamp, TriggerId};
use hookflow_engine::store::{Alert, CompleteOutcome, FailedCall, StoreError};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, Set, Statement,
};

use crate::db_err;
use crate::entities::{action_state, alert, queue_item};

const CALL_FAILED: &str = "callFailed";
const ACTION_DEACTIVATED: &str = "actionDeactivated";

fn to_alert(m: alert::Model) -> Alert {
    Alert {
        id: m.id,
        trigger_id: TriggerId(m.trigger_id),
        action_index: m.action_index,
        shop_id: m.shop_id.map(ShopId),
        call_id: m.call_id.map(CallId),
        kind: m.kind,
        last_status_code: m.last_status_code,
        last_error: m.last_error,
        count: m.count,
        acknowledged: m.acknowledged,
        created_at: Timestamp(m.created_at),
        updated_at: Timestamp(m.updated_at),
    }
}

/// Adds a failure to the action's open alert of `kind`, or opens one.
async fn raise(
    txn: &impl ConnectionTrait,
    kind: &str,
    failed: &FailedCall,
    now: Timestamp,
) -> Result<(), StoreError> {
    let updated = alert::Entity::update_many()
        .col_expr(alert::Column::Count, Expr::col(alert::Column::Count).add(1))
        .col_expr(alert::Column::CallId, Expr::value(failed.call.0))
        .col_expr(
            alert::Column::LastStatusCode,
            Expr::value(failed.status_code),
        )
        .col_expr(alert::Column::LastError, Expr::value(failed.error.clone()))
        .col_expr(alert::Column::UpdatedAt, Expr::value(now.0))
        .filter(alert::Column::TriggerId.eq(failed.trigger_id.0))
        .filter(alert::Column::ActionIndex.eq(failed.action_index))
        .filter(alert::Column::Kind.eq(kind))
        .filter(alert::Column::Acknowledged.eq(false))
        .exec(txn)
        .await
        .map_err(db_err)?;
    if updated.rows_affected == 0 {
        let shop_id = queue_item::Entity::find_by_id(failed.call.0)
            .one(txn)
            .await
            .map_err(db_err)?
            .map(|item| item.shop_id);
        alert::ActiveModel {
            trigger_id: Set(failed.trigger_id.0),
            action_index: Set(failed.action_index),
            shop_id: Set(shop_id),
            call_id: Set(Some(failed.call.0)),
            kind: Set(kind.to_owned()),
            last_status_code: Set(failed.status_code),
            last_error: Set(failed.error.clone()),
            count: Set(1),
            acknowledged: Set(false),
            created_at: Set(now.0),
            updated_at: Set(now.0),
            ..Default::default()
        }
        .insert(txn)
        .await
        .map_err(db_err)?;
    }
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
        trigger_id: c.trigger_id,
        action_index: c.action_index,
        status_code: c.attempt.status_code,
        error: c
            .attempt
            .error
            .clone()
            .or_else(|| c.attempt.status_code.map(|s| format!("HTTP {s}"))),
    };
    raise(txn, CALL_FAILED, &failed, now).await?;
    let backend = txn.get_database_backend();
    let (p1, p2) = if backend == DbBackend::Postgres {
        ("$1", "$2")
    } else {
        ("?", "?")
    };
    // One statement both creates the state row and counts the failure.
    let row = txn
        .query_one(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO action_states (trigger_id, action_index, consecutive_failures) VALUES ({p1}, {p2}, 1) \
                 ON CONFLICT (trigger_id, action_index) DO UPDATE \
                 SET consecutive_failures = action_states.consecutive_failures + 1 \
                 RETURNING consecutive_failures, deactivated_at"
            ),
            [c.trigger_id.0.into(), c.action_index.into()],
        ))
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError("counting a failure returned nothing".into()))?;
    let failures: i32 = row.try_get_by_index(0).map_err(db_err)?;
    let deactivated_at: Option<i64> = row.try_get_by_index(1).map_err(db_err)?;
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
            .filter(action_state::Column::TriggerId.eq(c.trigger_id.0))
            .filter(action_state::Column::ActionIndex.eq(c.action_index))
            .exec(txn)
            .await
            .map_err(db_err)?;
        raise(txn, ACTION_DEACTIVATED, &failed, now).await?;
        outcome.deactivated.push(failed.clone());
    }
    outcome.failed.push(failed);
    Ok(())
}

/// A call of the action succeeded: its run of failures is over.
pub(crate) async fn action_succeeded(
    txn: &impl ConnectionTrait,
    trigger: TriggerId,
    action_index: i32,
) -> Result<(), StoreError> {
    action_state::Entity::update_many()
        .col_expr(action_state::Column::ConsecutiveFailures, Expr::value(0))
        .filter(action_state::Column::TriggerId.eq(trigger.0))
        .filter(action_state::Column::ActionIndex.eq(action_index))
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
    Ok(rows.into_iter().map(to_alert).collect())
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
    Ok(Some(to_alert(model.update(db).await.map_err(db_err)?)))
}

pub(crate) async fn deactivated(
    db: &DatabaseConnection,
) -> Result<Vec<(TriggerId, i32, Timestamp)>, StoreError> {
    let rows = action_state::Entity::find()
        .filter(action_state::Column::DeactivatedAt.is_not_null())
        .all(db)
        .await
        .map_err(db_err)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                TriggerId(r.trigger_id),
                r.action_index,
                Timestamp(r.deactivated_at.unwrap_or_default()),
            )
        })
        .collect())
}

pub(crate) async fn set_active(
    db: &DatabaseConnection,
    trigger: TriggerId,
    action_index: i32,
    active: bool,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    let ph: Vec<String> = (1..=4)
        .map(|i| {
            if backend == DbBackend::Postgres {
                format!("${i}")
            } else {
                "?".into()
            }
        })
        .collect();
    let (deactivated_at, reason): (Option<i64>, Option<String>) = if active {
        (None, None)
    } else {
        (
            Some(now.0),
            Some(reason.unwrap_or("deactivated by an admin").to_owned()),
        )
    };
    db.execute(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO action_states (trigger_id, action_index, consecutive_failures, deactivated_at, deactivated_reason) \
             VALUES ({}, {}, 0, {}, {}) ON CONFLICT (trigger_id, action_index) DO UPDATE \
             SET consecutive_failures = 0, deactivated_at = excluded.deactivated_at, \
             deactivated_reason = excluded.deactivated_reason",
            ph[0], ph[1], ph[2], ph[3]
        ),
        [trigger.0.into(), action_index.into(), deactivated_at.into(), reason.into()],
    ))
    .await
    .map_err(db_err)?;
    Ok(())
}
