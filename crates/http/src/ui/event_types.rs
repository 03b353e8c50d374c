//! Event types, for admins: every catalog's types (shipped ones read-only), and custom types
//! to add, change and delete. The forms post to the engine's own checks, so the page says
//! what the API would (a field the server refuses is marked beside that field; a name clash
//! or a type in use by a trigger is a 409 said in words). Custom types then show in the
//! trigger editor's event picker and merge field list like shipped ones: both read the
//! engine's merged catalog.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hookflow_engine::catalogs::EventTypeDraft;
use hookflow_engine::EngineError;
use minijinja::context;
use serde::Serialize;

use crate::auth::Session;
use crate::ui::admin::NoticeParams;
use crate::ui::{redirect_with_notice, render, require_admin, FormData, UiError};
use crate::AppState;

/// The form's values, echoed back when the server refuses them.
#[derive(Serialize, Default)]
struct FormValues {
    name: String,
    catalog: String,
    description: String,
    schema: String,
    payload_template: String,
}

impl FormValues {
    fn from_form(form: &FormData) -> FormValues {
        let raw = |name: &str| form.get(name).unwrap_or_default().to_owned();
        FormValues {
            name: raw("name"),
            catalog: raw("catalog"),
            description: raw("description"),
            schema: raw("schema"),
            payload_template: raw("payload_template"),
        }
    }

    /// The API's body; a schema that is not JSON is refused beside its field.
    fn draft(&self) -> Result<EventTypeDraft, EngineError> {
        let schema = if self.schema.is_empty() {
            None
        } else {
            Some(
                serde_json::from_str(&self.schema).map_err(|e| EngineError::Invalid {
                    field: "schema".into(),
                    message: format!("is not JSON: {e}"),
                })?,
            )
        };
        Ok(EventTypeDraft {
            name: Some(self.name.clone()).filter(|n| !n.is_empty()),
            catalog: Some(self.catalog.clone()).filter(|c| !c.is_empty()),
            description: self.description.clone(),
            schema,
            payload_template: Some(self.payload_template.clone()).filter(|t| !t.is_empty()),
        })
    }
}

/// A refusal shown on the form: (field, or empty for the whole form; message; status).
fn refusal(e: EngineError) -> Result<(String, String, StatusCode), UiError> {
    match e {
        EngineError::Invalid { field, message }
        | EngineError::UnknownEventType { field, message, .. } => {
            Ok((field, message, StatusCode::UNPROCESSABLE_ENTITY))
        }
        EngineError::Conflict(message) => {
            // A name clash belongs beside the name; a type in use, to the whole form.
            let field = if message.contains("names are unique") {
                "name"
            } else {
                ""
            };
            Ok((field.to_owned(), message, StatusCode::CONFLICT))
        }
        e => Err(e.into()),
    }
}

/// `GET /event-types`.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<NoticeParams>,
) -> Result<Response, UiError> {
    require_admin(&session.principal)?;
    list_page(&state, &session, params.notice, FormValues::default(), None)
}

fn list_page(
    state: &AppState,
    session: &Session,
    notice: Option<String>,
    values: FormValues,
    error: Option<(String, String, StatusCode)>,
) -> Result<Response, UiError> {
    let catalog = state.engine.catalog();
    let catalogs: Vec<_> = state
        .engine
        .catalogs()
        .into_iter()
        .map(|info| {
            let types: Vec<_> = catalog
                .iter()
                .filter(|t| t.catalog == info.name)
                .map(|t| {
                    context! {
                        name => t.name.clone(),
                        description => t.description.clone(),
                        custom => t.custom,
                        has_schema => t.schema.is_some(),
                        fields => t.fields.len(),
                    }
                })
                .collect();
            context! { info, types }
        })
        .collect();
    let status = error.as_ref().map_or(StatusCode::OK, |(_, _, s)| *s);
    let mut response = render::page(
        session,
        "event_types.html",
        "event_types",
        context! {
            catalogs,
            catalog_names => state.engine.catalogs().into_iter().map(|c| c.name).collect::<Vec<_>>(),
            notice,
            values,
            error => error.map(|(field, message, _)| context! { field, message }),
        },
    )?;
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /event-types`: `name`, `catalog`, `description`, `schema`, `payload_template`.
pub(crate) async fn create(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    require_admin(&session.principal)?;
    let values = FormValues::from_form(&form);
    let created = match values.draft() {
        Ok(draft) => state.engine.create_event_type(draft).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(ty) => Ok(redirect_with_notice(
            "/event-types",
            &format!(
                "Event type {} added to the {} catalog.",
                ty.name, ty.catalog
            ),
        )),
        Err(e) => list_page(&state, &session, None, values, Some(refusal(e)?)),
    }
}

/// `GET /event-types/{name}`: a custom type's form, or a shipped type's details.
pub(crate) async fn edit(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(params): Query<NoticeParams>,
) -> Result<Response, UiError> {
    require_admin(&session.principal)?;
    let Some(ty) = state.engine.catalog().get(&name).cloned() else {
        return Err(UiError::NotFound(format!(
            "event type {name:?} does not exist"
        )));
    };
    let values = FormValues {
        name: ty.name.clone(),
        catalog: ty.catalog.clone(),
        description: ty.description.clone(),
        schema: ty
            .schema
            .as_ref()
            .map(|s| serde_json::to_string_pretty(s).unwrap_or_default())
            .unwrap_or_default(),
        payload_template: ty.payload_template.clone().unwrap_or_default(),
    };
    if ty.custom {
        return edit_page(&state, &session, params.notice, true, values, None);
    }
    // A shipped type: what it carries and what it sends, read-only.
    let fields: Vec<_> = ty
        .fields
        .iter()
        .map(|f| context! { name => f.name, ty => format!("{:?}", f.ty).to_lowercase(), description => f.description })
        .collect();
    let payload_schema =
        serde_json::to_string_pretty(&hookflow_templating::schema::default_payload_schema(&ty))
            .unwrap_or_default();
    let catalog = state
        .engine
        .catalogs()
        .into_iter()
        .find(|c| c.name == ty.catalog);
    render::page(
        &session,
        "event_type.html",
        "event_types",
        context! {
            custom => false,
            notice => params.notice,
            values,
            entity => ty.entity,
            fields,
            example_payload => hookflow_engine::catalogs::example_payload(&ty),
            payload_schema,
            retry_preset => catalog.map(|c| c.retry_preset),
        },
    )
}

fn edit_page(
    state: &AppState,
    session: &Session,
    notice: Option<String>,
    custom: bool,
    values: FormValues,
    error: Option<(String, String, StatusCode)>,
) -> Result<Response, UiError> {
    let status = error.as_ref().map_or(StatusCode::OK, |(_, _, s)| *s);
    let mut response = render::page(
        session,
        "event_type.html",
        "event_types",
        context! {
            custom,
            catalog_names => state.engine.catalogs().into_iter().map(|c| c.name).collect::<Vec<_>>(),
            notice,
            values,
            error => error.map(|(field, message, _)| context! { field, message }),
        },
    )?;
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /event-types/{name}`: the same fields as creating one (the name cannot change).
pub(crate) async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    require_admin(&session.principal)?;
    let mut values = FormValues::from_form(&form);
    values.name = name.clone();
    let updated = match values.draft() {
        Ok(draft) => state.engine.update_event_type(&name, draft).await,
        Err(e) => Err(e),
    };
    match updated {
        Ok(ty) => Ok(redirect_with_notice(
            &format!("/event-types/{}", urlencoded(&ty.name)),
            "Saved.",
        )),
        Err(e) => edit_page(&state, &session, None, true, values, Some(refusal(e)?)),
    }
}

/// `POST /event-types/{name}/delete`: refused (409, said on the list) while a trigger uses it.
pub(crate) async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Result<Response, UiError> {
    require_admin(&session.principal)?;
    match state.engine.delete_event_type(&name).await {
        Ok(()) => Ok(redirect_with_notice(
            "/event-types",
            &format!("Event type {name} deleted."),
        )),
        Err(EngineError::Conflict(message)) => list_page(
            &state,
            &session,
            None,
            FormValues::default(),
            Some((format!("delete:{name}"), message, StatusCode::CONFLICT)),
        ),
        Err(e) => Err(e.into()),
    }
}

fn urlencoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
