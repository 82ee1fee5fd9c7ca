//! The dispatch state in Redis: the hopper of dial jobs per campaign and the carrier's
//! calls-per-second limit. All of it is rebuildable: losing every key loses no lead (the
//! hopper is refilled from Postgres) and at worst lets one dial go early (the rate
//! limiter's state restarts empty).
//!
//! Each operation is one Lua script: atomic, one round trip, shared by every instance.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use crate::campaign::CampaignId;
use crate::dispatch::Redis;

/// Generic cell rate algorithm, reserving mode: the caller always learns when its dial may
/// go (`wait`), and the slot is taken, unless that is further away than `max_wait`; then
/// nothing is taken and the answer is "ask again in N". Time is Redis's own clock, so
/// every instance measures against the same one.
static GCRA_RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(tat, now)
local wait = start - now
if wait > max_wait then
  return {0, math.floor(wait - max_wait)}
end
local next_tat = start + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1000)
return {1, math.floor(wait)}
"#,
    )
});

/// Adds dial jobs (lead ids with their order score) unless the lead is in flight.
static HOPPER_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local now = tonumber(ARGV[1])
local added = 0
for i = 2, #ARGV, 2 do
  local member = ARGV[i]
  local lease = redis.call('ZSCORE', KEYS[2], member)
  if not lease or tonumber(lease) <= now then
    added = added + redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 1], member)
  end
end
return added
"#,
    )
});

/// Takes the best dial job and marks its lead in flight for `lease` ms.
static HOPPER_POP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local top = redis.call('ZPOPMIN', KEYS[1], 1)
if #top == 0 then
  return false
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), top[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 2)
return top[1]
"#,
    )
});

/// Reservation answer of the rate limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The slot is ours: dial after this wait.
    Go(Duration),
    /// Nothing reserved; ask again after this.
    Later(Duration),
}

/// The order of dial jobs: priority first (urgent … low), then due time.
pub fn job_score(priority: i16, due_ms: i64) -> f64 {
    let rank = 5 - i64::from(priority.clamp(1, 4));
    (rank * 10_000_000_000_000 + due_ms.clamp(0, 9_999_999_999_999)) as f64
}

/// How long a popped job keeps its lead out of the hopper while it is being dialled.
const IN_FLIGHT_LEASE_MS: u64 = 30_000;

#[derive(Clone)]
pub struct Pacing {
    redis: Redis,
}

impl Pacing {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn hopper_key(&self, c: CampaignId) -> String {
        self.redis.key(&format!("hopper:{c}"))
    }

    fn inflight_key(&self, c: CampaignId) -> String {
        self.redis.key(&format!("inflight:{c}"))
    }

    /// Reserves the next dial slot of carrier account `account`, slots `interval` apart.
    pub async fn reserve(
        &self,
        account: &str,
        interval: Duration,
        max_wait: Duration,
    ) -> redis::RedisResult<Reservation> {
        let interval_us = interval.as_micros().max(1) as u64;
        let mut conn = self.redis.conn.clone();
        let (ok, us): (i64, i64) = GCRA_RESERVE
            .key(self.redis.key(&format!("cps:{account}")))
            .arg(interval_us)
            .arg(max_wait.as_micros() as u64)
            .invoke_async(&mut conn)
            .await?;
        let d = Duration::from_micros(us.max(0) as u64);
        Ok(if ok == 1 {
            Reservation::Go(d)
        } else {
            Reservation::Later(d)
        })
    }

    /// Adds `(lead id, score)` jobs; returns how many were new.
    pub async fn push(
        &self,
        campaign: CampaignId,
        now_ms: i64,
        jobs: &[(i64, f64)],
    ) -> redis::RedisResult<usize> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let mut inv = HOPPER_ADD.prepare_invoke();
        inv.key(self.hopper_key(campaign))
            .key(self.inflight_key(campaign))
            .arg(now_ms);
        for (lead, score) in jobs {
            inv.arg(*lead).arg(*score);
        }
        let mut conn = self.redis.conn.clone();
        inv.invoke_async(&mut conn).await
    }

    /// Takes the best job of the campaign, if any.
    pub async fn pop(&self, campaign: CampaignId, now_ms: i64) -> redis::RedisResult<Option<i64>> {
        let mut conn = self.redis.conn.clone();
        HOPPER_POP
            .key(self.hopper_key(campaign))
            .key(self.inflight_key(campaign))
            .arg(now_ms)
            .arg(IN_FLIGHT_LEASE_MS)
            .invoke_async(&mut conn)
            .await
    }

    /// The job is finished (dialled or skipped): its lead may be queued again.
    pub async fn done(&self, campaign: CampaignId, lead: i64) -> redis::RedisResult<()> {
        let mut conn = self.redis.conn.clone();
        redis::cmd("ZREM")
            .arg(self.inflight_key(campaign))
            .arg(lead)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
    }

    /// Puts a job back (e.g. the campaign was full when it came to be dialled).
    pub async fn requeue(
        &self,
        campaign: CampaignId,
        lead: i64,
        score: f64,
    ) -> redis::RedisResult<()> {
        let mut conn = self.redis.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("ZREM")
            .arg(self.inflight_key(campaign))
            .arg(lead)
            .ignore()
            .cmd("ZADD")
            .arg(self.hopper_key(campaign))
            .arg("NX")
            .arg(score)
            .arg(lead)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }

    /// Jobs waiting in the campaign's hopper.
    pub async fn len(&self, campaign: CampaignId) -> redis::RedisResult<usize> {
        let mut conn = self.redis.conn.clone();
        redis::cmd("ZCARD")
            .arg(self.hopper_key(campaign))
            .query_async(&mut conn)
            .await
    }

    /// Drops the campaign's jobs (paused or stopped campaigns keep none).
    pub async fn clear(&self, campaign: CampaignId) -> redis::RedisResult<()> {
        let mut conn = self.redis.conn.clone();
        redis::cmd("DEL")
            .arg(self.hopper_key(campaign))
            .arg(self.inflight_key(campaign))
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
    }

    /// A short lease so that one instance at a time refills a campaign's hopper.
    pub async fn try_fill_lock(
        &self,
        campaign: CampaignId,
        ttl: Duration,
    ) -> redis::RedisResult<bool> {
        let mut conn = self.redis.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.redis.key(&format!("fill:{campaign}")))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgent_leads_come_before_older_normal_ones() {
        let urgent_late = job_score(4, 2_000_000_000_000);
        let normal_early = job_score(2, 1_000_000_000_000);
        let low = job_score(1, 0);
        assert!(urgent_late < normal_early);
        assert!(normal_early < low);
        assert!(job_score(2, 1) < job_score(2, 2), "then by due time");
        // Exactly representable: two adjacent milliseconds never collide.
        assert_ne!(
            job_score(1, 1_900_000_000_001),
            job_score(1, 1_900_000_000_000)
        );
    }
}
