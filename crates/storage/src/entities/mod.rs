//! One sea-orm entity per table.
//!
//! Columns that hold one of a closed set of strings (a call's status and method, an alert's
//! kind) are enums, declared with [`stored_enum!`] beside their entity; the conversions to
//! and from the engine's enums are generated there too, so they live in one place.

/// Declares the enum of a column holding one of a closed set of strings, with what sea-orm's
/// `DeriveActiveEnum` would generate (`ActiveEnum`, `TryGetable`, `ValueType`, `Nullable`, into
/// `Value`) and the `From` impls to and from the engine's enum of the same variants.
///
/// Written out rather than derived for one reason: a stored value that is none of the variants
/// fails the read with an error naming the table, the column and the value (the derive's names
/// only the Rust type), so a corrupt row is found at once instead of read as a default.
macro_rules! stored_enum {
    (
        $(#[$doc:meta])*
        $name:ident <=> $domain:ident, stored in $table:literal . $column:literal {
            $($variant:ident = $value:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sea_orm::EnumIter)]
        pub enum $name {
            $($variant,)+
        }

        impl $name {
            /// The string stored for this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $value,)+
                }
            }
        }

        impl From<$domain> for $name {
            fn from(value: $domain) -> Self {
                match value {
                    $($domain::$variant => Self::$variant,)+
                }
            }
        }

        impl From<$name> for $domain {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => $domain::$variant,)+
                }
            }
        }

        impl sea_orm::ActiveEnum for $name {
            type Value = String;
            type ValueVec = Vec<String>;

            fn name() -> sea_orm::sea_query::DynIden {
                sea_orm::sea_query::SeaRc::new(sea_orm::sea_query::Alias::new(stringify!($name)))
            }

            fn to_value(&self) -> String {
                self.as_str().to_owned()
            }

            fn try_from_value(value: &String) -> Result<Self, sea_orm::DbErr> {
                match value.as_str() {
                    $($value => Ok(Self::$variant),)+
                    other => Err(sea_orm::DbErr::Type(format!(
                        "{}.{} holds {other:?}, which is none of {}",
                        $table,
                        $column,
                        [$($value),+].join(", "),
                    ))),
                }
            }

            fn db_type() -> sea_orm::ColumnDef {
                sea_orm::prelude::ColumnTypeTrait::def(sea_orm::ColumnType::String(
                    sea_orm::sea_query::StringLen::None,
                ))
            }
        }

        impl From<$name> for sea_orm::Value {
            fn from(value: $name) -> sea_orm::Value {
                value.as_str().into()
            }
        }

        impl sea_orm::TryGetable for $name {
            fn try_get_by<I: sea_orm::ColIdx>(
                res: &sea_orm::QueryResult,
                index: I,
            ) -> Result<Self, sea_orm::TryGetError> {
                let value = <String as sea_orm::TryGetable>::try_get_by(res, index)?;
                <Self as sea_orm::ActiveEnum>::try_from_value(&value)
                    .map_err(sea_orm::TryGetError::DbErr)
            }
        }

        impl sea_orm::sea_query::ValueType for $name {
            fn try_from(value: sea_orm::Value) -> Result<Self, sea_orm::sea_query::ValueTypeErr> {
                let value = <String as sea_orm::sea_query::ValueType>::try_from(value)?;
                <Self as sea_orm::ActiveEnum>::try_from_value(&value)
                    .map_err(|_| sea_orm::sea_query::ValueTypeErr)
            }

            fn type_name() -> String {
                stringify!($name).to_owned()
            }

            fn array_type() -> sea_orm::sea_query::ArrayType {
                sea_orm::sea_query::ArrayType::String
            }

            fn column_type() -> sea_orm::sea_query::ColumnType {
                sea_orm::sea_query::ColumnType::String(sea_orm::sea_query::StringLen::None)
            }
        }

        impl sea_orm::sea_query::Nullable for $name {
            fn null() -> sea_orm::Value {
                sea_orm::Value::String(None)
            }
        }
    };
}

pub mod action_state;
pub mod alert;
pub mod api_token;
pub mod attempt;
pub mod event;
pub mod event_type;
pub mod queue_item;
pub mod session;
pub mod shop;
pub mod trigger;
pub mod trigger_evaluation;
pub mod user;
pub mod user_shop;
