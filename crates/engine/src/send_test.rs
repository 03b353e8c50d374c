//! Send test: one call of one action of a trigger being edited, delivered now and answered
//! with the receiver's response, so an admin sees what the receiver makes of it before saving.
//!
//! The call is planned exactly as a real event's would be — the trigger is compiled by
//! [`CompiledTriggers`] and rendered by its [`Planner`] against a stored entity or the type's
//! sample — and sent through the engine's own [`Transport`] with the action's credentials, so
//! the SSRF guard, signing and client certificates apply as they do to queued calls. Nothing
//! is recorded: no event, no queue item, no attempt.

use serde::Serialize;

use crate::model::{
    Action, ActionRef, CallId, CallStatus, ClaimedCall, NewCall, NewEvent, Shop, ShopId, Timestamp,
    Trigger, TriggerDraft, TriggerId,
};
use crate::security::ActionIndex;
use crate::service::sample_entity;
use crate::store::{PlannedEvent, Planner};
use crate::templates::EntityIdParam;
use crate::triggers::CompiledTriggers;
use crate::{Engine, EngineError};

/// The sample event's entity id and shop (as in the save-time checks and previews).
const SAMPLE_ENTITY_ID: &str = "1001";
const SAMPLE_SHOP: (i64, &str) = (1, "Sample shop");
/// Most response body characters shown.
const MAX_BODY_CHARS: usize = 64 * 1024;

/// A send test: the trigger as the editor holds it (saved or not), and what to render it for.
#[derive(Debug, Clone)]
pub struct SendTestRequest {
    pub trigger: TriggerDraft,
    /// The saved trigger being edited: its stored credentials fill in the write-only fields
    /// the editor leaves out.
    pub trigger_id: Option<TriggerId>,
    /// Which action to send; a trigger has at most 20 actions.
    pub action_index: usize,
    /// With `entity_id`: render against the latest stored event about that entity.
    pub shop_id: Option<ShopId>,
    pub entity_id: Option<EntityIdParam>,
}

/// What was sent and what came back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendTestResult {
    pub request: SentRequest,
    /// The receiver's HTTP status; `None` when there was no answer.
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    /// Why there was no answer (timeout, refused target, connection error), or why the call
    /// could not be rendered.
    pub error: Option<String>,
    /// A 2xx answer.
    pub success: bool,
}

/// The request as hookflow built it (credentials and signatures are added by the transport
/// and not shown).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentRequest {
    pub method: &'static str,
    pub url: String,
    /// `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl Engine {
    /// Renders one action of `request.trigger` for a stored or sample entity and delivers it
    /// now. A trigger that would not save is refused as saving refuses it (422 with the field).
    pub async fn send_test(&self, request: SendTestRequest) -> Result<SendTestResult, EngineError> {
        let existing = match request.trigger_id {
            Some(id) => Some(self.get_trigger(id).await?),
            None => None,
        };
        let mut draft = self.validate_trigger(request.trigger).await?;
        self.check_queue_settings(&draft)?;
        // Before narrowing to one action: stored credentials are matched by position.
        self.resolve_credentials(&mut draft, existing.as_ref())?;
        let index = request.action_index;
        if index >= draft.actions.len() {
            return Err(EngineError::Invalid {
                field: "actionIndex".into(),
                message: format!("the trigger has {} action(s)", draft.actions.len()),
            });
        }
        let action = draft.actions.swap_remove(index);
        let Action::CallWebhook(_) = &action;
        let event_type = self
            .catalog()
            .shared(&draft.event_type)
            .expect("validate_trigger checked the event type");

        // The entity: a stored one when asked for, else the type's sample.
        let entity_id = request.entity_id.map(|e| match e {
            EntityIdParam::Text(s) => s,
            EntityIdParam::Number(n) => n.to_string(),
        });
        let shop_id = draft.shop_id.or(request.shop_id);
        let (shop, entity_id, entity, occurred_at) = match (shop_id, entity_id) {
            (Some(shop_id), Some(entity_id)) => {
                let shop = self.get_shop(shop_id).await?;
                let event = self
                    .store
                    .latest_event(shop_id, &entity_id)
                    .await?
                    .ok_or_else(|| {
                        EngineError::NotFound(format!(
                            "no event about {} {entity_id:?} is stored for shop {shop_id}",
                            event_type.entity
                        ))
                    })?;
                (shop, event.entity_id, event.entity, event.occurred_at)
            }
            (shop_id, entity_id) => {
                let shop = match shop_id {
                    Some(id) => self.get_shop(id).await?,
                    None => Shop {
                        id: ShopId(SAMPLE_SHOP.0),
                        name: SAMPLE_SHOP.1.to_owned(),
                        notification_email: None,
                        created_at: Timestamp::now(),
                        catalog: "shopctrl".into(),
                        api_key: Default::default(),
                    },
                };
                let entity_id = entity_id.unwrap_or_else(|| SAMPLE_ENTITY_ID.to_owned());
                (
                    shop,
                    entity_id,
                    sample_entity(&event_type),
                    Timestamp::now(),
                )
            }
        };

        // The trigger as it would run: this one action, enabled, no condition (a test is sent
        // whatever the condition says), for the event's shop.
        let now = Timestamp::now();
        let trigger = Trigger {
            id: request.trigger_id.unwrap_or(TriggerId(0)),
            draft: TriggerDraft {
                enabled: true,
                condition: None,
                shop_id: Some(shop.id),
                actions: vec![action],
                ..draft
            },
            created_at: now,
            updated_at: now,
        };
        let retry = self.config.dispatch.retry;
        let compiled =
            CompiledTriggers::build(std::slice::from_ref(&trigger), self.catalog(), retry, &[]);
        let event = NewEvent {
            event_type: trigger.draft.event_type.clone(),
            shop_id: shop.id,
            entity_id,
            entity,
            occurred_at,
            idempotency_key: None,
        };
        let mut calls: Vec<NewCall> = Vec::with_capacity(1);
        compiled.plan(
            &PlannedEvent {
                id: crate::model::EventId(0),
                event: &event,
                shop: &shop,
            },
            &mut calls,
        );
        let call = calls
            .pop()
            .ok_or_else(|| EngineError::Conflict("the trigger did not produce a call".into()))?;
        let sent = SentRequest {
            method: call.method.as_str(),
            url: call.url.clone(),
            headers: call.headers.clone(),
            body: call.body.clone(),
        };
        if call.status == CallStatus::Failed {
            return Ok(SendTestResult {
                request: sent,
                status: None,
                duration_ms: 0,
                response_headers: Vec::new(),
                response_body: String::new(),
                error: call.last_error,
                success: false,
            });
        }
        let index = ActionIndex::build(std::slice::from_ref(&trigger), retry);
        let policy = index.policy(trigger.id, 0);
        let claimed = ClaimedCall {
            id: CallId(0),
            action: ActionRef::new(trigger.id, 0),
            webhook_id: call.webhook_id,
            method: call.method,
            url: call.url,
            headers: call.headers,
            body: call.body,
            attempts: 0,
            max_attempts: 1,
            created_at: now,
            target_host: call.target_host,
            // Not queued: nothing is recorded under it.
            lease_until: now,
        };
        let security = index.get(trigger.id, 0);
        let delivery = self
            .transport
            .deliver(&claimed, security.as_deref(), policy.timeout)
            .await;
        let mut response_body = delivery.response_body;
        if let Some((cut, _)) = response_body.char_indices().nth(MAX_BODY_CHARS) {
            response_body.truncate(cut);
        }
        Ok(SendTestResult {
            request: sent,
            success: delivery.status.is_some_and(|s| (200..300).contains(&s)),
            status: delivery.status,
            duration_ms: delivery.duration.as_millis() as u64,
            response_headers: delivery.response_headers,
            response_body,
            error: delivery
                .failure
                .map(|(_, message)| crate::redact::urls_in(&message).into_owned()),
        })
    }
}
