//! A real PostgreSQL 15 server on loopback for the tests of one test binary: `initdb`
//! into a temporary directory, `postgres` on a free port, a fresh database per test.
//! A watchdog stops the server and removes its directory when the test process ends
//! (also when it is killed). Needs the Debian package `postgresql-15`
//! (`make services` installs it); without it the tests fail loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The test binary's server.
pub struct PgServer {
    pub port: u16,
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
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = super::process::free_port();
    // The server runs until this test process is gone, then the watchdog stops it
    // and removes the directory. (setpriv execs, so `$!` is the server itself.)
    let launcher = if is_root() {
        "setpriv --reuid=postgres --regid=postgres --init-groups -- "
    } else {
        ""
    };
    let script = format!(
        "{launcher}{BIN}/postgres -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 \
         -c fsync=off -c max_connections=300 >{dir}/log 2>&1 & pg=$!; \
         while kill -0 {ppid} 2>/dev/null; do sleep 0.5; done; kill -INT $pg; wait $pg; rm -rf {dir}",
        data = data.display(),
        dir = dir.display(),
        ppid = std::process::id(),
    );
    let watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the PostgreSQL watchdog");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = Command::new(Path::new(BIN).join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "flexus"])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    PgServer {
        port,
        _watchdog: std::sync::Mutex::new(watchdog),
    }
}

impl PgServer {
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
