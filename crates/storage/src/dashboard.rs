//! The dashboard's queries. Each reads an index range rather than the whole queue:
//! calls per minute read the last day of `attempts_minute` (index only, in order), the depth and the
//! oldest pending call read the unfinished part of `queue_items_status`, and the trigger
//! list's last calls seek `queue_items_trigger` once per trigger, so they stay fast however
//! much finished history is retained.

use hookflow_engine::dashboard::DashboardStats;
use hookflow_engine::model::{CallId, CallStatus, ShopId, Timestamp};
use hookflow_engine::store::StoreError;
use sea_orm::sea_query::{Alias, CaseStatement, Expr, Func, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::db_err;
use crate::entities::{attempt, queue_item};

/// `started_at / 60000`, the expression `attempts_minute` indexes. The divisor is written into
/// the statement rather than bound, so both planners see the indexed expression (and
/// PostgreSQL sees the grouped one in the select list).
fn minute() -> SimpleExpr {
    Expr::col((attempt::Entity, attempt::Column::StartedAt))
        .div(SimpleExpr::Constant(60_000i64.into()))
}

/// Calls within `shops` (`None`: every shop; an empty scope matches nothing).
fn in_scope(shops: Option<&[ShopId]>) -> Option<SimpleExpr> {
    shops.map(|list| {
        Expr::col((queue_item::Entity, queue_item::Column::ShopId)).is_in(list.iter().map(|s| s.0))
    })
}

pub(crate) async fn dashboard_stats(
    db: &DatabaseConnection,
    since: Timestamp,
    shops: Option<&[ShopId]>,
) -> Result<DashboardStats, StoreError> {
    let backend = db.get_database_backend();
    let mut stats = DashboardStats {
        per_minute: calls_per_minute(db, backend, since, shops).await?,
        ..DashboardStats::default()
    };
    let oldest = queue_depth(db, backend, shops, &mut stats).await?;
    if let Some(id) = oldest {
        let created = Query::select()
            .column(queue_item::Column::CreatedAt)
            .from(queue_item::Entity)
            .and_where(Expr::col(queue_item::Column::Id).eq(id))
            .to_owned();
        if let Some(row) = db
            .query_one(backend.build(&created))
            .await
            .map_err(db_err)?
        {
            let created: i64 = row.try_get_by_index(0).map_err(db_err)?;
            stats.oldest_pending = Some((CallId(id), Timestamp(created)));
        }
    }
    Ok(stats)
}

/// Attempts per minute since `since`, split into 2xx and the rest: `(minute, ok, count)`.
async fn calls_per_minute(
    db: &DatabaseConnection,
    backend: DbBackend,
    since: Timestamp,
    shops: Option<&[ShopId]>,
) -> Result<Vec<(i64, bool, u64)>, StoreError> {
    let mut out = Vec::new();
    // `attempts_minute` is an index on the minute itself: the range and the grouping follow
    // it, with no sort. The admin's chart reads the index alone; a user's shops need the
    // call's shop.
    let code = || Expr::col((attempt::Entity, attempt::Column::StatusCode));
    let ok = CaseStatement::new()
        .case(code().gte(200).and(code().lt(300)), 1)
        .finally(0);
    let mut per_minute = Query::select();
    per_minute
        .expr_as(minute(), Alias::new("minute"))
        .expr_as(Func::count(Expr::cust("*")), Alias::new("calls"))
        .expr_as(Func::sum(ok), Alias::new("ok"))
        .from(attempt::Entity)
        .and_where(Expr::expr(minute()).gte(since.0 / 60_000))
        .add_group_by([minute()]);
    if let Some(scope) = in_scope(shops) {
        per_minute
            .inner_join(
                queue_item::Entity,
                Expr::col((queue_item::Entity, queue_item::Column::Id))
                    .equals((attempt::Entity, attempt::Column::QueueItemId)),
            )
            .and_where(scope);
    }
    let rows = db
        .query_all(backend.build(&per_minute))
        .await
        .map_err(db_err)?;
    for row in rows {
        let minute: i64 = row.try_get_by_index(0).map_err(db_err)?;
        let calls: i64 = row.try_get_by_index(1).map_err(db_err)?;
        let ok: i64 = row.try_get_by_index(2).map_err(db_err)?;
        let (calls, ok) = (calls.max(0) as u64, ok.clamp(0, calls) as u64);
        if ok > 0 {
            out.push((minute, true, ok));
        }
        if calls > ok {
            out.push((minute, false, calls - ok));
        }
    }

    Ok(out)
}

/// Unfinished calls per state into `stats.depth`; answers the oldest pending call's id.
async fn queue_depth(
    db: &DatabaseConnection,
    backend: DbBackend,
    shops: Option<&[ShopId]>,
    stats: &mut DashboardStats,
) -> Result<Option<i64>, StoreError> {
    let mut depth = Query::select();
    depth
        .column(queue_item::Column::Status)
        .expr_as(Func::count(Expr::cust("*")), Alias::new("calls"))
        .expr_as(
            Func::min(Expr::col(queue_item::Column::Id)),
            Alias::new("oldest"),
        )
        .from(queue_item::Entity)
        .and_where(
            Expr::col(queue_item::Column::Status)
                .is_in([queue_item::Status::Pending, queue_item::Status::InFlight]),
        )
        .group_by_col(queue_item::Column::Status);
    if let Some(scope) = in_scope(shops) {
        depth.and_where(scope);
    }
    let rows = db.query_all(backend.build(&depth)).await.map_err(db_err)?;
    let mut oldest = None;
    for row in rows {
        let status: queue_item::Status = row.try_get_by_index(0).map_err(db_err)?;
        let status = CallStatus::from(status);
        let calls: i64 = row.try_get_by_index(1).map_err(db_err)?;
        let min_id: Option<i64> = row.try_get_by_index(2).map_err(db_err)?;
        if status == CallStatus::Pending {
            oldest = min_id;
        }
        stats.depth.push((status, calls.max(0) as u64));
    }
    Ok(oldest)
}

/// The latest call of every trigger: one statement, each trigger's latest id found by a seek
/// in `queue_items_trigger` (trigger, id) rather than by grouping the whole queue.
pub(crate) async fn last_calls(
    db: &DatabaseConnection,
) -> Result<Vec<hookflow_engine::dashboard::LastCall>, StoreError> {
    let backend = db.get_database_backend();
    // No values, so no placeholders: the correlated seek per trigger reads plainest as text.
    let sql = "SELECT q.trigger_id, q.id, q.status, q.last_status_code, q.updated_at \
               FROM queue_items q WHERE q.id IN ( \
                 SELECT (SELECT MAX(i.id) FROM queue_items i WHERE i.trigger_id = t.id) \
                 FROM triggers t)";
    let rows = db
        .query_all(Statement::from_string(backend, sql))
        .await
        .map_err(db_err)?;
    let mut calls = Vec::with_capacity(rows.len());
    for row in rows {
        let status: queue_item::Status = row.try_get_by_index(2).map_err(db_err)?;
        calls.push(hookflow_engine::dashboard::LastCall {
            trigger_id: hookflow_engine::model::TriggerId(row.try_get_by_index(0).map_err(db_err)?),
            call_id: CallId(row.try_get_by_index(1).map_err(db_err)?),
            status: status.into(),
            status_code: row.try_get_by_index(3).map_err(db_err)?,
            at: Timestamp(row.try_get_by_index(4).map_err(db_err)?),
        });
    }
    Ok(calls)
}
