//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers' annotations and
//! served at `GET /api/v1/openapi.json`.
//!
//! To add an endpoint to the document:
//!
//! 1. Annotate the handler with `#[utoipa::path(method, path = "/api/v1/…", tag = TAG_…,
//!    params(…), request_body = …, responses(…))]`, listing every status it can answer.
//!    Errors use the shared responses below: `(status = 401, response = Unauthorized)`,
//!    `Forbidden` (403), `NotFound` (404), `Conflict` (409), `Invalid` (422),
//!    `RateLimited` (429). Every endpoint behind a key has 401 and 429.
//! 2. Derive `utoipa::ToSchema` on the body types it reads and writes (`IntoParams` on
//!    query structs). An `Option` field that is always sent (as `null`) gets
//!    `#[schema(required = true)]`; a field with `skip_serializing_if` stays optional.
//!    Types this crate does not own get `#[schema(value_type = …)]` on the field.
//! 3. Add the handler to `paths(…)` of [`ApiDoc`] below.
//!
//! `tests/api/openapi.rs` fails while a route of `api::router()` is missing here (or a
//! path here is not served), and `scripts/fuzz-api` checks the answers against the
//! document.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

use super::ErrorBody;

pub const TAG_CAMPAIGNS: &str = "campaigns";
pub const TAG_IMPORTS: &str = "imports";
pub const TAG_CALLS: &str = "calls";
pub const TAG_REPORTS: &str = "reports";
pub const TAG_DNC: &str = "dnc";
pub const TAG_AGENTS: &str = "agents";
pub const TAG_LEADS: &str = "leads";
pub const TAG_KEYS: &str = "keys";
pub const TAG_WEBHOOK: &str = "webhook";
pub const TAG_META: &str = "meta";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dialer",
        description = "The outbound dialer's REST API. Every endpoint but the document itself and the lead template needs `Authorization: Bearer <API key>`; a key acts within its tenant, with its role (`admin`, `manager` or `agent`). Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`."
    ),
    paths(
        serve,
        super::imports::template,
        super::imports::upload,
        super::imports::show,
        super::imports::errors_csv,
        super::campaigns::list,
        super::campaigns::create,
        super::campaigns::show,
        super::campaigns::update,
        super::campaigns::delete,
        super::campaigns::act,
        super::campaigns::progress,
        super::leads::list,
        super::leads::show,
        super::leads::update,
        super::leads::delete,
        super::leads::requeue,
        super::keys::list,
        super::keys::create,
        super::keys::revoke,
        super::crm_webhooks::put,
        super::crm_webhooks::show,
        super::crm_webhooks::remove,
        super::crm_webhooks::rotate_secret,
        super::crm_webhooks::deliveries,
        super::calls::list,
        super::calls::show,
        super::calls::disposition,
        super::reports::calls,
        super::reports::campaign,
        super::reports::agent,
        super::dnc::list,
        super::dnc::add,
        super::dnc::import,
        super::dnc::check,
        super::dnc::remove,
        super::agents::list,
        super::agents::create,
        super::agents::me,
        super::agents::set_my_status,
        super::agents::show,
        super::agents::update,
        super::agents::set_status,
        super::agents::create_key,
        super::agents::list_groups,
        super::agents::create_group,
        super::agents::show_group,
        super::agents::update_group,
        super::agents::delete_group,
        super::agents::add_member,
        super::agents::remove_member,
    ),
    components(
        schemas(ErrorBody, crate::engine::lifecycle::Action),
        responses(Unauthorized, Forbidden, NotFound, Conflict, Invalid, RateLimited)
    ),
    modifiers(&BearerKey),
    security(("api_key" = [])),
    tags(
        (name = TAG_CAMPAIGNS, description = "Campaigns: settings, lifecycle and live progress"),
        (name = TAG_LEADS, description = "Leads: list, show with attempts, change, remove, queue again"),
        (name = TAG_KEYS, description = "API keys (tenant admins)"),
        (name = TAG_WEBHOOK, description = "The tenant's CRM webhook: signed event deliveries (tenant admins)"),
        (name = TAG_IMPORTS, description = "Lead uploads and their reports"),
        (name = TAG_CALLS, description = "Calls: the list, one call's timeline, the agent's wrap-up"),
        (name = TAG_REPORTS, description = "Campaign and agent reports, the calls export"),
        (name = TAG_DNC, description = "The tenant's do-not-call list"),
        (name = TAG_AGENTS, description = "Agents, their status and keys, agent groups"),
        (name = TAG_META, description = "This document"),
    )
)]
pub struct ApiDoc;

/// The `api_key` bearer scheme every operation uses unless it says `security(())`.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("An API key: `Authorization: Bearer dlr_…`".into());
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
    }
}

/// The document, with the crate's version.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// `GET /api/v1/openapi.json`
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = TAG_META, security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
pub async fn serve() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        // The document is built from literals and derives: serialising it cannot fail.
        document()
            .to_json()
            .expect("the OpenAPI document serialises")
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

/// No key, a malformed `Authorization` header, or an unknown or revoked key.
#[derive(ToResponse)]
#[response(headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
#[allow(dead_code)]
pub struct Unauthorized(ErrorBody<'static>);

/// The key's role may not do this.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Forbidden(ErrorBody<'static>);

/// No such resource in the key's tenant (a malformed id names nothing either).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct NotFound(ErrorBody<'static>);

/// The request clashes with the resource's state; `code` says how.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Conflict(ErrorBody<'static>);

/// The request is not valid; `field` names the part at fault where there is one.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Invalid(ErrorBody<'static>);

/// Too many requests for this key.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds to wait")))]
#[allow(dead_code)]
pub struct RateLimited(ErrorBody<'static>);

/// `POST /api/v1/campaigns/{id}/leads` (multipart/form-data).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LeadUpload {
    /// The CSV file (see `/api/v1/leads/template.csv`).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// ISO 3166 alpha-2 region for national numbers.
    default_region: Option<String>,
    /// `CSV column=field`, once per column to map by hand.
    map: Option<Vec<String>>,
}

/// `POST /api/v1/dnc/import` (multipart/form-data).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DncUpload {
    /// A CSV with a phone column, or one number per line.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// ISO 3166 alpha-2 region for national numbers (default US).
    region: Option<String>,
}
