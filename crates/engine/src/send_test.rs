//! Send test: one call of one action of a trigger being edited, delivered now and answered
//! with the receiver's response, so an admin sees what the receiver makes of it before saving.
//!
//! The call is planned exactly as a real event's would be — the trigger is compiled by
//! [`CompiledTriggers`] and rendered by its [`Planner`] against a stored entity or the type's
//! sample — and sent through the engine's own [`Transport`] with the action's credentials, so
//! the SSRF guard, signing and client certificates apply as they do to queued calls. Nothing
//! is recorded: no event, no queue item, no attempt.

use hookflow_templating::EventType;

use crate::model::{
    Action, CallId, CallStatus, ClaimedCall, NewCall, NewEvent, Shop, ShopId, Timestamp, Trigger,
    TriggerDraft, TriggerId,
};
use crate::security::ActionIndex;
use crate::service::sample_entity;
use crate::store::{PlannedEvent, Planner};
use crate::transport::Delivery;
use crate::triggers::CompiledTriggers;
use crate::{Engine, EngineError};

/// The sample event's entity id and shop (as in the save-time checks and previews).
pub(crate) const SAMPLE_ENTITY_ID: &str = "1001";
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
    pub entity_id: Option<String>,
}

/// What was sent and what came back.
#[derive(Debug, Clone)]
pub struct SendTestResult {
    pub request: SentRequest,
    /// The receiver's HTTP status; `None` when there was no answer.
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// `[name, value]` pairs.
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
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub method: &'static str,
    pub url: String,
    /// `[name, value]` pairs.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl Engine {
    /// Renders one action of `request.trigger` for a stored or sample entity and delivers it
    /// now. A trigger that would not save is refused as saving refuses it (422 with the field).
    pub async fn send_test(&self, request: SendTestRequest) -> Result<SendTestResult, EngineError> {
        // Before narrowing to one action: stored credentials are matched by position.
        let mut draft = self
            .draft_as_saved(request.trigger, request.trigger_id)
            .await?;
        let action = take_action(&mut draft, request.action_index)?;
        let event_type = self
            .catalog()
            .shared(&draft.event_type)
            .expect("validate_trigger checked the event type");
        let entity_id = request.entity_id;
        let shop_id = draft.shop_id.or(request.shop_id);
        let subject = self.test_subject(&event_type, shop_id, entity_id).await?;
        let now = Timestamp::now();
        let trigger = test_trigger(request.trigger_id, draft, action, subject.shop.id, now);
        let call = self.plan_test_call(&trigger, subject)?;
        let sent = SentRequest {
            method: call.method.as_str(),
            url: call.url.clone(),
            headers: call.headers.clone(),
            body: call.body.clone(),
        };
        if call.status == CallStatus::Failed {
            return Ok(unanswered(sent, call.last_error));
        }
        let delivery = self.deliver_test_call(&trigger, call, now).await;
        Ok(answered(sent, delivery))
    }

    /// A trigger being edited as saving would store it: checked as saving checks it, with the
    /// saved trigger's stored credentials (`trigger_id`) filling in what the editor leaves
    /// out. For tests and dry runs, which run what would be saved.
    pub(crate) async fn draft_as_saved(
        &self,
        draft: TriggerDraft,
        trigger_id: Option<TriggerId>,
    ) -> Result<TriggerDraft, EngineError> {
        let existing = match trigger_id {
            Some(id) => Some(self.get_trigger(id).await?),
            None => None,
        };
        let mut draft = self.validate_trigger(draft).await?;
        self.check_queue_settings(&draft)?;
        self.resolve_credentials(&mut draft, existing.as_ref())?;
        Ok(draft)
    }

    /// The entity a test renders: a stored one when asked for (the latest event about it),
    /// else the type's sample.
    pub(crate) async fn test_subject(
        &self,
        event_type: &EventType,
        shop_id: Option<ShopId>,
        entity_id: Option<String>,
    ) -> Result<TestSubject, EngineError> {
        if let (Some(shop_id), Some(entity_id)) = (shop_id, &entity_id) {
            let shop = self.get_shop(shop_id).await?;
            let event = self
                .store
                .latest_event(shop_id, entity_id)
                .await?
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "no event about {} {entity_id:?} is stored for shop {shop_id}",
                        event_type.entity
                    ))
                })?;
            return Ok(TestSubject {
                shop,
                entity_id: event.entity_id,
                entity: event.entity,
                previous: event.previous,
                occurred_at: event.occurred_at,
            });
        }
        let shop = match shop_id {
            Some(id) => self.get_shop(id).await?,
            None => sample_shop(),
        };
        Ok(TestSubject {
            shop,
            entity_id: entity_id.unwrap_or_else(|| SAMPLE_ENTITY_ID.to_owned()),
            entity: sample_entity(event_type),
            previous: None,
            occurred_at: Timestamp::now(),
        })
    }

    /// The one call the test trigger plans for its subject, rendered as a real event's would
    /// be.
    fn plan_test_call(
        &self,
        trigger: &Trigger,
        subject: TestSubject,
    ) -> Result<NewCall, EngineError> {
        let compiled = CompiledTriggers::build(
            std::slice::from_ref(trigger),
            self.catalog(),
            self.config.dispatch.retry,
            &[],
        );
        let event = NewEvent {
            event_type: trigger.draft.event_type.clone(),
            shop_id: subject.shop.id,
            entity_id: subject.entity_id,
            entity: subject.entity,
            previous: subject.previous,
            occurred_at: subject.occurred_at,
            idempotency_key: None,
        };
        let mut calls: Vec<NewCall> = Vec::with_capacity(1);
        compiled.plan(
            &PlannedEvent {
                id: crate::model::EventId(0),
                event: &event,
                shop: &subject.shop,
            },
            &mut calls,
            &mut Vec::new(),
        );
        calls
            .pop()
            .ok_or_else(|| EngineError::Conflict("the trigger did not produce a call".into()))
    }

    /// Sends the planned call as the dispatcher would, with its action's credentials and
    /// timeout, but as a claim of nothing queued.
    pub(crate) async fn deliver_test_call(
        &self,
        trigger: &Trigger,
        call: NewCall,
        now: Timestamp,
    ) -> Delivery {
        let index = ActionIndex::build(std::slice::from_ref(trigger), self.config.dispatch.retry);
        let action = i32::from(call.action.index);
        let policy = index.policy(trigger.id, action);
        let security = index.get(trigger.id, action);
        self.transport
            .deliver(&test_claim(call, now), security.as_deref(), policy.timeout)
            .await
    }
}

/// A planned call as a claim of nothing queued (nothing is recorded under it).
pub(crate) fn test_claim(call: NewCall, now: Timestamp) -> ClaimedCall {
    ClaimedCall {
        id: CallId(0),
        action: call.action,
        webhook_id: call.webhook_id,
        method: call.method,
        url: call.url,
        headers: call.headers,
        body: call.body,
        attempts: 0,
        max_attempts: 1,
        created_at: now,
        target_host: call.target_host,
        lease_until: now,
    }
}

/// The shop, entity and time a test call is rendered for.
pub(crate) struct TestSubject {
    pub shop: Shop,
    pub entity_id: String,
    pub entity: serde_json::Map<String, serde_json::Value>,
    pub previous: Option<serde_json::Map<String, serde_json::Value>>,
    pub occurred_at: Timestamp,
}

/// The action at `index`, taken out of the draft; an index past the last action is refused.
fn take_action(draft: &mut TriggerDraft, index: usize) -> Result<Action, EngineError> {
    if index >= draft.actions.len() {
        return Err(EngineError::Invalid {
            field: "actionIndex".into(),
            message: format!("the trigger has {} action(s)", draft.actions.len()),
        });
    }
    let action = draft.actions.swap_remove(index);
    let Action::CallWebhook(_) = &action;
    Ok(action)
}

/// The shop a test without one is rendered for.
pub(crate) fn sample_shop() -> Shop {
    Shop {
        id: ShopId(SAMPLE_SHOP.0),
        name: SAMPLE_SHOP.1.to_owned(),
        notification_email: None,
        created_at: Timestamp::now(),
        catalog: "shopctrl".into(),
        api_key: Default::default(),
    }
}

/// The trigger as it would run: this one action, enabled, no condition (a test is sent
/// whatever the condition says), for the event's shop.
fn test_trigger(
    id: Option<TriggerId>,
    draft: TriggerDraft,
    action: Action,
    shop: ShopId,
    now: Timestamp,
) -> Trigger {
    Trigger {
        id: id.unwrap_or(TriggerId(0)),
        draft: TriggerDraft {
            enabled: true,
            condition: None,
            rules: None,
            shop_id: Some(shop),
            actions: vec![action],
            ..draft
        },
        created_at: now,
        updated_at: now,
    }
}

/// A call that failed to render: nothing was sent, the render error says why.
fn unanswered(sent: SentRequest, error: Option<String>) -> SendTestResult {
    SendTestResult {
        request: sent,
        status: None,
        duration_ms: 0,
        response_headers: Vec::new(),
        response_body: String::new(),
        error,
        success: false,
    }
}

/// What the receiver answered, its body cut to [`MAX_BODY_CHARS`] and URLs in a failure's
/// message redacted.
pub(crate) fn answered(sent: SentRequest, delivery: Delivery) -> SendTestResult {
    let mut response_body = delivery.response_body;
    if let Some((cut, _)) = response_body.char_indices().nth(MAX_BODY_CHARS) {
        response_body.truncate(cut);
    }
    SendTestResult {
        request: sent,
        success: delivery.status.is_some_and(|s| (200..300).contains(&s)),
        status: delivery.status,
        duration_ms: delivery.duration.as_millis() as u64,
        response_headers: delivery.response_headers,
        response_body,
        error: delivery
            .failure
            .map(|(_, message)| crate::redact::urls_in(&message).into_owned()),
    }
}
