//! What the call page and the Events page read: the request headers each attempt sent (so the
//! page shows `webhook-id`, `webhook-timestamp` and the signatures as they went out, not as
//! they would be computed now), and an index for the Events page's event-type filter.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Attempts {
    Table,
    RequestHeaders,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    EventType,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Null for attempts logged before this column existed and for interrupted ones.
        m.alter_table(
            Table::alter()
                .table(Attempts::Table)
                .add_column(ColumnDef::new(Attempts::RequestHeaders).text().null())
                .to_owned(),
        )
        .await?;
        // Serves the Events page filtered by type, newest first.
        m.create_index(
            Index::create()
                .name("events_type")
                .table(Events::Table)
                .col(Events::EventType)
                .col(Events::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("events_type")
                .table(Events::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Attempts::Table)
                .drop_column(Attempts::RequestHeaders)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
