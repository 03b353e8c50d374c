//! Indexes for the event log and its retention: pruning finds old calls and old events by
//! time instead of scanning whole tables every few minutes, and a shop's event log is read
//! newest first without sorting all of the shop's events.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000003_retention"
    }
}

#[derive(DeriveIden)]
enum QueueItems {
    Table,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    ShopId,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Serves pruning of finished calls (a call last changed no earlier than it was created,
        // so "changed before the cutoff" is a range of this index), and the `from`/`to`
        // filters of the queue listing and of bulk resends. `created_at` never changes, so
        // the index costs an insert per call and nothing on the hot updates.
        m.create_index(
            Index::create()
                .name("queue_items_created")
                .table(QueueItems::Table)
                .col(QueueItems::CreatedAt)
                .to_owned(),
        )
        .await?;
        // Serves pruning of old events and the event log's `from`/`to` filters.
        m.create_index(
            Index::create()
                .name("events_received")
                .table(Events::Table)
                .col(Events::ReceivedAt)
                .to_owned(),
        )
        .await?;
        // Serves the event log of one shop, newest first (`events_entity` starts with the
        // shop too, but its order is by entity).
        m.create_index(
            Index::create()
                .name("events_shop")
                .table(Events::Table)
                .col(Events::ShopId)
                .col(Events::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("events_shop")
                .table(Events::Table)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("events_received")
                .table(Events::Table)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("queue_items_created")
                .table(QueueItems::Table)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
