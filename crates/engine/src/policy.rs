//! Per-action queue policy: how a call is retried, how long an attempt may take, when the
//! action is deactivated. Presets reproduce the platforms hookflow replaces.

use std::time::Duration;

use crate::model::{CustomRetry, RetryPolicySpec, RetryPreset};
use crate::retry::{RetryClass, RetryOn, RetryPolicy};

/// An action's resolved policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPolicy {
    pub retry: RetryPolicy,
    /// Per-attempt timeout; `None` = the server's.
    pub timeout: Option<Duration>,
    /// Which unsuccessful outcomes are retried.
    pub retry_on: RetryOn,
    /// Deactivate after this many calls in a row failed for good.
    pub deactivate_after: Option<u32>,
    /// Deactivate as soon as a call runs out of retries.
    pub deactivate_when_exhausted: bool,
    /// No retry is scheduled later than this after the call was queued.
    pub max_age: Option<Duration>,
}

impl ActionPolicy {
    /// The server's defaults, for actions without a policy.
    pub fn server(defaults: RetryPolicy) -> ActionPolicy {
        ActionPolicy {
            retry: defaults,
            timeout: None,
            retry_on: RetryOn::default(),
            deactivate_after: None,
            deactivate_when_exhausted: false,
            max_age: None,
        }
    }

    /// Resolves what an admin chose against the server's defaults.
    pub fn resolve(spec: Option<&RetryPolicySpec>, defaults: RetryPolicy) -> ActionPolicy {
        match spec {
            None => ActionPolicy::server(defaults),
            Some(RetryPolicySpec::Preset(preset)) => ActionPolicy::preset(*preset, defaults),
            Some(RetryPolicySpec::Custom(c)) => {
                let start = match c.preset {
                    Some(preset) => ActionPolicy::preset(preset, defaults),
                    None => ActionPolicy::server(defaults),
                };
                let secs = |v: Option<f64>| v.map(Duration::from_secs_f64);
                let base = secs(c.initial_delay).unwrap_or(start.retry.base);
                let retry_on = match &c.retry_on {
                    // Unknown names were refused when the trigger was saved.
                    Some(names) => RetryOn {
                        classes: names.iter().filter_map(|n| RetryClass::parse(n)).collect(),
                        codes: c.retry_on_4xx.clone(),
                    },
                    None => RetryOn {
                        codes: c.retry_on_4xx.clone(),
                        ..start.retry_on
                    },
                };
                ActionPolicy {
                    retry: RetryPolicy {
                        max_retries: c.max_retries.unwrap_or(start.retry.max_retries),
                        base,
                        max_delay: secs(c.max_delay).unwrap_or(start.retry.max_delay).max(base),
                    },
                    timeout: secs(c.timeout).or(start.timeout),
                    retry_on,
                    deactivate_after: c.deactivate_after_failures.or(start.deactivate_after),
                    deactivate_when_exhausted: start.deactivate_when_exhausted,
                    max_age: secs(c.max_age).or(start.max_age),
                }
            }
        }
    }

    /// A platform's behaviour, as its documents describe it (the README has a table of each).
    pub fn preset(preset: RetryPreset, defaults: RetryPolicy) -> ActionPolicy {
        let server = ActionPolicy::server(defaults);
        match preset {
            // 002: "If a webhook response was unsuccessful, it would retry up to 10 times. If
            // the response still returns an error, an alert will be created."
            RetryPreset::Shopctrl => ActionPolicy {
                retry: RetryPolicy {
                    max_retries: 10,
                    ..defaults
                },
                retry_on: RetryOn::everything(),
                ..server
            },
            // 000: "If a successful status code is not returned … retried automatically …
            // for up to 48 hours, with exponentially increasing intervals …, up to a maximum
            // of 20 retries. If all retry attempts fail, the webhook is deactivated and a
            // notification email is sent." Intervals double from 1 min and level off at
            // 3.5 h, so that the 20th retry comes after about 46 h (jitter included, within
            // 48 h); `max_age` keeps a receiver's Retry-After from stretching it beyond.
            RetryPreset::Skladon => ActionPolicy {
                retry: RetryPolicy {
                    max_retries: 20,
                    base: Duration::from_secs(60),
                    max_delay: Duration::from_secs(3 * 3600 + 1800),
                },
                retry_on: RetryOn::everything(),
                max_age: Some(Duration::from_secs(48 * 3600)),
                deactivate_when_exhausted: true,
                ..server
            },
            // 003: "retried up to 10 times upon failure", a 10 s timeout is retried, "below
            // 300 … OK", "400 to 499 … error … not retried", "all other status codes prompt
            // the webhook to retry".
            RetryPreset::Flowretail => ActionPolicy {
                retry: RetryPolicy {
                    max_retries: 10,
                    ..defaults
                },
                timeout: Some(Duration::from_secs(10)),
                retry_on: RetryOn::all_but_4xx(),
                ..server
            },
            RetryPreset::Frontsystems => ActionPolicy {
                retry: RetryPolicy {
                    max_retries: 0,
                    ..defaults
                },
                ..server
            },
        }
    }
}

/// Checks custom values; the error names the field.
pub fn check_custom(c: &CustomRetry) -> Result<(), (String, String)> {
    let err = |field: &str, message: &str| Err((field.to_owned(), message.to_owned()));
    let positive =
        |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0 && v <= 30.0 * 86400.0);
    if c.max_retries.is_some_and(|n| n > 100) {
        return err("maxRetries", "must be 0 to 100");
    }
    if !positive(c.initial_delay) {
        return err(
            "initialDelay",
            "must be a number of seconds above 0 (at most 30 days)",
        );
    }
    if !positive(c.max_delay) {
        return err(
            "maxDelay",
            "must be a number of seconds above 0 (at most 30 days)",
        );
    }
    if !positive(c.max_age) {
        return err(
            "maxAge",
            "must be a number of seconds above 0 (at most 30 days)",
        );
    }
    if c.timeout
        .is_some_and(|t| !(t.is_finite() && t > 0.0 && t <= 300.0))
    {
        return err("timeout", "must be above 0 and at most 300 seconds");
    }
    if let Some((i, name)) = c
        .retry_on
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, n)| RetryClass::parse(n).is_none())
    {
        let names: Vec<&str> = RetryClass::ALL.iter().map(|c| c.as_str()).collect();
        return err(
            &format!("retryOn[{i}]"),
            &format!(
                "{name:?} is not a class of outcome; use {}",
                names.join(", ")
            ),
        );
    }
    if let Some(code) = c.retry_on_4xx.iter().find(|c| !(400..500).contains(*c)) {
        return err("retryOn4xx", &format!("{code} is not a 4xx status"));
    }
    if c.deactivate_after_failures == Some(0) {
        return err("deactivateAfterFailures", "must be at least 1");
    }
    Ok(())
}

// ---- alerts, activation and the checks of a trigger's queue settings ----

use crate::model::{Action, ActionRef, Timestamp, Trigger, TriggerDraft, TriggerId};
use crate::service::{Engine, EngineError};
use crate::store::{Alert, AttemptBudget};

impl Engine {
    /// Checks priority and retry policies of a trigger as the API sent it.
    pub(crate) fn check_queue_settings(&self, draft: &TriggerDraft) -> Result<(), EngineError> {
        if !(1..=10).contains(&draft.priority) {
            return Err(EngineError::Invalid {
                field: "priority".into(),
                message: "must be 1 (lowest) to 10 (highest)".into(),
            });
        }
        for (i, action) in draft.actions.iter().enumerate() {
            let Action::CallWebhook(call) = action;
            if let Some(RetryPolicySpec::Custom(custom)) = &call.retry_policy {
                check_custom(custom).map_err(|(field, message)| EngineError::Invalid {
                    field: format!("actions[{i}].retryPolicy.{field}"),
                    message,
                })?;
            }
        }
        Ok(())
    }

    pub async fn list_alerts(&self, acknowledged: Option<bool>) -> Result<Vec<Alert>, EngineError> {
        let mut alerts = self.store.list_alerts(acknowledged).await?;
        for alert in &mut alerts {
            if let Some(error) = &alert.last_error {
                alert.last_error = Some(crate::redact::urls_in(error).into_owned());
            }
        }
        Ok(alerts)
    }

    pub async fn ack_alert(&self, id: i64) -> Result<Alert, EngineError> {
        self.store
            .ack_alert(id, Timestamp::now())
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("alert {id} does not exist")))
    }

    /// Deactivated actions, with when they were deactivated.
    pub async fn deactivated_actions(&self) -> Result<Vec<(ActionRef, Timestamp)>, EngineError> {
        Ok(self.store.deactivated_actions().await?)
    }

    /// Enables or disables a trigger. Enabling also reactivates its deactivated actions and,
    /// with `requeue_failed`, queues again the calls that failed or were skipped since it was
    /// disabled. Returns the trigger and how many calls were queued again.
    pub async fn set_trigger_active(
        &self,
        id: TriggerId,
        active: bool,
        requeue_failed: bool,
    ) -> Result<(Trigger, u64), EngineError> {
        let trigger = self.get_trigger(id).await?;
        let now = Timestamp::now();
        let mut since = trigger.updated_at;
        let mut draft = trigger.draft.clone();
        draft.enabled = active;
        let trigger = self
            .store
            .update_trigger(id, &draft, now)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("trigger {id} does not exist")))?;
        let mut requeued = 0;
        if active {
            for (action, at) in self.store.deactivated_actions().await? {
                if action.trigger == id {
                    since = Timestamp(since.0.min(at.0));
                    self.store
                        .set_action_active(action, true, None, now)
                        .await?;
                }
            }
            if requeue_failed {
                requeued = self.requeue(id, None, since, now).await?;
            }
        }
        self.reload_triggers().await?;
        Ok((trigger, requeued))
    }

    /// Deactivates or reactivates one action; reactivation can queue again the calls that
    /// failed or were skipped while it was down. Returns how many were queued again.
    pub async fn set_action_active(
        &self,
        id: TriggerId,
        action_index: usize,
        active: bool,
        requeue_failed: bool,
    ) -> Result<u64, EngineError> {
        let trigger = self.get_trigger(id).await?;
        if action_index >= trigger.draft.actions.len() {
            return Err(EngineError::NotFound(format!(
                "trigger {id} has no action {action_index}"
            )));
        }
        // Below the action count (at most 20), so it fits.
        let action = ActionRef::new(id, action_index as u16);
        let now = Timestamp::now();
        let since = self
            .store
            .deactivated_actions()
            .await?
            .into_iter()
            .find(|(a, _)| *a == action)
            .map(|(_, at)| at);
        self.store
            .set_action_active(action, active, None, now)
            .await?;
        let mut requeued = 0;
        if active && requeue_failed {
            if let Some(since) = since {
                let index = action_index as i32;
                requeued = self.requeue(id, Some(index), since, now).await?;
            }
        }
        self.reload_triggers().await?;
        Ok(requeued)
    }

    /// The fresh budget of attempts resent calls get: each under its action's retry policy
    /// (`only`: the calls of one trigger).
    pub(crate) fn attempt_budget(&self, only: Option<TriggerId>) -> AttemptBudget {
        self.actions
            .read()
            .expect("action index lock is never poisoned: writers only swap an Arc")
            .attempt_budget(only)
    }

    async fn requeue(
        &self,
        id: TriggerId,
        action: Option<i32>,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<u64, EngineError> {
        let budget = self.attempt_budget(Some(id));
        let n = self
            .store
            .requeue_failed(id, action, since, &budget, now)
            .await?;
        if n > 0 {
            self.queued.notify_one();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_platforms() {
        let d = RetryPolicy::default();
        let skladon =
            ActionPolicy::resolve(Some(&RetryPolicySpec::Preset(RetryPreset::Skladon)), d);
        assert_eq!(skladon.retry.max_retries, 20);
        assert_eq!(skladon.max_age, Some(Duration::from_secs(48 * 3600)));
        assert!(skladon.deactivate_when_exhausted);
        assert_eq!(skladon.retry_on, RetryOn::everything());
        // The 20 retries fit in 48 h even when every jitter falls long.
        let longest: Duration = (1..=20)
            .map(|n| {
                let nominal = skladon.retry.base.saturating_mul(1 << (n - 1).min(30));
                nominal.mul_f64(1.25).min(skladon.retry.max_delay)
            })
            .sum();
        assert!(longest < Duration::from_secs(48 * 3600), "{longest:?}");
        assert!(longest > Duration::from_secs(40 * 3600), "{longest:?}");
        let flow =
            ActionPolicy::resolve(Some(&RetryPolicySpec::Preset(RetryPreset::Flowretail)), d);
        assert_eq!(
            (flow.retry.max_retries, flow.timeout),
            (10, Some(Duration::from_secs(10)))
        );
        assert_eq!(flow.retry_on, RetryOn::all_but_4xx());
        let shopctrl =
            ActionPolicy::resolve(Some(&RetryPolicySpec::Preset(RetryPreset::Shopctrl)), d);
        assert_eq!(shopctrl.retry.max_retries, 10);
        assert!(!shopctrl.deactivate_when_exhausted);
        assert_eq!(shopctrl.retry_on, RetryOn::everything());
        let front =
            ActionPolicy::resolve(Some(&RetryPolicySpec::Preset(RetryPreset::Frontsystems)), d);
        assert_eq!(front.retry.max_attempts(), 1, "no automatic retry");
        assert!(!front.deactivate_when_exhausted && front.deactivate_after.is_none());
    }

    #[test]
    fn custom_values_override_the_defaults_and_are_checked() {
        let custom = CustomRetry {
            max_retries: Some(3),
            initial_delay: Some(0.5),
            retry_on_4xx: vec![409],
            deactivate_after_failures: Some(2),
            ..CustomRetry::default()
        };
        let p = ActionPolicy::resolve(
            Some(&RetryPolicySpec::Custom(custom.clone())),
            RetryPolicy::default(),
        );
        assert_eq!(p.retry.max_retries, 3);
        assert_eq!(p.retry.base, Duration::from_millis(500));
        assert_eq!(
            p.retry_on,
            RetryOn {
                codes: vec![409],
                ..RetryOn::default()
            },
            "today's classes, and the chosen 4xx"
        );
        assert_eq!(p.deactivate_after, Some(2));
        assert!(check_custom(&custom).is_ok());
        assert_eq!(
            check_custom(&CustomRetry {
                retry_on_4xx: vec![500],
                ..custom.clone()
            })
            .unwrap_err()
            .0,
            "retryOn4xx"
        );
        assert_eq!(
            check_custom(&CustomRetry {
                retry_on: Some(vec!["5xx".into(), "6xx".into()]),
                ..custom.clone()
            })
            .unwrap_err()
            .0,
            "retryOn[1]"
        );
        assert_eq!(
            check_custom(&CustomRetry {
                initial_delay: Some(-1.0),
                ..custom
            })
            .unwrap_err()
            .0,
            "initialDelay"
        );
    }

    #[test]
    fn custom_values_on_a_preset_keep_the_rest_of_the_preset() {
        let shortened = CustomRetry {
            preset: Some(RetryPreset::Skladon),
            max_retries: Some(2),
            initial_delay: Some(0.05),
            ..CustomRetry::default()
        };
        let p = ActionPolicy::resolve(
            Some(&RetryPolicySpec::Custom(shortened)),
            RetryPolicy::default(),
        );
        assert_eq!(p.retry.max_retries, 2);
        assert_eq!(p.retry.base, Duration::from_millis(50));
        assert_eq!(p.retry_on, RetryOn::everything());
        assert!(p.deactivate_when_exhausted);
        assert_eq!(p.max_age, Some(Duration::from_secs(48 * 3600)));

        let chosen = CustomRetry {
            retry_on: Some(vec!["3xx".into(), "timeout".into()]),
            ..CustomRetry::default()
        };
        let p = ActionPolicy::resolve(
            Some(&RetryPolicySpec::Custom(chosen)),
            RetryPolicy::default(),
        );
        assert_eq!(
            p.retry_on.classes,
            [RetryClass::Redirect, RetryClass::Timeout]
        );
    }
}
