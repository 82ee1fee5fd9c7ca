//! The constraints that carry DESIGN.md's promises hold in the database itself,
//! whatever the application code does.

use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::TestDb;

async fn migrated() -> (TestDb, PgPool) {
    let db = TestDb::create().await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    dialer::db::MIGRATOR.run(&pool).await.unwrap();
    (db, pool)
}

async fn tenant(pool: &PgPool, name: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, $2)")
        .bind(id)
        .bind(name)
        .execute(pool)
        .await
        .unwrap();
    id
}

async fn campaign(pool: &PgPool, tenant: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO campaigns (id, tenant_id, name, caller_id) VALUES ($1, $2, 'c', '+12015550100')")
        .bind(id)
        .bind(tenant)
        .execute(pool)
        .await
        .unwrap();
    id
}

async fn lead(
    pool: &PgPool,
    tenant: Uuid,
    campaign: Uuid,
    phone: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO leads (tenant_id, campaign_id, phone_raw, phone_e164) VALUES ($1, $2, $3, $3) RETURNING id",
    )
    .bind(tenant)
    .bind(campaign)
    .bind(phone)
    .fetch_one(pool)
    .await
}

async fn call(
    pool: &PgPool,
    tenant: Uuid,
    campaign: Uuid,
    lead: i64,
    attempt: i32,
    state: &str,
    sid: Option<&str>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO calls (tenant_id, campaign_id, lead_id, attempt, state, call_sid, to_number, from_number) \
         VALUES ($1, $2, $3, $4, $5, $6, '+12015550123', '+12015550100') RETURNING id",
    )
    .bind(tenant)
    .bind(campaign)
    .bind(lead)
    .bind(attempt)
    .bind(state)
    .bind(sid)
    .fetch_one(pool)
    .await
}

fn constraint_of(e: sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.constraint().unwrap_or(d.message()).to_string(),
        other => panic!("expected a database error, got {other}"),
    }
}

#[tokio::test]
async fn second_call_row_for_the_same_lead_and_attempt_is_refused() {
    let (_db, pool) = migrated().await;
    let t = tenant(&pool, "a").await;
    let c = campaign(&pool, t).await;
    let l = lead(&pool, t, c, "+12015550123").await.unwrap();
    call(&pool, t, c, l, 1, "completed", None).await.unwrap();
    let e = call(&pool, t, c, l, 1, "completed", None)
        .await
        .unwrap_err();
    assert_eq!(constraint_of(e), "calls_lead_id_attempt_key");
}

#[tokio::test]
async fn second_live_attempt_for_a_lead_is_refused_but_a_retry_after_a_final_one_is_not() {
    let (_db, pool) = migrated().await;
    let t = tenant(&pool, "a").await;
    let c = campaign(&pool, t).await;
    let l = lead(&pool, t, c, "+12015550123").await.unwrap();
    call(&pool, t, c, l, 1, "ringing", None).await.unwrap();
    let e = call(&pool, t, c, l, 2, "dialing", None).await.unwrap_err();
    assert_eq!(constraint_of(e), "calls_one_live_attempt_per_lead");
    sqlx::query("UPDATE calls SET state = 'no-answer' WHERE lead_id = $1")
        .bind(l)
        .execute(&pool)
        .await
        .unwrap();
    call(&pool, t, c, l, 2, "dialing", None).await.unwrap();
}

#[tokio::test]
async fn carrier_call_sid_is_unique() {
    let (_db, pool) = migrated().await;
    let t = tenant(&pool, "a").await;
    let c = campaign(&pool, t).await;
    let l1 = lead(&pool, t, c, "+12015550123").await.unwrap();
    let l2 = lead(&pool, t, c, "+12015550124").await.unwrap();
    let sid = "CA0123456789abcdef0123456789abcdef";
    call(&pool, t, c, l1, 1, "queued", Some(sid)).await.unwrap();
    let e = call(&pool, t, c, l2, 1, "queued", Some(sid))
        .await
        .unwrap_err();
    assert_eq!(constraint_of(e), "calls_call_sid_key");
}

#[tokio::test]
async fn the_same_number_twice_in_a_campaign_is_refused_but_allowed_in_another() {
    let (_db, pool) = migrated().await;
    let t = tenant(&pool, "a").await;
    let c1 = campaign(&pool, t).await;
    let c2 = campaign(&pool, t).await;
    lead(&pool, t, c1, "+12015550123").await.unwrap();
    let e = lead(&pool, t, c1, "+12015550123").await.unwrap_err();
    assert_eq!(constraint_of(e), "leads_campaign_id_phone_e164_key");
    lead(&pool, t, c2, "+12015550123").await.unwrap();
}

#[tokio::test]
async fn only_e164_numbers_can_be_stored_as_a_leads_number() {
    let (_db, pool) = migrated().await;
    let t = tenant(&pool, "a").await;
    let c = campaign(&pool, t).await;
    // The shortest and the longest E.164 numbers.
    for good in ["+1234567", "+123456789012345"] {
        lead(&pool, t, c, good).await.unwrap();
    }
    for bad in [
        "12015550123",       // no +
        "+012015550123",     // country codes do not start with 0
        "+123456",           // too short
        "+1234567890123456", // too long
        "+1201+5550123",     // a second +
        "+1 2015550123",     // a space
        "+1201555012a",      // a letter
        "+1٢٠١5550123",      // digits of another script
        "",
    ] {
        let e = lead(&pool, t, c, bad).await.unwrap_err();
        assert_eq!(constraint_of(e), "leads_phone_e164_check", "{bad:?}");
    }
}

#[tokio::test]
async fn a_row_can_never_point_at_another_tenants_row() {
    let (_db, pool) = migrated().await;
    let a = tenant(&pool, "a").await;
    let b = tenant(&pool, "b").await;
    let ca = campaign(&pool, a).await;
    // A lead of tenant B in tenant A's campaign, inserted alone or in a batch.
    let e = lead(&pool, b, ca, "+12015550123").await.unwrap_err();
    assert_eq!(constraint_of(e), "leads_campaign_of_tenant");
    let cb0 = campaign(&pool, b).await;
    let e = sqlx::query(
        "INSERT INTO leads (tenant_id, campaign_id, phone_raw, phone_e164) \
         VALUES ($1, $3, 'x', '+12015550199'), ($2, $3, 'y', '+12015550198')",
    )
    .bind(b)
    .bind(a)
    .bind(cb0)
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(constraint_of(e), "leads_campaign_of_tenant");
    // A call of tenant B for tenant A's lead.
    let la = lead(&pool, a, ca, "+12015550123").await.unwrap();
    let cb = campaign(&pool, b).await;
    let e = call(&pool, b, cb, la, 1, "dialing", None)
        .await
        .unwrap_err();
    assert_eq!(constraint_of(e), "calls_tenant_id_lead_id_fkey");
}

#[tokio::test]
async fn dnc_numbers_are_unique_per_tenant_and_globally() {
    let (_db, pool) = migrated().await;
    let a = tenant(&pool, "a").await;
    let b = tenant(&pool, "b").await;
    let add = |t: Option<Uuid>| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO dnc_numbers (tenant_id, phone_e164) VALUES ($1, '+12015550123')",
            )
            .bind(t)
            .execute(&pool)
            .await
        }
    };
    add(Some(a)).await.unwrap();
    add(Some(b)).await.unwrap();
    add(None).await.unwrap();
    assert_eq!(
        constraint_of(add(Some(a)).await.unwrap_err()),
        "dnc_numbers_tenant_key"
    );
    assert_eq!(
        constraint_of(add(None).await.unwrap_err()),
        "dnc_numbers_global_key"
    );
}

#[tokio::test]
async fn ring_time_below_the_legal_minimum_is_refused() {
    let (_db, pool) = migrated().await;
    let t = tenant(&pool, "a").await;
    let e = sqlx::query(
        "INSERT INTO campaigns (id, tenant_id, name, dial_timeout_secs) VALUES ($1, $2, 'c', 10)",
    )
    .bind(Uuid::now_v7())
    .bind(t)
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(constraint_of(e), "campaigns_dial_timeout_secs_check");
}

#[tokio::test]
async fn a_replayed_webhook_event_is_refused_by_its_natural_key() {
    let (_db, pool) = migrated().await;
    let t = tenant(&pool, "a").await;
    let c = campaign(&pool, t).await;
    let l = lead(&pool, t, c, "+12015550123").await.unwrap();
    let id = call(&pool, t, c, l, 1, "ringing", None).await.unwrap();
    let insert = || {
        sqlx::query(
            "INSERT INTO call_events (tenant_id, call_id, kind, event_key, payload) \
             VALUES ($1, $2, 'status', 'ringing:1', '{}') ON CONFLICT DO NOTHING",
        )
        .bind(t)
        .bind(id)
        .execute(&pool)
    };
    assert_eq!(insert().await.unwrap().rows_affected(), 1);
    assert_eq!(insert().await.unwrap().rows_affected(), 0);
}
