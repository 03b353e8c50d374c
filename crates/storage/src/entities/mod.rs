//! One sea-orm entity per table.

pub mod action_state;
pub mod alert;
pub mod api_token;
pub mod attempt;
pub mod event;
pub mod event_type;
pub mod queue_item;
pub mod session;
pub mod shop;
pub mod trigger;
pub mod user;
pub mod user_shop;
