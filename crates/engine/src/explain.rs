//! Why an event fired the triggers it fired, and why the others of its type did not: the
//! Events page's "matched / not matched" list.
//!
//! It is computed when asked, read-only: the stored event is evaluated against the triggers
//! of its type *as they are now* (a trigger changed since the event arrived may answer
//! differently than it did then; the event's calls say what happened then). The verdict
//! follows the order in which ingest decides: the trigger's shop, whether it is enabled, its
//! condition; then, for a trigger that fires, each action's activation.

use std::sync::Arc;

use hookflow_templating::{ContextValue, EventType, RenderContext, TemplateSet};

use crate::model::{Action, ActionRef, EventId, Shop, ShopId, Timestamp, Trigger, TriggerId};
use crate::service::{Engine, EngineError};
use crate::store::{EventDetail, LoggedEvent};

/// Whether a trigger fires for an event, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It fires: its shop, its switch and its condition (if any) agree.
    Matches,
    /// It is for another shop.
    OtherShop { shop_id: ShopId },
    /// It is switched off. `condition_holds` says whether it would fire once enabled (`None`:
    /// the condition could not be evaluated).
    Disabled { condition_holds: Option<bool> },
    /// Its condition is false for this event.
    ConditionFalse,
    /// Its condition could not be evaluated for this event (ingest treats that as false).
    ConditionError { message: String },
}

/// One action of a trigger, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionState {
    pub index: i32,
    pub url: String,
    /// Deactivated (by its policy or an admin) since then: its calls are skipped, not sent.
    pub deactivated_at: Option<Timestamp>,
}

/// One trigger of the event's type and what it makes of the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerVerdict {
    pub trigger_id: TriggerId,
    pub name: String,
    /// `None`: every shop.
    pub shop_id: Option<ShopId>,
    /// The trigger's condition, when it has one.
    pub condition: Option<String>,
    pub verdict: Verdict,
    pub actions: Vec<ActionState>,
}

/// An event with its payload and calls, and the verdict of every trigger of its type.
#[derive(Debug, Clone)]
pub struct EventExplanation {
    pub event: LoggedEvent,
    pub triggers: Vec<TriggerVerdict>,
}

impl Engine {
    /// The event (with its entity data and each call's attempts) and, for every trigger of
    /// its type, whether it fires for it now and why not. Nothing is written.
    pub async fn explain_event(&self, id: EventId) -> Result<EventExplanation, EngineError> {
        let event = self
            .get_event(
                id,
                EventDetail {
                    payload: true,
                    attempts: true,
                },
            )
            .await?;
        let shop = self.get_shop(event.shop_id).await?;
        let triggers = self.store.list_triggers().await?;
        let deactivated = self.store.deactivated_actions().await?;
        let event_type = self.catalog().shared(&event.event_type);
        let triggers = explain(&event, &shop, event_type, &triggers, &deactivated);
        Ok(EventExplanation { event, triggers })
    }
}

/// The verdicts, pure: the triggers of the event's type, in the order ingest queues their
/// calls (highest priority first).
pub fn explain(
    event: &LoggedEvent,
    shop: &Shop,
    event_type: Option<Arc<EventType>>,
    triggers: &[Trigger],
    deactivated: &[(ActionRef, Timestamp)],
) -> Vec<TriggerVerdict> {
    let mut mine: Vec<&Trigger> = triggers
        .iter()
        .filter(|t| t.draft.event_type == event.event_type)
        .collect();
    mine.sort_by_key(|t| (-t.draft.priority, t.id));
    let context = event_type
        .clone()
        .map(|event_type| event_context(event, shop, event_type));
    let mut templates = TemplateSet::new();
    mine.into_iter()
        .map(|trigger| {
            // Rules are judged by the expression they compile to, which gives their verdict.
            let from_rules = match (&trigger.draft.rules, &event_type) {
                (Some(rule), Some(ty)) => rule.check(ty, "rules").ok().map(|c| c.expression()),
                _ => None,
            };
            let condition = from_rules.or_else(|| {
                trigger
                    .draft
                    .condition
                    .as_deref()
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
            });
            TriggerVerdict {
                trigger_id: trigger.id,
                name: trigger.draft.name.clone(),
                shop_id: trigger.draft.shop_id,
                verdict: verdict(
                    trigger,
                    condition.as_deref(),
                    event,
                    context.as_ref(),
                    &mut templates,
                ),
                condition,
                actions: action_states(trigger, deactivated),
            }
        })
        .collect()
}

/// The merge fields the event's conditions see, as ingest builds them.
fn event_context(event: &LoggedEvent, shop: &Shop, event_type: Arc<EventType>) -> ContextValue {
    RenderContext {
        event_id: event.id.0,
        event_type,
        occurred_at: event.occurred_at.to_rfc3339(),
        entity_id: event.entity_id.clone(),
        shop_id: shop.id.0,
        shop_name: shop.name.clone(),
        entity: Arc::new(event.entity.clone().unwrap_or_default()),
        previous: event.previous.clone().map(Arc::new),
    }
    .into_value()
}

/// Why a trigger fires for the event or not; its condition is compiled into `templates` only
/// when the verdict needs it. `context` is `None` when the event's type left the catalog.
fn verdict(
    trigger: &Trigger,
    condition: Option<&str>,
    event: &LoggedEvent,
    context: Option<&ContextValue>,
    templates: &mut TemplateSet,
) -> Verdict {
    let mut holds = || -> Result<bool, String> {
        let Some(source) = condition else {
            return Ok(true);
        };
        let Some(ctx) = context else {
            return Err(format!(
                "the event type {} is no longer in the catalog",
                event.event_type
            ));
        };
        let id = templates
            .add_condition(&format!("explain{}", trigger.id), source)
            .map_err(|e| e.to_string())?;
        templates
            .condition_holds(&id, ctx)
            .map_err(|e| e.to_string())
    };
    match trigger.draft.shop_id {
        Some(shop_id) if shop_id != event.shop_id => Verdict::OtherShop { shop_id },
        _ if !trigger.draft.enabled => Verdict::Disabled {
            condition_holds: holds().ok(),
        },
        _ => match holds() {
            Ok(true) => Verdict::Matches,
            Ok(false) => Verdict::ConditionFalse,
            Err(message) => Verdict::ConditionError { message },
        },
    }
}

/// Each action of the trigger, with when it was deactivated if it was.
fn action_states(trigger: &Trigger, deactivated: &[(ActionRef, Timestamp)]) -> Vec<ActionState> {
    trigger
        .draft
        .actions
        .iter()
        .enumerate()
        .map(|(index, action)| {
            let Action::CallWebhook(call) = action;
            let index = index as i32;
            ActionState {
                index,
                // The Events page is open to viewers: the URL template without its
                // credentials.
                url: crate::redact::url_template(&call.url),
                deactivated_at: deactivated
                    .iter()
                    .find(|(a, _)| a.trigger == trigger.id && i32::from(a.index) == index)
                    .map(|(_, at)| *at),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, ApiKeyInfo, CallWebhook, TriggerDraft};

    fn trigger(id: i64, shop: Option<i64>, enabled: bool, condition: Option<&str>) -> Trigger {
        let draft = TriggerDraft {
            shop_id: shop.map(ShopId),
            enabled,
            condition: condition.map(Into::into),
            ..TriggerDraft::new(
                format!("t{id}"),
                "OrderChanged",
                vec![Action::CallWebhook(CallWebhook::to(
                    "https://erp.example.com/h",
                ))],
            )
        };
        Trigger {
            id: TriggerId(id),
            draft,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn event() -> (LoggedEvent, Shop, Option<Arc<EventType>>) {
        let catalog = hookflow_templating::Catalog::builtin().unwrap();
        let entity = serde_json::json!({"OrderId": 42, "Status": "Shipped"});
        let event = LoggedEvent {
            id: EventId(9),
            event_type: "OrderChanged".into(),
            shop_id: ShopId(1),
            entity_id: "42".into(),
            occurred_at: Timestamp(0),
            received_at: Timestamp(0),
            entity: entity.as_object().cloned(),
            previous: None,
            calls: Vec::new(),
        };
        let shop = Shop {
            id: ShopId(1),
            name: "Main".into(),
            notification_email: None,
            created_at: Timestamp(0),
            catalog: "shopctrl".into(),
            api_key: ApiKeyInfo::default(),
        };
        (event, shop, catalog.shared("OrderChanged"))
    }

    #[test]
    fn each_trigger_of_the_type_says_whether_it_fires_and_why_not() {
        let (event, shop, ty) = event();
        let mut other_type = trigger(7, None, true, None);
        other_type.draft.event_type = "ProductCreated".into();
        let triggers = [
            trigger(1, Some(1), true, Some("entity.Status == \"Shipped\"")),
            trigger(2, Some(2), true, None),
            trigger(3, None, false, Some("entity.Status == \"Shipped\"")),
            trigger(4, None, true, Some("entity.Status == \"Cancelled\"")),
            trigger(5, None, true, Some("entity.Total > 100")),
            trigger(6, None, true, None),
            other_type,
        ];
        let deactivated = [(ActionRef::new(TriggerId(6), 0), Timestamp(5))];
        let verdicts = explain(&event, &shop, ty, &triggers, &deactivated);
        let by_id = |id: i64| {
            verdicts
                .iter()
                .find(|v| v.trigger_id == TriggerId(id))
                .unwrap()
        };
        assert_eq!(verdicts.len(), 6, "only triggers of the event's type");
        assert_eq!(by_id(1).verdict, Verdict::Matches);
        assert_eq!(by_id(2).verdict, Verdict::OtherShop { shop_id: ShopId(2) });
        assert_eq!(
            by_id(3).verdict,
            Verdict::Disabled {
                condition_holds: Some(true)
            }
        );
        assert_eq!(by_id(4).verdict, Verdict::ConditionFalse);
        // A missing field is undefined, and undefined > 100 is an error in minijinja or
        // false; either way the trigger does not fire.
        assert!(matches!(
            by_id(5).verdict,
            Verdict::ConditionFalse | Verdict::ConditionError { .. }
        ));
        assert_eq!(by_id(6).verdict, Verdict::Matches);
        assert_eq!(by_id(6).actions[0].deactivated_at, Some(Timestamp(5)));
        assert_eq!(by_id(1).actions[0].deactivated_at, None);
    }

    #[test]
    fn a_type_gone_from_the_catalog_cannot_evaluate_conditions() {
        let (event, shop, _) = event();
        let triggers = [
            trigger(1, None, true, Some("entity.Status == \"Shipped\"")),
            trigger(2, None, true, None),
        ];
        let verdicts = explain(&event, &shop, None, &triggers, &[]);
        assert!(matches!(
            &verdicts[0].verdict,
            Verdict::ConditionError { message } if message.contains("no longer in the catalog")
        ));
        assert_eq!(verdicts[1].verdict, Verdict::Matches);
    }
}
