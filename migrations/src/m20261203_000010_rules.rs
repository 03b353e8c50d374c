//! Rules: a trigger's condition as a rule tree (`triggers.rules`, its canonical JSON), the
//! entity before the change an event may carry (`events.previous_data`), and each trigger's
//! activity: one row per evaluation of a trigger for an event, kept as long as the event.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Triggers {
    Table,
    Id,
    Rules,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    PreviousData,
}

#[derive(DeriveIden)]
enum TriggerEvaluations {
    Table,
    EventId,
    TriggerId,
    Matched,
    DecidedBy,
    EvaluatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Triggers::Table)
                .add_column(ColumnDef::new(Triggers::Rules).text().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Events::Table)
                .add_column(ColumnDef::new(Events::PreviousData).text().null())
                .to_owned(),
        )
        .await?;
        // Keyed by (event, trigger): the key serves the cascade when retention deletes an
        // event, and one more index serves a trigger's activity, newest first.
        m.create_table(
            Table::create()
                .table(TriggerEvaluations::Table)
                .col(
                    ColumnDef::new(TriggerEvaluations::EventId)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(TriggerEvaluations::TriggerId)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(TriggerEvaluations::Matched)
                        .boolean()
                        .not_null(),
                )
                .col(ColumnDef::new(TriggerEvaluations::DecidedBy).text().null())
                .col(
                    ColumnDef::new(TriggerEvaluations::EvaluatedAt)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(TriggerEvaluations::EventId)
                        .col(TriggerEvaluations::TriggerId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TriggerEvaluations::Table, TriggerEvaluations::EventId)
                        .to(Events::Table, Events::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TriggerEvaluations::Table, TriggerEvaluations::TriggerId)
                        .to(Triggers::Table, Triggers::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // `GET /triggers/{id}/activity`: a trigger's evaluations, newest event first.
        m.create_index(
            Index::create()
                .name("trigger_evaluations_trigger")
                .table(TriggerEvaluations::Table)
                .col(TriggerEvaluations::TriggerId)
                .col(TriggerEvaluations::EventId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(TriggerEvaluations::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Events::Table)
                .drop_column(Events::PreviousData)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Triggers::Table)
                .drop_column(Triggers::Rules)
                .to_owned(),
        )
        .await
    }
}
