//! A real PostgreSQL 15 server on loopback for the tests of one test binary: `initdb`
//! into a temporary directory, `postgres` on a free port, a fresh database per test.
//! A watchdog stops the server and removes its directory when the test process ends
//! (also when it is killed). `stop` and `start` restart it on the same data directory
//! and port (the soak's PostgreSQL restart). Needs the Debian package `postgresql-15`
//! (`make services` installs it); without it the tests fail loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The test binary's server.
pub struct PgServer {
    pub port: u16,
    /// The server's directory: `data/` (the cluster), `log`, the socket.
    dir: PathBuf,
    /// The shell that runs the server and stops it when this process is gone.
    _watchdog: std::sync::Mutex<std::process::Child>,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `cmd` as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_pg_user(bin: &str) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ]);
        c.arg(Path::new(BIN).join(bin));
        c
    } else {
        Command::new(Path::new(BIN).join(bin))
    }
}

fn start() -> PgServer {
    assert!(
        Path::new(BIN).join("postgres").exists(),
        "PostgreSQL 15 is not installed at {BIN}: run `make services` (Debian package postgresql-15)"
    );
    let dir: PathBuf = tempfile::Builder::new()
        .prefix("flexus-pg-")
        .tempdir()
        .unwrap()
        .keep();
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(ok.success(), "chown the PostgreSQL test directory");
    }
    let data = dir.join("data");
    let out = as_pg_user("initdb")
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "flexus",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
            "--no-sync",
        ])
        .output()
        .expect("run initdb");
    super::succeeded("initdb", out);
    let port = super::process::free_port();
    let server = PgServer {
        port,
        dir: dir.clone(),
        _watchdog: std::sync::Mutex::new(watchdog(&dir, &data)),
    };
    server.start();
    server
}

/// `pg_ctl` with `args` on the server's data directory, as the `postgres` user.
fn pg_ctl(data: &Path, args: &[&str]) -> std::process::Output {
    as_pg_user("pg_ctl")
        .arg("-D")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pg_ctl")
}

/// A shell that stops the server and removes its directory once this test process
/// is gone (also when it is killed).
fn watchdog(dir: &Path, data: &Path) -> std::process::Child {
    let launcher = if is_root() {
        "setpriv --reuid=postgres --regid=postgres --init-groups -- "
    } else {
        ""
    };
    let script = format!(
        "while kill -0 {ppid} 2>/dev/null; do sleep 0.5; done; \
         {launcher}{BIN}/pg_ctl -D {data} stop -m fast -w >/dev/null 2>&1; rm -rf {dir}",
        data = data.display(),
        dir = dir.display(),
        ppid = std::process::id(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the PostgreSQL watchdog")
}

impl PgServer {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Start the server on its data directory and port; returns once it accepts
    /// connections (at most 30 s).
    pub fn start(&self) {
        let opts = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            port = self.port,
            dir = self.dir.display()
        );
        let log = self.dir.join("log");
        let out = pg_ctl(
            &self.data(),
            &[
                "start",
                "-w",
                "-t",
                "30",
                "-l",
                &log.to_string_lossy(),
                "-o",
                &opts,
            ],
        );
        assert!(
            out.status.success(),
            "PostgreSQL did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stop the server the way a crash or an operator's hard stop does (`pg_ctl stop
    /// -m immediate`: connections are cut, nothing is checkpointed); `start` brings it
    /// back on the same data directory and port.
    pub fn stop(&self) {
        let out = pg_ctl(&self.data(), &["stop", "-m", "immediate", "-w"]);
        super::succeeded("pg_ctl stop (PostgreSQL did not stop)", out);
    }

    /// The test binary's server, started on first use.
    pub fn shared() -> &'static PgServer {
        SERVER.get_or_init(start)
    }

    /// A new, empty database; its URL.
    pub async fn fresh_db(&self) -> String {
        use sqlx::Connection as _;
        let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
        let name = format!("flexus_{}_{n}", std::process::id());
        let admin = format!("postgres://flexus@127.0.0.1:{}/postgres", self.port);
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        format!("postgres://flexus@127.0.0.1:{}/{name}", self.port)
    }
}
