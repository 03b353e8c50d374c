//! Triggers: plain CRUD; actions are kept as JSON in storage's own shape (`stored`).

mod stored;

use hookflow_engine::model::{ShopId, Timestamp, Trigger, TriggerDraft, TriggerId};
use hookflow_engine::store::StoreError;
use hookflow_templating::rules::Rule;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder, Set,
};

use crate::entities::trigger;
use crate::secrets::SecretBox;
use crate::{db_err, json_err};
use stored::{Sealer, StoredAction};

fn to_trigger(secrets: Option<&SecretBox>, m: trigger::Model) -> Result<Trigger, StoreError> {
    let stored: Vec<StoredAction> = serde_json::from_str(&m.actions).map_err(json_err)?;
    let rules = match &m.rules {
        Some(text) => {
            let json = serde_json::from_str(text).map_err(json_err)?;
            Some(Rule::parse(&json, "rules").map_err(|e| {
                StoreError::new(format!(
                    "trigger {}: its stored rules do not parse: {e}",
                    m.id
                ))
            })?)
        }
        None => None,
    };
    Ok(Trigger {
        id: TriggerId(m.id),
        draft: TriggerDraft {
            name: m.name,
            event_type: m.event_type,
            shop_id: m.shop_id.map(ShopId),
            enabled: m.enabled,
            priority: m.priority,
            condition: m.condition,
            rules,
            actions: Sealer(secrets).open_actions(stored)?,
        },
        created_at: Timestamp(m.created_at),
        updated_at: Timestamp(m.updated_at),
    })
}

fn fill(
    secrets: Option<&SecretBox>,
    model: &mut trigger::ActiveModel,
    draft: &TriggerDraft,
) -> Result<(), StoreError> {
    let actions = Sealer(secrets).seal_actions(&draft.actions)?;
    model.name = Set(draft.name.clone());
    model.event_type = Set(draft.event_type.clone());
    model.shop_id = Set(draft.shop_id.map(|s| s.0));
    model.enabled = Set(draft.enabled);
    model.priority = Set(draft.priority);
    model.condition = Set(draft.condition.clone());
    model.rules = Set(draft.rules.as_ref().map(|r| r.to_json().to_string()));
    model.actions = Set(serde_json::to_string(&actions).map_err(json_err)?);
    Ok(())
}

pub(crate) async fn list(
    db: &DatabaseConnection,
    secrets: Option<&SecretBox>,
) -> Result<Vec<Trigger>, StoreError> {
    let rows = trigger::Entity::find()
        .order_by_asc(trigger::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    rows.into_iter().map(|m| to_trigger(secrets, m)).collect()
}

pub(crate) async fn get(
    db: &DatabaseConnection,
    secrets: Option<&SecretBox>,
    id: TriggerId,
) -> Result<Option<Trigger>, StoreError> {
    trigger::Entity::find_by_id(id.0)
        .one(db)
        .await
        .map_err(db_err)?
        .map(|m| to_trigger(secrets, m))
        .transpose()
}

pub(crate) async fn create(
    db: &impl ConnectionTrait,
    secrets: Option<&SecretBox>,
    draft: &TriggerDraft,
    now: Timestamp,
) -> Result<Trigger, StoreError> {
    let mut model = trigger::ActiveModel {
        created_at: Set(now.0),
        updated_at: Set(now.0),
        ..Default::default()
    };
    fill(secrets, &mut model, draft)?;
    to_trigger(secrets, model.insert(db).await.map_err(db_err)?)
}

pub(crate) async fn update(
    db: &impl ConnectionTrait,
    secrets: Option<&SecretBox>,
    id: TriggerId,
    draft: &TriggerDraft,
    now: Timestamp,
) -> Result<Option<Trigger>, StoreError> {
    let Some(existing) = trigger::Entity::find_by_id(id.0)
        .one(db)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let mut model: trigger::ActiveModel = existing.into();
    fill(secrets, &mut model, draft)?;
    model.updated_at = Set(now.0);
    Ok(Some(to_trigger(
        secrets,
        model.update(db).await.map_err(db_err)?,
    )?))
}

pub(crate) async fn delete(db: &impl ConnectionTrait, id: TriggerId) -> Result<bool, StoreError> {
    let result = trigger::Entity::delete_by_id(id.0)
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(result.rows_affected > 0)
}
