//! The webhook queue: claiming due calls under a lease, recording attempts, and the operator
//! views (list, detail, retry, cancel).

use std::collections::BTreeMap;

use hookflow_engine::model::{
    Attempt, CallId, CallStatus, ClaimedCall, Completion, EventId, Method, Next, QueueFilter,
    QueueItem, ShopId, Timestamp, TriggerId,
};
use hookflow_engine::store::{CancelOutcome, RetryOutcome, StoreError};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
};

use crate::entities::{attempt, queue_item};
use crate::{db_err, json_err};

/// Rows per multi-row attempt INSERT (9 columns; SQLite allows 32 766 parameters).
const ATTEMPT_CHUNK: usize = 1000;

const CLAIM_RETURNING: &str =
    "RETURNING id, webhook_id, method, url, headers, body, attempts, max_attempts, created_at, priority, \
     trigger_id, action_index";

/// Claims due calls. The subquery picks the highest-priority due items through the
/// `queue_items_claim` index. On PostgreSQL `FOR UPDATE SKIP LOCKED` makes concurrent claimers
/// (other nodes) skip rows another claimer holds instead of waiting or double-claiming; SQLite
/// has a single writer, so the UPDATE alone is atomic there.
pub(crate) async fn claim(
    db: &DatabaseConnection,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<ClaimedCall>, StoreError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "UPDATE queue_items SET status = 'in_flight', lease_until = $1, updated_at = $2 \
             WHERE id IN (SELECT id FROM queue_items WHERE status = 'pending' AND next_attempt_at <= $3 \
             ORDER BY priority DESC, next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) {CLAIM_RETURNING}"
        ),
        _ => format!(
            "UPDATE queue_items SET status = 'in_flight', lease_until = ?, updated_at = ? \
             WHERE id IN (SELECT id FROM queue_items WHERE status = 'pending' AND next_attempt_at <= ? \
             ORDER BY priority DESC, next_attempt_at, id LIMIT ?) {CLAIM_RETURNING}"
        ),
    };
    let stmt = Statement::from_sql_and_values(
        backend,
        sql,
        [
            lease_until.0.into(),
            now.0.into(),
            now.0.into(),
            (limit as i64).into(),
        ],
    );
    let rows = db.query_all(stmt).await.map_err(db_err)?;
    let mut calls = Vec::with_capacity(rows.len());
    for row in rows {
        let get_err = db_err;
        let method: String = row.try_get_by_index(2).map_err(get_err)?;
        let headers: String = row.try_get_by_index(4).map_err(get_err)?;
        let priority: i32 = row.try_get_by_index(9).map_err(get_err)?;
        calls.push((
            priority,
            ClaimedCall {
                id: CallId(row.try_get_by_index(0).map_err(get_err)?),
                trigger_id: TriggerId(row.try_get_by_index(10).map_err(get_err)?),
                action_index: row.try_get_by_index(11).map_err(get_err)?,
                webhook_id: row.try_get_by_index(1).map_err(get_err)?,
                method: method.parse().unwrap_or(Method::Post),
                url: row.try_get_by_index(3).map_err(get_err)?,
                headers: serde_json::from_str(&headers).map_err(json_err)?,
                body: row.try_get_by_index(5).map_err(get_err)?,
                attempts: row.try_get_by_index(6).map_err(get_err)?,
                max_attempts: row.try_get_by_index(7).map_err(get_err)?,
                created_at: Timestamp(row.try_get_by_index(8).map_err(get_err)?),
            },
        ));
    }
    // RETURNING has no order; send the most important first.
    calls.sort_by_key(|(priority, call)| (-priority, call.id));
    Ok(calls.into_iter().map(|(_, c)| c).collect())
}

/// Records a batch of attempts and moves their calls on, in one transaction. Successes with
/// the same status code share one UPDATE; retries and failures are one UPDATE each.
pub(crate) async fn complete(
    db: &DatabaseConnection,
    done: &[Completion],
    now: Timestamp,
) -> Result<(), StoreError> {
    if done.is_empty() {
        return Ok(());
    }
    let txn = db.begin().await.map_err(db_err)?;
    let backend = txn.get_database_backend();
    // The attempt log is written first: on SQLite the first statement takes the write lock.
    for chunk in done.chunks(ATTEMPT_CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(attempt::Entity).columns([
            attempt::Column::QueueItemId,
            attempt::Column::Attempt,
            attempt::Column::StartedAt,
            attempt::Column::DurationMs,
            attempt::Column::StatusCode,
            attempt::Column::ResponseHeaders,
            attempt::Column::ResponseBody,
            attempt::Column::Error,
        ]);
        for c in chunk {
            let a = &c.attempt;
            insert.values_panic([
                c.call.0.into(),
                a.attempt.into(),
                a.started_at.0.into(),
                a.duration_ms.into(),
                a.status_code.into(),
                serde_json::to_string(&a.response_headers)
                    .map_err(json_err)?
                    .into(),
                a.response_body.as_str().into(),
                a.error.clone().into(),
            ]);
        }
        txn.execute(backend.build(&insert)).await.map_err(db_err)?;
    }

    let mut succeeded: BTreeMap<Option<i32>, Vec<i64>> = BTreeMap::new();
    for c in done {
        match c.next {
            Next::Succeeded => succeeded
                .entry(c.attempt.status_code)
                .or_default()
                .push(c.call.0),
            Next::RetryAt(at) => {
                transition(&txn, backend, c, CallStatus::Pending, at, now).await?;
            }
            Next::Failed => {
                transition(&txn, backend, c, CallStatus::Failed, now, now).await?;
            }
        }
    }
    for (code, ids) in succeeded {
        let update = Query::update()
            .table(queue_item::Entity)
            .value(queue_item::Column::Status, CallStatus::Succeeded.as_str())
            .value(
                queue_item::Column::Attempts,
                Expr::col(queue_item::Column::Attempts).add(1),
            )
            .value(queue_item::Column::LeaseUntil, Option::<i64>::None)
            .value(queue_item::Column::LastStatusCode, code)
            .value(queue_item::Column::LastError, Option::<String>::None)
            .value(queue_item::Column::UpdatedAt, now.0)
            .and_where(Expr::col(queue_item::Column::Id).is_in(ids))
            .and_where(Expr::col(queue_item::Column::Status).eq(CallStatus::InFlight.as_str()))
            .to_owned();
        txn.execute(backend.build(&update)).await.map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)
}

async fn transition(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    c: &Completion,
    status: CallStatus,
    next_attempt_at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let error = c
        .attempt
        .error
        .clone()
        .or_else(|| c.attempt.status_code.map(|s| format!("HTTP {s}")));
    let update = Query::update()
        .table(queue_item::Entity)
        .value(queue_item::Column::Status, status.as_str())
        .value(
            queue_item::Column::Attempts,
            Expr::col(queue_item::Column::Attempts).add(1),
        )
        .value(queue_item::Column::NextAttemptAt, next_attempt_at.0)
        .value(queue_item::Column::LeaseUntil, Option::<i64>::None)
        .value(queue_item::Column::LastStatusCode, c.attempt.status_code)
        .value(queue_item::Column::LastError, error)
        .value(queue_item::Column::UpdatedAt, now.0)
        .and_where(Expr::col(queue_item::Column::Id).eq(c.call.0))
        .and_where(Expr::col(queue_item::Column::Status).eq(CallStatus::InFlight.as_str()))
        .to_owned();
    txn.execute(backend.build(&update)).await.map_err(db_err)?;
    Ok(())
}

/// Returns in-flight calls whose lease expired to the queue, due at once.
pub(crate) async fn release_expired(
    db: &DatabaseConnection,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let result = queue_item::Entity::update_many()
        .col_expr(
            queue_item::Column::Status,
            Expr::value(CallStatus::Pending.as_str()),
        )
        .col_expr(
            queue_item::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(queue_item::Column::NextAttemptAt, Expr::value(now.0))
        .col_expr(queue_item::Column::UpdatedAt, Expr::value(now.0))
        .filter(queue_item::Column::Status.eq(CallStatus::InFlight.as_str()))
        .filter(queue_item::Column::LeaseUntil.lt(now.0))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(result.rows_affected)
}

fn to_item(m: queue_item::Model) -> Result<QueueItem, StoreError> {
    Ok(QueueItem {
        id: CallId(m.id),
        webhook_id: m.webhook_id,
        event_id: EventId(m.event_id),
        trigger_id: TriggerId(m.trigger_id),
        action_index: m.action_index,
        shop_id: ShopId(m.shop_id),
        event_type: m.event_type,
        entity_id: m.entity_id,
        method: m.method.parse().unwrap_or(Method::Post),
        url: m.url,
        headers: serde_json::from_str(&m.headers).map_err(json_err)?,
        body: m.body,
        priority: m.priority,
        status: m.status.parse().map_err(StoreError)?,
        attempts: m.attempts,
        max_attempts: m.max_attempts,
        next_attempt_at: Timestamp(m.next_attempt_at),
        last_status_code: m.last_status_code,
        last_error: m.last_error,
        created_at: Timestamp(m.created_at),
        updated_at: Timestamp(m.updated_at),
    })
}

fn to_attempt(m: attempt::Model) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        attempt: m.attempt,
        started_at: Timestamp(m.started_at),
        duration_ms: m.duration_ms,
        status_code: m.status_code,
        response_headers: serde_json::from_str(&m.response_headers).map_err(json_err)?,
        response_body: m.response_body,
        error: m.error,
    })
}

pub(crate) async fn list(
    db: &DatabaseConnection,
    f: &QueueFilter,
) -> Result<Vec<QueueItem>, StoreError> {
    let mut query = queue_item::Entity::find();
    if let Some(status) = f.status {
        query = query.filter(queue_item::Column::Status.eq(status.as_str()));
    }
    if let Some(trigger) = f.trigger_id {
        query = query.filter(queue_item::Column::TriggerId.eq(trigger.0));
    }
    if let Some(event_type) = &f.event_type {
        query = query.filter(queue_item::Column::EventType.eq(event_type.as_str()));
    }
    if let Some(from) = f.from {
        query = query.filter(queue_item::Column::CreatedAt.gte(from.0));
    }
    if let Some(to) = f.to {
        query = query.filter(queue_item::Column::CreatedAt.lt(to.0));
    }
    if let Some(before) = f.before {
        query = query.filter(queue_item::Column::Id.lt(before.0));
    }
    let rows = query
        .order_by_desc(queue_item::Column::Id)
        .limit(u64::from(f.limit))
        .all(db)
        .await
        .map_err(db_err)?;
    rows.into_iter().map(to_item).collect()
}

pub(crate) async fn get(
    db: &DatabaseConnection,
    id: CallId,
) -> Result<Option<(QueueItem, Vec<Attempt>)>, StoreError> {
    let Some(item) = queue_item::Entity::find_by_id(id.0)
        .one(db)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let attempts = attempt::Entity::find()
        .filter(attempt::Column::QueueItemId.eq(id.0))
        .order_by_asc(attempt::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    Ok(Some((
        to_item(item)?,
        attempts
            .into_iter()
            .map(to_attempt)
            .collect::<Result<_, _>>()?,
    )))
}

async fn find(db: &DatabaseConnection, id: CallId) -> Result<Option<QueueItem>, StoreError> {
    queue_item::Entity::find_by_id(id.0)
        .one(db)
        .await
        .map_err(db_err)?
        .map(to_item)
        .transpose()
}

pub(crate) async fn retry(
    db: &DatabaseConnection,
    id: CallId,
    extra_attempts: i32,
    now: Timestamp,
) -> Result<RetryOutcome, StoreError> {
    let result = queue_item::Entity::update_many()
        .col_expr(
            queue_item::Column::Status,
            Expr::value(CallStatus::Pending.as_str()),
        )
        .col_expr(queue_item::Column::NextAttemptAt, Expr::value(now.0))
        .col_expr(
            queue_item::Column::MaxAttempts,
            Expr::col(queue_item::Column::Attempts).add(extra_attempts),
        )
        .col_expr(
            queue_item::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(queue_item::Column::UpdatedAt, Expr::value(now.0))
        .filter(queue_item::Column::Id.eq(id.0))
        .filter(queue_item::Column::Status.ne(CallStatus::InFlight.as_str()))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(match (result.rows_affected, find(db, id).await?) {
        (_, None) => RetryOutcome::NotFound,
        (0, Some(item)) => RetryOutcome::InFlight(item),
        (_, Some(item)) => RetryOutcome::Queued(item),
    })
}

pub(crate) async fn cancel(
    db: &DatabaseConnection,
    id: CallId,
    now: Timestamp,
) -> Result<CancelOutcome, StoreError> {
    let result = queue_item::Entity::update_many()
        .col_expr(
            queue_item::Column::Status,
            Expr::value(CallStatus::Cancelled.as_str()),
        )
        .col_expr(
            queue_item::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(queue_item::Column::UpdatedAt, Expr::value(now.0))
        .filter(queue_item::Column::Id.eq(id.0))
        .filter(
            queue_item::Column::Status
                .is_in([CallStatus::Pending.as_str(), CallStatus::InFlight.as_str()]),
        )
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(match (result.rows_affected, find(db, id).await?) {
        (_, None) => CancelOutcome::NotFound,
        (0, Some(item)) => CancelOutcome::Finished(item),
        (_, Some(item)) => CancelOutcome::Cancelled(item),
    })
}
