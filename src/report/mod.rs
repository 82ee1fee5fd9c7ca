//! Reports and exports: what a campaign and an agent did (since the start and over the
//! rolling 30 days the law measures abandonment over), and every attempt as CSV or JSON.
//!
//! The API (`/api/v1/campaigns/{id}/report`, `/api/v1/agents/{id}/report`,
//! `/api/v1/calls/export`) and `dialer report` print the same figures from here.

pub mod export;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::campaign::CampaignId;
use crate::tenant::TenantId;

/// The period the law's abandonment rate is measured over.
pub const ROLLING_DAYS: i64 = 30;

/// One period's figures for a campaign.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Figures {
    /// Attempts the carrier was asked to place.
    pub dials: i64,
    /// Attempts answered (by a person or a machine).
    pub connects: i64,
    /// connects ÷ dials, in %.
    pub answer_rate_pct: f64,
    /// Answered by a person (bridged or abandoned): what the abandonment rate divides by.
    pub human: i64,
    /// Answered by a machine (or fax).
    pub machine: i64,
    pub bridged: i64,
    pub abandoned: i64,
    /// abandoned ÷ human, in %.
    pub abandon_rate_pct: f64,
    /// Mean time from the bridge to the end of the call, over bridged calls. The end is
    /// the carrier's timestamp (whole seconds), the bridge ours: a call under a second may
    /// count as 0.
    #[schema(required = true)]
    pub avg_talk_secs: Option<f64>,
    /// Attempts by the engine's disposition (`answered`, `voicemail`, `no_answer` …).
    pub dispositions: BTreeMap<String, i64>,
    /// Calls by the agent's wrap-up disposition (`sale`, `callback` …).
    pub agent_dispositions: BTreeMap<String, i64>,
    /// What the carrier charged, where it said (null: no price known yet).
    #[schema(required = true)]
    pub cost: Option<f64>,
    #[schema(required = true)]
    pub cost_currency: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignReport {
    #[schema(value_type = uuid::Uuid)]
    pub campaign_id: CampaignId,
    pub name: String,
    pub status: String,
    pub abandon_cap_pct: f64,
    pub since_start: Figures,
    pub last_30_days: Figures,
}

fn pct(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10000.0 / whole as f64).round() / 100.0
    }
}

#[derive(sqlx::FromRow)]
struct Totals {
    dials: i64,
    connects: i64,
    human: i64,
    machine: i64,
    bridged: i64,
    abandoned: i64,
    avg_talk: Option<f64>,
    cost: Option<f64>,
    currency: Option<String>,
}

/// The figures of one campaign's attempts created at or after `since` (all: None).
async fn figures(
    db: &PgPool,
    campaign: CampaignId,
    since: Option<DateTime<Utc>>,
) -> Result<Figures, sqlx::Error> {
    let t: Totals = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE call_sid IS NOT NULL) AS dials,
                count(*) FILTER (WHERE answered_at IS NOT NULL
                                    OR disposition IN ('answered', 'voicemail', 'abandoned')) AS connects,
                count(*) FILTER (WHERE disposition IN ('answered', 'abandoned')) AS human,
                count(*) FILTER (WHERE disposition = 'voicemail' OR answered_by LIKE 'machine%'
                                    OR answered_by = 'fax') AS machine,
                count(*) FILTER (WHERE bridged_at IS NOT NULL) AS bridged,
                count(*) FILTER (WHERE disposition = 'abandoned') AS abandoned,
                avg(greatest(extract(epoch FROM ended_at - bridged_at), 0))
                    FILTER (WHERE bridged_at IS NOT NULL AND ended_at IS NOT NULL)::float8 AS avg_talk,
                sum(abs(cost))::float8 AS cost,
                min(cost_currency) AS currency
           FROM calls
          WHERE campaign_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)",
    )
    .bind(campaign)
    .bind(since)
    .fetch_one(db)
    .await?;
    let counts = |column: &'static str| {
        let sql = format!(
            "SELECT {column}, count(*) FROM calls
              WHERE campaign_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)
                AND {column} IS NOT NULL
              GROUP BY 1"
        );
        async move {
            let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(campaign)
                .bind(since)
                .fetch_all(db)
                .await?;
            Ok::<_, sqlx::Error>(rows.into_iter().collect::<BTreeMap<_, _>>())
        }
    };
    Ok(Figures {
        dials: t.dials,
        connects: t.connects,
        answer_rate_pct: pct(t.connects, t.dials),
        human: t.human,
        machine: t.machine,
        bridged: t.bridged,
        abandoned: t.abandoned,
        abandon_rate_pct: pct(t.abandoned, t.human),
        avg_talk_secs: t.avg_talk.map(|s| (s * 10.0).round() / 10.0),
        dispositions: counts("disposition").await?,
        agent_dispositions: counts("agent_disposition").await?,
        cost: t.cost,
        cost_currency: t.currency,
    })
}

/// The report of campaign `id` of `tenant` (None: any tenant, for the CLI).
pub async fn campaign(
    db: &PgPool,
    tenant: Option<TenantId>,
    id: CampaignId,
) -> Result<Option<CampaignReport>, sqlx::Error> {
    let head: Option<(String, String, f64)> = sqlx::query_as(
        "SELECT name, status, abandon_cap_pct FROM campaigns
          WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(db)
    .await?;
    let Some((name, status, abandon_cap_pct)) = head else {
        return Ok(None);
    };
    // Real time, as the pacer's own 30-day figure (engine::repo::abandonment).
    let since = Utc::now() - TimeDelta::days(ROLLING_DAYS);
    Ok(Some(CampaignReport {
        campaign_id: id,
        name,
        status,
        abandon_cap_pct,
        since_start: figures(db, id, None).await?,
        last_30_days: figures(db, id, Some(since)).await?,
    }))
}

/// What one agent did: offers and how they ended, calls taken, talk time, wrap-ups.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AgentReport {
    pub agent_id: Uuid,
    pub name: String,
    pub status: String,
    pub offers: i64,
    pub accepted: i64,
    pub declined: i64,
    pub missed: i64,
    /// accepted ÷ offers, in %.
    pub accept_rate_pct: f64,
    pub calls_bridged: i64,
    #[schema(required = true)]
    pub avg_talk_secs: Option<f64>,
    pub dispositions: BTreeMap<String, i64>,
}

/// The report of agent `id` of `tenant` over calls created at or after `since`.
pub async fn agent(
    db: &PgPool,
    tenant: TenantId,
    id: Uuid,
    since: Option<DateTime<Utc>>,
) -> Result<Option<AgentReport>, sqlx::Error> {
    let head: Option<(String, String)> =
        sqlx::query_as("SELECT name, status FROM agents WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant)
            .fetch_optional(db)
            .await?;
    let Some((name, status)) = head else {
        return Ok(None);
    };
    let (offers, accepted, declined, missed): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state IN ('accepted', 'ended')),
                count(*) FILTER (WHERE state = 'declined'), count(*) FILTER (WHERE state = 'missed')
           FROM agent_offers WHERE agent_id = $1 AND ($2::timestamptz IS NULL OR offered_at >= $2)",
    )
    .bind(id)
    .bind(since)
    .fetch_one(db)
    .await?;
    let (bridged, avg_talk): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE bridged_at IS NOT NULL),
                avg(greatest(extract(epoch FROM ended_at - bridged_at), 0))
                    FILTER (WHERE bridged_at IS NOT NULL AND ended_at IS NOT NULL)::float8
           FROM calls WHERE agent_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)",
    )
    .bind(id)
    .bind(since)
    .fetch_one(db)
    .await?;
    let dispositions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT agent_disposition, count(*) FROM calls
          WHERE agent_id = $1 AND agent_disposition IS NOT NULL
            AND ($2::timestamptz IS NULL OR created_at >= $2)
          GROUP BY 1",
    )
    .bind(id)
    .bind(since)
    .fetch_all(db)
    .await?;
    Ok(Some(AgentReport {
        agent_id: id,
        name,
        status,
        offers,
        accepted,
        declined,
        missed,
        accept_rate_pct: pct(accepted, offers),
        calls_bridged: bridged,
        avg_talk_secs: avg_talk.map(|s| (s * 10.0).round() / 10.0),
        dispositions: dispositions.into_iter().collect(),
    }))
}

/// The campaign report as (figure, since start, last 30 days) rows, for the table and
/// the CSV.
fn rows(r: &CampaignReport) -> Vec<(String, String, String)> {
    let (a, b) = (&r.since_start, &r.last_30_days);
    let mut rows = vec![
        (
            "dials".to_string(),
            a.dials.to_string(),
            b.dials.to_string(),
        ),
        (
            "connects".into(),
            a.connects.to_string(),
            b.connects.to_string(),
        ),
        (
            "answer_rate_pct".into(),
            format!("{:.2}", a.answer_rate_pct),
            format!("{:.2}", b.answer_rate_pct),
        ),
        ("human".into(), a.human.to_string(), b.human.to_string()),
        (
            "machine".into(),
            a.machine.to_string(),
            b.machine.to_string(),
        ),
        (
            "bridged".into(),
            a.bridged.to_string(),
            b.bridged.to_string(),
        ),
        (
            "abandoned".into(),
            a.abandoned.to_string(),
            b.abandoned.to_string(),
        ),
        (
            "abandon_rate_pct".into(),
            format!("{:.2}", a.abandon_rate_pct),
            format!("{:.2}", b.abandon_rate_pct),
        ),
        (
            "avg_talk_secs".into(),
            opt(a.avg_talk_secs),
            opt(b.avg_talk_secs),
        ),
        ("cost".into(), opt(a.cost), opt(b.cost)),
    ];
    for (prefix, all, recent) in [
        ("disposition", &a.dispositions, &b.dispositions),
        (
            "agent_disposition",
            &a.agent_dispositions,
            &b.agent_dispositions,
        ),
    ] {
        for (k, n) in all {
            rows.push((
                format!("{prefix}:{k}"),
                n.to_string(),
                recent.get(k).copied().unwrap_or(0).to_string(),
            ));
        }
    }
    rows
}

/// The campaign report as a plain table for a terminal.
pub fn render_table(r: &CampaignReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}), {}; abandonment cap {}%",
        r.name, r.campaign_id, r.status, r.abandon_cap_pct
    );
    let _ = writeln!(
        out,
        "{:<28} {:>14} {:>14}",
        "", "since start", "last 30 days"
    );
    for (label, x, y) in rows(r) {
        let _ = writeln!(out, "{label:<28} {x:>14} {y:>14}");
    }
    out
}

/// The campaign report as CSV: `figure,since_start,last_30_days`.
pub fn render_csv(r: &CampaignReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["figure", "since_start", "last_30_days"]);
    for (label, x, y) in rows(r) {
        let _ = w.write_record([
            export::safe_cell(&label).as_ref(),
            export::safe_cell(&x).as_ref(),
            export::safe_cell(&y).as_ref(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_percentages_with_two_decimals_and_zero_without_a_base() {
        assert_eq!(pct(1, 3), 33.33);
        assert_eq!(pct(3, 100), 3.0);
        assert_eq!(pct(5, 0), 0.0);
    }
}
