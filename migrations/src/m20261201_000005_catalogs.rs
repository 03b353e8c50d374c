//! Catalogs: each shop names the catalog (platform profile) it uses and holds the hash of its
//! API key for the platform-compatible APIs; admins' custom event types get a table.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000005_catalogs"
    }
}

#[derive(DeriveIden)]
enum Shops {
    Table,
    Catalog,
    ApiKeyHash,
    ApiKeyPrefix,
}

#[derive(DeriveIden)]
enum EventTypes {
    Table,
    Id,
    Name,
    Catalog,
    Description,
    Schema,
    PayloadTemplate,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            ColumnDef::new(Shops::Catalog)
                .string()
                .not_null()
                .default("shopctrl")
                .to_owned(),
            ColumnDef::new(Shops::ApiKeyHash).string().null().to_owned(),
            ColumnDef::new(Shops::ApiKeyPrefix)
                .string()
                .null()
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Shops::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        // Serves the compat APIs' lookup of a shop by its key (one per request), and keeps two
        // shops from ever sharing a key. Shops without a key (NULL) do not collide.
        m.create_index(
            Index::create()
                .name("shops_api_key")
                .table(Shops::Table)
                .col(Shops::ApiKeyHash)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(EventTypes::Table)
                .col(
                    ColumnDef::new(EventTypes::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                // Names are unique across catalogs (an event names its type, not its catalog).
                .col(
                    ColumnDef::new(EventTypes::Name)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(EventTypes::Catalog).string().not_null())
                .col(ColumnDef::new(EventTypes::Description).text().not_null())
                .col(ColumnDef::new(EventTypes::Schema).text().null())
                .col(ColumnDef::new(EventTypes::PayloadTemplate).text().null())
                .col(
                    ColumnDef::new(EventTypes::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(EventTypes::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(EventTypes::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("shops_api_key")
                .table(Shops::Table)
                .to_owned(),
        )
        .await?;
        for column in [Shops::ApiKeyPrefix, Shops::ApiKeyHash, Shops::Catalog] {
            m.alter_table(
                Table::alter()
                    .table(Shops::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
