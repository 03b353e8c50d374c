//! Retention: deleting old finished calls (with their attempts) and old events that have no
//! calls left, one small batch per transaction.
//!
//! Old rows are found through indexes on creation times (`queue_items_created`,
//! `events_received`), which never change after insert. A call's age counts from its last
//! change (`updated_at`, e.g. a resend), which is never earlier than its creation, so
//! "changed before the cutoff" implies "created before the cutoff" and the index bounds the
//! scan. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets several nodes prune at once without
//! waiting on each other's batches.

use hookflow_engine::model::{CallStatus, Timestamp};
use hookflow_engine::store::StoreError;
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};

use crate::db_err;
use crate::entities::{attempt, event, queue_item};

/// Ids per `IN (...)` list when deleting attempts.
const IN_CHUNK: usize = 1000;

fn skip_locked(backend: DbBackend, select: &mut SelectStatement) {
    if backend == DbBackend::Postgres {
        select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
}

/// The status column for the pruning query. SQLite has no statistics to go by and would pick
/// `queue_items_claim` for the status test, walking every succeeded call to find the few old
/// ones; a unary `+` keeps that index out so it uses `queue_items_created`. PostgreSQL's
/// planner has statistics and chooses for itself.
fn status_column(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Sqlite => Expr::expr(Expr::cust(r#"+"status""#)),
        _ => Expr::col(queue_item::Column::Status),
    }
}

/// Deletes up to `limit` calls in one of `statuses` that last changed before `before`, and
/// their attempts, in one transaction. Returns how many calls went.
pub(crate) async fn prune_calls(
    db: &DatabaseConnection,
    statuses: &[CallStatus],
    before: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    if statuses.is_empty() || limit == 0 {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    let mut old = Query::select();
    old.column(queue_item::Column::Id)
        .from(queue_item::Entity)
        .and_where(Expr::col(queue_item::Column::CreatedAt).lt(before.0))
        .and_where(Expr::col(queue_item::Column::UpdatedAt).lt(before.0))
        .and_where(
            status_column(backend).is_in(statuses.iter().map(|s| queue_item::Status::from(*s))),
        )
        .limit(u64::from(limit));
    skip_locked(backend, &mut old);
    let delete = Query::delete()
        .from_table(queue_item::Entity)
        .and_where(Expr::col(queue_item::Column::Id).in_subquery(old))
        .returning_col(queue_item::Column::Id)
        .to_owned();

    let txn = db.begin().await.map_err(db_err)?;
    let rows = txn
        .query_all(backend.build(&delete))
        .await
        .map_err(db_err)?;
    let ids = rows
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    for chunk in ids.chunks(IN_CHUNK) {
        let attempts = Query::delete()
            .from_table(attempt::Entity)
            .and_where(Expr::col(attempt::Column::QueueItemId).is_in(chunk.iter().copied()))
            .to_owned();
        txn.execute(backend.build(&attempts))
            .await
            .map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)?;
    Ok(ids.len() as u64)
}

/// Deletes up to `limit` events received before `before` that have no calls left.
pub(crate) async fn prune_events(
    db: &DatabaseConnection,
    before: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    if limit == 0 {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    let calls = Query::select()
        .expr(Expr::val(1))
        .from(queue_item::Entity)
        .and_where(
            Expr::col((queue_item::Entity, queue_item::Column::EventId))
                .equals((event::Entity, event::Column::Id)),
        )
        .to_owned();
    let mut old = Query::select();
    old.column((event::Entity, event::Column::Id))
        .from(event::Entity)
        .and_where(Expr::col((event::Entity, event::Column::ReceivedAt)).lt(before.0))
        .and_where(Expr::exists(calls).not())
        .limit(u64::from(limit));
    skip_locked(backend, &mut old);
    let delete = Query::delete()
        .from_table(event::Entity)
        .and_where(Expr::col(event::Column::Id).in_subquery(old))
        .to_owned();
    let result = db.execute(backend.build(&delete)).await.map_err(db_err)?;
    Ok(result.rows_affected())
}
