//! Tenants: the isolation boundary. Every tenant-owned row carries `tenant_id`.

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::{KeyHasher, Role};

/// Identifies a tenant; only built from a parsed UUID or a database row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl std::str::FromStr for TenantId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(TenantId)
            .map_err(|_| format!("`{s}` is not a tenant id (a UUID)"))
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What `tenant create` hands back: the key is shown once and never again.
#[derive(Debug, Serialize)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub admin_key_id: Uuid,
    pub admin_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant name must not be empty")]
    EmptyName,
    #[error("a tenant named `{0}` already exists")]
    NameTaken(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub mod repo {
    use super::*;

    /// Creates a tenant and its first admin API key in one transaction.
    pub async fn create_with_admin_key(
        conn: &mut PgConnection,
        name: &str,
        hasher: &KeyHasher,
    ) -> Result<CreatedTenant, TenantError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(TenantError::EmptyName);
        }
        let mut tx = sqlx::Connection::begin(conn).await?;
        let tenant: Tenant = sqlx::query_as(
            "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id, name, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                TenantError::NameTaken(name.to_string())
            }
            _ => TenantError::Db(e),
        })?;
        let key = crate::auth::repo::create_key(
            &mut tx,
            tenant.id,
            "initial admin key",
            Role::Admin,
            None,
            hasher,
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedTenant {
            tenant,
            admin_key_id: key.id,
            admin_key: key.key,
        })
    }

    pub async fn list(conn: &mut PgConnection) -> Result<Vec<Tenant>, sqlx::Error> {
        sqlx::query_as("SELECT id, name, created_at FROM tenants ORDER BY created_at")
            .fetch_all(conn)
            .await
    }

    pub async fn get(conn: &mut PgConnection, id: TenantId) -> Result<Option<Tenant>, sqlx::Error> {
        sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await
    }
}
