//! Redis: the dispatch side (hopper, pacing tokens, job queue). Everything here can be
//! rebuilt from Postgres; every key carries the deployment's prefix.

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::Settings;

/// A connection to Redis that reconnects by itself, and the key prefix of this deployment.
#[derive(Clone)]
pub struct Redis {
    pub conn: ConnectionManager,
    prefix: String,
}

impl Redis {
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let client = redis::Client::open(settings.redis.url.as_str()).with_context(|| {
            format!(
                "invalid redis.url {}",
                crate::config::redact_url(&settings.redis.url)
            )
        })?;
        let timeout = settings.redis_timeout();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(std::time::Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to Redis at {}",
                    crate::config::redact_url(&settings.redis.url)
                )
            })?;
        Ok(Self {
            conn,
            prefix: settings.redis.key_prefix.clone(),
        })
    }

    /// The full key for `name` in this deployment's namespace.
    pub fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Answers whether Redis is reachable now.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
