//! Postgres and Redis for `dialer demo`, with no configuration: the local servers when they
//! answer, otherwise private throw-away instances started from the installed server
//! binaries and removed again afterwards, otherwise an error that says what to install.
//!
//! A private instance lives in its own temporary directory (data, socket, log) and its own
//! process group (so a Ctrl-C at the terminal reaches the demo, which stops the servers in
//! order, rather than the servers first). Where `setpriv` exists the servers also get a
//! parent-death signal, so they die with the demo even if it is killed outright.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};

use crate::config::redact_url;

/// The admin URL of a local Postgres as Debian sets it up.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// A local Redis on its default port.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// How long a probe of an existing server may take before it counts as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a private server may take to accept connections after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a private server may take to exit after its shutdown signal, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of a server's log quoted in an error.
const LOG_TAIL_LINES: usize = 20;

/// The Postgres and Redis the demo uses, and the private servers it started (if any),
/// which are stopped by [`Services::stop`] or, failing that, on drop (which blocks while
/// they exit: milliseconds normally, at most a few seconds per server).
pub struct Services {
    /// An admin URL (database `postgres`): the demo creates its own database in it.
    pub database_url: String,
    pub redis_url: String,
    private: Vec<Private>,
}

impl Services {
    /// Uses the servers at `pg_url` and `redis_url` when they answer; starts a private one
    /// for each that does not, if its binaries are installed; otherwise fails, saying what
    /// to install or which URL to set. Nothing is started unless everything needed can be.
    ///
    /// `pg_url` is an admin URL for an existing Postgres (the demo creates its own database in it).
    pub async fn ensure(
        pg_url: &str,
        redis_url: &str,
        progress: &dyn Fn(&str),
    ) -> anyhow::Result<Services> {
        Self::ensure_with(&Lookup::from_env(), pg_url, redis_url, progress).await
    }

    /// Always starts private instances of both (tests use this; so does `ensure` when needed).
    pub async fn start_private(progress: &dyn Fn(&str)) -> anyhow::Result<Services> {
        let lookup = Lookup::from_env();
        let (pg_bin, redis_bin) = (lookup.postgres_bin_dir(), lookup.program("redis-server"));
        let (Some(pg_bin), Some(redis_bin)) = (&pg_bin, &redis_bin) else {
            let missing: Vec<Missing> = [
                pg_bin
                    .is_none()
                    .then_some(Missing::Postgres { probe: None }),
                redis_bin
                    .is_none()
                    .then_some(Missing::Redis { probe: None }),
            ]
            .into_iter()
            .flatten()
            .collect();
            return Err(not_installed(&missing));
        };
        let mut services = Services {
            database_url: String::new(),
            redis_url: String::new(),
            private: Vec::new(),
        };
        services.database_url = services.start_postgres(&lookup, pg_bin, progress).await?;
        services.redis_url = services.start_redis(&lookup, redis_bin, progress).await?;
        Ok(services)
    }

    /// Stops the private servers (if any) and removes their directories.
    pub async fn stop(self) {
        // Dropping waits for the processes to exit: do it where blocking is allowed.
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }

    async fn ensure_with(
        lookup: &Lookup,
        pg_url: &str,
        redis_url: &str,
        progress: &dyn Fn(&str),
    ) -> anyhow::Result<Services> {
        let (pg, redis) = tokio::join!(probe_postgres(pg_url), probe_redis(redis_url));
        let pg_bin = pg.as_ref().err().map(|_| lookup.postgres_bin_dir());
        let redis_bin = redis.as_ref().err().map(|_| lookup.program("redis-server"));

        let mut missing = Vec::new();
        if let (Err(why), Some(None)) = (&pg, &pg_bin) {
            missing.push(Missing::Postgres {
                probe: Some((redact_url(pg_url), why.clone())),
            });
        }
        if let (Err(why), Some(None)) = (&redis, &redis_bin) {
            missing.push(Missing::Redis {
                probe: Some((redact_url(redis_url), why.clone())),
            });
        }
        if !missing.is_empty() {
            return Err(not_installed(&missing));
        }

        let mut services = Services {
            database_url: pg_url.to_string(),
            redis_url: redis_url.to_string(),
            private: Vec::new(),
        };
        match (pg, pg_bin.flatten()) {
            (Err(why), Some(bin)) => {
                progress(&format!(
                    "Postgres at {} is not usable ({why}); starting a private one",
                    redact_url(pg_url)
                ));
                services.database_url = services.start_postgres(lookup, &bin, progress).await?;
            }
            _ => progress(&format!("using Postgres at {}", redact_url(pg_url))),
        }
        match (redis, redis_bin.flatten()) {
            (Err(why), Some(bin)) => {
                progress(&format!(
                    "Redis at {} is not usable ({why}); starting a private one",
                    redact_url(redis_url)
                ));
                services.redis_url = services.start_redis(lookup, &bin, progress).await?;
            }
            _ => progress(&format!("using Redis at {}", redact_url(redis_url))),
        }
        Ok(services)
    }

    /// Initialises and starts a private Postgres from the binaries in `bin`; returns its admin URL.
    async fn start_postgres(
        &mut self,
        lookup: &Lookup,
        bin: &Path,
        progress: &dyn Fn(&str),
    ) -> anyhow::Result<String> {
        let launcher = Launcher::unprivileged(lookup)?;
        let dir = TempDir::create("pg", launcher.owner)?;
        let data = dir.path.join("data");
        progress(&format!(
            "initialising a private Postgres in {} ({})",
            dir.path.display(),
            bin.display()
        ));
        let out = launcher
            .command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .args(["--encoding=UTF8", "--locale=C"])
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("cannot run {}", bin.join("initdb").display()))?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}):\n{}{}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stdout)),
                tail(&String::from_utf8_lossy(&out.stderr))
            );
        }

        let port = free_port()?;
        let mut command = launcher.command(&bin.join("postgres"));
        command
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir.path)
            .arg("-p")
            .arg(port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            // Dynamic shared memory in the data directory rather than /dev/shm, so that even
            // a Postgres killed outright leaves nothing there.
            .args(["-c", "dynamic_shared_memory_type=mmap"]);
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        progress(&format!("starting the private Postgres on port {port}"));
        let private = Private::spawn("Postgres", command, "QUIT", dir)?;
        let private = self.push(private);
        private
            .wait_ready(|| probe_postgres(&url))
            .await
            .context("the private Postgres did not start")?;
        progress(&format!("private Postgres ready at {url}"));
        Ok(url)
    }

    /// Starts a private Redis (nothing persisted) from `bin`; returns its URL.
    async fn start_redis(
        &mut self,
        lookup: &Lookup,
        bin: &Path,
        progress: &dyn Fn(&str),
    ) -> anyhow::Result<String> {
        let launcher = Launcher::unprivileged(lookup)?;
        let dir = TempDir::create("redis", launcher.owner)?;
        let port = free_port()?;
        let mut command = launcher.command(bin);
        command
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--dir"])
            .arg(&dir.path);
        let url = format!("redis://127.0.0.1:{port}");
        progress(&format!("starting a private Redis on port {port}"));
        let private = Private::spawn("Redis", command, "TERM", dir)?;
        let private = self.push(private);
        private
            .wait_ready(|| probe_redis(&url))
            .await
            .context("the private Redis did not start")?;
        progress(&format!("private Redis ready at {url}"));
        Ok(url)
    }

    fn push(&mut self, private: Private) -> &mut Private {
        self.private.push(private);
        // Just pushed, so the vector is not empty.
        let last = self.private.len() - 1;
        &mut self.private[last]
    }
}

// ---------------------------------------------------------------------------------
// Probes

/// Whether a Postgres at `url` accepts a connection within [`PROBE_TIMEOUT`]; the reason if not.
async fn probe_postgres(url: &str) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    }
}

/// Whether a Redis at `url` answers PING within [`PROBE_TIMEOUT`]; the reason if not.
async fn probe_redis(url: &str) -> Result<(), String> {
    let ping = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    }
}

// ---------------------------------------------------------------------------------
// What is missing

/// A server that is needed but cannot be started; `probe` is the URL tried and why it failed.
#[derive(Debug)]
enum Missing {
    Postgres { probe: Option<(String, String)> },
    Redis { probe: Option<(String, String)> },
}

/// The error for servers that neither answer nor are installed: what to install, or what to set.
fn not_installed(missing: &[Missing]) -> anyhow::Error {
    let mut lines = Vec::new();
    let mut packages = Vec::new();
    let mut settings = Vec::new();
    for m in missing {
        match m {
            Missing::Postgres { probe } => {
                if let Some((url, why)) = probe {
                    lines.push(format!("Postgres does not answer at {url} ({why})."));
                }
                lines.push(
                    "No Postgres server is installed (looked for initdb and postgres on PATH \
                     and in /usr/lib/postgresql/*/bin)."
                        .to_string(),
                );
                packages.push("postgresql");
                settings.push("DIALER__DATABASE__URL=postgres://USER:PASSWORD@HOST:5432/postgres");
            }
            Missing::Redis { probe } => {
                if let Some((url, why)) = probe {
                    lines.push(format!("Redis does not answer at {url} ({why})."));
                }
                lines
                    .push("No Redis server is installed (looked for redis-server on PATH).".into());
                packages.push("redis-server");
                settings.push("DIALER__REDIS__URL=redis://HOST:6379");
            }
        }
    }
    anyhow::anyhow!(
        "the demo needs Postgres and Redis.\n{}\nEither install {} (Debian: apt-get install {}) \
         and run the demo again, or point it at running servers: {}",
        lines.join("\n"),
        if packages.len() == 1 { "it" } else { "them" },
        packages.join(" "),
        settings.join(" and ")
    )
}

// ---------------------------------------------------------------------------------
// Finding the binaries

/// Where binaries are looked for; injectable so that "nothing installed" can be tested.
struct Lookup {
    /// `PATH`.
    path: Option<OsString>,
    /// Debian's versioned Postgres installations, `<root>/<version>/bin`.
    postgresql_root: PathBuf,
}

impl Lookup {
    fn from_env() -> Self {
        Self {
            path: std::env::var_os("PATH"),
            postgresql_root: PathBuf::from("/usr/lib/postgresql"),
        }
    }

    /// `name` in the first `PATH` directory that has it as an executable file.
    fn program(&self, name: &str) -> Option<PathBuf> {
        let path = self.path.as_deref()?;
        std::env::split_paths(path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    }

    /// The directory holding both `initdb` and `postgres`: the first on `PATH`, else the
    /// highest version under [`Lookup::postgresql_root`].
    fn postgres_bin_dir(&self) -> Option<PathBuf> {
        let has_both =
            |dir: &Path| is_executable(&dir.join("initdb")) && is_executable(&dir.join("postgres"));
        if let Some(path) = self.path.as_deref()
            && let Some(dir) = std::env::split_paths(path).find(|d| has_both(d))
        {
            return Some(dir);
        }
        let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(&self.postgresql_root)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let version = e
                    .file_name()
                    .to_str()?
                    .split('.')
                    .map(|part| part.parse::<u32>().ok())
                    .collect::<Option<Vec<u32>>>()?;
                Some((version, e.path().join("bin")))
            })
            .collect();
        versions.sort_by(|a, b| b.0.cmp(&a.0));
        versions
            .into_iter()
            .map(|(_, dir)| dir)
            .find(|d| has_both(d))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// ---------------------------------------------------------------------------------
// Running as someone else

/// How a server is started: an optional wrapper (`setpriv …` or `runuser …`) and the
/// user that must own its directory.
struct Launcher {
    prefix: Vec<OsString>,
    /// `(uid, gid)` to own the server's directory when it runs as another user.
    owner: Option<(u32, u32)>,
}

impl Launcher {
    /// As the current user; with a parent-death signal where `setpriv` exists.
    fn current_user(lookup: &Lookup) -> Self {
        let prefix = match lookup.program("setpriv") {
            Some(setpriv) => vec![
                setpriv.into(),
                "--pdeathsig".into(),
                "KILL".into(),
                "--".into(),
            ],
            None => Vec::new(),
        };
        Self {
            prefix,
            owner: None,
        }
    }

    /// As the current user unless that is root, which Postgres refuses (and Redis needs
    /// no more than Postgres): then as `postgres` if that user exists, else as `nobody`.
    fn unprivileged(lookup: &Lookup) -> anyhow::Result<Self> {
        if effective_uid() != Some(0) {
            return Ok(Self::current_user(lookup));
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let (name, uid, gid) = ["postgres", "nobody"]
            .into_iter()
            .find_map(|name| passwd_entry(&passwd, name).map(|(uid, gid)| (name, uid, gid)))
            .context("running as root, which Postgres refuses, and neither a `postgres` nor a `nobody` user exists to run it as")?;
        let prefix: Vec<OsString> = if let Some(setpriv) = lookup.program("setpriv") {
            vec![
                setpriv.into(),
                "--pdeathsig".into(),
                "KILL".into(),
                format!("--reuid={uid}").into(),
                format!("--regid={gid}").into(),
                "--clear-groups".into(),
                "--".into(),
            ]
        } else if let Some(runuser) = lookup.program("runuser") {
            vec![runuser.into(), "-u".into(), name.into(), "--".into()]
        } else {
            bail!(
                "running as root, which Postgres refuses, and neither setpriv nor runuser \
                 (Debian: util-linux) is on PATH to run it as `{name}`"
            );
        };
        Ok(Self {
            prefix,
            owner: Some((uid, gid)),
        })
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = match self.prefix.split_first() {
            Some((wrapper, args)) => {
                let mut c = Command::new(wrapper);
                c.args(args).arg(program);
                c
            }
            None => Command::new(program),
        };
        command.env_remove("PGDATA").env_remove("PGPORT");
        command
    }
}

/// The effective uid, from `/proc/self/status` (no libc without `unsafe`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `(uid, gid)` of `name` in an `/etc/passwd` text.
fn passwd_entry(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

// ---------------------------------------------------------------------------------
// Private servers

/// Prefix of the directories of private servers under the system's temporary directory.
const DIR_PREFIX: &str = "dialer-demo-";
/// File in such a directory holding the pid of the process that made it.
const OWNER_FILE: &str = "demo.pid";
/// File in such a directory that receives the server's output.
const LOG_FILE: &str = "server.log";

/// A directory under the system's temporary directory, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `dialer-demo-<what>-<uuid>` (mode 0700), owned by `owner` if given, after
    /// sweeping away what earlier demos that were killed outright left behind.
    fn create(what: &str, owner: Option<(u32, u32)>) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let tmp = std::env::temp_dir();
        sweep_stale(&tmp);
        let path = tmp.join(format!(
            "{DIR_PREFIX}{what}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let dir = Self { path };
        std::fs::write(dir.path.join(OWNER_FILE), std::process::id().to_string())
            .with_context(|| format!("cannot write to {}", dir.path.display()))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir.path, Some(uid), Some(gid))
                .with_context(|| format!("cannot give {} to uid {uid}", dir.path.display()))?;
        }
        Ok(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the directories in `tmp` whose demo is gone (killed outright, so its drops never
/// ran; its servers died with it through the parent-death signal), and the small System V
/// segment a killed Postgres keeps. A directory whose Postgres still runs is left alone.
fn sweep_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let pid_in = |file: &Path| -> Option<u32> {
            std::fs::read_to_string(file)
                .ok()?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        };
        // No owner file yet: being created right now, or not ours to judge.
        match pid_in(&dir.join(OWNER_FILE)) {
            Some(owner) if !is_alive(owner) => {}
            _ => continue,
        }
        let postmaster_pid = dir.join("data/postmaster.pid");
        if let Ok(text) = std::fs::read_to_string(&postmaster_pid) {
            if pid_in(&postmaster_pid).is_some_and(is_alive) {
                continue;
            }
            let sysvipc = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
            if let Some(shmid) = orphaned_segment(&text, &sysvipc) {
                let _ = std::process::Command::new("ipcrm")
                    .args(["-m", &shmid.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The id of the System V segment named in a `postmaster.pid` (its 7th line: key and id),
/// if `/proc/sysvipc/shm` lists it with that key and nobody attached.
fn orphaned_segment(postmaster_pid: &str, sysvipc: &str) -> Option<u32> {
    let mut named = postmaster_pid.lines().nth(6)?.split_whitespace();
    let (key, shmid): (i64, u32) = (named.next()?.parse().ok()?, named.next()?.parse().ok()?);
    sysvipc.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let matches = fields.first()?.parse::<i64>().ok()? == key
            && fields.get(1)?.parse::<u32>().ok()? == shmid
            && fields.get(6)?.parse::<u32>().ok()? == 0;
        matches.then_some(shmid)
    })
}

/// A server process and its directory; on drop the process (and whatever it forked) is
/// stopped, then the directory removed.
struct Private {
    name: &'static str,
    child: Option<Child>,
    /// The signal that makes this server shut down promptly (QUIT: Postgres' immediate shutdown).
    stop_signal: &'static str,
    /// Removed by its own drop, which runs after `Drop::drop` has stopped the process.
    dir: TempDir,
}

impl Private {
    fn spawn(
        name: &'static str,
        mut command: Command,
        stop_signal: &'static str,
        dir: TempDir,
    ) -> anyhow::Result<Self> {
        let log = dir.path.join(LOG_FILE);
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the private {name}"))?;
        Ok(Self {
            name,
            child: Some(child),
            stop_signal,
            dir,
        })
    }

    /// Polls `probe` until it succeeds; fails early if the process exits, or after
    /// [`READY_TIMEOUT`]; either error quotes the end of the log.
    async fn wait_ready<F, Fut>(&mut self, probe: F) -> anyhow::Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let started = Instant::now();
        loop {
            let last = match probe().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited ({status}); the end of {}:\n{}",
                    self.name,
                    self.log().display(),
                    self.log_tail()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} did not accept connections within {} s (last error: {last}); the end of {}:\n{}",
                    self.name,
                    READY_TIMEOUT.as_secs(),
                    self.log().display(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where the server's output goes.
    fn log(&self) -> PathBuf {
        self.dir.path.join(LOG_FILE)
    }

    fn log_tail(&self) -> String {
        tail(&std::fs::read_to_string(self.log()).unwrap_or_default())
    }

    /// The server's pid and its descendants' (Postgres forks one process per backend).
    #[cfg(test)]
    fn pids(&self) -> Vec<u32> {
        let Some(pid) = self.child.as_ref().and_then(|c| c.id()) else {
            return Vec::new();
        };
        let mut all = vec![pid];
        all.extend(descendants(pid));
        all
    }
}

impl Drop for Private {
    /// Blocks (for at most twice [`STOP_GRACE`]) until the server and its children are gone.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Some(pid) = child.id() else {
            return; // Already reaped.
        };
        let family = descendants(pid);
        send_signal(pid, self.stop_signal);
        let deadline = Instant::now() + STOP_GRACE;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.start_kill();
            let deadline = Instant::now() + STOP_GRACE;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Children of a killed Postgres notice their postmaster's death by themselves.
        let deadline = Instant::now() + STOP_GRACE;
        while family.iter().any(|&p| is_alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Sends `signal` (a name such as `QUIT`) through `sh`'s `kill`: no libc without `unsafe`.
fn send_signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("sh")
        .args(["-c", r#"kill -s "$1" "$2""#, "sh", signal, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `(state, ppid)` of a process, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// `(state, ppid)` from the text of a `/proc/<pid>/stat` (the name may contain spaces and parentheses).
fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Running (a zombie is dead: only its parent's `wait` is missing, which may be nobody's job).
fn is_alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Every live descendant of `root`.
fn descendants(root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| proc_stat(pid).map(|(_, ppid)| (pid, ppid)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// The last [`LOG_TAIL_LINES`] lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut out = lines[start..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Says why a test did nothing, on the real stderr (the harness captures `eprintln!`).
    fn skip(reason: &str) {
        let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
    }

    fn closed_port() -> u16 {
        free_port().unwrap()
    }

    #[tokio::test]
    async fn private_services_answer_and_stop_leaves_nothing_behind() {
        let lookup = Lookup::from_env();
        if lookup.postgres_bin_dir().is_none() || lookup.program("redis-server").is_none() {
            skip(
                "private_services_answer_and_stop_leaves_nothing_behind: \
                 no Postgres server binaries or no redis-server installed",
            );
            return;
        }
        let services = Services::start_private(&|m| {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("{m}");
            }
        })
        .await
        .unwrap();
        assert_ne!(services.database_url, DEFAULT_DATABASE_URL);
        assert_ne!(services.redis_url, DEFAULT_REDIS_URL);

        let mut pg = PgConnection::connect(&services.database_url).await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut pg)
            .await
            .unwrap();
        assert_eq!(one, 1);
        let client = redis::Client::open(services.redis_url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        assert_eq!(pong, "PONG");

        let pids: Vec<u32> = services.private.iter().flat_map(|p| p.pids()).collect();
        let dirs: Vec<PathBuf> = services
            .private
            .iter()
            .map(|p| p.dir.path.clone())
            .collect();
        assert_eq!(dirs.len(), 2);
        // Postgres runs a postmaster plus its background processes and our backend.
        assert!(pids.len() >= 4, "server processes: {pids:?}");
        assert!(pids.iter().all(|&p| is_alive(p)));
        if effective_uid() == Some(0) {
            for &pid in &pids {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
                assert!(
                    !uid.split_whitespace().skip(1).any(|u| u == "0"),
                    "pid {pid} runs as root: {uid}"
                );
            }
        }
        assert!(dirs.iter().all(|d| d.is_dir()));

        drop(conn);
        let _ = pg.close().await;
        services.stop().await;

        let left: Vec<u32> = pids.into_iter().filter(|&p| is_alive(p)).collect();
        assert!(left.is_empty(), "processes still running: {left:?}");
        for dir in dirs {
            assert!(!dir.exists(), "{} was not removed", dir.display());
        }
    }

    #[tokio::test]
    async fn nothing_answering_and_nothing_installed_says_what_to_install_and_set() {
        let empty = TempDir::create("test-empty", None).unwrap();
        let lookup = Lookup {
            path: Some(empty.path.clone().into_os_string()),
            postgresql_root: empty.path.join("postgresql"),
        };
        let pg_url = format!(
            "postgres://postgres:secret@127.0.0.1:{}/postgres",
            closed_port()
        );
        let redis_url = format!("redis://127.0.0.1:{}", closed_port());
        let Err(e) = Services::ensure_with(&lookup, &pg_url, &redis_url, &|_| {}).await else {
            panic!("ensure succeeded with nothing installed");
        };
        let text = format!("{e:#}");
        assert!(
            text.contains("apt-get install postgresql redis-server"),
            "{text}"
        );
        assert!(text.contains("DIALER__DATABASE__URL="), "{text}");
        assert!(text.contains("DIALER__REDIS__URL="), "{text}");
        assert!(text.contains(&redact_url(&pg_url)), "{text}");
        assert!(text.contains(&redis_url), "{text}");
        assert!(!text.contains("secret"), "the password leaked: {text}");
    }

    #[test]
    fn only_redis_missing_names_only_redis() {
        let text = not_installed(&[Missing::Redis { probe: None }]).to_string();
        assert!(text.contains("apt-get install redis-server"), "{text}");
        assert!(text.contains("DIALER__REDIS__URL="), "{text}");
        assert!(!text.contains("postgresql"), "{text}");
        assert!(!text.contains("DIALER__DATABASE__URL"), "{text}");
    }

    fn fake_executable(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn postgres_lookup_prefers_path_then_the_highest_version() {
        let root = TempDir::create("test-lookup", None).unwrap();
        let lib = root.path.join("lib");
        for version in ["9.6", "13", "15"] {
            fake_executable(&lib.join(version).join("bin/initdb"));
            fake_executable(&lib.join(version).join("bin/postgres"));
        }
        // 16 is incomplete (no postgres), so it does not count.
        fake_executable(&lib.join("16/bin/initdb"));
        let mut lookup = Lookup {
            path: Some(root.path.join("nothing-here").into_os_string()),
            postgresql_root: lib.clone(),
        };
        assert_eq!(lookup.postgres_bin_dir(), Some(lib.join("15/bin")));

        let on_path = root.path.join("bin");
        fake_executable(&on_path.join("initdb"));
        fake_executable(&on_path.join("postgres"));
        lookup.path = Some(std::env::join_paths([Path::new("/nonexistent"), &on_path]).unwrap());
        assert_eq!(lookup.postgres_bin_dir(), Some(on_path));

        lookup.postgresql_root = root.path.join("absent");
        lookup.path = None;
        assert_eq!(lookup.postgres_bin_dir(), None);
    }

    #[test]
    fn passwd_and_stat_parsing() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(passwd_entry(passwd, "postgres"), Some((101, 104)));
        assert_eq!(passwd_entry(passwd, "post"), None);
        assert_eq!(
            parse_stat("42 (postgres: a (b) c) S 7 42 42 0 -1"),
            Some(('S', 7))
        );
    }

    #[test]
    fn orphaned_segment_needs_matching_key_and_id_and_no_attachments() {
        let pid_file = "318\n/tmp/d/data\n1795295423\n34041\n/tmp/d\n127.0.0.1\n 10027025        45\nready   \n";
        let header =
            "       key      shmid perms                  size  cpid  lpid nattch   uid   gid\n";
        let orphan =
            format!("{header}  10027025         45   600     56   318   329      0   101   104\n");
        assert_eq!(orphaned_segment(pid_file, &orphan), Some(45));
        let attached =
            format!("{header}  10027025         45   600     56   318   329      2   101   104\n");
        assert_eq!(orphaned_segment(pid_file, &attached), None);
        let other_key =
            format!("{header}  10027026         45   600     56   318   329      0   101   104\n");
        assert_eq!(orphaned_segment(pid_file, &other_key), None);
        assert_eq!(orphaned_segment("318\n", &orphan), None);
    }

    #[test]
    fn sweep_removes_only_directories_of_dead_demos() {
        let tmp = TempDir::create("test-sweep", None).unwrap();
        let make = |name: &str, owner: Option<u32>| {
            let dir = tmp.path.join(name);
            std::fs::create_dir(&dir).unwrap();
            if let Some(pid) = owner {
                std::fs::write(dir.join(OWNER_FILE), pid.to_string()).unwrap();
            }
            dir
        };
        // A pid that is not running: past the kernel's default pid_max.
        let dead = make("dialer-demo-pg-dead", Some(4_194_305));
        let alive = make("dialer-demo-pg-alive", Some(std::process::id()));
        let unowned = make("dialer-demo-pg-unowned", None);
        let foreign = make("someone-else", Some(4_194_305));
        sweep_stale(&tmp.path);
        assert!(!dead.exists());
        assert!(alive.exists() && unowned.exists() && foreign.exists());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let t = tail(&text);
        assert!(
            t.starts_with("line 11\n") && t.ends_with("line 30\n"),
            "{t}"
        );
        assert_eq!(tail(""), "");
    }
}
