//! The `paginated-api` HTTP service: users over a record store, listed in pages with
//! signed continuation tokens, filtered by an index, created, updated and deleted
//! with JSON in and out.
//!
//! | request | what |
//! |---|---|
//! | `GET /users?limit=&cursor=` | users by id |
//! | `GET /users?city=Paris&limit=&cursor=` | users in a city, through the `user_by_city` index |
//! | `GET /users?tier=1&limit=&cursor=` | users of a tier, through the `user_by_tier` index |
//! | `GET /users/{id}` | one user |
//! | `POST /users` | create (409 if the id exists) |
//! | `PUT /users/{id}` | replace (404 if absent) |
//! | `DELETE /users/{id}` | delete (404 if absent) |
//!
//! A list returns `{"items": [...], "next_cursor": "..."}`; `next_cursor` is `null` on
//! the last page. A cursor is bound to the scan that made it (endpoint, filter,
//! metadata version) and HMAC-signed: a garbled, altered or foreign cursor gets
//! `400 {"error": "..."}`. Bodies over [`BODY_LIMIT`] bytes get 413; malformed JSON 400
//! or 422.

use crate::backend::Db;
use crate::schema::examples::users::{Address, User};
use crate::users::{BY_CITY, BY_TIER, USER};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use fdb_records::cursor::{
    Continuation, ContinuationCodec, CursorError, ExecuteOptions, IndexScan, RecordScan,
};
use fdb_records::kv::Database;
use fdb_records::metadata::RecordMetaData;
use fdb_records::store::{RecordExistence, RecordRange, RecordStore, RecordStoreError, TupleRange};
use foundationdb_tuple::{Element, Subspace};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 16 * 1024;
/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 100;

/// A user as the API shows and accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserJson {
    /// Required by `POST`; optional on `PUT` (must match the path).
    #[serde(default)]
    pub id: Option<i64>,
    pub email: String,
    pub name: String,
    #[serde(default)]
    pub age: Option<i32>,
    /// 0 free, 1 pro, 2 enterprise.
    #[serde(default)]
    pub tier: i32,
    #[serde(default)]
    pub city: String,
}

impl UserJson {
    fn from_user(user: &User) -> Self {
        UserJson {
            id: Some(user.id),
            email: user.email.clone(),
            name: user.name.clone(),
            age: user.age,
            tier: user.tier,
            city: user
                .address
                .as_ref()
                .map(|a| a.city.clone())
                .unwrap_or_default(),
        }
    }

    fn to_user(&self, id: i64) -> User {
        User {
            id,
            email: self.email.clone(),
            name: self.name.clone(),
            age: self.age,
            tier: self.tier,
            address: Some(Address {
                city: self.city.clone(),
                zip: None,
            }),
            active: true,
            ..User::default()
        }
    }
}

/// A page of a list.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PageJson {
    pub items: Vec<UserJson>,
    pub next_cursor: Option<String>,
}

/// Query parameters of `GET /users`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub city: Option<String>,
    pub tier: Option<i64>,
}

/// What the handlers share.
pub struct AppState {
    pub db: Db,
    pub metadata: Arc<RecordMetaData>,
    pub subspace: Subspace,
    pub codec: ContinuationCodec,
}

/// An error answered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<RecordStoreError> for ApiError {
    fn from(e: RecordStoreError) -> Self {
        match e {
            RecordStoreError::RecordAlreadyExists { .. } => ApiError(
                StatusCode::CONFLICT,
                "a user with this id already exists".into(),
            ),
            RecordStoreError::RecordDoesNotExist { .. } => {
                ApiError(StatusCode::NOT_FOUND, "no user with this id".into())
            }
            other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl From<CursorError> for ApiError {
    fn from(e: CursorError) -> Self {
        match e {
            CursorError::Continuation(c) => bad_cursor(c),
            CursorError::Store(s) => s.into(),
            other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

fn bad_cursor(e: fdb_records::cursor::ContinuationError) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, format!("invalid cursor: {e}"))
}

fn rejection(status: StatusCode, text: String) -> ApiError {
    ApiError(status, text)
}

/// The service's routes, with the body limit applied.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/{id}",
            get(get_user).put(update_user).delete(delete_user),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

async fn list_users(
    State(state): State<Arc<AppState>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<PageJson>, ApiError> {
    let Query(params) = params.map_err(|r| rejection(StatusCode::BAD_REQUEST, r.body_text()))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let continuation: Option<Continuation> = match &params.cursor {
        Some(token) => Some(state.codec.decode_str(token).map_err(bad_cursor)?),
        None => None,
    };
    // What the scan is, and a label binding the cursor to this endpoint and filter.
    let (index, value, label) = match (&params.city, params.tier) {
        (Some(_), Some(_)) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "filter by city or by tier, not both".into(),
            ))
        }
        (Some(city), None) => (
            Some(BY_CITY),
            Some(Element::String(city.clone().into())),
            "GET /users?city",
        ),
        (None, Some(tier)) => (Some(BY_TIER), Some(Element::Int(tier)), "GET /users?tier"),
        (None, None) => (None, None, "GET /users"),
    };
    let (items, continuation) = state
        .db
        .run(|tx, _| {
            let (state, continuation, value) = (state.clone(), continuation.clone(), value.clone());
            async move {
                let store =
                    RecordStore::open(&tx, state.subspace.clone(), state.metadata.clone()).await?;
                let options = ExecuteOptions::new()
                    .continuation(continuation)
                    .return_limit(limit)
                    .label(label.as_bytes().to_vec());
                let mut users = Vec::new();
                let next = match (index, value) {
                    (Some(index), Some(value)) => {
                        let plan = IndexScan::new(index, TupleRange::prefix(vec![value]));
                        let page = store.execute(&plan, &options)?.collect_page().await?;
                        for entry in &page.items {
                            // Same transaction: an index entry always has its record.
                            if let Some(user) =
                                store.load_record::<User>(&entry.primary_key).await?
                            {
                                users.push(user);
                            }
                        }
                        page.continuation
                    }
                    _ => {
                        let plan = RecordScan::new(RecordRange::all()).record_type(USER);
                        let page = store.execute(&plan, &options)?.collect_page().await?;
                        for record in &page.items {
                            users.push(record.to_record::<User>()?);
                        }
                        page.continuation
                    }
                };
                Ok::<_, CursorError>((users, next))
            }
        })
        .await?;
    Ok(Json(PageJson {
        items: items.iter().map(UserJson::from_user).collect(),
        next_cursor: (!continuation.is_end()).then(|| state.codec.encode_string(&continuation)),
    }))
}

fn path_id(id: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|r| rejection(StatusCode::BAD_REQUEST, r.body_text()))
}

fn json_body(body: Result<Json<UserJson>, JsonRejection>) -> Result<UserJson, ApiError> {
    let Json(body) = body.map_err(|r| rejection(r.status(), r.body_text()))?;
    if !(0..=2).contains(&body.tier) {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tier must be 0, 1 or 2".into(),
        ));
    }
    Ok(body)
}

async fn save(state: &AppState, user: User, existence: RecordExistence) -> Result<(), ApiError> {
    state
        .db
        .run(|tx, _| {
            let user = user.clone();
            async move {
                let store =
                    RecordStore::open(&tx, state.subspace.clone(), state.metadata.clone()).await?;
                store.save_record_with(&user, existence).await?;
                Ok::<_, RecordStoreError>(())
            }
        })
        .await?;
    Ok(())
}

async fn get_user(
    State(state): State<Arc<AppState>>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<UserJson>, ApiError> {
    let id = path_id(id)?;
    let user = state
        .db
        .run(|tx, _| {
            let state = state.clone();
            async move {
                let store =
                    RecordStore::open(&tx, state.subspace.clone(), state.metadata.clone()).await?;
                store.load_record::<User>(&[Element::Int(id)]).await
            }
        })
        .await?;
    match user {
        Some(user) => Ok(Json(UserJson::from_user(&user))),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "no user with this id".into(),
        )),
    }
}

async fn create_user(
    State(state): State<Arc<AppState>>,
    body: Result<Json<UserJson>, JsonRejection>,
) -> Result<(StatusCode, Json<UserJson>), ApiError> {
    let body = json_body(body)?;
    let Some(id) = body.id else {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id is required".into(),
        ));
    };
    let user = body.to_user(id);
    save(&state, user.clone(), RecordExistence::MustNotExist).await?;
    Ok((StatusCode::CREATED, Json(UserJson::from_user(&user))))
}

async fn update_user(
    State(state): State<Arc<AppState>>,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<UserJson>, JsonRejection>,
) -> Result<Json<UserJson>, ApiError> {
    let id = path_id(id)?;
    let body = json_body(body)?;
    if body.id.is_some_and(|b| b != id) {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "id in the body differs from the path".into(),
        ));
    }
    let user = body.to_user(id);
    save(&state, user.clone(), RecordExistence::MustExist).await?;
    Ok(Json(UserJson::from_user(&user)))
}

async fn delete_user(
    State(state): State<Arc<AppState>>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(id)?;
    let deleted = state
        .db
        .run(|tx, _| {
            let state = state.clone();
            async move {
                let store =
                    RecordStore::open(&tx, state.subspace.clone(), state.metadata.clone()).await?;
                store.delete_record(&[Element::Int(id)]).await
            }
        })
        .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            "no user with this id".into(),
        ))
    }
}
