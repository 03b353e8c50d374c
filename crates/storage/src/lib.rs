//! Storage: hookflow's tables on SQLite (embedded default) or PostgreSQL (scale-out), through
//! sea-orm. [`DbStore`] implements the engine's [`Store`].
//!
//! # Layout
//! - [`entities`]: one sea-orm entity per table.
//! - `shops`, `triggers`: plain CRUD.
//! - `event_types`: admins' custom event types, plain CRUD.
//! - `accounts`: users and their shops, API tokens, sessions.
//! - `secrets`: [`SecretBox`], which seals credentials before they reach the database.
//! - `generation`: the trigger generation every change to what events match moves, so an
//!   ingest never commits calls planned from triggers that changed under it.
//! - `ingest`: the group-commit transaction (events, their calls, and each trigger's
//!   evaluation of them).
//! - `activity`: a trigger's evaluations read back, with the calls they made.
//! - `events`: stored events read beyond ingest (the latest about an entity).
//! - `queue`: claiming with leases, recording attempts, listing, retry and cancel.
//! - `alerts`: calls that failed for good counted on one open alert per action, and actions
//!   deactivated by their policy.
//! - `event_log`: events with the state of their calls; resending one event's or many calls.
//! - `retention`: pruning old finished calls, their attempts and old events, batch by batch.
//! - `stats`: queue depth for the metrics scrape.
//! - `dashboard`: calls per minute, queue depth and the oldest pending call for the web UI.
//!
//! Hot paths (ingest, claim, complete) build multi-row statements with sea-query, so a batch of
//! hundreds of rows is one round trip on either database.

mod accounts;
mod activity;
mod alerts;
mod dashboard;
pub mod entities;
mod event_log;
mod event_types;
mod events;
mod generation;
mod ingest;
mod queue;
mod retention;
mod secrets;
mod shops;
mod stats;
mod triggers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookflow_engine::model::{
    ActionRef, Attempt, CallId, ClaimedCall, Completion, NewEvent, QueueFilter, QueueItem, Shop,
    ShopId, Timestamp, Trigger, TriggerDraft, TriggerId,
};
use hookflow_engine::store::{
    Alert, AttemptBudget, CancelOutcome, CatalogStore, ClaimFilter, CompleteOutcome, EventLogStore,
    Handoff, IngestResult, Planner, QueueStore, RetryOutcome, StoreError, StoredEvent,
};
use hookflow_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    TransactionTrait,
};

pub use crate::secrets::SecretBox;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL {0:?}: use sqlite://... or postgres://...")]
    UnsupportedUrl(String),
    #[error("could not connect to the database: {0}")]
    Connect(DbErr),
    #[error("could not apply migrations: {0}")]
    Migrate(DbErr),
}

/// Connection settings, from the CLI.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: String,
    /// Pool size; `None` picks a default for the backend.
    pub max_connections: Option<u32>,
}

/// hookflow's tables on one database.
#[derive(Clone)]
pub struct DbStore {
    db: DatabaseConnection,
    /// Every write goes through this pool: the one place SQLite's write turn is applied. On
    /// SQLite it has a single connection, so writers of this process take turns waiting for it
    /// (an async wait, in order) instead of in SQLite's busy handler, which sleeps in steps of
    /// milliseconds while it waits for the write lock; readers use `db` beside it (WAL). On
    /// PostgreSQL, whose row locks need no help, it is `db` itself.
    writer: DatabaseConnection,
    is_sqlite: bool,
    /// Shops seen so far. Shops are never deleted, and `update_shop` refreshes the cache;
    /// it saves ingest a query per group commit.
    shops: Arc<std::sync::RwLock<HashMap<ShopId, Shop>>>,
    /// Seals credentials in trigger actions; without it, triggers with credentials are refused.
    secrets: Option<Arc<SecretBox>>,
    /// For opening a connection of its own (migrations on SQLite).
    url: String,
    /// PostgreSQL: fired when another node changed the triggers (`LISTEN`); the listening
    /// task ends with the last clone of the store.
    trigger_changes: Option<(Arc<tokio::sync::Notify>, Arc<generation::Listener>)>,
}

impl DbStore {
    /// Opens the database (creating a SQLite file when the URL says `mode=rwc`).
    pub async fn connect(config: &DbConfig) -> Result<DbStore, StorageError> {
        let is_sqlite = config.url.starts_with("sqlite:");
        if !is_sqlite
            && !config.url.starts_with("postgres://")
            && !config.url.starts_with("postgresql://")
        {
            return Err(StorageError::UnsupportedUrl(config.url.clone()));
        }
        let pool_size = config
            .max_connections
            .unwrap_or(if is_sqlite { 8 } else { 16 });
        let db = Database::connect(Self::options(&config.url, is_sqlite, pool_size))
            .await
            .map_err(StorageError::Connect)?;
        let writer = if is_sqlite {
            Database::connect(Self::options(&config.url, true, 1))
                .await
                .map_err(StorageError::Connect)?
        } else {
            db.clone()
        };
        let trigger_changes = (!is_sqlite).then(|| {
            let notify = Arc::new(tokio::sync::Notify::new());
            let listener =
                generation::Listener::start(db.get_postgres_connection_pool().clone(), &notify);
            (notify, Arc::new(listener))
        });
        Ok(DbStore {
            db,
            writer,
            is_sqlite,
            shops: Arc::default(),
            secrets: None,
            url: config.url.clone(),
            trigger_changes,
        })
    }

    fn options(url: &str, is_sqlite: bool, pool_size: u32) -> ConnectOptions {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .sqlx_logging(false)
            // SQLite: writers queue for the one write connection, so a long wait is load, not an
            // outage. PostgreSQL: a pool that cannot connect for this long answers 503 rather
            // than holding requests.
            .acquire_timeout(Duration::from_secs(if is_sqlite { 30 } else { 5 }))
            .max_connections(pool_size);
        if is_sqlite {
            // WAL lets readers (the queue page) run beside the writer; synchronous=NORMAL in WAL
            // mode loses nothing when the process dies, only (at most the last commits) on power
            // loss. Writers wait for the lock instead of failing at once.
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // A larger page cache and memory-mapped reads keep the hot indexes out of
                    // read() calls; checkpoints run less often, in bigger steps.
                    .pragma("cache_size", "-65536")
                    .pragma("mmap_size", "268435456")
                    .pragma("wal_autocheckpoint", "4000")
            });
        }
        options
    }

    /// Seals credentials with this key from now on.
    pub fn with_secrets(mut self, secrets: SecretBox) -> DbStore {
        self.secrets = Some(Arc::new(secrets));
        self
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        if !self.is_sqlite {
            return Migrator::up(&self.db, None)
                .await
                .map_err(StorageError::Migrate);
        }
        // On SQLite the migrator's statements would go to any pooled connection, and one
        // connection can act on a schema another has just changed before it notices; one
        // connection runs them all, in order.
        let mut options = ConnectOptions::new(self.url.clone());
        options
            .sqlx_logging(false)
            .max_connections(1)
            .min_connections(1);
        let single = Database::connect(options)
            .await
            .map_err(StorageError::Connect)?;
        let result = Migrator::up(&single, None)
            .await
            .map_err(StorageError::Migrate);
        let _ = single.close().await;
        result
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// The underlying connection, for tests and tools.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// Database errors reach the engine as text (it can only report them), marked when the
/// database could not be reached, so callers answer 503 and try again later.
pub(crate) fn db_err(err: DbErr) -> StoreError {
    if is_unreachable(&err) {
        StoreError::unavailable(err.to_string())
    } else {
        StoreError::new(err.to_string())
    }
}

/// The database refused, dropped or never gave a connection, or is shutting down.
fn is_unreachable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::RuntimeErr;
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        DbErr::Conn(_) => return true,
        _ => return false,
    };
    match sqlx {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        Sqlx::Tls(_) | Sqlx::Protocol(_) => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL: connection exceptions (08), a server shutting down or terminating the
            // backend (57P01–57P03), too many connections (53300), a database not accepting
            // connections (55000 on connect).
            code.starts_with("08")
                || code.starts_with("57P0")
                || code == "53300"
                || (code == "55000" && db.message().contains("accepting connections"))
        }),
        _ => false,
    }
}

/// A unique violation of `events_idempotency` (SQLite and PostgreSQL word it differently).
fn is_idempotency_race(err: &StoreError) -> bool {
    err.message.contains("events_idempotency")
        || err
            .message
            .contains("events.shop_id, events.idempotency_key")
}

pub(crate) fn json_err(err: serde_json::Error) -> StoreError {
    StoreError::new(format!("stored JSON is corrupt: {err}"))
}

/// The action a row of `table` names by its `trigger_id` and `action_index` columns. An index
/// that is no position in a list is a corrupt row: an error naming it, never a guess.
pub(crate) fn action_ref(table: &str, trigger: i64, index: i32) -> Result<ActionRef, StoreError> {
    let position = u16::try_from(index).map_err(|_| {
        StoreError::new(format!(
            "{table}.action_index holds {index} (trigger {trigger}), which is no action's position"
        ))
    })?;
    Ok(ActionRef::new(TriggerId(trigger), position))
}

#[async_trait]
impl CatalogStore for DbStore {
    async fn create_shop(
        &self,
        name: &str,
        notification_email: Option<&str>,
        now: Timestamp,
    ) -> Result<Shop, StoreError> {
        shops::create(&self.writer, name, notification_email, now).await
    }

    async fn update_shop(
        &self,
        id: ShopId,
        name: &str,
        notification_email: Option<&str>,
    ) -> Result<Option<Shop>, StoreError> {
        let shop = shops::update(&self.writer, id, name, notification_email).await?;
        if let Some(shop) = &shop {
            self.shops
                .write()
                .expect("shop cache lock is never poisoned: no panics while held")
                .insert(shop.id, shop.clone());
        }
        Ok(shop)
    }

    async fn list_shops(&self) -> Result<Vec<Shop>, StoreError> {
        shops::list(&self.db).await
    }

    async fn get_shop(&self, id: ShopId) -> Result<Option<Shop>, StoreError> {
        shops::get(&self.db, id).await
    }

    async fn list_triggers(&self) -> Result<Vec<Trigger>, StoreError> {
        triggers::list(&self.db, self.secrets.as_deref()).await
    }

    async fn get_trigger(&self, id: TriggerId) -> Result<Option<Trigger>, StoreError> {
        triggers::get(&self.db, self.secrets.as_deref(), id).await
    }

    async fn create_trigger(
        &self,
        draft: &TriggerDraft,
        now: Timestamp,
    ) -> Result<Trigger, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        let trigger = triggers::create(&txn, self.secrets.as_deref(), draft, now).await?;
        generation::bump(&txn).await?;
        txn.commit().await.map_err(db_err)?;
        Ok(trigger)
    }

    async fn update_trigger(
        &self,
        id: TriggerId,
        draft: &TriggerDraft,
        now: Timestamp,
    ) -> Result<Option<Trigger>, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        let trigger = triggers::update(&txn, self.secrets.as_deref(), id, draft, now).await?;
        if trigger.is_some() {
            generation::bump(&txn).await?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(trigger)
    }

    async fn delete_trigger(&self, id: TriggerId) -> Result<bool, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        let deleted = triggers::delete(&txn, id).await?;
        if deleted {
            generation::bump(&txn).await?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(deleted)
    }

    async fn trigger_generation(&self) -> Result<i64, StoreError> {
        generation::read(&self.db, false).await
    }

    fn trigger_changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.trigger_changes.as_ref().map(|(n, _)| n.clone())
    }

    async fn set_shop_catalog(
        &self,
        id: ShopId,
        catalog: &str,
    ) -> Result<Option<Shop>, StoreError> {
        let shop = shops::set_catalog(&self.writer, id, catalog).await?;
        self.cache_shop(shop.as_ref());
        Ok(shop)
    }

    async fn set_shop_api_key(
        &self,
        id: ShopId,
        hash: &str,
        prefix: &str,
    ) -> Result<Option<Shop>, StoreError> {
        let shop = shops::set_api_key(&self.writer, id, hash, prefix).await?;
        self.cache_shop(shop.as_ref());
        Ok(shop)
    }

    async fn shop_by_api_key(&self, hash: &str) -> Result<Option<Shop>, StoreError> {
        shops::by_api_key(&self.db, hash).await
    }

    async fn list_event_types(
        &self,
    ) -> Result<Vec<hookflow_engine::model::CustomEventType>, StoreError> {
        event_types::list(&self.db).await
    }

    async fn create_event_type(
        &self,
        ty: &hookflow_engine::model::CustomEventType,
    ) -> Result<bool, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        let changed = event_types::create(&txn, ty).await?;
        if changed {
            generation::bump(&txn).await?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(changed)
    }

    async fn update_event_type(
        &self,
        ty: &hookflow_engine::model::CustomEventType,
    ) -> Result<bool, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        let changed = event_types::update(&txn, ty).await?;
        if changed {
            generation::bump(&txn).await?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(changed)
    }

    async fn delete_event_type(&self, name: &str) -> Result<bool, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        let changed = event_types::delete(&txn, name).await?;
        if changed {
            generation::bump(&txn).await?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(changed)
    }
}

#[async_trait]
impl QueueStore for DbStore {
    async fn ingest(
        &self,
        requests: &[Vec<NewEvent>],
        planner: &dyn Planner,
        handoff: Handoff,
        now: Timestamp,
    ) -> Result<IngestResult, StoreError> {
        match ingest::ingest(
            &self.writer,
            &self.shops,
            requests,
            planner,
            handoff.clone(),
            now,
        )
        .await
        {
            // Another node committed one of our idempotency keys between our lookup and our
            // insert. The transaction rolled back; a second pass finds the key and answers
            // with the first result.
            Err(err) if is_idempotency_race(&err) => {
                ingest::ingest(&self.writer, &self.shops, requests, planner, handoff, now).await
            }
            result => result,
        }
    }

    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        filter: &ClaimFilter,
    ) -> Result<Vec<ClaimedCall>, StoreError> {
        // Most wake-ups find nothing due (fresh calls are handed over directly): a read, which
        // needs no write turn, answers that cheaply.
        if !queue::any_due(&self.db, now).await? {
            return Ok(Vec::new());
        }
        queue::claim(&self.writer, now, lease_until, limit, filter).await
    }

    async fn complete(
        &self,
        done: &[Completion],
        now: Timestamp,
    ) -> Result<CompleteOutcome, StoreError> {
        queue::complete(&self.writer, done, now).await
    }

    async fn list_alerts(&self, acknowledged: Option<bool>) -> Result<Vec<Alert>, StoreError> {
        alerts::list(&self.db, acknowledged).await
    }

    async fn ack_alert(&self, id: i64, now: Timestamp) -> Result<Option<Alert>, StoreError> {
        alerts::ack(&self.writer, id, now).await
    }

    async fn deactivated_actions(&self) -> Result<Vec<(ActionRef, Timestamp)>, StoreError> {
        alerts::deactivated(&self.db).await
    }

    async fn set_action_active(
        &self,
        action: ActionRef,
        active: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        alerts::set_active(&txn, action, active, reason, now).await?;
        generation::bump(&txn).await?;
        txn.commit().await.map_err(db_err)
    }

    async fn requeue_failed(
        &self,
        trigger: TriggerId,
        action_index: Option<i32>,
        since: Timestamp,
        budget: &AttemptBudget,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        queue::requeue_failed(&self.writer, trigger, action_index, since, budget, now).await
    }

    async fn release_expired_leases(&self, now: Timestamp) -> Result<u64, StoreError> {
        queue::release(&self.writer, Some(now), now).await
    }

    async fn recover_in_flight(&self, now: Timestamp) -> Result<u64, StoreError> {
        queue::release(&self.writer, None, now).await
    }

    async fn list_queue(&self, filter: &QueueFilter) -> Result<Vec<QueueItem>, StoreError> {
        queue::list(&self.db, filter).await
    }

    async fn last_sent(&self, calls: &[CallId]) -> Result<Vec<(CallId, Timestamp)>, StoreError> {
        queue::last_sent(&self.db, calls).await
    }

    async fn get_call(&self, id: CallId) -> Result<Option<(QueueItem, Vec<Attempt>)>, StoreError> {
        queue::get(&self.db, id).await
    }

    async fn retry_call(
        &self,
        id: CallId,
        budget: &AttemptBudget,
        now: Timestamp,
    ) -> Result<RetryOutcome, StoreError> {
        queue::retry(&self.writer, id, budget, now).await
    }

    async fn cancel_call(&self, id: CallId, now: Timestamp) -> Result<CancelOutcome, StoreError> {
        queue::cancel(&self.writer, id, now).await
    }

    async fn prune_calls(
        &self,
        statuses: &[hookflow_engine::model::CallStatus],
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // One batch per turn: other writers get in between batches.
        retention::prune_calls(&self.writer, statuses, before, limit).await
    }

    async fn queue_stats(
        &self,
        now: Timestamp,
    ) -> Result<hookflow_engine::metrics::QueueStats, StoreError> {
        stats::queue_stats(&self.db, now).await
    }

    async fn dashboard_stats(
        &self,
        since: Timestamp,
        shops: Option<&[ShopId]>,
    ) -> Result<hookflow_engine::dashboard::DashboardStats, StoreError> {
        dashboard::dashboard_stats(&self.db, since, shops).await
    }

    async fn last_calls(&self) -> Result<Vec<hookflow_engine::dashboard::LastCall>, StoreError> {
        dashboard::last_calls(&self.db).await
    }
}

#[async_trait]
impl EventLogStore for DbStore {
    async fn latest_event(
        &self,
        shop: ShopId,
        entity_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        events::latest(&self.db, shop, entity_id).await
    }

    async fn list_events(
        &self,
        filter: &hookflow_engine::store::EventFilter,
    ) -> Result<Vec<hookflow_engine::store::LoggedEvent>, StoreError> {
        event_log::list(&self.db, filter).await
    }

    async fn get_event(
        &self,
        id: hookflow_engine::model::EventId,
        detail: hookflow_engine::store::EventDetail,
    ) -> Result<Option<hookflow_engine::store::LoggedEvent>, StoreError> {
        event_log::get(&self.db, id, detail).await
    }

    async fn resend_event(
        &self,
        id: hookflow_engine::model::EventId,
        budget: &AttemptBudget,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError> {
        event_log::resend_event(&self.writer, id, budget, now).await
    }

    async fn resend_calls(
        &self,
        filter: &hookflow_engine::store::ResendFilter,
        budget: &AttemptBudget,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        event_log::resend_calls(&self.writer, filter, budget, now).await
    }

    async fn prune_events(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        retention::prune_events(&self.writer, before, limit).await
    }

    async fn trigger_activity(
        &self,
        trigger: hookflow_engine::model::TriggerId,
        filter: &hookflow_engine::store::ActivityFilter,
    ) -> Result<Vec<hookflow_engine::store::Activity>, StoreError> {
        activity::list(&self.db, trigger, filter).await
    }
}

impl DbStore {
    /// Keeps the ingest path's shop cache in step with a changed shop.
    fn cache_shop(&self, shop: Option<&Shop>) {
        if let Some(shop) = shop {
            self.shops
                .write()
                .expect("shop cache lock is never poisoned: no panics while held")
                .insert(shop.id, shop.clone());
        }
    }
}
