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
