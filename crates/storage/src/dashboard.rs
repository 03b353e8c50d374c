//! The dashboard's queries. Each reads an index range rather than the whole queue:
//! calls per minute read the last day of `attempts_minute` (index only, in order), the depth and the
//! oldest pending call read the unfinished part of `queue_items_status`, and the trigger
//! list's last calls seek `queue_items_trigger` once per trigger, so they stay fast however
//! much finished history is retained.

use hookflow_engine::dashboard::DashboardStats;
use hookflow_engine::model::{CallId, CallStatus, ShopId, Timestamp};
use hookflow_engine::store::StoreError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::db_err;

/// Placeholders in the backend's syntax, numbered as values are added.
struct Params {
    pg: bool,
    values: Vec<sea_orm::Value>,
}

impl Params {
    fn add(&mut self, value: impl Into<sea_orm::Value>) -> String {
        self.values.push(value.into());
        if self.pg {
            format!("${}", self.values.len())
        } else {
            "?".to_owned()
        }
    }

    /// ` AND shop_id IN (...)`, or nothing for every shop. An empty scope matches nothing.
    fn shops(&mut self, shops: Option<&[ShopId]>) -> String {
        match shops {
            None => String::new(),
            Some([]) => " AND 1 = 0".to_owned(),
            Some(list) => {
                let marks: Vec<String> = list.iter().map(|s| self.add(s.0)).collect();
                format!(" AND shop_id IN ({})", marks.join(", "))
            }
        }
    }
}

pub(crate) async fn dashboard_stats(
    db: &DatabaseConnection,
    since: Timestamp,
    shops: Option<&[ShopId]>,
) -> Result<DashboardStats, StoreError> {
    let per_minute = calls_per_minute(db, since, shops).await?;
    let (depth, oldest) = queue_depth(db, shops).await?;
    let oldest_pending = match oldest {
        Some(id) => created_at(db, id).await?.map(|at| (CallId(id), at)),
        None => None,
    };
    Ok(DashboardStats {
        per_minute,
        depth,
        oldest_pending,
    })
}

/// Attempts per minute since `since`, answered 2xx and not: `(minute, succeeded, calls)`.
async fn calls_per_minute(
    db: &DatabaseConnection,
    since: Timestamp,
    shops: Option<&[ShopId]>,
) -> Result<Vec<(i64, bool, u64)>, StoreError> {
    let backend = db.get_database_backend();
    let mut p = Params {
        pg: backend == DbBackend::Postgres,
        values: Vec::new(),
    };
    let since_ph = p.add(since.0 / 60_000);
    // `attempts_minute` is an index on the minute itself: the range and the grouping follow
    // it, with no sort. The admin's chart reads the index alone; a user's shops need the
    // call's shop.
    let ok = "CASE WHEN a.status_code >= 200 AND a.status_code < 300 THEN 1 ELSE 0 END";
    let sql = match shops {
        None => format!(
            "SELECT (a.started_at / 60000) AS minute, COUNT(*) AS calls, SUM({ok}) AS ok \
             FROM attempts a WHERE (a.started_at / 60000) >= {since_ph} \
             GROUP BY (a.started_at / 60000)"
        ),
        Some(scope) => {
            let scope = p.shops(Some(scope)).replace("shop_id", "q.shop_id");
            format!(
                "SELECT (a.started_at / 60000) AS minute, COUNT(*) AS calls, SUM({ok}) AS ok \
                 FROM attempts a JOIN queue_items q ON q.id = a.queue_item_id \
                 WHERE (a.started_at / 60000) >= {since_ph}{scope} \
                 GROUP BY (a.started_at / 60000)"
            )
        }
    };
    let rows = db
        .query_all(Statement::from_sql_and_values(backend, sql, p.values))
        .await
        .map_err(db_err)?;
    let mut per_minute = Vec::new();
    for row in rows {
        let minute: i64 = row.try_get_by_index(0).map_err(db_err)?;
        let calls: i64 = row.try_get_by_index(1).map_err(db_err)?;
        let ok: i64 = row.try_get_by_index(2).map_err(db_err)?;
        let (calls, ok) = (calls.max(0) as u64, ok.clamp(0, calls) as u64);
        if ok > 0 {
            per_minute.push((minute, true, ok));
        }
        if calls > ok {
            per_minute.push((minute, false, calls - ok));
        }
    }
    Ok(per_minute)
}

/// Unfinished calls by status, and the id of the oldest pending one.
async fn queue_depth(
    db: &DatabaseConnection,
    shops: Option<&[ShopId]>,
) -> Result<(Vec<(CallStatus, u64)>, Option<i64>), StoreError> {
    let backend = db.get_database_backend();
    let mut p = Params {
        pg: backend == DbBackend::Postgres,
        values: Vec::new(),
    };
    let scope = p.shops(shops);
    let sql = format!(
        "SELECT status, COUNT(*) AS calls, MIN(id) AS oldest FROM queue_items \
         WHERE status IN ('pending', 'in_flight'){scope} GROUP BY status"
    );
    let rows = db
        .query_all(Statement::from_sql_and_values(backend, sql, p.values))
        .await
        .map_err(db_err)?;
    let mut depth = Vec::new();
    let mut oldest = None;
    for row in rows {
        let status: String = row.try_get_by_index(0).map_err(db_err)?;
        let calls: i64 = row.try_get_by_index(1).map_err(db_err)?;
        let min_id: Option<i64> = row.try_get_by_index(2).map_err(db_err)?;
        let Ok(status) = status.parse::<CallStatus>() else {
            continue;
        };
        if status == CallStatus::Pending {
            oldest = min_id;
        }
        depth.push((status, calls.max(0) as u64));
    }
    Ok((depth, oldest))
}

/// When a call was created, if it still exists.
async fn created_at(db: &DatabaseConnection, id: i64) -> Result<Option<Timestamp>, StoreError> {
    let backend = db.get_database_backend();
    let mut p = Params {
        pg: backend == DbBackend::Postgres,
        values: Vec::new(),
    };
    let id_ph = p.add(id);
    let sql = format!("SELECT created_at FROM queue_items WHERE id = {id_ph}");
    let Some(row) = db
        .query_one(Statement::from_sql_and_values(backend, sql, p.values))
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let created: i64 = row.try_get_by_index(0).map_err(db_err)?;
    Ok(Some(Timestamp(created)))
}

/// The latest call of every trigger: one statement, each trigger's latest id found by a seek
/// in `queue_items_trigger` (trigger, id) rather than by grouping the whole queue.
pub(crate) async fn last_calls(
    db: &DatabaseConnection,
) -> Result<Vec<hookflow_engine::dashboard::LastCall>, StoreError> {
    let backend = db.get_database_backend();
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
        let status: String = row.try_get_by_index(2).map_err(db_err)?;
        let Ok(status) = status.parse::<CallStatus>() else {
            continue;
        };
        calls.push(hookflow_engine::dashboard::LastCall {
            trigger_id: hookflow_engine::model::TriggerId(row.try_get_by_index(0).map_err(db_err)?),
            call_id: CallId(row.try_get_by_index(1).map_err(db_err)?),
            status,
            status_code: row.try_get_by_index(3).map_err(db_err)?,
            at: Timestamp(row.try_get_by_index(4).map_err(db_err)?),
        });
    }
    Ok(calls)
}
