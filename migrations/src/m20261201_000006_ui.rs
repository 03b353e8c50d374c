//! Indexes for the web UI's pages, so they stay fast on a large queue.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum QueueItems {
    Table,
    Id,
    Status,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Serves the dashboard's calls per minute by outcome: the last day's minutes read in
        // index order (an index on the minute itself, so grouping needs no sort), the outcome
        // and the call from the index alone (the queue item joins in only for a user's shops).
        // Attempts are never updated, so the index costs one insert per attempt. (Raw SQL: an
        // index on an expression; the same statement on SQLite and PostgreSQL.)
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX attempts_minute ON attempts \
                 ((started_at / 60000), status_code, queue_item_id)",
            )
            .await?;
        // Serves the queue listing filtered by status, newest first (the Webhook Queue page's
        // most used filter), and the dashboard's queue depth and oldest pending call.
        m.create_index(
            Index::create()
                .name("queue_items_status")
                .table(QueueItems::Table)
                .col(QueueItems::Status)
                .col(QueueItems::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("queue_items_status")
                .table(QueueItems::Table)
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared("DROP INDEX attempts_minute")
            .await?;
        Ok(())
    }
}
