//! Calls exported as CSV or JSON, streamed row by row from Postgres (an export of millions
//! of attempts never sits in memory). CSV cells a spreadsheet would run as a formula
//! (starting with `=`, `+`, `-`, `@`, tab or carriage return) get a leading `'`, as
//! OWASP advises; the JSON export carries the values untouched.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::tenant::TenantId;

/// Which calls to export (all of the tenant's when every field is None).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub campaign: Option<Uuid>,
    /// Calls created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Calls created before.
    pub to: Option<DateTime<Utc>>,
    pub disposition: Option<String>,
    pub agent: Option<Uuid>,
    /// E.164.
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

/// One call attempt, as the list, the show and the export give it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = CallRow)]
pub struct Row {
    pub call_id: i64,
    pub campaign_id: Uuid,
    pub campaign_name: String,
    pub lead_id: i64,
    #[schema(required = true)]
    pub first_name: Option<String>,
    #[schema(required = true)]
    pub last_name: Option<String>,
    pub attempt: i32,
    pub to_number: String,
    pub from_number: String,
    #[schema(required = true)]
    pub call_sid: Option<String>,
    pub state: String,
    #[schema(required = true)]
    pub disposition: Option<String>,
    #[schema(required = true)]
    pub answered_by: Option<String>,
    #[schema(required = true)]
    pub agent_id: Option<Uuid>,
    #[schema(required = true)]
    pub agent_name: Option<String>,
    #[schema(required = true)]
    pub agent_disposition: Option<String>,
    #[schema(required = true)]
    pub agent_notes: Option<String>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub dialed_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub answered_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub bridged_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub ended_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub duration_secs: Option<i32>,
    #[schema(required = true)]
    pub recording_url: Option<String>,
    #[schema(required = true)]
    pub recording_duration_secs: Option<i32>,
    #[schema(required = true)]
    pub cost: Option<f64>,
}

/// The CSV header, in `Row`'s order.
pub const COLUMNS: [&str; 26] = [
    "call_id",
    "campaign_id",
    "campaign_name",
    "lead_id",
    "first_name",
    "last_name",
    "attempt",
    "to_number",
    "from_number",
    "call_sid",
    "state",
    "disposition",
    "answered_by",
    "agent_id",
    "agent_name",
    "agent_disposition",
    "agent_notes",
    "created_at",
    "dialed_at",
    "answered_at",
    "bridged_at",
    "ended_at",
    "duration_secs",
    "recording_url",
    "recording_duration_secs",
    "cost",
];

/// A cell as a spreadsheet may safely open it: text that would start a formula is
/// prefixed with `'`, which spreadsheets show as text and do not run.
pub fn safe_cell(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

impl Row {
    fn cells(&self) -> [String; 26] {
        fn o<T: ToString>(v: &Option<T>) -> String {
            v.as_ref().map(T::to_string).unwrap_or_default()
        }
        fn t(v: &Option<DateTime<Utc>>) -> String {
            v.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default()
        }
        [
            self.call_id.to_string(),
            self.campaign_id.to_string(),
            self.campaign_name.clone(),
            self.lead_id.to_string(),
            o(&self.first_name),
            o(&self.last_name),
            self.attempt.to_string(),
            self.to_number.clone(),
            self.from_number.clone(),
            o(&self.call_sid),
            self.state.clone(),
            o(&self.disposition),
            o(&self.answered_by),
            o(&self.agent_id),
            o(&self.agent_name),
            o(&self.agent_disposition),
            o(&self.agent_notes),
            t(&Some(self.created_at)),
            t(&self.dialed_at),
            t(&self.answered_at),
            t(&self.bridged_at),
            t(&self.ended_at),
            o(&self.duration_secs),
            o(&self.recording_url),
            o(&self.recording_duration_secs),
            o(&self.cost),
        ]
    }
}

fn csv_line<I, S>(cells: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut w = csv::Writer::from_writer(Vec::with_capacity(256));
    let safe: Vec<String> = cells
        .into_iter()
        .map(|c| safe_cell(c.as_ref()).into_owned())
        .collect();
    w.write_record(&safe).expect("writing CSV to memory");
    w.into_inner().expect("flushing CSV to memory")
}

/// One row per call of the tenant, with the filter's parameters $2..$7.
const SELECT: &str = "SELECT k.id AS call_id, k.campaign_id, c.name AS campaign_name, k.lead_id,
        l.first_name, l.last_name, k.attempt, k.to_number, k.from_number, k.call_sid,
        k.state, k.disposition, k.answered_by, k.agent_id, a.name AS agent_name,
        k.agent_disposition, k.agent_notes, k.created_at, k.dialed_at, k.answered_at,
        k.bridged_at, k.ended_at, k.duration_secs, k.recording_url,
        k.recording_duration_secs, k.cost::float8 AS cost
   FROM calls k
   JOIN campaigns c ON c.id = k.campaign_id
   JOIN leads l ON l.id = k.lead_id
   LEFT JOIN agents a ON a.id = k.agent_id
  WHERE k.tenant_id = $1
    AND ($2::uuid IS NULL OR k.campaign_id = $2)
    AND ($3::timestamptz IS NULL OR k.created_at >= $3)
    AND ($4::timestamptz IS NULL OR k.created_at < $4)
    AND ($5::text IS NULL OR k.disposition = $5 OR k.agent_disposition = $5)
    AND ($6::uuid IS NULL OR k.agent_id = $6)
    AND ($7::text IS NULL OR k.to_number = $7)";

static SQL_ALL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{SELECT} ORDER BY k.id"));
/// A page, newest first, before call id $8 (None: from the newest), at most $9 rows.
static SQL_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("{SELECT} AND ($8::bigint IS NULL OR k.id < $8) ORDER BY k.id DESC LIMIT $9")
});
/// One call by id ($8).
static SQL_ONE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{SELECT} AND k.id = $8"));

fn query<'q>(
    sql: &'q str,
    tenant: TenantId,
    filter: &'q Filter,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, Row, sqlx::postgres::PgArguments> {
    sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(filter.campaign)
        .bind(filter.from)
        .bind(filter.to)
        .bind(&filter.disposition)
        .bind(filter.agent)
        .bind(&filter.phone)
}

/// The tenant's calls matching `filter`, newest first: at most `limit`, older than call
/// `before` if given.
pub async fn page(
    db: &PgPool,
    tenant: TenantId,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Row>, sqlx::Error> {
    query(&SQL_PAGE, tenant, filter)
        .bind(before)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// One call of the tenant matching `filter` (e.g. an agent's own).
pub async fn one(
    db: &PgPool,
    tenant: TenantId,
    filter: &Filter,
    id: i64,
) -> Result<Option<Row>, sqlx::Error> {
    query(&SQL_ONE, tenant, filter)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Chunks sent to the client at a time.
const CHUNK: usize = 64 * 1024;

/// Streams the tenant's calls matching `filter` in `format` as chunks of bytes; the
/// receiver ends after the last chunk, or early (with an error logged) if the query
/// fails. Dropping the receiver (the client went away) stops the query.
pub fn stream(
    db: PgPool,
    tenant: TenantId,
    filter: Filter,
    format: Format,
) -> mpsc::Receiver<Result<Vec<u8>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut buf: Vec<u8> = match format {
            Format::Csv => csv_line(COLUMNS),
            Format::Json => b"[".to_vec(),
        };
        let mut first = true;
        let mut rows = query(&SQL_ALL, tenant, &filter).fetch(&db);
        loop {
            match rows.try_next().await {
                Ok(Some(row)) => {
                    match format {
                        Format::Csv => buf.extend(csv_line(row.cells())),
                        Format::Json => {
                            if !first {
                                buf.push(b',');
                            }
                            serde_json::to_writer(&mut buf, &row).expect("rows serialise");
                        }
                    }
                    first = false;
                    if buf.len() >= CHUNK && tx.send(Ok(std::mem::take(&mut buf))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "exporting calls failed part way");
                    let _ = tx
                        .send(Err(std::io::Error::other("the export failed part way")))
                        .await;
                    return;
                }
            }
        }
        if format == Format::Json {
            buf.push(b']');
        }
        let _ = tx.send(Ok(buf)).await;
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_made_text_and_other_cells_are_left_alone() {
        for bad in ["=1+1", "+12125550100", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(safe_cell(bad).starts_with('\''), "{bad:?}");
        }
        for ok in ["Ann", "12", "", "a=b", "'quoted"] {
            assert_eq!(safe_cell(ok), ok);
        }
    }

    #[test]
    fn a_csv_line_round_trips_through_a_reader() {
        let line = csv_line(["a,b", "say \"hi\"", "=HYPERLINK(\"x\")", "line\nbreak"]);
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_slice());
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(
            rec.iter().collect::<Vec<_>>(),
            vec!["a,b", "say \"hi\"", "'=HYPERLINK(\"x\")", "line\nbreak"]
        );
    }
}
