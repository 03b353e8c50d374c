//! One sea-orm entity per table.

pub mod action_state;
pub mod alert;
pub mod attempt;
pub mod event;
pub mod event_type;
pub mod queue_item;
pub mod shop;
pub mod trigger;
