//! The dashboard's numbers: calls per minute by outcome over the last day (every HTTP call
//! hookflow made, that is every delivery attempt, by its answer), what the queue
//! holds now, and the failing actions — each one index-backed query, scoped to the shops a
//! user may see.

use crate::model::{CallId, CallStatus, ShopId, Timestamp, TriggerId};
use crate::store::Alert;
use crate::{Engine, EngineError};

/// How far back the chart goes.
pub const CHART_HOURS: i64 = 24;
const MINUTE_MS: i64 = 60_000;

/// What the storage reports for the dashboard.
#[derive(Debug, Clone, Default)]
pub struct DashboardStats {
    /// Calls made (delivery attempts) per minute (Unix minutes): whether they were answered
    /// 2xx, and how many.
    pub per_minute: Vec<(i64, bool, u64)>,
    /// Unfinished calls per state (pending, in flight).
    pub depth: Vec<(CallStatus, u64)>,
    /// The oldest pending call and when it was created.
    pub oldest_pending: Option<(CallId, Timestamp)>,
}

/// The dashboard of a user: [`DashboardStats`] plus the open alerts of their shops.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The chart's first minute (Unix minutes); the chart has `CHART_HOURS * 60` minutes.
    pub first_minute: i64,
    pub per_minute: Vec<MinuteCount>,
    pub pending: u64,
    pub in_flight: u64,
    pub oldest_pending: Option<OldestPending>,
    /// Open alerts: the actions whose calls fail for good.
    pub failing: Vec<Alert>,
}

#[derive(Debug, Clone)]
pub struct MinuteCount {
    pub minute: i64,
    /// Answered 2xx.
    pub succeeded: bool,
    pub calls: u64,
}

#[derive(Debug, Clone)]
pub struct OldestPending {
    pub id: CallId,
    pub created_at: Timestamp,
}

/// A trigger's latest call, for the trigger list's "last delivery" column.
#[derive(Debug, Clone)]
pub struct LastCall {
    pub trigger_id: TriggerId,
    pub call_id: CallId,
    pub status: CallStatus,
    pub status_code: Option<i32>,
    /// When the call last changed.
    pub at: Timestamp,
}

impl Engine {
    /// The latest call of every trigger that has one.
    pub async fn last_calls(&self) -> Result<Vec<LastCall>, EngineError> {
        Ok(self.store.last_calls().await?)
    }

    /// The dashboard at `now`, within `shops` (`None` = every shop).
    pub async fn dashboard(
        &self,
        now: Timestamp,
        shops: Option<&[ShopId]>,
    ) -> Result<Dashboard, EngineError> {
        let first_minute = now.0 / MINUTE_MS - CHART_HOURS * 60 + 1;
        let stats = self
            .store
            .dashboard_stats(Timestamp(first_minute * MINUTE_MS), shops)
            .await?;
        let depth = |status| {
            stats
                .depth
                .iter()
                .filter(|(s, _)| *s == status)
                .map(|(_, n)| *n)
                .sum()
        };
        let failing = self
            .store
            .list_alerts(Some(false))
            .await?
            .into_iter()
            .filter(|a| match (shops, a.shop_id) {
                (None, _) => true,
                (Some(scope), Some(shop)) => scope.contains(&shop),
                (Some(_), None) => false,
            })
            .collect();
        Ok(Dashboard {
            first_minute,
            pending: depth(CallStatus::Pending),
            in_flight: depth(CallStatus::InFlight),
            per_minute: stats
                .per_minute
                .into_iter()
                .map(|(minute, succeeded, calls)| MinuteCount {
                    minute,
                    succeeded,
                    calls,
                })
                .collect(),
            oldest_pending: stats
                .oldest_pending
                .map(|(id, created_at)| OldestPending { id, created_at }),
            failing,
        })
    }
}
