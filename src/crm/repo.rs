//! Tenants' endpoints and their deliveries; the API and the CLI share it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::{Endpoint, EndpointInput, generate_secret};
use crate::tenant::TenantId;

const ENDPOINT_COLUMNS: &str =
    "url, events, enabled, left(secret, 10) AS secret_prefix, created_at, updated_at";

/// The endpoint just written, and its secret when one was generated (first creation):
/// shown to the admin once, never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Saved {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip)]
    pub created: bool,
}

/// Creates the tenant's endpoint (with a new secret) or replaces its url, events and
/// enabled flag (keeping the secret).
pub async fn upsert(
    conn: &mut PgConnection,
    tenant: TenantId,
    input: &EndpointInput,
) -> Result<Saved, sqlx::Error> {
    let secret = generate_secret();
    let sql = format!(
        "INSERT INTO crm_webhooks AS w (tenant_id, url, secret, events, enabled)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id) DO UPDATE
            SET url = EXCLUDED.url, events = EXCLUDED.events, enabled = EXCLUDED.enabled,
                updated_at = now()
         RETURNING {ENDPOINT_COLUMNS}, (xmax = 0) AS created"
    );
    let row: (
        String,
        Vec<String>,
        bool,
        String,
        DateTime<Utc>,
        DateTime<Utc>,
        bool,
    ) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(&input.url)
        .bind(&secret)
        .bind(&input.events)
        .bind(input.enabled)
        .fetch_one(conn)
        .await?;
    let (url, events, enabled, secret_prefix, created_at, updated_at, created) = row;
    Ok(Saved {
        endpoint: Endpoint {
            url,
            events,
            enabled,
            secret_prefix,
            created_at,
            updated_at,
        },
        secret: created.then_some(secret),
        created,
    })
}

/// The tenant's endpoint, if it has one.
pub async fn get(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Option<Endpoint>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM crm_webhooks WHERE tenant_id = $1"
    )))
    .bind(tenant)
    .fetch_optional(conn)
    .await
}

/// Removes the endpoint; its pending deliveries are marked failed (kept for inspection).
/// False when the tenant had none.
pub async fn delete(conn: &mut PgConnection, tenant: TenantId) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM crm_webhooks WHERE tenant_id = $1")
        .bind(tenant)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0;
    if removed {
        sqlx::query(
            "UPDATE crm_deliveries SET state = 'failed', next_attempt_at = NULL,
                    last_error = 'the endpoint was removed'
              WHERE tenant_id = $1 AND state = 'pending'",
        )
        .bind(tenant)
        .execute(&mut *conn)
        .await?;
    }
    Ok(removed)
}

/// A new secret for the endpoint (the old one stops signing at once); None without an endpoint.
pub async fn rotate_secret(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Option<Saved>, sqlx::Error> {
    let secret = generate_secret();
    let endpoint: Option<Endpoint> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE crm_webhooks SET secret = $2, updated_at = now() WHERE tenant_id = $1
         RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(tenant)
    .bind(&secret)
    .fetch_optional(conn)
    .await?;
    Ok(endpoint.map(|endpoint| Saved {
        endpoint,
        secret: Some(secret),
        created: false,
    }))
}

/// One delivery as shown to the tenant's admins.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub event: String,
    pub event_id: String,
    /// pending, delivered or failed.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The endpoint's HTTP status at the last attempt (none: no answer).
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// The tenant's most recent deliveries, newest first.
pub async fn deliveries(
    conn: &mut PgConnection,
    tenant: TenantId,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event, event_id, state, attempts, next_attempt_at, last_attempt_at,
                delivered_at, last_status, last_error, created_at, payload
           FROM crm_deliveries WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(tenant)
    .bind(limit)
    .fetch_all(conn)
    .await
}
