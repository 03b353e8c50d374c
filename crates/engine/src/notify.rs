//! Notices to people: a call that failed for good, an action its policy deactivated. The
//! engine decides when; a [`Notifier`] (email, operator webhook) decides how.

use async_trait::async_trait;

use crate::model::{CallId, ShopId, Timestamp, TriggerId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A call ran out of attempts (or failed without retry).
    CallFailed,
    /// An action stopped receiving calls until an admin reactivates it.
    ActionDeactivated,
}

/// One notice, with what a person needs to act on it.
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: NoticeKind,
    pub shop_id: Option<ShopId>,
    /// The shop's notification address, if it has one.
    pub shop_email: Option<String>,
    pub trigger_id: TriggerId,
    pub trigger_name: String,
    pub action_index: i32,
    pub url: String,
    pub call_id: Option<CallId>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub at: Timestamp,
}

/// Sends notices. Implementations must not block: they are called from the delivery loop's
/// recorder, and should hand the notice to a task of their own.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    async fn notify(&self, notice: &Notice);
}
