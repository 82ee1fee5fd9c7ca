//! The `dialer` binary as an operator uses it.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestDb;

pub(crate) fn dialer(db: Option<&TestDb>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dialer"));
    cmd.args(args)
        .env("DIALER_CONFIG", "/dev/null")
        .env_remove("RUST_LOG");
    if let Some(db) = db {
        cmd.envs(db.env());
    }
    cmd.output().expect("dialer runs")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_the_subcommands() {
    let o = dialer(None, &["--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for sub in ["serve", "migrate", "config", "tenant", "campaign"] {
        assert!(text.contains(sub), "--help lacks {sub}: {text}");
    }
}

#[tokio::test]
async fn migrate_creates_the_schema_and_a_second_run_is_a_no_op() {
    let db = TestDb::create().await;
    let first = dialer(Some(&db), &["migrate", "--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(v["applied"].as_u64().unwrap() >= 1);
    let second = dialer(Some(&db), &["migrate", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(v["applied"], 0);
    assert_eq!(
        stdout(&dialer(Some(&db), &["migrate"])).trim(),
        format!("database schema is up to date ({} migrations)", v["total"])
    );
}

#[tokio::test]
async fn commands_on_an_unmigrated_database_say_to_run_migrate() {
    let db = TestDb::create().await;
    let o = dialer(Some(&db), &["tenant", "list"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("run `dialer migrate`"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn tenant_create_prints_a_key_once_and_stores_only_its_hash() {
    let db = TestDb::create().await;
    assert!(dialer(Some(&db), &["migrate"]).status.success());
    let o = dialer(Some(&db), &["tenant", "create", "Acme Calls", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let key = v["admin_key"].as_str().unwrap();
    assert!(key.starts_with("dlr_") && key.len() > 40);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (role, prefix, hash): (String, String, Vec<u8>) = sqlx::query_as(
        "SELECT role, key_prefix, key_hash FROM api_keys WHERE tenant_id = $1::uuid",
    )
    .bind(v["tenant"]["id"].as_str().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(role, "admin");
    assert!(key.starts_with(&prefix));
    let hasher = dialer::auth::KeyHasher::new(Some("test-pepper".to_string().into()));
    assert_eq!(hash, hasher.hash(key));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE key_prefix = $1 OR encode(key_hash, 'escape') LIKE '%' || $1 || '%'")
        .bind(key)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the key itself must not be stored");

    let again = dialer(Some(&db), &["tenant", "create", "acme calls"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
}

#[tokio::test]
async fn campaign_create_list_show_round_trip() {
    let db = TestDb::create().await;
    assert!(dialer(Some(&db), &["migrate"]).status.success());
    let t: serde_json::Value =
        serde_json::from_slice(&dialer(Some(&db), &["tenant", "create", "T", "--json"]).stdout)
            .unwrap();
    let tenant = t["tenant"]["id"].as_str().unwrap();
    let o = dialer(
        Some(&db),
        &[
            "campaign",
            "create",
            "--tenant",
            tenant,
            "--name",
            "Spring renewals",
            "--caller-id",
            "+1 201 555 0100",
            "--time-zone",
            "America/New_York",
            "--window",
            "10:00-19:00",
            "--days",
            "mon-sat",
            "--max-concurrent",
            "25",
            "--retry-busy",
            "15m",
            "--record",
            "--recording-consent-message",
            "This call may be recorded.",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["caller_id"], "+12015550100");
    assert_eq!(c["status"], "draft");
    assert_eq!(c["retry_busy_secs"], 900);
    assert_eq!(c["days"], 0b011_1111);
    assert_eq!(c["recording_enabled"], true);
    assert_eq!(c["recording_consent_message"], "This call may be recorded.");
    let id = c["id"].as_str().unwrap();

    let list: serde_json::Value = serde_json::from_slice(
        &dialer(
            Some(&db),
            &["campaign", "list", "--tenant", tenant, "--json"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let show = stdout(&dialer(Some(&db), &["campaign", "show", id]));
    assert!(
        show.contains("10:00-19:00 America/New_York (mon,tue,wed,thu,fri,sat)"),
        "{show}"
    );
    assert!(
        show.contains("consent notice:  This call may be recorded."),
        "{show}"
    );

    // Another tenant cannot see it when scoped.
    let other: serde_json::Value =
        serde_json::from_slice(&dialer(Some(&db), &["tenant", "create", "Other", "--json"]).stdout)
            .unwrap();
    let o = dialer(
        Some(&db),
        &[
            "campaign",
            "show",
            id,
            "--tenant",
            other["tenant"]["id"].as_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no campaign with id"));
}

#[tokio::test]
async fn campaign_create_names_the_bad_flag() {
    let db = TestDb::create().await;
    assert!(dialer(Some(&db), &["migrate"]).status.success());
    let t: serde_json::Value =
        serde_json::from_slice(&dialer(Some(&db), &["tenant", "create", "T", "--json"]).stdout)
            .unwrap();
    let tenant = t["tenant"]["id"].as_str().unwrap();
    let o = dialer(
        Some(&db),
        &[
            "campaign",
            "create",
            "--tenant",
            tenant,
            "--name",
            "x",
            "--dial-timeout",
            "5",
        ],
    );
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim(),
        "error: invalid dial_timeout_secs `5`: must be between 15 and 600"
    );
}

#[test]
fn bad_configuration_is_one_clear_line_and_exit_78() {
    let dir = std::env::temp_dir().join(format!("dialer-cfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "[http]\nlisten_on = \"x\"\n",
            "unknown configuration key `http.listen_on`",
        ),
        (
            "[twilio]\ncps = \"ten\"\n",
            "invalid value for `twilio.cps`",
        ),
        (
            "[redis]\nurl = \"::nope\"\n",
            "invalid value for `redis.url`",
        ),
        ("[http\n", "invalid configuration in"),
    ];
    for (text, expected) in cases {
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_dialer"))
            .args(["--config", path.to_str().unwrap(), "config", "check"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(78), "{text}");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "one line for {text}: {err}");
        assert!(err.contains(expected), "{text}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_check_prints_effective_values_without_secrets() {
    let o = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(["config", "check"])
        .env("DIALER_CONFIG", "/dev/null")
        .env("DIALER__TWILIO__AUTH_TOKEN", "super-secret-token")
        .env(
            "DIALER__DATABASE__URL",
            "postgres://u:pw123@db.example:5432/dialer",
        )
        .env("DIALER__TWILIO__CPS", "7")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o) + &stderr(&o);
    assert!(out.contains("cps = 7"));
    assert!(
        !out.contains("super-secret-token") && !out.contains("pw123"),
        "{out}"
    );
    assert!(
        out.contains("twilio.auth_token = <set (environment variable DIALER__TWILIO__AUTH_TOKEN)>"),
        "{out}"
    );
}

/// Starts `dialer serve` and waits until it logs its address; with `close_log_pipe`
/// the test stops reading stderr from then on (a log reader that went away).
fn spawn_serve(db: &TestDb, close_log_pipe: bool) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .arg("serve")
        .env("DIALER_CONFIG", "/dev/null")
        .envs(db.env())
        // dialer=debug: every main-loop tick logs, so a broken log pipe is written to.
        .env("DIALER__LOG__FILTER", "info,dialer=debug")
        .env("DIALER__LOG__FORMAT", "json")
        .env("DIALER__DAEMON__TICK_MS", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr_pipe)
            .lines()
            .map_while(Result::ok)
        {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["message"] == "listening" {
                let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                if close_log_pipe {
                    return;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve logs that it listens");
    (child, addr)
}

async fn sigterm_and_wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("serve did not stop within 10 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serve_stops_on_sigterm_with_exit_code_zero() {
    let db = TestDb::create().await;
    let (mut child, addr) = spawn_serve(&db, false);
    let health = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(sigterm_and_wait(&mut child).await.code(), Some(0));
}

#[tokio::test]
async fn serve_keeps_running_and_stops_on_sigterm_when_its_log_reader_goes_away() {
    let db = TestDb::create().await;
    let (mut child, addr) = spawn_serve(&db, true);
    // Several main-loop ticks and requests log into the broken pipe.
    for _ in 0..5 {
        let r = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve died when its stderr closed"
    );
    assert_eq!(sigterm_and_wait(&mut child).await.code(), Some(0));
}

#[tokio::test]
async fn serve_with_the_port_taken_fails_with_one_clear_line() {
    let db = TestDb::create().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .arg("serve")
        .env("DIALER_CONFIG", "/dev/null")
        .envs(db.env())
        .env("DIALER__HTTP__LISTEN", &addr)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("error: cannot listen on {addr} (http.listen)")),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn serve_without_a_database_fails_with_one_clear_line() {
    let o = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .arg("serve")
        .env("DIALER_CONFIG", "/dev/null")
        .env("DIALER__HTTP__LISTEN", "127.0.0.1:0")
        .env(
            "DIALER__DATABASE__URL",
            "postgres://postgres:secretpw@127.0.0.1:1/none",
        )
        .env("DIALER__DATABASE__CONNECT_TIMEOUT_SECS", "1")
        .env("DIALER__LOG__FILTER", "off")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with(
            "error: cannot connect to Postgres at postgres://postgres:REDACTED@127.0.0.1:1/none"
        ),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// A migrated database with a tenant and a campaign; returns (tenant id, campaign id).
async fn tenant_and_campaign(db: &TestDb) -> (String, String) {
    assert!(dialer(Some(db), &["migrate"]).status.success());
    let t = json(&dialer(Some(db), &["tenant", "create", "T", "--json"]));
    let tenant = t["tenant"]["id"].as_str().unwrap().to_string();
    let c = json(&dialer(
        Some(db),
        &[
            "campaign", "create", "--tenant", &tenant, "--name", "C", "--json",
        ],
    ));
    (tenant, c["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn leads_import_reports_every_row_and_writes_the_rejected_ones_to_csv() {
    let db = TestDb::create().await;
    let (_, campaign) = tenant_and_campaign(&db).await;
    let report = json(&dialer(
        Some(&db),
        &[
            "leads",
            "import",
            "sample_leads.csv",
            "--campaign",
            &campaign,
            "--json",
        ],
    ));
    assert_eq!(report["status"], "completed");
    assert_eq!(report["rows"], report["accepted"]);

    let dir = std::env::temp_dir().join(format!("dialer-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tab.tsv");
    std::fs::write(
        &file,
        "Mobile\tCell Type\n07700 900123\tx\n020 7946 0958\ty\n020 7946 0958\tz\n",
    )
    .unwrap();
    let errors = dir.join("errors.csv");
    let o = dialer(
        Some(&db),
        &[
            "leads",
            "import",
            file.to_str().unwrap(),
            "--campaign",
            &campaign,
            "--default-region",
            "GB",
            "--errors-csv",
            errors.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("accepted: 1") && out.contains("rejected: 2"),
        "{out}"
    );
    let written = std::fs::read_to_string(&errors).unwrap();
    assert!(
        written.starts_with("row,column,value,code,reason\n2,Mobile,07700 900123,invalid_phone,"),
        "{written}"
    );
    assert!(
        written.contains("4,Mobile,020 7946 0958,duplicate_in_file,+442079460958 is also on row 3"),
        "{written}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let o = dialer(
        Some(&db),
        &["leads", "import", "Cargo.lock", "--campaign", &campaign],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no phone column in the header"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn dnc_commands_normalise_numbers_and_keep_lists_apart() {
    let db = TestDb::create().await;
    let (tenant, _) = tenant_and_campaign(&db).await;
    let added = json(&dialer(
        Some(&db),
        &[
            "dnc",
            "add",
            "(212) 555-0147",
            "--tenant",
            &tenant,
            "--json",
        ],
    ));
    assert_eq!(
        added,
        serde_json::json!({ "phone": "+12125550147", "added": true })
    );
    let again = json(&dialer(
        Some(&db),
        &[
            "dnc",
            "add",
            "+1 212-555-0147",
            "--tenant",
            &tenant,
            "--json",
        ],
    ));
    assert_eq!(again["added"], false);
    json(&dialer(
        Some(&db),
        &[
            "dnc",
            "add",
            "020 7946 0958",
            "--global",
            "--region",
            "GB",
            "--json",
        ],
    ));
    let check = json(&dialer(
        Some(&db),
        &[
            "dnc",
            "check",
            "+44 20 7946 0958",
            "--tenant",
            &tenant,
            "--json",
        ],
    ));
    assert_eq!(check["dialable"], false);
    assert_eq!(check["entries"][0]["global"], true);

    let file = std::env::temp_dir().join(format!("dnc-{}.txt", uuid::Uuid::new_v4()));
    std::fs::write(&file, "2125550148\n(212) 555-0147\nnot a number\n").unwrap();
    let report = json(&dialer(
        Some(&db),
        &[
            "dnc",
            "import",
            file.to_str().unwrap(),
            "--tenant",
            &tenant,
            "--json",
        ],
    ));
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        (report["rows"].as_u64(), report["added"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(report["already_listed"], 1);
    assert_eq!(report["errors"][0]["row"], 3);

    let removed = json(&dialer(
        Some(&db),
        &[
            "dnc",
            "remove",
            "212-555-0147",
            "--tenant",
            &tenant,
            "--json",
        ],
    ));
    assert_eq!(removed["removed"], true);
    let check = json(&dialer(
        Some(&db),
        &[
            "dnc",
            "check",
            "212-555-0147",
            "--tenant",
            &tenant,
            "--json",
        ],
    ));
    assert_eq!(check["dialable"], true);
    let o = dialer(Some(&db), &["dnc", "add", "12"]);
    assert!(!o.status.success(), "a list must be named");
}

/// The README's first command: one campaign of the sample leads, start to finish.
#[test]
fn the_demo_runs_the_sample_campaign_to_completion() {
    let o = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(["demo", "--timeout-secs", "300"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DIALER_CONFIG", "/dev/null")
        .env_remove("RUST_LOG")
        .output()
        .expect("dialer demo runs");
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "demo failed:\n{out}\n{err}");
    assert!(out.contains("completed in"), "{out}");
    assert!(out.contains("attempts by disposition"), "{out}");
    // Every disposition line adds up to the carrier's dial requests.
    let dials: usize = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("the carrier saw "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("dial count in the report");
    assert!(dials >= 53, "{out}");
    let attempts: usize = out
        .lines()
        .skip_while(|l| !l.contains("attempts by disposition"))
        .skip(1)
        .take_while(|l| !l.contains("leads by outcome"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<usize>().ok())
        .sum();
    assert_eq!(
        attempts, dials,
        "each attempt recorded once per dial request:\n{out}"
    );
}
