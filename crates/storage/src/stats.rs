//! Queue statistics for the metrics scrape: one grouped query over the claim index
//! (`queue_items_claim`: status, priority, next attempt), so a scrape stays cheap however long
//! the retained history is.

use hookflow_engine::metrics::{QueueStats, QUEUE_STATES};
use hookflow_engine::model::{CallStatus, Timestamp};
use hookflow_engine::store::StoreError;
use sea_orm::sea_query::{Alias, Expr, Func, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection};

use crate::db_err;
use crate::entities::queue_item;

/// Calls per unfinished state and priority, and when the longest-waiting due pending call
/// became due. Each group's earliest `next_attempt_at` is enough for that: a group whose
/// earliest is in the future has nothing due.
pub(crate) async fn queue_stats(
    db: &DatabaseConnection,
    now: Timestamp,
) -> Result<QueueStats, StoreError> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .column(queue_item::Column::Status)
        .column(queue_item::Column::Priority)
        .expr_as(
            Func::count(Expr::col(queue_item::Column::Id)),
            Alias::new("calls"),
        )
        .expr_as(
            Func::min(Expr::col(queue_item::Column::NextAttemptAt)),
            Alias::new("earliest"),
        )
        .from(queue_item::Entity)
        .and_where(queue_item::Column::Status.is_in(QUEUE_STATES.map(queue_item::Status::from)))
        .group_by_col(queue_item::Column::Status)
        .group_by_col(queue_item::Column::Priority);
    let rows = db.query_all(backend.build(&select)).await.map_err(db_err)?;
    let mut stats = QueueStats::default();
    for row in rows {
        let status: queue_item::Status = row.try_get_by_index(0).map_err(db_err)?;
        let status = CallStatus::from(status);
        let priority: i32 = row.try_get_by_index(1).map_err(db_err)?;
        let calls: i64 = row.try_get_by_index(2).map_err(db_err)?;
        let earliest: Option<i64> = row.try_get_by_index(3).map_err(db_err)?;
        if status == CallStatus::Pending {
            if let Some(at) = earliest.filter(|at| *at <= now.0) {
                stats.oldest_due = Some(
                    stats
                        .oldest_due
                        .map_or(Timestamp(at), |t| Timestamp(t.0.min(at))),
                );
            }
        }
        stats.depth.push((status, priority, calls.max(0) as u64));
    }
    Ok(stats)
}
