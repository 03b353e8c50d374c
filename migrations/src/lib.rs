//! hookflow's schema: one set of sea-orm migrations for SQLite and PostgreSQL.
//!
//! Times are stored as UTC milliseconds (`BIGINT`), the same on both databases; JSON documents
//! (trigger actions, entity data, headers) as text, because the engine reads them whole.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_initial;
mod m20261127_000002_queue_policy;
mod m20261127_000003_retention;
mod m20261201_000004_accounts;
mod m20261201_000005_catalogs;
mod m20261201_000006_ui;
mod m20261202_000007_queue_core;
mod m20261203_000008_call_page;
mod m20261203_000009_account_hygiene;
mod m20261203_000010_rules;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_initial::Migration),
            Box::new(m20261127_000002_queue_policy::Migration),
            Box::new(m20261127_000003_retention::Migration),
            Box::new(m20261201_000004_accounts::Migration),
            Box::new(m20261201_000005_catalogs::Migration),
            Box::new(m20261201_000006_ui::Migration),
            Box::new(m20261202_000007_queue_core::Migration),
            Box::new(m20261203_000008_call_page::Migration),
            Box::new(m20261203_000009_account_hygiene::Migration),
            Box::new(m20261203_000010_rules::Migration),
        ]
    }
}
