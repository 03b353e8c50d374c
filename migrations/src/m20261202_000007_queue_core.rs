//! The queue core: a generation number that every change to what events match moves (read by
//! the ingest transaction, so every node matches against the triggers as committed), and the
//! link from a superseded unique call to the call that replaced it, and whether a call is a
//! unique item.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Generations {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum QueueItems {
    Table,
    SupersededBy,
    UniqueItem,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Generations::Table)
                .col(
                    ColumnDef::new(Generations::Name)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Generations::Value)
                        .big_integer()
                        .not_null()
                        .default(0),
                )
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(Generations::Table)
                .columns([Generations::Name, Generations::Value])
                .values_panic(["triggers".into(), 0i64.into()])
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(QueueItems::Table)
                .add_column(
                    ColumnDef::new(QueueItems::SupersededBy)
                        .big_integer()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        // Whether the call is a unique item: fixed when it is queued, so changing the action
        // later does not change how its queued calls behave. (SQLite adds one column per
        // ALTER TABLE.)
        m.alter_table(
            Table::alter()
                .table(QueueItems::Table)
                .add_column(
                    ColumnDef::new(QueueItems::UniqueItem)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [QueueItems::UniqueItem, QueueItems::SupersededBy] {
            m.alter_table(
                Table::alter()
                    .table(QueueItems::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.drop_table(Table::drop().table(Generations::Table).to_owned())
            .await?;
        Ok(())
    }
}
