//! [`Engine`]: the facade over storage, the compiled triggers and the two loops. The HTTP API,
//! the CLI and the benchmark all call this; none of them talk to storage directly.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use hookflow_templating::{
    Catalog, ContextValue, EventType, FieldType, RenderContext, TemplateSet,
};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::dispatch::{DispatchConfig, Dispatcher, WorkerInbox, Workers};
use crate::event::{parse_events, InvalidEvent};
use crate::ingest::{IngestError, Ingestor};
use crate::model::{
    Action, Attempt, CallId, Ingested, QueueFilter, QueueItem, Shop, ShopId, Timestamp, Trigger,
    TriggerDraft, TriggerId,
};
use crate::notify::Notifier;
use crate::security::ActionIndex;
use crate::store::{CancelOutcome, RetryOutcome, Store, StoreError};
use crate::transport::Transport;
use crate::triggers::CompiledTriggers;

/// How often triggers are reloaded from storage even without a local change, so that nodes
/// sharing a database pick up each other's edits.
const TRIGGER_REFRESH: Duration = Duration::from_secs(10);
/// Most actions one trigger may have.
const MAX_ACTIONS: usize = 20;
/// Longest trigger name, in characters (the document says so: `TriggerDraft.name`).
const MAX_TRIGGER_NAME: usize = 200;
/// Longest shop name, in characters.
const MAX_SHOP_NAME: usize = 200;

/// The engine's configuration, built once by the binary.
#[derive(Clone, Default)]
pub struct EngineConfig {
    pub dispatch: DispatchConfig,
    /// Where notices (failed calls, deactivated actions) go; none = alerts only.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// Record each trigger's evaluations (its activity) with the events.
    pub trigger_activity: bool,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("dispatch", &self.dispatch)
            .field("notifier", &self.notifier.is_some())
            .field("trigger_activity", &self.trigger_activity)
            .finish()
    }
}

/// An engine call that cannot be done, in terms the API can map to a status code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A field of the request is invalid (422).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The event type is not in the catalog, or not in the shop's (422). `catalog` names the
    /// catalog whose types the caller may use, when the event type's shop decides it.
    #[error("{field}: {message}")]
    UnknownEventType {
        field: String,
        message: String,
        catalog: Option<String>,
    },
    /// The shop does not exist (422).
    #[error("shop {0} does not exist")]
    UnknownShop(i64),
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// An event type named where a resource is addressed (a path) does not exist (404).
    #[error("unknown event type {0:?}")]
    NoSuchEventType(String),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Storage failed (500; the detail is logged, not shown).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// hookflow is stopping (503).
    #[error("hookflow is shutting down")]
    Unavailable,
}

impl From<InvalidEvent> for EngineError {
    fn from(e: InvalidEvent) -> Self {
        if e.unknown_event_type {
            EngineError::UnknownEventType {
                field: e.field,
                message: e.message,
                catalog: None,
            }
        } else {
            EngineError::Invalid {
                field: e.field,
                message: e.message,
            }
        }
    }
}

impl From<IngestError> for EngineError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::UnknownShop(id) => EngineError::UnknownShop(id),
            IngestError::Store(err) => EngineError::Store(err),
            IngestError::ShuttingDown => EngineError::Unavailable,
        }
    }
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    /// The shipped catalogs with the custom event types merged in; swapped whole when a custom
    /// type changes (see `catalogs`).
    pub(crate) catalog: RwLock<Arc<Catalog>>,
    /// The shipped catalogs alone, to merge custom types into.
    pub(crate) builtin_catalog: Arc<Catalog>,
    /// Each shop's catalog, for checking events at ingest without a query per request.
    pub(crate) shop_catalogs: RwLock<std::collections::HashMap<ShopId, String>>,
    pub(crate) triggers: Arc<RwLock<Arc<CompiledTriggers>>>,
    /// Every action's credentials and queue policy, swapped together with `triggers`.
    pub(crate) actions: Arc<RwLock<Arc<ActionIndex>>>,
    pub(crate) transport: Arc<dyn Transport>,
    ingestor: Ingestor,
    pub(crate) queued: Arc<Notify>,
    /// Asks the refresh task to reload triggers now (an action was deactivated).
    reload_wanted: Arc<Notify>,
    /// The dispatcher's end of the ingest handoff, taken when the dispatcher starts.
    inbox: std::sync::Mutex<Option<WorkerInbox>>,
    pub(crate) config: EngineConfig,
    /// Serialises trigger reloads so an older snapshot never replaces a newer one.
    reload: tokio::sync::Mutex<()>,
}

/// The engine's background tasks, owned by whoever started it.
pub struct EngineTasks {
    ingest: JoinHandle<()>,
    refresh: JoinHandle<()>,
}

impl EngineTasks {
    /// Waits for the ingest loop to finish (after every `Engine` handle is dropped).
    pub async fn join(self) {
        self.refresh.abort();
        let _ = self.ingest.await;
    }
}

/// The task that reloads custom event types and triggers: when another node says it changed
/// them (PostgreSQL), at once when an action was deactivated here, and periodically.
/// (Correctness does not rest on this: ingest checks the generation in its transaction; this
/// keeps reloads off the ingest path.) It ends with the engine.
fn spawn_refresh(
    weak: std::sync::Weak<Engine>,
    reload_wanted: Arc<Notify>,
    changes: Option<Arc<Notify>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TRIGGER_REFRESH) => {}
                _ = reload_wanted.notified() => {}
                _ = async {
                    match &changes {
                        Some(changes) => changes.notified().await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            let Some(engine) = weak.upgrade() else { break };
            if let Err(err) = engine.reload_catalog().await {
                error!(error = %err, "could not refresh custom event types");
            }
            if let Err(err) = engine.reload_triggers().await {
                error!(error = %err, "could not refresh triggers");
            }
        }
    })
}

impl Engine {
    /// Loads the triggers and starts the ingest loop.
    pub async fn start(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        transport: Arc<dyn Transport>,
        config: EngineConfig,
    ) -> Result<(Arc<Engine>, EngineTasks), EngineError> {
        let builtin_catalog = catalog;
        let catalog =
            crate::catalogs::merge_custom(&builtin_catalog, store.list_event_types().await?);
        // The generation first: a change committed while loading makes it look stale, never
        // current (ingest then reloads).
        let generation = store.trigger_generation().await?;
        let triggers = store.list_triggers().await?;
        let deactivated = store.deactivated_actions().await?;
        let actions = Arc::new(RwLock::new(Arc::new(ActionIndex::build(
            &triggers,
            config.dispatch.retry,
        ))));
        let compiled = CompiledTriggers::build(
            &triggers,
            catalog.clone(),
            config.dispatch.retry,
            &deactivated,
        )
        .recording_activity(config.trigger_activity)
        .at_generation(generation);
        let triggers = Arc::new(RwLock::new(Arc::new(compiled)));
        let queued = Arc::new(Notify::new());
        let (workers, inbox) = Workers::new(
            config.dispatch.lease,
            config.dispatch.per_host,
            actions.clone(),
        );
        let reloader = Arc::new(std::sync::OnceLock::new());
        let (ingestor, ingest) = Ingestor::start(
            store.clone(),
            triggers.clone(),
            reloader.clone(),
            queued.clone(),
            Arc::new(workers),
            config.dispatch.committers,
        );
        let reload_wanted = Arc::new(Notify::new());
        let engine = Arc::new(Engine {
            store,
            catalog: RwLock::new(catalog),
            builtin_catalog,
            shop_catalogs: RwLock::new(std::collections::HashMap::new()),
            triggers,
            actions,
            transport,
            ingestor,
            queued,
            inbox: std::sync::Mutex::new(Some(inbox)),
            reload_wanted: reload_wanted.clone(),
            config,
            reload: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&engine);
        let _ = reloader.set(weak.clone());
        let refresh = spawn_refresh(weak, reload_wanted, engine.store.trigger_changes());
        Ok((engine, EngineTasks { ingest, refresh }))
    }

    /// Starts the delivery loop (once per engine); it drains and returns when `shutdown`
    /// fires. Stop taking events before firing it.
    pub fn spawn_dispatcher(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let inbox = self
            .inbox
            .lock()
            .expect("inbox lock is never poisoned: taking an Option cannot panic")
            .take()
            .expect("spawn_dispatcher is called once per engine");
        let dispatcher = Dispatcher {
            store: self.store.clone(),
            transport: self.transport.clone(),
            config: self.config.dispatch.clone(),
            queued: self.queued.clone(),
            inbox,
            actions: self.actions.clone(),
            notifier: self.config.notifier.clone(),
            reload: self.reload_wanted.clone(),
        };
        tokio::spawn(dispatcher.run(shutdown))
    }

    /// Every catalog's event types, custom ones included, as of now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .expect("catalog lock is never poisoned: writers only swap an Arc")
            .clone()
    }

    pub(crate) async fn reload_triggers(&self) -> Result<(), EngineError> {
        let _guard = self.reload.lock().await;
        // The generation first (see `start`).
        let generation = self.store.trigger_generation().await?;
        let triggers = self.store.list_triggers().await?;
        let deactivated = self.store.deactivated_actions().await?;
        let retry = self.config.dispatch.retry;
        let compiled = CompiledTriggers::build(&triggers, self.catalog(), retry, &deactivated)
            .recording_activity(self.config.trigger_activity)
            .at_generation(generation);
        *self
            .triggers
            .write()
            .expect("trigger lock is never poisoned: writers only swap an Arc") =
            Arc::new(compiled);
        *self
            .actions
            .write()
            .expect("action index lock is never poisoned: writers only swap an Arc") =
            Arc::new(ActionIndex::build(&triggers, retry));
        Ok(())
    }

    /// Reloads event types and triggers unless they are already at `generation` or later:
    /// ingest found them behind the committed ones.
    pub(crate) async fn reload_behind(&self, generation: i64) -> Result<(), EngineError> {
        let current = self
            .triggers
            .read()
            .expect("trigger lock is never poisoned: writers only swap an Arc")
            .generation();
        if current.is_some_and(|g| g >= generation) {
            return Ok(());
        }
        self.reload_catalog().await?;
        self.reload_triggers().await
    }

    // ---- shops ----

    pub async fn create_shop(
        &self,
        name: &str,
        notification_email: Option<&str>,
    ) -> Result<Shop, EngineError> {
        Ok(self
            .create_shop_with_key(name, notification_email, None)
            .await?
            .0)
    }

    pub async fn update_shop(
        &self,
        id: ShopId,
        name: &str,
        notification_email: Option<&str>,
    ) -> Result<Shop, EngineError> {
        let (name, email) = check_shop(name, notification_email)?;
        self.store
            .update_shop(id, name, email)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("shop {id} does not exist")))
    }

    pub async fn list_shops(&self) -> Result<Vec<Shop>, EngineError> {
        Ok(self.store.list_shops().await?)
    }

    pub async fn get_shop(&self, id: ShopId) -> Result<Shop, EngineError> {
        self.store
            .get_shop(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("shop {id} does not exist")))
    }

    // ---- triggers ----

    pub async fn list_triggers(&self) -> Result<Vec<Trigger>, EngineError> {
        Ok(self.store.list_triggers().await?)
    }

    pub async fn get_trigger(&self, id: TriggerId) -> Result<Trigger, EngineError> {
        self.store
            .get_trigger(id)
            .await?
            .ok_or_else(|| trigger_not_found(id))
    }

    pub async fn create_trigger(&self, draft: TriggerDraft) -> Result<Trigger, EngineError> {
        let mut draft = self.validate_trigger(draft).await?;
        self.check_queue_settings(&draft)?;
        self.resolve_credentials(&mut draft, None)?;
        let trigger = self.store.create_trigger(&draft, Timestamp::now()).await?;
        info!(trigger_id = %trigger.id, event_type = %draft.event_type, "trigger created");
        self.reload_triggers().await?;
        Ok(trigger)
    }

    pub async fn update_trigger(
        &self,
        id: TriggerId,
        draft: TriggerDraft,
    ) -> Result<Trigger, EngineError> {
        let existing = self.get_trigger(id).await?;
        let mut draft = self.validate_trigger(draft).await?;
        self.check_queue_settings(&draft)?;
        self.resolve_credentials(&mut draft, Some(&existing))?;
        let trigger = self
            .store
            .update_trigger(id, &draft, Timestamp::now())
            .await?
            .ok_or_else(|| trigger_not_found(id))?;
        info!(trigger_id = %id, "trigger updated");
        self.reload_triggers().await?;
        Ok(trigger)
    }

    pub async fn delete_trigger(&self, id: TriggerId) -> Result<(), EngineError> {
        if !self.store.delete_trigger(id).await? {
            return Err(trigger_not_found(id));
        }
        info!(trigger_id = %id, "trigger deleted");
        self.reload_triggers().await
    }

    /// Checks a rule against an event type as saving a trigger would, and answers the
    /// expression it compiles to and how many clauses it has.
    pub fn check_rule(
        &self,
        event_type: &str,
        rule: &hookflow_templating::rules::Rule,
    ) -> Result<(String, usize), EngineError> {
        let Some(ty) = self.catalog().shared(event_type) else {
            return Err(EngineError::UnknownEventType {
                field: "eventType".into(),
                message: format!("unknown event type {event_type:?}"),
                catalog: None,
            });
        };
        let compiled = rule
            .check(&ty, "rules")
            .map_err(|e| invalid(e.path, e.message))?;
        Ok((compiled.expression(), compiled.clause_count()))
    }

    /// The expression a trigger's rules compile to (`None`: it has none, or they no longer
    /// fit its type).
    pub fn rule_expression(&self, draft: &TriggerDraft) -> Option<String> {
        let rule = draft.rules.as_ref()?;
        let event_type = self.catalog().shared(&draft.event_type)?;
        rule.check(&event_type, "rules")
            .ok()
            .map(|compiled| compiled.expression())
    }

    /// Checks everything about a trigger that can be checked before an event arrives.
    pub(crate) async fn validate_trigger(
        &self,
        mut draft: TriggerDraft,
    ) -> Result<TriggerDraft, EngineError> {
        draft.name = crate::text::check_name("name", &draft.name, MAX_TRIGGER_NAME)?.to_owned();
        let Some(event_type) = self.catalog().shared(&draft.event_type) else {
            return Err(EngineError::UnknownEventType {
                field: "eventType".into(),
                message: format!("unknown event type {:?}", draft.event_type),
                catalog: None,
            });
        };
        if let Some(shop) = draft.shop_id {
            let Some(shop) = self.store.get_shop(shop).await? else {
                return Err(EngineError::UnknownShop(shop.0));
            };
            crate::catalogs::check_type_in_shop(&event_type, &shop, "eventType")?;
        }
        self.default_retry_policies(&mut draft, &event_type);
        let checker = TemplateSet::new();
        let sample = sample_context(&event_type, Arc::new(sample_entity(&event_type)));
        if let Some(condition) = &draft.condition {
            if condition.trim().is_empty() {
                draft.condition = None;
            } else {
                checker
                    .check_condition_against(condition, &sample)
                    .map_err(|e| {
                        let message = crate::triggers::template_problem(&e, "", &event_type);
                        invalid("condition", message)
                    })?;
            }
        }
        if let Some(rule) = &draft.rules {
            if draft.condition.is_some() {
                return Err(invalid(
                    "rules",
                    "a trigger has rules or a condition, not both: clear one of them",
                ));
            }
            rule.check(&event_type, "rules")
                .map_err(|e| invalid(e.path, e.message))?;
        }
        if draft.actions.is_empty() {
            return Err(invalid("actions", "a trigger needs at least one action"));
        }
        if draft.actions.len() > MAX_ACTIONS {
            return Err(invalid(
                "actions",
                format!("at most {MAX_ACTIONS} actions per trigger"),
            ));
        }
        for (i, action) in draft.actions.iter().enumerate() {
            let Action::CallWebhook(call) = action;
            crate::triggers::check_action(&checker, call, &event_type, &sample)
                .map_err(|p| invalid(format!("actions[{i}].{}", p.field), p.message))?;
        }
        Ok(draft)
    }

    // ---- events ----

    /// Validates a request body (one event or an array) and ingests it; returns once committed.
    pub async fn ingest_json(&self, body: Value) -> Result<Vec<Ingested>, EngineError> {
        self.ingest_json_for(body, None).await
    }

    /// [`Engine::ingest_json`] for a caller who sees only `scope`'s shops (`None`: every
    /// shop): an event for another shop is refused as if the shop did not exist, and nothing
    /// of the request is stored.
    pub async fn ingest_json_for(
        &self,
        body: Value,
        scope: Option<&[ShopId]>,
    ) -> Result<Vec<Ingested>, EngineError> {
        let batch = body.is_array();
        let events = parse_events(body, &self.catalog(), Timestamp::now())?;
        if let Some(scope) = scope {
            if let Some(event) = events.iter().find(|e| !scope.contains(&e.shop_id)) {
                return Err(EngineError::UnknownShop(event.shop_id.0));
            }
        }
        self.check_events(&events, batch).await?;
        Ok(self.ingestor.submit(events).await?)
    }

    // ---- queue ----

    pub async fn list_queue(&self, filter: &QueueFilter) -> Result<Vec<QueueItem>, EngineError> {
        let items = self.store.list_queue(filter).await?;
        Ok(items.into_iter().map(QueueItem::redacted).collect())
    }

    /// When each of `calls` last went out; calls never sent are missing.
    pub async fn last_sent(
        &self,
        calls: &[CallId],
    ) -> Result<std::collections::HashMap<CallId, Timestamp>, EngineError> {
        if calls.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        Ok(self.store.last_sent(calls).await?.into_iter().collect())
    }

    pub async fn get_call(&self, id: CallId) -> Result<(QueueItem, Vec<Attempt>), EngineError> {
        let (item, attempts) = self
            .store
            .get_call(id)
            .await?
            .ok_or_else(|| call_not_found(id))?;
        let attempts = attempts.into_iter().map(Attempt::redacted).collect();
        Ok((item.redacted(), attempts))
    }

    /// Sends a call again now: a failed or cancelled call gets a fresh set of attempts under
    /// its action's retry policy, and a succeeded one is resent.
    pub async fn retry_call(&self, id: CallId) -> Result<QueueItem, EngineError> {
        match self
            .store
            .retry_call(id, &self.attempt_budget(None), Timestamp::now())
            .await?
        {
            RetryOutcome::Queued(item) => {
                self.queued.notify_one();
                Ok(item.redacted())
            }
            RetryOutcome::InFlight(_) => Err(EngineError::Conflict(format!(
                "call {id} is being delivered right now"
            ))),
            RetryOutcome::NotFound => Err(call_not_found(id)),
        }
    }

    pub async fn cancel_call(&self, id: CallId) -> Result<QueueItem, EngineError> {
        match self.store.cancel_call(id, Timestamp::now()).await? {
            CancelOutcome::Cancelled(item) => Ok(item.redacted()),
            CancelOutcome::Finished(item) => Err(EngineError::Conflict(format!(
                "call {id} has already finished ({})",
                item.status.as_str()
            ))),
            CancelOutcome::NotFound => Err(call_not_found(id)),
        }
    }
}

/// A shop's name and notification address, checked.
pub(crate) fn check_shop<'a>(
    name: &'a str,
    email: Option<&'a str>,
) -> Result<(&'a str, Option<&'a str>), EngineError> {
    let name = crate::text::check_name("name", name, MAX_SHOP_NAME)?;
    // Blank means none; else an address as `text::EMAIL_PATTERN` says, at most 254 characters.
    let email = email.filter(|e| !crate::text::trim_blanks(e).is_empty());
    let email = match email {
        Some(email) => match crate::text::email_shape(email) {
            Some(trimmed) if email.chars().count() <= 254 => Some(trimmed),
            _ => {
                return Err(invalid(
                    "notificationEmail",
                    format!("{email:?} is not an email address"),
                ))
            }
        },
        None => None,
    };
    Ok((name, email))
}

fn trigger_not_found(id: TriggerId) -> EngineError {
    EngineError::NotFound(format!("trigger {id} does not exist"))
}

fn call_not_found(id: CallId) -> EngineError {
    EngineError::NotFound(format!("queue item {id} does not exist"))
}

/// Webhook URLs must be absolute http(s) URLs with a host. Where they may point is checked at
/// delivery time, on the resolved addresses.
/// URL templates are checked on what they render (see `triggers::check_action`).
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} is not allowed; use http or https",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials; use the action's basic authentication".into());
    }
    Ok(())
}

/// An entity with every catalog field set to a plausible value, for checking templates: the
/// platform's published example where there is one.
pub fn sample_entity(event_type: &EventType) -> serde_json::Map<String, Value> {
    if let Some(example) = hookflow_templating::example_entity(event_type) {
        return example;
    }
    event_type
        .fields
        .iter()
        .map(|f| {
            let value = match f.ty {
                FieldType::Integer => Value::from(1001),
                FieldType::Number => Value::from(10.5),
                FieldType::Boolean => Value::from(true),
                FieldType::String => Value::from(format!("{}-1001", f.name)),
            };
            (f.name.clone(), value)
        })
        .collect()
}

/// The merge fields of a sample event of `event_type` about `entity`, for checking templates
/// when a trigger is saved and for previews.
pub(crate) fn sample_context(
    event_type: &Arc<EventType>,
    entity: Arc<serde_json::Map<String, Value>>,
) -> ContextValue {
    RenderContext {
        event_id: 1,
        event_type: event_type.clone(),
        occurred_at: "2026-01-01T00:00:00Z".to_owned(),
        entity_id: "1001".to_owned(),
        shop_id: 1,
        shop_name: "Sample shop".to_owned(),
        entity,
        previous: None,
    }
    .into_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(check_url("https://erp.example.com/hooks").is_ok());
        assert!(check_url("http://h/o/1001?x=a%20b").is_ok());
        assert!(check_url("ftp://h/").is_err());
        assert!(check_url("/relative").is_err());
        assert!(check_url("http://user:pw@h/").is_err());
    }
}
