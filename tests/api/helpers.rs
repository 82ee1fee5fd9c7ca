//! Test harness: each test gets its own database (created, migrated, dropped), its own
//! Redis key prefix (deleted at the end), and the app on a free port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dialer::config::Settings;
use dialer::startup::Application;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The carrier account every test app and simulator share.
pub const TEST_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const TEST_AUTH_TOKEN: &str = "test-auth-token";

pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

pub fn init_test_log() {
    if std::env::var("TEST_LOG").is_ok() {
        dialer::telemetry::init(&dialer::config::LogSettings {
            format: "pretty".into(),
            filter: "debug,sqlx=warn,hyper=info".into(),
        });
    }
}

/// A database that exists for one test and is dropped (with its Redis prefix) afterwards.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub redis_prefix: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("dialer_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_database_url())
            .await
            .expect("Postgres must run on 127.0.0.1:5432 for the tests (see README, Development)");
        admin
            .execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin_database_url()).unwrap();
        url.set_path(&name);
        Self {
            url: url.to_string(),
            redis_prefix: format!("test:{}:", Uuid::new_v4().simple()),
            name,
        }
    }

    /// Environment that points a `dialer` process or `Settings` at this database.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DIALER__DATABASE__URL".into(), self.url.clone()),
            ("DIALER__REDIS__URL".into(), redis_url()),
            (
                "DIALER__REDIS__KEY_PREFIX".into(),
                self.redis_prefix.clone(),
            ),
            ("DIALER__HTTP__LISTEN".into(), "127.0.0.1:0".into()),
            (
                "DIALER__HTTP__PUBLIC_URL".into(),
                "http://127.0.0.1:0".into(),
            ),
            (
                "DIALER__TWILIO__ACCOUNT_SID".into(),
                TEST_ACCOUNT_SID.into(),
            ),
            ("DIALER__TWILIO__AUTH_TOKEN".into(), TEST_AUTH_TOKEN.into()),
            // Nothing listens there: a test that dials points this at its simulator.
            (
                "DIALER__TWILIO__API_BASE_URL".into(),
                "http://127.0.0.1:9".into(),
            ),
            ("DIALER__AUTH__API_KEY_PEPPER".into(), "test-pepper".into()),
            ("DIALER__LOG__FILTER".into(), "warn".into()),
        ]
    }

    pub fn settings(&self) -> Settings {
        Settings::from_sources(None, &self.env(), None).expect("test settings are valid")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let prefix = self.redis_prefix.clone();
        // Drop runs inside the test's runtime; clean up on a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_database_url()).await {
                    let _ = admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                        )))
                        .await;
                }
                if let Ok(client) = redis::Client::open(redis_url())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}*"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> =
                            redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

pub struct TestApp {
    pub address: String,
    /// The URL the carrier signs callbacks for (`http.public_url`).
    pub public_url: String,
    pub db: PgPool,
    /// The engine's shared parts (its movable clock, the circuit breaker).
    pub engine: dialer::engine::Shared,
    /// The app's effective settings (a second instance on the same database reuses them).
    pub settings: Settings,
    pub client: reqwest::Client,
    pub token: CancellationToken,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
    // Last: dropped (database and Redis keys removed) after the server is told to stop.
    _test_db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app with settings adjusted by `adjust` (e.g. to route a dependency through a proxy).
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_log();
    let test_db = TestDb::create().await;
    let mut settings = test_db.settings();
    adjust(&mut settings);
    settings
        .validate()
        .expect("adjusted test settings are valid");
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let port = app.port();
    let db = app.state().db.clone();
    let engine = app.state().engine.clone();
    let app_settings = (*app.state().settings).clone();
    let public_url = app.state().settings.http.public_url.clone();
    let token = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(token.clone()));
    TestApp {
        public_url,
        address: format!("http://127.0.0.1:{port}"),
        db,
        engine,
        settings: app_settings,
        client: reqwest::Client::new(),
        token,
        server,
        _test_db: test_db,
    }
}

impl TestApp {
    /// Environment that points a `dialer` process at this app's database and Redis keys.
    pub fn env(&self) -> Vec<(String, String)> {
        self._test_db.env()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("request reaches the app")
    }
}

/// A TCP proxy in front of a real dependency that a test can take down and bring back,
/// so one app's Postgres or Redis "fails" without touching the shared services.
pub struct Outage {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Outage {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(tokio::sync::watch::channel(0u64).0);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut killed = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
        }
    }

    /// Refuses new connections and cuts the open ones.
    pub fn take_down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn bring_back(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A tenant with an admin API key, and a campaign of it.
pub struct Tenant {
    pub id: dialer::tenant::TenantId,
    pub key: String,
    pub campaign: dialer::campaign::Campaign,
}

impl TestApp {
    pub async fn tenant(&self, name: &str) -> Tenant {
        let hasher = dialer::auth::KeyHasher::new(Some("test-pepper".to_string().into()));
        let mut conn = self.db.acquire().await.unwrap();
        let created = dialer::tenant::repo::create_with_admin_key(&mut conn, name, &hasher)
            .await
            .unwrap();
        let new = dialer::campaign::NewCampaign::with_defaults("Spring").unwrap();
        let campaign = dialer::campaign::repo::insert(&mut conn, created.tenant.id, &new)
            .await
            .unwrap();
        Tenant {
            id: created.tenant.id,
            key: created.admin_key,
            campaign,
        }
    }

    /// Uploads `csv` to `campaign` as `key`, with extra multipart text fields.
    pub async fn upload(
        &self,
        key: &str,
        campaign: &str,
        name: &str,
        csv: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(csv).file_name(name.to_string()),
        );
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        self.client
            .post(format!(
                "{}/api/v1/campaigns/{campaign}/leads",
                self.address
            ))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Sends `body` (if any) as `key`; answers the status and the JSON body (Null if none).
    pub async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.address, path))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        (status, v)
    }

    pub async fn get_as(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// Uploads and waits for the import to finish; returns its report.
    pub async fn import(
        &self,
        t: &Tenant,
        csv: &[u8],
        fields: &[(&str, &str)],
    ) -> serde_json::Value {
        let r = self
            .upload(
                &t.key,
                &t.campaign.id.to_string(),
                "leads.csv",
                csv.to_vec(),
                fields,
            )
            .await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        let body: serde_json::Value = r.json().await.unwrap();
        let url = body["status_url"].as_str().unwrap().to_string();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let report: serde_json::Value = self.get_as(&t.key, &url).await.json().await.unwrap();
            if report["status"] == "completed" || report["status"] == "failed" {
                return report;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "import never finished: {report}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
