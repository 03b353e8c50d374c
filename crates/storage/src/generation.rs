//! The trigger generation: a number every change to what events match moves, in the same
//! transaction as the change.
//!
//! The ingest transaction reads it (on PostgreSQL with a share lock held to its commit, so a
//! change and an ingest are ordered one way or the other, never interleaved) and gives up when
//! it is not the generation its planner was built from: the engine reloads and tries again. So
//! every node matches an event against the triggers as committed when its transaction runs. On
//! PostgreSQL the change also notifies [`CHANNEL`] at commit, so idle nodes reload early.

use std::sync::{Arc, Weak};
use std::time::Duration;

use hookflow_engine::store::StoreError;
use sea_orm::sea_query::{Alias, Expr, LockType, Query, SimpleExpr};
use sea_orm::sqlx::{self, postgres::PgListener};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tokio::sync::Notify;
use tracing::warn;

use crate::db_err;

/// The `LISTEN`/`NOTIFY` channel of trigger changes (PostgreSQL).
pub const CHANNEL: &str = "hookflow_triggers";

/// The `generations` table (no entity: its one row is read and moved only here), and the
/// name of the triggers' row.
fn table() -> Alias {
    Alias::new("generations")
}
fn value() -> Alias {
    Alias::new("value")
}
fn triggers_row() -> SimpleExpr {
    Expr::col(Alias::new("name")).eq("triggers")
}

/// Moves the generation; call inside the transaction of the change.
pub(crate) async fn bump(txn: &impl ConnectionTrait) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let bump = Query::update()
        .table(table())
        .value(value(), Expr::col(value()).add(1))
        .and_where(triggers_row())
        .to_owned();
    txn.execute(backend.build(&bump)).await.map_err(db_err)?;
    if backend == DbBackend::Postgres {
        // NOTIFY is no statement sea-query builds; the channel is a constant, not a value.
        txn.execute(Statement::from_string(backend, format!("NOTIFY {CHANNEL}")))
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// The generation as committed. `hold`: inside a transaction on PostgreSQL, keep a share lock
/// on it until commit, so no change can commit in between.
pub(crate) async fn read(c: &impl ConnectionTrait, hold: bool) -> Result<i64, StoreError> {
    let backend = c.get_database_backend();
    let mut read = Query::select();
    read.column(value()).from(table()).and_where(triggers_row());
    if hold && backend == DbBackend::Postgres {
        read.lock(LockType::Share);
    }
    let row = c
        .query_one(backend.build(&read))
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::new("the trigger generation row is missing"))?;
    row.try_get_by_index(0).map_err(db_err)
}

/// Listens on [`CHANNEL`] and fires a `Notify` for every change another node commits (and
/// after every reconnect, since changes may have been missed meanwhile). Stops when dropped.
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub(crate) fn start(pool: sqlx::PgPool, notify: &Arc<Notify>) -> Listener {
        let notify = Arc::downgrade(notify);
        let task = tokio::spawn(async move {
            loop {
                match listen(&pool, &notify).await {
                    Ok(()) => return,
                    Err(err) => {
                        warn!(error = %err, "listening for trigger changes failed; retrying")
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Listener { task }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Returns `Ok` once nobody waits for the notifications any more.
async fn listen(pool: &sqlx::PgPool, notify: &Weak<Notify>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        // Connected (again): whatever happened while not listening is reloaded.
        let Some(waiter) = notify.upgrade() else {
            return Ok(());
        };
        waiter.notify_one();
        drop(waiter);
        // `None`: the connection was lost; the next call reconnects and listens again.
        while listener.try_recv().await?.is_some() {
            let Some(waiter) = notify.upgrade() else {
                return Ok(());
            };
            waiter.notify_one();
        }
    }
}
