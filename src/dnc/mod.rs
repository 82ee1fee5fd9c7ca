//! Do-not-call lists: each tenant's own, and the global list every tenant obeys.
//! Numbers are normalised exactly as lead phones are, so a match is a match.

use std::io::Read;

use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::lead::mapping::{self, Field, FileError};
use crate::lead::row::RowError;
use crate::phone::{PhoneNumber, Region};
use crate::tenant::TenantId;

/// Which list: a tenant's (`Some`) or the global one (`None`).
pub type List = Option<TenantId>;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DncEntry {
    pub phone_e164: String,
    /// On the global list every tenant obeys (not the tenant's own).
    pub global: bool,
    pub source: String,
    #[schema(required = true)]
    pub reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The result of `dnc import`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct DncImportReport {
    pub rows: u64,
    pub added: u64,
    pub already_listed: u64,
    pub rejected: u64,
    pub errors: Vec<RowError>,
}

pub mod repo {
    use super::*;

    /// Adds numbers (already E.164) to a list; returns how many were new.
    pub async fn add_many(
        conn: &mut PgConnection,
        list: List,
        numbers: &[String],
        source: &str,
        reason: Option<&str>,
    ) -> Result<u64, sqlx::Error> {
        let sql = if list.is_some() {
            "INSERT INTO dnc_numbers (tenant_id, phone_e164, source, reason) \
             SELECT $1, n, $3, $4 FROM unnest($2::text[]) AS n \
             ON CONFLICT (tenant_id, phone_e164) WHERE tenant_id IS NOT NULL DO NOTHING"
        } else {
            "INSERT INTO dnc_numbers (tenant_id, phone_e164, source, reason) \
             SELECT $1, n, $3, $4 FROM unnest($2::text[]) AS n \
             ON CONFLICT (phone_e164) WHERE tenant_id IS NULL DO NOTHING"
        };
        Ok(sqlx::query(sql)
            .bind(list)
            .bind(numbers)
            .bind(source)
            .bind(reason)
            .execute(conn)
            .await?
            .rows_affected())
    }

    pub async fn remove(
        conn: &mut PgConnection,
        list: List,
        number: &PhoneNumber,
    ) -> Result<bool, sqlx::Error> {
        Ok(sqlx::query(
            "DELETE FROM dnc_numbers WHERE phone_e164 = $2 AND tenant_id IS NOT DISTINCT FROM $1",
        )
        .bind(list)
        .bind(number.as_str())
        .execute(conn)
        .await?
        .rows_affected()
            > 0)
    }

    /// The entries that stop `tenant` from dialing `number`: its own and the global one.
    pub async fn check(
        conn: &mut PgConnection,
        tenant: TenantId,
        number: &PhoneNumber,
    ) -> Result<Vec<DncEntry>, sqlx::Error> {
        sqlx::query_as(
            "SELECT phone_e164, tenant_id IS NULL AS global, source, reason, created_at FROM dnc_numbers \
             WHERE phone_e164 = $2 AND (tenant_id = $1 OR tenant_id IS NULL) ORDER BY tenant_id NULLS FIRST",
        )
        .bind(tenant)
        .bind(number.as_str())
        .fetch_all(conn)
        .await
    }

    /// Entries on one list, newest first, after the `before` cursor (an E.164 number).
    pub async fn list(
        conn: &mut PgConnection,
        list: List,
        limit: i64,
    ) -> Result<Vec<DncEntry>, sqlx::Error> {
        sqlx::query_as(
            "SELECT phone_e164, tenant_id IS NULL AS global, source, reason, created_at FROM dnc_numbers \
             WHERE tenant_id IS NOT DISTINCT FROM $1 ORDER BY created_at DESC, phone_e164 LIMIT $2",
        )
        .bind(list)
        .bind(limit)
        .fetch_all(conn)
        .await
    }
}

/// Normalises a number given by a person: international form, or national in `region`.
pub fn normalise(raw: &str, region: Option<Region>) -> Result<PhoneNumber, String> {
    PhoneNumber::parse(raw, region).map_err(|e| {
        let read_as = region
            .map(|r| format!(" (read as a {r} number)"))
            .unwrap_or_default();
        format!("`{}` is not a valid phone number: {e}{read_as}", raw.trim())
    })
}

/// Imports a DNC file: a CSV with a phone column (and optionally country), or a plain
/// list of numbers one per line, streamed. Bad rows are reported, never fatal.
pub async fn import_file(
    pool: &PgPool,
    list: List,
    input: impl Read,
    region: Region,
) -> Result<DncImportReport, crate::lead::import::ImportError> {
    let mut reader = crate::lead::import::open_csv(input)?;
    let mut records = reader.records();
    let first = match records.next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return Err(
                FileError::NotCsv(format!("the first line cannot be read as CSV: {e}")).into(),
            );
        }
        None => return Err(FileError::Empty.into()),
    };
    // A headerless list: the first cell is already a number.
    let headerless = first.len() == 1 && PhoneNumber::parse(&first[0], Some(region)).is_ok();
    let (phone_col, country_col, mut pending_first) = if headerless {
        (0, None, Some(first))
    } else {
        let cols = mapping::map_columns(first.iter().map(String::from).collect(), &[])?;
        (
            cols.get(Field::Phone).unwrap_or(0),
            cols.get(Field::Country),
            None,
        )
    };
    let mut report = DncImportReport::default();
    let mut batch: Vec<String> = Vec::new();
    let mut conn = pool.acquire().await?;
    let mut row: u64 = if headerless { 0 } else { 1 };
    loop {
        let record = match pending_first.take() {
            Some(r) => r,
            None => match records.next() {
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    row += 1;
                    report.rows += 1;
                    report.rejected += 1;
                    report.errors.push(RowError {
                        row,
                        column: None,
                        value: None,
                        code: crate::lead::row::RejectCode::MalformedRow,
                        reason: e.to_string(),
                    });
                    continue;
                }
                None => break,
            },
        };
        row += 1;
        report.rows += 1;
        let raw = record.get(phone_col).unwrap_or("").trim();
        let row_region = match country_col
            .and_then(|c| record.get(c))
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            Some(c) => match Region::parse(c) {
                Ok(r) => r,
                Err(e) => {
                    report.rejected += 1;
                    report.errors.push(RowError {
                        row,
                        column: Some("country".into()),
                        value: Some(c.to_string()),
                        code: crate::lead::row::RejectCode::UnknownCountry,
                        reason: e.to_string(),
                    });
                    continue;
                }
            },
            None => region,
        };
        match normalise(raw, Some(row_region)) {
            Ok(p) => batch.push(p.as_str().to_string()),
            Err(reason) => {
                report.rejected += 1;
                report.errors.push(RowError {
                    row,
                    column: Some("phone".into()),
                    value: Some(raw.to_string()),
                    code: if raw.is_empty() {
                        crate::lead::row::RejectCode::EmptyRequiredField
                    } else {
                        crate::lead::row::RejectCode::InvalidPhone
                    },
                    reason,
                });
            }
        }
        if batch.len() >= 10_000 {
            flush(&mut conn, list, &mut batch, &mut report).await?;
        }
    }
    flush(&mut conn, list, &mut batch, &mut report).await?;
    Ok(report)
}

async fn flush(
    conn: &mut PgConnection,
    list: List,
    batch: &mut Vec<String>,
    report: &mut DncImportReport,
) -> Result<(), sqlx::Error> {
    if batch.is_empty() {
        return Ok(());
    }
    batch.sort();
    let before = batch.len() as u64;
    batch.dedup();
    let added = repo::add_many(conn, list, batch, "import", None).await?;
    report.added += added;
    report.already_listed += before - added;
    batch.clear();
    Ok(())
}
