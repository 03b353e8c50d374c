//! The queue as operators need it: coalescing counters and per-host limits on queue items,
//! shops' notification addresses, alerts, and the state of each action (deactivation).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000002_queue_policy"
    }
}

#[derive(DeriveIden)]
enum QueueItems {
    Table,
    Status,
    Priority,
    NextAttemptAt,
    Coalesced,
    TargetHost,
    TriggerId,
    ActionIndex,
    EntityId,
    Id,
    Ordered,
}

#[derive(DeriveIden)]
enum Shops {
    Table,
    NotificationEmail,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    TriggerId,
    ActionIndex,
    ShopId,
    CallId,
    Kind,
    LastStatusCode,
    LastError,
    Count,
    Acknowledged,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ActionStates {
    Table,
    TriggerId,
    ActionIndex,
    ConsecutiveFailures,
    DeactivatedAt,
    DeactivatedReason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            ColumnDef::new(QueueItems::Coalesced)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(QueueItems::TargetHost)
                .string()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(QueueItems::Ordered)
                .boolean()
                .not_null()
                .default(true)
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(QueueItems::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        // The claim query also skips endpoints that are full: with the endpoint in the claim
        // index, a backlog for a slow endpoint is stepped over in the index alone. (A new name:
        // on SQLite the migrator's statements may run on different pooled connections, and
        // re-creating a name another connection has just dropped can see a stale schema.)
        m.create_index(
            Index::create()
                .name("queue_items_due")
                .table(QueueItems::Table)
                .col(QueueItems::Status)
                .col((QueueItems::Priority, IndexOrder::Desc))
                .col(QueueItems::NextAttemptAt)
                .col(QueueItems::TargetHost)
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS queue_items_claim")
            .await?;
        // Serves coalescing (the pending call of an action and entity) and ordering (an
        // earlier unfinished call of the same action and entity). Status is left out on
        // purpose: it changes with every attempt, and the few rows per entity are read anyway.
        m.create_index(
            Index::create()
                .name("queue_items_entity")
                .table(QueueItems::Table)
                .col(QueueItems::TriggerId)
                .col(QueueItems::ActionIndex)
                .col(QueueItems::EntityId)
                .col(QueueItems::Id)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Shops::Table)
                .add_column(ColumnDef::new(Shops::NotificationEmail).string().null())
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Alerts::Table)
                .col(
                    ColumnDef::new(Alerts::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(Alerts::TriggerId).big_integer().not_null())
                .col(ColumnDef::new(Alerts::ActionIndex).integer().not_null())
                .col(ColumnDef::new(Alerts::ShopId).big_integer().null())
                .col(ColumnDef::new(Alerts::CallId).big_integer().null())
                .col(ColumnDef::new(Alerts::Kind).string_len(32).not_null())
                .col(ColumnDef::new(Alerts::LastStatusCode).integer().null())
                .col(ColumnDef::new(Alerts::LastError).text().null())
                .col(ColumnDef::new(Alerts::Count).integer().not_null())
                .col(ColumnDef::new(Alerts::Acknowledged).boolean().not_null())
                .col(ColumnDef::new(Alerts::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Alerts::UpdatedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        // At most one open alert per action and kind: recorders on several nodes (or several
        // recorders of one node on PostgreSQL) add to it with one atomic upsert against this
        // index, so concurrent failures never open two. (Raw SQL: a partial unique index.)
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX alerts_open ON alerts (trigger_id, action_index, kind) \
                 WHERE acknowledged = false",
            )
            .await?;

        m.create_table(
            Table::create()
                .table(ActionStates::Table)
                .col(
                    ColumnDef::new(ActionStates::TriggerId)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ActionStates::ActionIndex)
                        .integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ActionStates::ConsecutiveFailures)
                        .integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ActionStates::DeactivatedAt)
                        .big_integer()
                        .null(),
                )
                .col(
                    ColumnDef::new(ActionStates::DeactivatedReason)
                        .text()
                        .null(),
                )
                .primary_key(
                    Index::create()
                        .col(ActionStates::TriggerId)
                        .col(ActionStates::ActionIndex),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ActionStates::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Alerts::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("queue_items_entity")
                .table(QueueItems::Table)
                .to_owned(),
        )
        .await?;
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
        m.drop_index(
            Index::drop()
                .name("queue_items_due")
                .table(QueueItems::Table)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
