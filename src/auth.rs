//! API keys: generation, hashing with the deployment's pepper, roles.
//!
//! A key is 32 random bytes shown once to its owner; only HMAC-SHA256(pepper, key)
//! is stored, so a database leak yields no usable key.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a key may do within its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    Agent,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Agent => "agent",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Role::Admin),
            "manager" => Some(Role::Manager),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }
}

/// Every key starts with this, so secret scanners and people can recognise one.
pub const KEY_PREFIX: &str = "dlr_";

/// A freshly generated key: the secret to show once, and what to store.
pub struct NewKey {
    pub secret: SecretString,
    /// Shown in listings to tell keys apart; not secret.
    pub display_prefix: String,
    pub hash: Vec<u8>,
}

/// Hashes keys with the deployment's pepper.
#[derive(Clone)]
pub struct KeyHasher {
    pepper: Option<SecretString>,
}

impl KeyHasher {
    pub fn new(pepper: Option<SecretString>) -> Self {
        Self { pepper }
    }

    pub fn hash(&self, key: &str) -> Vec<u8> {
        let pepper = self
            .pepper
            .as_ref()
            .map(|p| p.expose_secret().as_bytes())
            .unwrap_or(b"");
        // HMAC accepts keys of any length, the empty one included.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(pepper).expect("HMAC takes keys of any length");
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub fn generate(&self) -> NewKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        NewKey {
            display_prefix: secret[..KEY_PREFIX.len() + 8].to_string(),
            hash: self.hash(&secret),
            secret: SecretString::from(secret),
        }
    }
}

/// A key just stored: its secret is here, and shown to its owner once, never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub id: uuid::Uuid,
    pub name: String,
    pub role: Role,
    /// The agent an `agent` key acts as.
    #[schema(required = true)]
    pub agent_id: Option<uuid::Uuid>,
    /// The first characters, shown in listings to tell keys apart.
    pub key_prefix: String,
    pub key: String,
}

pub mod repo {
    use super::*;
    use sqlx::PgConnection;

    use crate::tenant::TenantId;

    /// Generates a key and stores its hash; `agent` is required for, and only for, role `agent`
    /// (the table's CHECK holds it too).
    pub async fn create_key(
        conn: &mut PgConnection,
        tenant: TenantId,
        name: &str,
        role: Role,
        agent: Option<uuid::Uuid>,
        hasher: &KeyHasher,
    ) -> Result<CreatedKey, sqlx::Error> {
        let key = hasher.generate();
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, role, key_prefix, key_hash, agent_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(tenant)
        .bind(name)
        .bind(role.as_str())
        .bind(&key.display_prefix)
        .bind(&key.hash)
        .bind(agent)
        .execute(conn)
        .await?;
        Ok(CreatedKey {
            id,
            name: name.to_string(),
            role,
            agent_id: agent,
            key_prefix: key.display_prefix,
            key: key.secret.expose_secret().to_string(),
        })
    }
}

/// A key as listings show it: never the secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: uuid::Uuid,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub agent_id: Option<uuid::Uuid>,
    pub key_prefix: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Role::parse(&raw).ok_or_else(|| format!("`{raw}` is not a role (admin, manager, agent)"))
    }
}

/// Why a key could not be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no API key {0}")]
    NotFound(uuid::Uuid),
    #[error(
        "API key {0} is the tenant's last admin key: create another admin key first, or the tenant could no longer manage its keys"
    )]
    LastAdmin(uuid::Uuid),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub mod keys {
    use super::*;
    use sqlx::PgConnection;

    use crate::tenant::TenantId;

    macro_rules! key_columns {
        () => {
            "id, name, role, agent_id, key_prefix, created_at, last_used_at, revoked_at"
        };
    }

    /// The tenant's keys, newest first, revoked ones included.
    pub async fn list(
        conn: &mut PgConnection,
        tenant: TenantId,
    ) -> Result<Vec<KeyInfo>, sqlx::Error> {
        sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(tenant)
        .fetch_all(conn)
        .await
    }

    /// Creates a key after checking it: a name of 1-200 characters, and an agent of the
    /// tenant for, and only for, role `agent`.
    pub async fn create(
        conn: &mut PgConnection,
        tenant: TenantId,
        name: &str,
        role: Role,
        agent: Option<uuid::Uuid>,
        hasher: &KeyHasher,
    ) -> Result<CreatedKey, KeyError> {
        let invalid = |field, reason: &str| KeyError::Invalid {
            field,
            reason: reason.to_string(),
        };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid("name", "must be 1 to 200 characters"));
        }
        match (role, agent) {
            (Role::Agent, None) => {
                return Err(invalid(
                    "agent_id",
                    "a key with role agent acts as an agent: give its id",
                ));
            }
            (Role::Agent, Some(agent)) => {
                let found =
                    crate::agent::repo::get(&mut *conn, tenant, crate::agent::AgentId(agent))
                        .await?;
                if found.is_none() {
                    return Err(invalid("agent_id", &format!("no agent {agent}")));
                }
            }
            (_, Some(_)) => {
                return Err(invalid(
                    "agent_id",
                    "only a key with role agent acts as an agent",
                ));
            }
            (_, None) => {}
        }
        Ok(super::repo::create_key(conn, tenant, name, role, agent, hasher).await?)
    }

    /// Revokes a key at once (its next request gets 401). Revoking a revoked key changes
    /// nothing; the last active admin key of a tenant is kept.
    pub async fn revoke(
        conn: &mut PgConnection,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> Result<KeyInfo, KeyError> {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        // Admin keys of the tenant are locked together, so two admins revoking each
        // other's keys at once cannot leave none.
        let admins: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM api_keys WHERE tenant_id = $1 AND role = 'admin' AND revoked_at IS NULL \
             ORDER BY id FOR UPDATE",
        )
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?;
        if admins == [id] {
            return Err(KeyError::LastAdmin(id));
        }
        let key: Option<KeyInfo> = sqlx::query_as(concat!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE tenant_id = $1 AND id = $2 RETURNING ",
            key_columns!()
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let key = key.ok_or(KeyError::NotFound(id))?;
        tx.commit().await?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_unique_and_hash_is_peppered() {
        let a = KeyHasher::new(Some(SecretString::from("pepper-a")));
        let b = KeyHasher::new(Some(SecretString::from("pepper-b")));
        let k1 = a.generate();
        let k2 = a.generate();
        assert_ne!(k1.secret.expose_secret(), k2.secret.expose_secret());
        assert!(k1.secret.expose_secret().starts_with(KEY_PREFIX));
        assert_eq!(a.hash(k1.secret.expose_secret()), k1.hash);
        assert_ne!(b.hash(k1.secret.expose_secret()), k1.hash);
        assert!(k1.secret.expose_secret().starts_with(&k1.display_prefix));
    }
}
