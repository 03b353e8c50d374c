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

#[derive(DeriveIden)]
enum Attempts {
    Table,
    QueueItemId,
    StartedAt,
    StatusCode,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Serves the dashboard's calls per minute by outcome: a range of the last day read in
        // the index alone (the queue item joins in only for a user's shops). Attempts are
        // never updated, so the index costs one insert per attempt.
        m.create_index(
            Index::create()
                .name("attempts_started")
                .table(Attempts::Table)
                .col(Attempts::StartedAt)
                .col(Attempts::StatusCode)
                .col(Attempts::QueueItemId)
                .to_owned(),
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
        m.drop_index(
            Index::drop()
                .name("attempts_started")
                .table(Attempts::Table)
                .to_owned(),
        )
        .await
    }
}
