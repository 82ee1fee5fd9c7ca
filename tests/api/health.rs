use std::net::SocketAddr;
use std::time::Duration;

use crate::helpers::{Outage, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "alive");
}

#[tokio::test]
async fn readyz_is_ok_when_postgres_and_redis_answer() {
    let app = spawn_app().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
}

/// Polls /readyz until `want` status or a deadline; returns the last body.
async fn readyz_until(app: &crate::helpers::TestApp, want: u16) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.get("/readyz").await;
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        if status == want {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never became {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn readyz_names_redis_when_it_is_down_and_recovers_without_restart() {
    let redis: SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let outage = Outage::start(redis).await;
    let proxy = outage.addr;
    let app = spawn_app_with(|s| s.redis.url = format!("redis://{proxy}/0")).await;
    readyz_until(&app, 200).await;

    outage.take_down();
    let body = readyz_until(&app, 503).await;
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert!(
        body["checks"]["redis"]
            .as_str()
            .unwrap()
            .starts_with("error"),
        "{body}"
    );

    outage.bring_back();
    let body = readyz_until(&app, 200).await;
    assert_eq!(body["checks"]["redis"], "ok");
}

#[tokio::test]
async fn readyz_names_postgres_when_it_is_down_and_recovers_without_restart() {
    let pg: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let outage = Outage::start(pg).await;
    let proxy = outage.addr;
    let app = spawn_app_with(|s| {
        let mut url = url::Url::parse(&s.database.url).unwrap();
        url.set_port(Some(proxy.port())).unwrap();
        s.database.url = url.to_string();
        s.database.connect_timeout_secs = 1;
    })
    .await;
    readyz_until(&app, 200).await;

    outage.take_down();
    let body = readyz_until(&app, 503).await;
    assert!(
        body["checks"]["postgres"]
            .as_str()
            .unwrap()
            .starts_with("error"),
        "{body}"
    );
    assert_eq!(body["checks"]["redis"], "ok");

    outage.bring_back();
    let body = readyz_until(&app, 200).await;
    assert_eq!(body["checks"]["postgres"], "ok");
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_request_counts() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains("# TYPE dialer_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(r#"dialer_http_requests_total{route="/healthz",status="200"}"#),
        "{text}"
    );
    assert!(text.contains("dialer_build_info"), "{text}");
}

#[tokio::test]
async fn unknown_path_is_404_and_counted_without_its_raw_path() {
    let app = spawn_app().await;
    assert_eq!(app.get("/no/such/thing").await.status(), 404);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains("/no/such/thing"));
}

#[tokio::test]
async fn the_app_applies_migrations_at_start_and_stops_cleanly_when_cancelled() {
    let mut app = spawn_app().await;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(applied as usize, dialer::db::MIGRATOR.iter().count());
    app.token.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(5), &mut app.server).await;
    assert!(matches!(outcome, Ok(Ok(Ok(())))), "{outcome:?}");
}
