//! One sea-orm entity per table.

pub mod attempt;
pub mod event;
pub mod queue_item;
pub mod shop;
pub mod trigger;
