//! Dry run: a trigger (saved or being edited) evaluated for one entity, with every rule clause
//! and the value it saw, and each call it would make exactly as it would go out — or, asked
//! to, sent as *Send test* sends them.
//!
//! The verdict and the calls come from the code ingest runs ([`CompiledTriggers`] as a
//! [`Planner`]), so a dry run cannot disagree with what an event would do; the trace comes
//! from the same compiled rule or condition (`CompiledTriggers::trace`). Nothing is
//! recorded: no event, no queue item, no activity.

use hookflow_templating::rules::TraceStep;
use hookflow_templating::MimeType;
use serde_json::{Map, Value};

use crate::model::{
    CallStatus, EventId, NewCall, NewEvent, ShopId, Timestamp, Trigger, TriggerDraft, TriggerId,
};
use crate::security::ActionIndex;
use crate::send_test::{
    answered, sample_shop, test_claim, SendTestResult, SentRequest, TestSubject,
};
use crate::service::sample_entity;
use crate::store::{Evaluation, PlannedEvent, Planner};
use crate::triggers::CompiledTriggers;
use crate::{Engine, EngineError};

/// What a dry run evaluates the trigger for.
#[derive(Debug, Clone)]
pub enum DryRunInput {
    /// The latest stored event about an entity of a shop.
    Stored { shop_id: ShopId, entity_id: String },
    /// An entity given as it is (the type's sample when `None`), and optionally as it was
    /// before the change; for the given shop, or a sample one.
    Given {
        entity: Option<Map<String, Value>>,
        previous: Option<Map<String, Value>>,
        shop_id: Option<ShopId>,
        entity_id: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct DryRunRequest {
    pub trigger: TriggerDraft,
    /// The saved trigger: its stored credentials fill in the write-only fields the draft
    /// leaves out.
    pub trigger_id: Option<TriggerId>,
    pub input: DryRunInput,
    /// Also send the calls (when the trigger fires) and return the answers.
    pub send: bool,
}

/// What the trigger would do.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub matched: bool,
    /// Every rule clause with the value it saw; for a condition, one step for the whole
    /// expression; empty for a trigger that always fires.
    pub trace: Vec<TraceStep>,
    /// The calls it would make (none when it does not fire), in action order.
    pub calls: Vec<DryRunCall>,
    /// The entity evaluated, when it was a stored event's.
    pub event_id: Option<EventId>,
}

/// One call as it would go out.
#[derive(Debug, Clone)]
pub struct DryRunCall {
    pub action_index: usize,
    pub request: SentRequest,
    pub mime_type: Option<MimeType>,
    /// Why the call could not be rendered (it would be recorded as failed, not sent).
    pub error: Option<String>,
    /// With `send`: what the receiver answered.
    pub sent: Option<SendTestResult>,
}

impl Engine {
    /// Evaluates `request.trigger` for an entity and renders its calls; sends them too when
    /// asked. A trigger that would not save is refused as saving refuses it.
    pub async fn dry_run(&self, request: DryRunRequest) -> Result<DryRun, EngineError> {
        let draft = self
            .draft_as_saved(request.trigger, request.trigger_id)
            .await?;
        let event_type = self
            .catalog()
            .shared(&draft.event_type)
            .expect("validate_trigger checked the event type");
        let (subject, event_id) = match request.input {
            DryRunInput::Stored { shop_id, entity_id } => {
                if draft.shop_id.is_some_and(|s| s != shop_id) {
                    return Err(EngineError::Invalid {
                        field: "shopId".into(),
                        message: format!(
                            "the trigger is for shop {}, not shop {shop_id}",
                            draft.shop_id.map_or(0, |s| s.0)
                        ),
                    });
                }
                let event = self.store.latest_event(shop_id, &entity_id).await?;
                let event_id = event.as_ref().map(|e| e.id);
                let subject = self
                    .test_subject(&event_type, Some(shop_id), Some(entity_id))
                    .await?;
                (subject, event_id)
            }
            DryRunInput::Given {
                entity,
                previous,
                shop_id,
                entity_id,
            } => {
                let shop = match draft.shop_id.or(shop_id) {
                    Some(id) => self.get_shop(id).await?,
                    None => sample_shop(),
                };
                let subject = TestSubject {
                    shop,
                    entity_id: entity_id
                        .unwrap_or_else(|| crate::send_test::SAMPLE_ENTITY_ID.to_owned()),
                    entity: entity.unwrap_or_else(|| sample_entity(&event_type)),
                    previous,
                    occurred_at: Timestamp::now(),
                };
                (subject, None)
            }
        };
        let now = Timestamp::now();
        let trigger = Trigger {
            id: request.trigger_id.unwrap_or(TriggerId(0)),
            draft: TriggerDraft {
                enabled: true,
                shop_id: Some(subject.shop.id),
                ..draft
            },
            created_at: now,
            updated_at: now,
        };
        let event = NewEvent {
            event_type: trigger.draft.event_type.clone(),
            shop_id: subject.shop.id,
            entity_id: subject.entity_id.clone(),
            entity: subject.entity,
            previous: subject.previous,
            occurred_at: subject.occurred_at,
            idempotency_key: None,
        };
        let planned = PlannedEvent {
            id: event_id.unwrap_or(EventId(0)),
            event: &event,
            shop: &subject.shop,
        };
        // What ingest would decide and queue.
        let compiled = CompiledTriggers::build(
            std::slice::from_ref(&trigger),
            self.catalog(),
            self.config.dispatch.retry,
            &[],
        );
        let mut planned_calls: Vec<NewCall> = Vec::new();
        let mut evaluations: Vec<Evaluation> = Vec::with_capacity(1);
        compiled.plan(&planned, &mut planned_calls, &mut evaluations);
        let matched = evaluations.first().is_some_and(|e| e.matched);
        let trace = compiled.trace(trigger.id, &planned, trigger.draft.condition.as_deref());

        let index = ActionIndex::build(std::slice::from_ref(&trigger), self.config.dispatch.retry);
        let mut calls = Vec::with_capacity(planned_calls.len());
        for call in planned_calls {
            let action_index = usize::from(call.action.index);
            let mime_type = call
                .headers
                .iter()
                .find(|(name, _)| name == "content-type")
                .and_then(|(_, value)| value.split(';').next()?.parse::<MimeType>().ok());
            let error = (call.status == CallStatus::Failed)
                .then(|| call.last_error.clone())
                .flatten();
            let security = index.get(trigger.id, action_index as i32);
            // As the transport would send it now: signatures computed, credentials masked.
            let headers = self
                .transport
                .outgoing_headers(&test_claim(call.clone(), now), security.as_deref(), now)
                .unwrap_or_else(|_| call.headers.clone());
            let shown = SentRequest {
                method: call.method.as_str(),
                url: call.url.clone(),
                headers,
                body: call.body.clone(),
            };
            let sent = if request.send && error.is_none() {
                let delivery = self.deliver_test_call(&trigger, call, now).await;
                Some(answered(shown.clone(), delivery))
            } else {
                None
            };
            calls.push(DryRunCall {
                action_index,
                request: shown,
                mime_type,
                error,
                sent,
            });
        }
        Ok(DryRun {
            matched,
            trace,
            calls,
            event_id,
        })
    }
}
