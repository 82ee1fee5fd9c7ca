//! The REST API under `/api/v1`: API-key authentication, one JSON error shape, and the
//! resources (imports, DNC lists, campaigns' lifecycle, agents and groups).

pub mod agents;
pub mod body;
pub mod calls;
pub mod campaigns;
pub mod crm_webhooks;
pub mod dnc;
pub mod imports;
pub mod keys;
pub mod leads;
pub mod openapi;
pub mod query;
pub mod reports;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Role;
use crate::startup::AppState;
use crate::tenant::TenantId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/leads/template.csv", get(imports::template))
        .route(
            "/api/v1/campaigns",
            get(campaigns::list).post(campaigns::create),
        )
        .route(
            "/api/v1/campaigns/{id}",
            get(campaigns::show)
                .patch(campaigns::update)
                .delete(campaigns::delete),
        )
        .route("/api/v1/campaigns/{id}/leads", post(imports::upload))
        .route("/api/v1/leads", get(leads::list))
        .route(
            "/api/v1/leads/{id}",
            get(leads::show).patch(leads::update).delete(leads::delete),
        )
        .route("/api/v1/leads/{id}/requeue", post(leads::requeue))
        .route("/api/v1/keys", get(keys::list).post(keys::create))
        .route("/api/v1/keys/{id}", delete(keys::revoke))
        .route("/api/v1/campaigns/{id}/progress", get(campaigns::progress))
        .route("/api/v1/campaigns/{id}/{action}", post(campaigns::act))
        .route("/api/v1/imports/{id}", get(imports::show))
        .route("/api/v1/imports/{id}/errors.csv", get(imports::errors_csv))
        .route("/api/v1/calls", get(calls::list))
        .route("/api/v1/calls/{id}", get(calls::show))
        .route("/api/v1/calls/{id}/disposition", post(calls::disposition))
        .route("/api/v1/calls/export", get(reports::calls))
        .route("/api/v1/campaigns/{id}/report", get(reports::campaign))
        .route("/api/v1/agents/{id}/report", get(reports::agent))
        .route("/api/v1/dnc", get(dnc::list).post(dnc::add))
        .route("/api/v1/dnc/import", post(dnc::import))
        .route("/api/v1/dnc/{number}", get(dnc::check).delete(dnc::remove))
        .route("/api/v1/agents", get(agents::list).post(agents::create))
        .route("/api/v1/agents/me", get(agents::me))
        .route("/api/v1/agents/me/status", put(agents::set_my_status))
        .route(
            "/api/v1/agents/{id}",
            get(agents::show).patch(agents::update),
        )
        .route("/api/v1/agents/{id}/status", put(agents::set_status))
        .route("/api/v1/agents/{id}/keys", post(agents::create_key))
        .route(
            "/api/v1/agent-groups",
            get(agents::list_groups).post(agents::create_group),
        )
        .route(
            "/api/v1/agent-groups/{id}",
            get(agents::show_group)
                .patch(agents::update_group)
                .delete(agents::delete_group),
        )
        .route(
            "/api/v1/agent-groups/{id}/members/{agent_id}",
            put(agents::add_member).delete(agents::remove_member),
        )
        .route(
            "/api/v1/webhook",
            get(crm_webhooks::show)
                .put(crm_webhooks::put)
                .delete(crm_webhooks::remove),
        )
        .route(
            "/api/v1/webhook/rotate-secret",
            post(crm_webhooks::rotate_secret),
        )
        .route("/api/v1/webhook/deliveries", get(crm_webhooks::deliveries))
}

/// Every API error: `{"error": {"code", "message", "field"?}}`. 4xx bodies say what was
/// wrong; 5xx bodies are opaque and the cause is logged once.
#[derive(Debug)]
pub enum ApiError {
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    /// The request is well formed but clashes with the resource's state (409).
    Conflict {
        code: &'static str,
        message: String,
    },
    Invalid {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// The key made more requests than its rate allows; retry after this many seconds.
    TooManyRequests(u64),
    Internal(anyhow::Error),
}

/// Requests per API key, keyed by the key's hash.
pub type KeyLimiter = governor::DefaultKeyedRateLimiter<Vec<u8>>;

pub fn key_limiter(http: &crate::config::HttpSettings) -> KeyLimiter {
    let per_sec =
        std::num::NonZeroU32::new(http.api_requests_per_sec).unwrap_or(std::num::NonZeroU32::MIN);
    let burst = std::num::NonZeroU32::new(http.api_burst).unwrap_or(std::num::NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_second(per_sec).allow_burst(burst))
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>, field: Option<&str>) -> Self {
        ApiError::Invalid {
            code,
            message: message.into(),
            field: field.map(String::from),
        }
    }
}

/// The body of every 4xx and 5xx answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail<'a> {
    /// A stable, machine-readable code (`not_found`, `invalid_field`, `rate_limited` …).
    code: &'a str,
    /// What was wrong, for a person.
    message: &'a str,
    /// The request field at fault (a JSON path such as `work_days[1]`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, field) = match &self {
            ApiError::Unauthorized(m) => {
                (StatusCode::UNAUTHORIZED, "unauthorized", m.as_str(), None)
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.as_str(), None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.as_str(), None),
            ApiError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this API key; retry after the Retry-After seconds",
                None,
            ),
            ApiError::Conflict { code, message } => {
                (StatusCode::CONFLICT, *code, message.as_str(), None)
            }
            ApiError::Invalid {
                code,
                message,
                field,
            } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                *code,
                message.as_str(),
                field.as_deref(),
            ),
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                    None,
                )
            }
        };
        let mut response = (
            status,
            axum::Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    message,
                    field,
                },
            }),
        )
            .into_response();
        if let ApiError::TooManyRequests(secs) = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The answer for a path no route serves, in the one error shape.
pub async fn no_such_endpoint(uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "no_such_endpoint",
        &format!(
            "no endpoint {} (the API is described at /api/v1/openapi.json)",
            uri.path()
        ),
    )
}

/// The answer for a method a path does not take, in the one error shape.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("{} does not take {method}", uri.path()),
    )
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: ErrorDetail {
                code,
                message,
                field: None,
            },
        }),
    )
        .into_response()
}

/// A setting or field that failed its check: 422 naming it.
impl From<crate::campaign::settings::SettingError> for ApiError {
    fn from(e: crate::campaign::settings::SettingError) -> Self {
        ApiError::invalid("invalid_field", e.to_string(), Some(e.field))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

/// The authenticated caller: whose key, which tenant, which role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub tenant: TenantId,
    pub role: Role,
    /// The agent an `agent` key belongs to (None for admin and manager keys).
    pub agent: Option<Uuid>,
}

impl Caller {
    /// Admins and managers run campaigns, leads and lists; agents do not.
    pub fn require_manager(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin | Role::Manager => Ok(()),
            Role::Agent => Err(ApiError::Forbidden(
                "this needs an admin or manager API key".into(),
            )),
        }
    }

    /// Tenant admins manage keys and integrations.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            _ => Err(ApiError::Forbidden("this needs an admin API key".into())),
        }
    }

    /// The caller's own agent; only `agent` keys have one.
    pub fn require_agent(&self) -> Result<Uuid, ApiError> {
        self.agent
            .ok_or_else(|| ApiError::Forbidden("this needs an agent's API key".into()))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("missing `Authorization: Bearer <API key>` header".into())
        })?;
        let key = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <API key>`".into())
            })?;
        // Postgres text cannot hold NUL: a query parameter with one is refused here, for
        // every endpoint, rather than failing in the database.
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::invalid(
                "invalid_query",
                "query parameters must not contain the NUL character (%00)",
                None,
            ));
        }
        let hash = state.hasher.hash(key);
        // Before any database work, so a flood costs us no queries.
        if let Err(wait) = state.api_limiter.check_key(&hash) {
            let now = governor::clock::Clock::now(&governor::clock::DefaultClock::default());
            let secs = wait.wait_time_from(now).as_secs_f64().ceil().max(1.0) as u64;
            return Err(ApiError::TooManyRequests(secs));
        }
        let row: Option<(Uuid, TenantId, String, Option<Uuid>)> = sqlx::query_as(
            "UPDATE api_keys SET last_used_at = now() WHERE key_hash = $1 AND revoked_at IS NULL \
             RETURNING id, tenant_id, role, agent_id",
        )
        .bind(&hash)
        .fetch_optional(&state.db)
        .await?;
        let (key_id, tenant, role, agent) =
            row.ok_or_else(|| ApiError::Unauthorized("unknown or revoked API key".into()))?;
        let role = Role::parse(&role).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("api key {key_id} has role {role}"))
        })?;
        Ok(Caller {
            key_id,
            tenant,
            role,
            agent,
        })
    }
}
