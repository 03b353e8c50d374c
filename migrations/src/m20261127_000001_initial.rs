//! Shops, triggers, events, the webhook queue and its attempt log.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000001_initial"
    }
}

#[derive(DeriveIden)]
enum Shops {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Triggers {
    Table,
    Id,
    Name,
    EventType,
    ShopId,
    Enabled,
    Priority,
    Condition,
    Actions,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    ShopId,
    EventType,
    EntityId,
    EntityData,
    OccurredAt,
    ReceivedAt,
    IdempotencyKey,
}

#[derive(DeriveIden)]
enum QueueItems {
    Table,
    Id,
    WebhookId,
    EventId,
    TriggerId,
    ActionIndex,
    ShopId,
    EventType,
    EntityId,
    Method,
    Url,
    Headers,
    Body,
    Priority,
    Status,
    Attempts,
    MaxAttempts,
    NextAttemptAt,
    LeaseUntil,
    LastStatusCode,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Attempts {
    Table,
    Id,
    QueueItemId,
    Attempt,
    StartedAt,
    DurationMs,
    StatusCode,
    ResponseHeaders,
    ResponseBody,
    Error,
}

fn id<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Shops::Table)
                .col(id(Shops::Id))
                .col(ColumnDef::new(Shops::Name).string().not_null())
                .col(ColumnDef::new(Shops::CreatedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Triggers::Table)
                .col(id(Triggers::Id))
                .col(ColumnDef::new(Triggers::Name).string().not_null())
                .col(ColumnDef::new(Triggers::EventType).string().not_null())
                .col(ColumnDef::new(Triggers::ShopId).big_integer().null())
                .col(ColumnDef::new(Triggers::Enabled).boolean().not_null())
                .col(ColumnDef::new(Triggers::Priority).integer().not_null())
                .col(ColumnDef::new(Triggers::Condition).text().null())
                .col(ColumnDef::new(Triggers::Actions).text().not_null())
                .col(ColumnDef::new(Triggers::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Triggers::UpdatedAt).big_integer().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .from(Triggers::Table, Triggers::ShopId)
                        .to(Shops::Table, Shops::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Events::Table)
                .col(id(Events::Id))
                .col(ColumnDef::new(Events::ShopId).big_integer().not_null())
                .col(ColumnDef::new(Events::EventType).string().not_null())
                .col(ColumnDef::new(Events::EntityId).string().not_null())
                .col(ColumnDef::new(Events::EntityData).text().not_null())
                .col(ColumnDef::new(Events::OccurredAt).big_integer().not_null())
                .col(ColumnDef::new(Events::ReceivedAt).big_integer().not_null())
                .col(ColumnDef::new(Events::IdempotencyKey).string().null())
                .foreign_key(
                    ForeignKey::create()
                        .from(Events::Table, Events::ShopId)
                        .to(Shops::Table, Shops::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Serves the idempotency lookup of ingest, and makes a key unique per shop.
        m.create_index(
            Index::create()
                .name("events_idempotency")
                .table(Events::Table)
                .col(Events::ShopId)
                .col(Events::IdempotencyKey)
                .unique()
                // Most events carry no key: they stay out of the index, which saves an index
                // insert per event.
                .and_where(Expr::col(Events::IdempotencyKey).is_not_null())
                .to_owned(),
        )
        .await?;
        // Serves "latest event of this entity" (dynamic merge fields).
        m.create_index(
            Index::create()
                .name("events_entity")
                .table(Events::Table)
                .col(Events::ShopId)
                .col(Events::EntityId)
                .col(Events::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(QueueItems::Table)
                .col(id(QueueItems::Id))
                .col(ColumnDef::new(QueueItems::WebhookId).string().not_null())
                .col(ColumnDef::new(QueueItems::EventId).big_integer().not_null())
                .col(
                    ColumnDef::new(QueueItems::TriggerId)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(QueueItems::ActionIndex).integer().not_null())
                .col(ColumnDef::new(QueueItems::ShopId).big_integer().not_null())
                .col(ColumnDef::new(QueueItems::EventType).string().not_null())
                .col(ColumnDef::new(QueueItems::EntityId).string().not_null())
                .col(ColumnDef::new(QueueItems::Method).string_len(8).not_null())
                .col(ColumnDef::new(QueueItems::Url).text().not_null())
                .col(ColumnDef::new(QueueItems::Headers).text().not_null())
                .col(ColumnDef::new(QueueItems::Body).text().null())
                .col(ColumnDef::new(QueueItems::Priority).integer().not_null())
                .col(ColumnDef::new(QueueItems::Status).string_len(16).not_null())
                .col(ColumnDef::new(QueueItems::Attempts).integer().not_null())
                .col(ColumnDef::new(QueueItems::MaxAttempts).integer().not_null())
                .col(
                    ColumnDef::new(QueueItems::NextAttemptAt)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(QueueItems::LeaseUntil).big_integer().null())
                .col(ColumnDef::new(QueueItems::LastStatusCode).integer().null())
                .col(ColumnDef::new(QueueItems::LastError).text().null())
                .col(
                    ColumnDef::new(QueueItems::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(QueueItems::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        // Serves the claim query: due pending items, highest priority first; and the lease
        // sweep (status = in_flight).
        m.create_index(
            Index::create()
                .name("queue_items_claim")
                .table(QueueItems::Table)
                .col(QueueItems::Status)
                .col((QueueItems::Priority, IndexOrder::Desc))
                .col(QueueItems::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        // Serves the queue listing filtered by trigger, newest first.
        m.create_index(
            Index::create()
                .name("queue_items_trigger")
                .table(QueueItems::Table)
                .col(QueueItems::TriggerId)
                .col(QueueItems::Id)
                .to_owned(),
        )
        .await?;
        // Serves the calls of one event (idempotent replays, event detail).
        m.create_index(
            Index::create()
                .name("queue_items_event")
                .table(QueueItems::Table)
                .col(QueueItems::EventId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Attempts::Table)
                .col(id(Attempts::Id))
                .col(
                    ColumnDef::new(Attempts::QueueItemId)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(Attempts::Attempt).integer().not_null())
                .col(ColumnDef::new(Attempts::StartedAt).big_integer().not_null())
                .col(
                    ColumnDef::new(Attempts::DurationMs)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(Attempts::StatusCode).integer().null())
                .col(ColumnDef::new(Attempts::ResponseHeaders).text().not_null())
                .col(ColumnDef::new(Attempts::ResponseBody).text().not_null())
                .col(ColumnDef::new(Attempts::Error).text().null())
                .to_owned(),
        )
        .await?;
        // Serves the attempt log of one queue item.
        m.create_index(
            Index::create()
                .name("attempts_queue_item")
                .table(Attempts::Table)
                .col(Attempts::QueueItemId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Attempts::Table.into_iden(),
            QueueItems::Table.into_iden(),
            Events::Table.into_iden(),
            Triggers::Table.into_iden(),
            Shops::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
