//! The webhook queue: claiming due calls under a lease, recording attempts, and the operator
//! views (list, detail, retry, cancel).

use std::collections::{BTreeMap, BTreeSet};

use hookflow_engine::model::{
    ActionRef, Attempt, CallId, CallStatus, ClaimedCall, Completion, EventId, Next, QueueFilter,
    QueueItem, ShopId, Timestamp, TriggerId,
};
use hookflow_engine::queue::{recover, settle, EntityKey, Settled};
use hookflow_engine::store::{
    AttemptBudget, CancelOutcome, ClaimFilter, CompleteOutcome, RetryOutcome, StoreError,
};
use sea_orm::sea_query::{
    Alias, ArrayType, CaseStatement, Condition, Expr, Func, LockBehavior, LockType, Order, Query,
    SimpleExpr, UpdateStatement, WindowStatement,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use crate::entities::{action_state, attempt, queue_item};
use crate::{action_ref, alerts, db_err, json_err};

/// Rows per multi-row attempt INSERT (9 columns; SQLite allows 32 766 parameters).
const ATTEMPT_CHUNK: usize = 1000;

/// How many candidates a claim looks at per call it may take: enough that full endpoints and
/// the per-endpoint cap rarely leave a claim short.
const CANDIDATES_PER_CALL: u32 = 4;

/// A status written into the statement rather than bound, where the planner should see which
/// one it is: `pending` is a small part of the queue, and a generic plan for "some status"
/// could pick another path than the claim's.
fn status_literal(status: queue_item::Status) -> SimpleExpr {
    SimpleExpr::Constant(status.into())
}

/// Claims due calls.
///
/// The innermost query picks the highest-priority due calls through the `queue_items_due`
/// index, skipping endpoints that are full in this process and calls that must wait for an
/// earlier unfinished call of their action and entity (ordered delivery, served by
/// `queue_items_entity`). On PostgreSQL `FOR UPDATE SKIP LOCKED` makes concurrent claimers
/// (other nodes) skip rows another claimer holds instead of waiting or double-claiming; SQLite
/// has a single writer, so the UPDATE alone is atomic there. The window function then caps
/// how many calls one endpoint gets, so a slow endpoint's backlog cannot fill the workers.
pub(crate) async fn claim(
    db: &DatabaseConnection,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
    filter: &ClaimFilter,
) -> Result<Vec<ClaimedCall>, StoreError> {
    let backend = db.get_database_backend();
    let update = claim_statement(backend, now, lease_until, limit, filter);
    let rows = db.query_all(backend.build(&update)).await.map_err(db_err)?;
    let mut calls = Vec::with_capacity(rows.len());
    for row in rows {
        let get_err = db_err;
        let method: queue_item::Method = row.try_get_by_index(2).map_err(get_err)?;
        let headers: String = row.try_get_by_index(4).map_err(get_err)?;
        let priority: i32 = row.try_get_by_index(9).map_err(get_err)?;
        calls.push((
            priority,
            ClaimedCall {
                id: CallId(row.try_get_by_index(0).map_err(get_err)?),
                action: action_ref(
                    "queue_items",
                    row.try_get_by_index(10).map_err(get_err)?,
                    row.try_get_by_index(11).map_err(get_err)?,
                )?,
                webhook_id: row.try_get_by_index(1).map_err(get_err)?,
                method: method.into(),
                url: row.try_get_by_index(3).map_err(get_err)?,
                headers: serde_json::from_str(&headers).map_err(json_err)?,
                body: row.try_get_by_index(5).map_err(get_err)?,
                attempts: row.try_get_by_index(6).map_err(get_err)?,
                max_attempts: row.try_get_by_index(7).map_err(get_err)?,
                created_at: Timestamp(row.try_get_by_index(8).map_err(get_err)?),
                target_host: row.try_get_by_index(12).map_err(get_err)?,
                lease_until,
            },
        ));
    }
    // RETURNING has no order; send the most important first.
    calls.sort_by_key(|(priority, call)| (-priority, call.id));
    Ok(calls.into_iter().map(|(_, c)| c).collect())
}

/// The claim as one statement (see [`claim`]); its RETURNING columns are read by position.
/// Due pending calls, best first, that are not held back by an earlier unfinished call of
/// their entity (ordered actions) nor meant for an endpoint the filter leaves out; a few per
/// call to claim, so each endpoint's share can be taken from them. Locked on PostgreSQL
/// (`SKIP LOCKED`: another node's claim passes them by).
fn candidates(
    backend: DbBackend,
    now: Timestamp,
    limit: u32,
    filter: &ClaimFilter,
) -> sea_orm::sea_query::SelectStatement {
    use queue_item::Column as Q;
    let (q, e) = (Alias::new("q"), Alias::new("e"));
    // An earlier unfinished call of the same action and entity (`queue_items_entity`).
    let earlier = Query::select()
        .expr(Expr::cust("1"))
        .from_as(queue_item::Entity, e.clone())
        .and_where(Expr::col((e.clone(), Q::TriggerId)).equals((q.clone(), Q::TriggerId)))
        .and_where(Expr::col((e.clone(), Q::ActionIndex)).equals((q.clone(), Q::ActionIndex)))
        .and_where(Expr::col((e.clone(), Q::EntityId)).equals((q.clone(), Q::EntityId)))
        .and_where(Expr::col((e.clone(), Q::Id)).lt(Expr::col((q.clone(), Q::Id))))
        .and_where(Expr::col((e, Q::Status)).is_in([
            status_literal(queue_item::Status::Pending),
            status_literal(queue_item::Status::InFlight),
        ]))
        .to_owned();
    let mut candidates = Query::select();
    candidates
        .columns([
            (q.clone(), Q::Id),
            (q.clone(), Q::TargetHost),
            (q.clone(), Q::Priority),
            (q.clone(), Q::NextAttemptAt),
        ])
        .from_as(queue_item::Entity, q.clone())
        .and_where(
            Expr::col((q.clone(), Q::Status)).eq(status_literal(queue_item::Status::Pending)),
        )
        .and_where(Expr::col((q.clone(), Q::NextAttemptAt)).lte(now.0))
        .and_where(
            Expr::col((q.clone(), Q::Ordered))
                .not()
                .or(Expr::exists(earlier).not()),
        )
        .order_by((q.clone(), Q::Priority), Order::Desc)
        .order_by((q.clone(), Q::NextAttemptAt), Order::Asc)
        .order_by((q.clone(), Q::Id), Order::Asc)
        .limit(u64::from(limit.saturating_mul(CANDIDATES_PER_CALL)));
    if !filter.full_hosts.is_empty() {
        candidates.and_where(
            Expr::col((q.clone(), Q::TargetHost)).is_not_in(filter.full_hosts.iter().cloned()),
        );
    }
    if !filter.only_hosts.is_empty() {
        candidates.and_where(
            Expr::col((q.clone(), Q::TargetHost)).is_in(filter.only_hosts.iter().cloned()),
        );
    }
    if backend == DbBackend::Postgres {
        candidates.lock_with_tables_behavior(LockType::Update, [q], LockBehavior::SkipLocked);
    }
    candidates
}

/// How many calls each endpoint may get from this claim: its free slots where calls for it
/// are on the wire in this process, the per-endpoint limit elsewhere.
fn endpoint_share(filter: &ClaimFilter, limit: u32, r: &Alias) -> SimpleExpr {
    use queue_item::Column as Q;
    let cap = i64::from(if filter.per_host == 0 {
        limit
    } else {
        filter.per_host
    });
    if filter.room.is_empty() {
        return Expr::val(cap).into();
    }
    let mut case = CaseStatement::new();
    for (host, room) in &filter.room {
        case = case.case(
            Expr::col((r.clone(), Q::TargetHost)).eq(host.as_str()),
            Expr::val(i64::from(*room)),
        );
    }
    case.finally(Expr::val(cap)).into()
}

fn claim_statement(
    backend: DbBackend,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
    filter: &ClaimFilter,
) -> UpdateStatement {
    use queue_item::Column as Q;
    let (c, r) = (Alias::new("c"), Alias::new("r"));
    let rn = Alias::new("rn");
    let candidates = candidates(backend, now, limit, filter);
    let mut ranked = Query::select();
    ranked
        .columns([
            (c.clone(), Q::Id),
            (c.clone(), Q::TargetHost),
            (c.clone(), Q::Priority),
            (c.clone(), Q::NextAttemptAt),
        ])
        .expr_window_as(
            Func::cust(Alias::new("ROW_NUMBER")),
            WindowStatement::partition_by((c.clone(), Q::TargetHost))
                .order_by((c.clone(), Q::Priority), Order::Desc)
                .order_by((c.clone(), Q::NextAttemptAt), Order::Asc)
                .order_by((c.clone(), Q::Id), Order::Asc)
                .to_owned(),
            rn.clone(),
        )
        .from_subquery(candidates, c);
    let per_host = endpoint_share(filter, limit, &r);
    let chosen = Query::select()
        .column((r.clone(), Q::Id))
        .from_subquery(ranked, r.clone())
        .and_where(Expr::col((r.clone(), rn)).lte(per_host))
        .order_by((r.clone(), Q::Priority), Order::Desc)
        .order_by((r.clone(), Q::NextAttemptAt), Order::Asc)
        .order_by((r, Q::Id), Order::Asc)
        .limit(u64::from(limit))
        .to_owned();
    Query::update()
        .table(queue_item::Entity)
        .value(Q::Status, queue_item::Status::InFlight)
        .value(Q::LeaseUntil, lease_until.0)
        .value(Q::UpdatedAt, now.0)
        .and_where(Expr::col(Q::Id).in_subquery(chosen))
        .returning(Query::returning().columns([
            Q::Id,
            Q::WebhookId,
            Q::Method,
            Q::Url,
            Q::Headers,
            Q::Body,
            Q::Attempts,
            Q::MaxAttempts,
            Q::CreatedAt,
            Q::Priority,
            Q::TriggerId,
            Q::ActionIndex,
            Q::TargetHost,
        ]))
        .to_owned()
}

/// Records a batch of attempts and moves their calls on, in one transaction. Successes with
/// the same status code share one UPDATE; retries and failures are one UPDATE each. Failures
/// for good raise alerts and may deactivate their action (see `alerts`).
pub(crate) async fn complete(
    db: &DatabaseConnection,
    done: &[Completion],
    now: Timestamp,
) -> Result<CompleteOutcome, StoreError> {
    let mut outcome = CompleteOutcome::default();
    if done.is_empty() {
        return Ok(outcome);
    }
    let txn = db.begin().await.map_err(db_err)?;
    let backend = txn.get_database_backend();
    // The attempt log is written first: on SQLite the first statement takes the write lock.
    log_attempts(&txn, backend, done).await?;

    // A unique item due for a retry is superseded instead when a newer call of its key exists.
    let retrying: Vec<i64> = done
        .iter()
        .filter(|c| matches!(c.next, Next::RetryAt(_)))
        .map(|c| c.call.0)
        .collect();
    let successors = successors(&txn, &retrying).await?;
    // Successes with the same status code and lease (one claim round) share one UPDATE.
    let mut succeeded: BTreeMap<(Option<i32>, i64), Vec<i64>> = BTreeMap::new();
    let mut healthy: BTreeSet<ActionRef> = BTreeSet::new();
    for c in done {
        let newer = successors.get(&c.call.0);
        match settle(
            c.next,
            newer.is_some(),
            newer.copied().flatten().map(CallId),
        ) {
            Settled::Succeeded => {
                succeeded
                    .entry((c.attempt.status_code, c.lease_until.0))
                    .or_default()
                    .push(c.call.0);
                healthy.insert(c.action);
            }
            Settled::RetryAt(at) => {
                transition(&txn, backend, c, CallStatus::Pending, at, None, now).await?;
            }
            Settled::SupersededBy(by) => {
                transition(&txn, backend, c, CallStatus::Superseded, now, Some(by), now).await?;
            }
            Settled::Failed => {
                if transition(&txn, backend, c, CallStatus::Failed, now, None, now).await? {
                    alerts::call_failed(&txn, c, now, &mut outcome).await?;
                }
            }
        }
    }
    for ((code, lease_until), ids) in succeeded {
        mark_succeeded(&txn, backend, ids, code, lease_until, now).await?;
    }
    for action in healthy {
        alerts::action_succeeded(&txn, action).await?;
    }
    txn.commit().await.map_err(db_err)?;
    Ok(outcome)
}

/// Writes the attempts of a batch of completions to the attempt log.
async fn log_attempts(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    done: &[Completion],
) -> Result<(), StoreError> {
    for chunk in done.chunks(ATTEMPT_CHUNK) {
        let mut insert = attempt_insert();
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
                serde_json::to_string(&a.request_headers)
                    .map_err(json_err)?
                    .into(),
            ]);
        }
        txn.execute(backend.build(&insert)).await.map_err(db_err)?;
    }
    Ok(())
}

/// Calls that succeeded with the same status code under the same lease: one UPDATE, which
/// touches only those still held under that lease.
async fn mark_succeeded(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    ids: Vec<i64>,
    code: Option<i32>,
    lease_until: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let update = Query::update()
        .table(queue_item::Entity)
        .value(queue_item::Column::Status, queue_item::Status::Succeeded)
        .value(
            queue_item::Column::Attempts,
            Expr::col(queue_item::Column::Attempts).add(1),
        )
        .value(queue_item::Column::LeaseUntil, Option::<i64>::None)
        .value(queue_item::Column::LastStatusCode, code)
        .value(queue_item::Column::LastError, Option::<String>::None)
        .value(queue_item::Column::UpdatedAt, now.0)
        .and_where(Expr::col(queue_item::Column::Id).is_in(ids))
        .and_where(Expr::col(queue_item::Column::Status).eq(queue_item::Status::InFlight))
        .and_where(Expr::col(queue_item::Column::LeaseUntil).eq(lease_until))
        .to_owned();
    txn.execute(backend.build(&update)).await.map_err(db_err)?;
    Ok(())
}

async fn transition(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    c: &Completion,
    status: CallStatus,
    next_attempt_at: Timestamp,
    superseded_by: Option<CallId>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let error = c
        .attempt
        .error
        .clone()
        .or_else(|| c.attempt.status_code.map(|s| format!("HTTP {s}")));
    let update = Query::update()
        .table(queue_item::Entity)
        .value(queue_item::Column::Status, queue_item::Status::from(status))
        .value(
            queue_item::Column::Attempts,
            Expr::col(queue_item::Column::Attempts).add(1),
        )
        .value(queue_item::Column::NextAttemptAt, next_attempt_at.0)
        .value(queue_item::Column::LeaseUntil, Option::<i64>::None)
        .value(queue_item::Column::LastStatusCode, c.attempt.status_code)
        .value(queue_item::Column::LastError, error)
        .value(
            queue_item::Column::SupersededBy,
            superseded_by.map(|id| id.0),
        )
        .value(queue_item::Column::UpdatedAt, now.0)
        .and_where(Expr::col(queue_item::Column::Id).eq(c.call.0))
        .and_where(Expr::col(queue_item::Column::Status).eq(queue_item::Status::InFlight))
        // Still ours: a lease that ran out may have handed the call to another worker.
        .and_where(Expr::col(queue_item::Column::LeaseUntil).eq(c.lease_until.0))
        .to_owned();
    let result = txn.execute(backend.build(&update)).await.map_err(db_err)?;
    Ok(result.rows_affected() > 0)
}

/// An INSERT into the attempt log, columns in the order both writers give their values.
fn attempt_insert() -> sea_orm::sea_query::InsertStatement {
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
        attempt::Column::RequestHeaders,
    ]);
    insert
}

/// One line in the attempt log per interrupted call: `(id, attempts, claimed_at)`.
async fn log_interrupted(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    calls: &[(i64, i32, i64)],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut insert = attempt_insert();
    for &(id, attempts, claimed_at) in calls {
        insert.values_panic([
            id.into(),
            (attempts + 1).into(),
            claimed_at.into(),
            (now.0 - claimed_at).max(0).into(),
            Option::<i32>::None.into(),
            "[]".into(),
            "".into(),
            Some(INTERRUPTED).into(),
            // Whatever went out is not known after the fact.
            Option::<String>::None.into(),
        ]);
    }
    txn.execute(backend.build(&insert)).await.map_err(db_err)?;
    Ok(())
}

/// An interrupted unique call whose key has a newer call: superseded by it, not sent again.
async fn supersede_interrupted(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    id: i64,
    by: CallId,
    attempts: i32,
    now: Timestamp,
) -> Result<(), StoreError> {
    let update = Query::update()
        .table(queue_item::Entity)
        .value(queue_item::Column::Status, queue_item::Status::Superseded)
        .value(queue_item::Column::SupersededBy, by.0)
        .value(queue_item::Column::Attempts, attempts)
        .value(queue_item::Column::LeaseUntil, Option::<i64>::None)
        .value(queue_item::Column::LastError, INTERRUPTED)
        .value(queue_item::Column::UpdatedAt, now.0)
        .and_where(Expr::col(queue_item::Column::Id).eq(id))
        .and_where(Expr::col(queue_item::Column::Status).eq(queue_item::Status::InFlight))
        .to_owned();
    txn.execute(backend.build(&update)).await.map_err(db_err)?;
    Ok(())
}

/// Interrupted calls back in the queue, due at once.
async fn requeue_interrupted(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    ids: Vec<i64>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let update = Query::update()
        .table(queue_item::Entity)
        .value(queue_item::Column::Status, queue_item::Status::Pending)
        // The interrupted attempt counts (it may have reached the receiver), as its line in
        // the attempt log says.
        .value(
            queue_item::Column::Attempts,
            Expr::col(queue_item::Column::Attempts).add(1),
        )
        .value(queue_item::Column::LeaseUntil, Option::<i64>::None)
        .value(queue_item::Column::NextAttemptAt, now.0)
        .value(queue_item::Column::LastError, INTERRUPTED)
        .value(queue_item::Column::UpdatedAt, now.0)
        .and_where(Expr::col(queue_item::Column::Id).is_in(ids))
        .and_where(Expr::col(queue_item::Column::Status).eq(queue_item::Status::InFlight))
        .to_owned();
    txn.execute(backend.build(&update)).await.map_err(db_err)?;
    Ok(())
}

/// What the attempt log says of an attempt that was on the wire when its worker went away.
const INTERRUPTED: &str = "interrupted: hookflow stopped (or lost its lease) while this \
     attempt was on the wire; whether the receiver got it is unknown, so it is sent again";

/// Returns in-flight calls to the queue, due at once: those whose lease ran out before
/// `expired_before` (their worker died), or every one (`None`: a SQLite start, where the
/// previous run that held them is gone). They keep their `webhook-id`; the interrupted attempt
/// counts, and gets a line in the attempt log saying so. One transaction.
pub(crate) async fn release(
    db: &DatabaseConnection,
    expired_before: Option<Timestamp>,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let txn = db.begin().await.map_err(db_err)?;
    let mut find = queue_item::Entity::find()
        .select_only()
        .columns([
            queue_item::Column::Id,
            queue_item::Column::Attempts,
            queue_item::Column::UpdatedAt,
        ])
        .filter(queue_item::Column::Status.eq(queue_item::Status::InFlight));
    if let Some(before) = expired_before {
        find = find.filter(queue_item::Column::LeaseUntil.lt(before.0));
    }
    let rows: Vec<(i64, i32, i64)> = find.into_tuple().all(&txn).await.map_err(db_err)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let backend = txn.get_database_backend();
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let successors = successors(&txn, &ids).await?;
    for chunk in rows.chunks(ATTEMPT_CHUNK) {
        log_interrupted(&txn, backend, chunk, now).await?;
        // Due at once, or superseded by a newer call of its unique key (see `queue::recover`).
        let mut again = Vec::with_capacity(chunk.len());
        for &(id, attempts, _) in chunk {
            let newer = successors.get(&id);
            let recovered = recover(
                attempts,
                now,
                newer.is_some(),
                newer.copied().flatten().map(CallId),
            );
            match recovered.next {
                Settled::SupersededBy(by) => {
                    supersede_interrupted(&txn, backend, id, by, recovered.attempts, now).await?
                }
                _ => again.push(id),
            }
        }
        requeue_interrupted(&txn, backend, again, now).await?;
    }
    txn.commit().await.map_err(db_err)?;
    Ok(rows.len() as u64)
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
        method: m.method.into(),
        url: m.url,
        headers: serde_json::from_str(&m.headers).map_err(json_err)?,
        body: m.body,
        priority: m.priority,
        status: m.status.into(),
        attempts: m.attempts,
        max_attempts: m.max_attempts,
        next_attempt_at: Timestamp(m.next_attempt_at),
        last_status_code: m.last_status_code,
        last_error: m.last_error,
        coalesced: m.coalesced,
        superseded_by: m.superseded_by.map(CallId),
        created_at: Timestamp(m.created_at),
        updated_at: Timestamp(m.updated_at),
    })
}

pub(crate) fn to_attempt(m: attempt::Model) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        attempt: m.attempt,
        started_at: Timestamp(m.started_at),
        duration_ms: m.duration_ms,
        status_code: m.status_code,
        request_headers: match &m.request_headers {
            Some(text) => serde_json::from_str(text).map_err(json_err)?,
            None => Vec::new(),
        },
        response_headers: serde_json::from_str(&m.response_headers).map_err(json_err)?,
        response_body: m.response_body,
        error: m.error,
    })
}

/// When each call last went out: its latest attempt's start (a page of calls at a time, so
/// one `IN` list).
pub(crate) async fn last_sent(
    db: &DatabaseConnection,
    calls: &[CallId],
) -> Result<Vec<(CallId, Timestamp)>, StoreError> {
    let rows: Vec<(i64, Option<i64>)> = attempt::Entity::find()
        .select_only()
        .column(attempt::Column::QueueItemId)
        .column_as(attempt::Column::StartedAt.max(), "last")
        .filter(attempt::Column::QueueItemId.is_in(calls.iter().map(|c| c.0)))
        .group_by(attempt::Column::QueueItemId)
        .into_tuple()
        .all(db)
        .await
        .map_err(db_err)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, at)| Some((CallId(id), Timestamp(at?))))
        .collect())
}

pub(crate) async fn list(
    db: &DatabaseConnection,
    f: &QueueFilter,
) -> Result<Vec<QueueItem>, StoreError> {
    let walk_ids = sqlite_walks_ids(db, f).await?;
    let range = if walk_ids {
        (None, None)
    } else {
        (f.from, f.to)
    };
    let mut query = queue_item::Entity::find().filter(selection(
        f.status,
        f.trigger_id,
        f.event_type.as_deref(),
        range,
        f.shop_id,
        f.shops.as_deref(),
    ));
    if walk_ids {
        // The same range, in a form no index serves (`+column`), so the planner walks the
        // primary key newest first as without a range, checking each row's time.
        if let Some(from) = f.from {
            query = query.filter(Expr::cust_with_values("+\"created_at\" >= ?", [from.0]));
        }
        if let Some(to) = f.to {
            query = query.filter(Expr::cust_with_values("+\"created_at\" < ?", [to.0]));
        }
    }
    if let Some(search) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        // An entity id matches exactly, a URL by substring (LIKE's wildcards taken literally).
        // No index serves a substring; the listing walks the primary key newest first and
        // stops at `limit` matches, so a common term is cheap and a rare one reads the range.
        let escaped = search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query =
            query.filter(
                sea_orm::Condition::any()
                    .add(queue_item::Column::EntityId.eq(search))
                    .add(sea_orm::sea_query::Expr::col(queue_item::Column::Url).like(
                        sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\'),
                    )),
            );
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

/// Below this many calls in a time range, reading the range through `queue_items_created`
/// and sorting it is cheap whatever else the listing asks.
const SMALL_RANGE: i64 = 2_000;

/// How many calls the primary key walk skips in the time a range read through the index
/// costs per call (read by rowid, then sorted): measured ~10 with 100 000 calls (a range
/// around the older half: index 201 ms, walk 25 ms), taken lower to favour the index.
const WALK_PER_SORT: i64 = 8;

/// Whether a SQLite listing with a `from`/`to` range should walk the primary key (newest
/// first, stopping at `limit`) rather than read the range through `queue_items_created` and
/// sort it by id. SQLite has no statistics of the range and takes the index, which costs a
/// read and a sort of every call in the range: ~350 ms for a range around 100 000 calls in
/// a debug build (the walk: 9 ms). The walk costs the calls newer than the range (skipped)
/// plus those read until `limit` match. Ids grow with creation time, so the ids at the range's edges
/// (point lookups through the index) estimate both; only the plan depends on the estimate,
/// the range is always applied exactly. PostgreSQL keeps statistics and plans this itself.
async fn sqlite_walks_ids(db: &DatabaseConnection, f: &QueueFilter) -> Result<bool, StoreError> {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite
        || (f.from.is_none() && f.to.is_none())
    {
        return Ok(false);
    }
    let edge = |from: bool| {
        let mut q = queue_item::Entity::find()
            .select_only()
            .column(queue_item::Column::Id);
        q = match (from, f.from, f.to) {
            (true, Some(t), _) => q
                .filter(queue_item::Column::CreatedAt.gte(t.0))
                .order_by_asc(queue_item::Column::CreatedAt),
            (false, _, Some(t)) => q
                .filter(queue_item::Column::CreatedAt.lt(t.0))
                .order_by_desc(queue_item::Column::CreatedAt),
            (true, None, _) => q.order_by_asc(queue_item::Column::Id),
            (false, _, None) => q.order_by_desc(queue_item::Column::Id),
        };
        q.limit(1).into_tuple::<i64>().one(db)
    };
    let newest = queue_item::Entity::find()
        .select_only()
        .column(queue_item::Column::Id)
        .order_by_desc(queue_item::Column::Id)
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await
        .map_err(db_err)?;
    let (Some(first), Some(last), Some(newest)) = (
        edge(true).await.map_err(db_err)?,
        edge(false).await.map_err(db_err)?,
        newest,
    ) else {
        return Ok(false); // an empty range or queue: either plan is instant
    };
    let in_range = last - first;
    let skipped = newest - last;
    Ok(in_range > SMALL_RANGE && skipped < WALK_PER_SORT * in_range)
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
    budget: &AttemptBudget,
    now: Timestamp,
) -> Result<RetryOutcome, StoreError> {
    let result = requeue(budget, now)
        .filter(queue_item::Column::Id.eq(id.0))
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
            Expr::value(queue_item::Status::Cancelled),
        )
        .col_expr(
            queue_item::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(queue_item::Column::UpdatedAt, Expr::value(now.0))
        .filter(queue_item::Column::Id.eq(id.0))
        .filter(
            queue_item::Column::Status
                .is_in([queue_item::Status::Pending, queue_item::Status::InFlight]),
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

/// Queues again the failed and skipped calls of a trigger (one action or all) made since
/// `since`, with a fresh budget of attempts.
pub(crate) async fn requeue_failed(
    db: &DatabaseConnection,
    trigger: TriggerId,
    action_index: Option<i32>,
    since: Timestamp,
    budget: &AttemptBudget,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut update = requeue(budget, now)
        .filter(queue_item::Column::TriggerId.eq(trigger.0))
        .filter(
            queue_item::Column::Status
                .is_in([queue_item::Status::Failed, queue_item::Status::Skipped]),
        )
        .filter(queue_item::Column::CreatedAt.gte(since.0));
    if let Some(action) = action_index {
        update = update.filter(queue_item::Column::ActionIndex.eq(action));
    }
    Ok(update.exec(db).await.map_err(db_err)?.rows_affected)
}

/// Whether any pending call is due (served by `queue_items_due`).
pub(crate) async fn any_due(db: &DatabaseConnection, now: Timestamp) -> Result<bool, StoreError> {
    let found = queue_item::Entity::find()
        .select_only()
        .column(queue_item::Column::Id)
        .filter(queue_item::Column::Status.eq(queue_item::Status::Pending))
        .filter(queue_item::Column::NextAttemptAt.lte(now.0))
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await
        .map_err(db_err)?;
    Ok(found.is_some())
}

/// What a resent call becomes: pending, due now, allowed as many more attempts than it has
/// made as its action's retry policy gives a new call (as a single retry does).
pub(crate) fn requeue(
    budget: &AttemptBudget,
    now: Timestamp,
) -> sea_orm::UpdateMany<queue_item::Entity> {
    // One statement for any mix of actions: `attempts + CASE (trigger, action) … END`, with
    // a branch only for the actions whose policy differs from the server's.
    let fresh: SimpleExpr = if budget.by_action.is_empty() {
        Expr::value(budget.default)
    } else {
        let mut case = CaseStatement::new();
        for (action, attempts) in &budget.by_action {
            case = case.case(
                Condition::all()
                    .add(queue_item::Column::TriggerId.eq(action.trigger.0))
                    .add(queue_item::Column::ActionIndex.eq(i32::from(action.index))),
                Expr::value(*attempts),
            );
        }
        case.finally(Expr::value(budget.default)).into()
    };
    queue_item::Entity::update_many()
        .col_expr(
            queue_item::Column::Status,
            Expr::value(queue_item::Status::Pending),
        )
        .col_expr(queue_item::Column::NextAttemptAt, Expr::value(now.0))
        .col_expr(
            queue_item::Column::MaxAttempts,
            Expr::col(queue_item::Column::Attempts).add(fresh),
        )
        .col_expr(
            queue_item::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(queue_item::Column::UpdatedAt, Expr::value(now.0))
        // A call on the wire belongs to its worker; its outcome is recorded as usual.
        .filter(queue_item::Column::Status.ne(queue_item::Status::InFlight))
}

/// Calls whose action is not deactivated: a resend leaves the others as they are (skipped or
/// failed), since sending them would go around the deactivation. Reactivating the action
/// with its resend option is the way to send them.
pub(crate) fn action_not_deactivated() -> SimpleExpr {
    let deactivated = Query::select()
        .expr(Expr::val(1))
        .from(action_state::Entity)
        .and_where(
            Expr::col((action_state::Entity, action_state::Column::TriggerId))
                .equals((queue_item::Entity, queue_item::Column::TriggerId)),
        )
        .and_where(
            Expr::col((action_state::Entity, action_state::Column::ActionIndex))
                .equals((queue_item::Entity, queue_item::Column::ActionIndex)),
        )
        .and_where(
            Expr::col((action_state::Entity, action_state::Column::DeactivatedAt)).is_not_null(),
        )
        .to_owned();
    Expr::exists(deactivated).not()
}

/// The calls an operator picks by status, trigger, event type and creation time (queue
/// listing and bulk resend).
pub(crate) fn selection(
    status: Option<CallStatus>,
    trigger: Option<TriggerId>,
    event_type: Option<&str>,
    (from, to): (Option<Timestamp>, Option<Timestamp>),
    shop: Option<ShopId>,
    scope: Option<&[ShopId]>,
) -> sea_orm::Condition {
    let mut condition = sea_orm::Condition::all();
    if let Some(shop) = shop {
        condition = condition.add(queue_item::Column::ShopId.eq(shop.0));
    }
    if let Some(scope) = scope {
        condition = condition.add(queue_item::Column::ShopId.is_in(scope.iter().map(|s| s.0)));
    }
    if let Some(status) = status {
        condition = condition.add(queue_item::Column::Status.eq(queue_item::Status::from(status)));
    }
    if let Some(trigger) = trigger {
        condition = condition.add(queue_item::Column::TriggerId.eq(trigger.0));
    }
    if let Some(event_type) = event_type {
        condition = condition.add(queue_item::Column::EventType.eq(event_type));
    }
    if let Some(from) = from {
        condition = condition.add(queue_item::Column::CreatedAt.gte(from.0));
    }
    if let Some(to) = to {
        condition = condition.add(queue_item::Column::CreatedAt.lt(to.0));
    }
    condition
}

/// PostgreSQL: takes the transaction-scoped advisory lock of each (action, entity) key, in
/// one global order, so that transactions deciding about the same key (an ingest placing a
/// unique or ordered call, an attempt or a recovery settling one) take turns across nodes.
/// SQLite needs none: its writers take turns anyway.
pub(crate) async fn lock_keys<'a>(
    txn: &impl ConnectionTrait,
    keys: impl Iterator<Item = EntityKey<'a>>,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    if backend != DbBackend::Postgres {
        return Ok(());
    }
    let mut ids: Vec<i64> = keys.map(key_lock_id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    // One bound array, whatever the number of keys; `unnest` keeps its order, so the locks
    // are taken in ascending order.
    let k = Alias::new("k");
    let ids: Vec<sea_orm::Value> = ids.into_iter().map(sea_orm::Value::from).collect();
    let locks = Query::select()
        .expr(Func::cust(Alias::new("pg_advisory_xact_lock")).arg(Expr::col(k.clone())))
        .from_function(
            Func::cust(Alias::new("unnest")).arg(sea_orm::Value::Array(
                ArrayType::BigInt,
                Some(Box::new(ids)),
            )),
            k,
        )
        .to_owned();
    txn.query_all(backend.build(&locks)).await.map_err(db_err)?;
    Ok(())
}

/// A key's advisory lock id: FNV-1a over its parts, stable across nodes and versions (unlike
/// the standard library's hasher).
fn key_lock_id((action, entity): EntityKey<'_>) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    // The index as the `i32` it is stored as: the same ids as before `ActionRef` existed.
    eat(&action.trigger.0.to_le_bytes());
    eat(&i32::from(action.index).to_le_bytes());
    eat(entity.as_bytes());
    h as i64
}

/// For calls about to wait again (a failed attempt, a recovery): per call that is a unique
/// item, the oldest newer call of its key that is pending, on the wire or delivered — the one
/// that supersedes it — if any. Calls that are not unique items are absent. Locks the keys
/// on PostgreSQL first (see [`lock_keys`]).
async fn successors(
    txn: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Option<i64>>, StoreError> {
    let mut out = std::collections::HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut keys: Vec<(i64, ActionRef, String)> = Vec::new();
    for chunk in ids.chunks(ATTEMPT_CHUNK) {
        let rows: Vec<(i64, i64, i32, String)> = queue_item::Entity::find()
            .select_only()
            .columns([
                queue_item::Column::Id,
                queue_item::Column::TriggerId,
                queue_item::Column::ActionIndex,
                queue_item::Column::EntityId,
            ])
            .filter(queue_item::Column::Id.is_in(chunk.iter().copied()))
            .filter(queue_item::Column::UniqueItem.eq(true))
            .into_tuple()
            .all(txn)
            .await
            .map_err(db_err)?;
        for (id, trigger, index, entity) in rows {
            keys.push((id, action_ref("queue_items", trigger, index)?, entity));
        }
    }
    if keys.is_empty() {
        return Ok(out);
    }
    lock_keys(
        txn,
        keys.iter()
            .map(|(_, action, entity)| (*action, entity.as_str())),
    )
    .await?;
    for (id, action, entity) in keys {
        let newer: Option<i64> = queue_item::Entity::find()
            .select_only()
            .column_as(queue_item::Column::Id.min(), "newer")
            .filter(queue_item::Column::TriggerId.eq(action.trigger.0))
            .filter(queue_item::Column::ActionIndex.eq(i32::from(action.index)))
            .filter(queue_item::Column::EntityId.eq(entity))
            .filter(queue_item::Column::Id.gt(id))
            .filter(queue_item::Column::Status.is_in([
                queue_item::Status::Pending,
                queue_item::Status::InFlight,
                queue_item::Status::Succeeded,
            ]))
            .into_tuple::<Option<i64>>()
            .one(txn)
            .await
            .map_err(db_err)?
            .flatten();
        out.insert(id, newer);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(backend: DbBackend, filter: &ClaimFilter) -> String {
        backend
            .build(&claim_statement(
                backend,
                Timestamp(1),
                Timestamp(2),
                10,
                filter,
            ))
            .to_string()
    }

    #[test]
    fn the_claim_skips_locked_rows_on_postgres_only() {
        let filter = ClaimFilter::default();
        let pg = sql(DbBackend::Postgres, &filter);
        assert!(pg.contains(r#"FOR UPDATE OF "q" SKIP LOCKED"#), "{pg}");
        let sqlite = sql(DbBackend::Sqlite, &filter);
        assert!(!sqlite.contains("FOR UPDATE"), "{sqlite}");
    }

    #[test]
    fn the_claim_names_the_pending_status_for_the_planner() {
        // Bound, `status = $n` could get a generic plan made for any status.
        let pg = sql(DbBackend::Postgres, &ClaimFilter::default());
        assert!(pg.contains(r#""q"."status" = 'pending'"#), "{pg}");
        assert!(
            pg.contains(r#""e"."status" IN ('pending', 'in_flight')"#),
            "{pg}"
        );
    }

    #[test]
    fn the_claim_caps_busy_endpoints_at_their_room() {
        let filter = ClaimFilter {
            full_hosts: vec!["full:80".into()],
            room: vec![("busy:80".into(), 1)],
            per_host: 3,
            only_hosts: vec![],
        };
        let sqlite = sql(DbBackend::Sqlite, &filter);
        assert!(
            sqlite.contains(r#""q"."target_host" NOT IN ('full:80')"#),
            "{sqlite}"
        );
        assert!(
            sqlite.contains(r#"CASE WHEN ("r"."target_host" = 'busy:80') THEN 1 ELSE 3 END"#),
            "{sqlite}"
        );
    }
}
