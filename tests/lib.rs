//! Cross-process test support for Flexus Autoscaler.
//!
//! This crate holds no production code: only the end-to-end tests under this folder
//! (`architecture.rs`, the Terraform matrix, the examples test), the demo driver
//! (`demo.rs`) and the helpers they share here:
//!
//! - [`bin`] finds a workspace binary next to the running test executable (built by
//!   `cargo build --workspace --bins`, which `make test` runs first) and fails loudly when
//!   it is missing.
//! - [`Stack`] starts `flexus-emulator` and `flexus-agent` on loopback (temporary SQLite
//!   store, generated tokens, accelerated clocks) and stops them on drop.
//! - [`terraform_latest`] / [`terraform_1_0`] and [`workspace`] give a Terraform working
//!   directory whose filesystem mirror holds the freshly built provider (no network);
//!   [`on_both_versions!`] runs one case as a test with each Terraform.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tfplugin::testing::{ProviderUnderTest, Workspace};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

/// A workspace binary built next to this executable (`<target>/debug/<name>`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        dir.pop();
    }
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        p.display()
    );
    p
}

/// Terraform 1.15.5 from `.tools/bin` (or `$FLEXUS_TERRAFORM`).
pub fn terraform_latest() -> PathBuf {
    tfplugin::testing::terraform_from_env(
        "FLEXUS_TERRAFORM",
        &repo_root().join(".tools/bin/terraform"),
    )
}

/// Terraform 1.0.3 from `.tools/bin` (or `$FLEXUS_TERRAFORM_1_0`).
pub fn terraform_1_0() -> PathBuf {
    tfplugin::testing::terraform_from_env(
        "FLEXUS_TERRAFORM_1_0",
        &repo_root().join(".tools/bin/terraform-1.0.3"),
    )
}

/// One Terraform case as two tests, `$latest` with Terraform 1.15.5 and `$oldest` with
/// 1.0.3: `$case` is a `fn(&Path)` given the Terraform binary.
#[macro_export]
macro_rules! on_both_versions {
    ($latest:ident, $oldest:ident, $case:ident) => {
        #[test]
        fn $latest() {
            $case(&$crate::terraform_latest());
        }

        #[test]
        fn $oldest() {
            $case(&$crate::terraform_1_0());
        }
    };
}

/// The provider under test: the built binary as `flexus/flexus` 0.1.0.
pub fn provider() -> ProviderUnderTest {
    ProviderUnderTest::new(
        bin("terraform-provider-flexus"),
        "flexus",
        "flexus",
        "0.1.0",
    )
}

/// A Terraform working directory with the provider in its mirror, pointed at `stack`.
pub fn workspace(terraform: &Path, stack: &Stack, namespace: &str) -> Workspace {
    let mut ws = Workspace::new(terraform, &[provider()], &[]).expect("terraform workspace");
    ws.set_env("FLEXUS_ENDPOINT", &stack.agent_url);
    ws.set_env("FLEXUS_TOKEN", &stack.admin_token);
    ws.set_env("FLEXUS_NAMESPACE", namespace);
    ws
}

/// A root module around `body`: the provider under test in `required_providers` and an
/// empty `provider "flexus"` block (the workspace's environment configures it).
pub fn root_module(body: &str) -> String {
    format!(
        "{}\nprovider \"flexus\" {{}}\n{body}",
        provider().required_providers_block()
    )
}

/// Runs `terraform <args>` in `ws`, which must exit 0 (`what` names the step in the
/// failure, with Terraform's output); returns the outcome.
#[track_caller]
pub fn terraform_ok(ws: &Workspace, args: &[&str], what: &str) -> tfplugin::testing::Outcome {
    let outcome = ws
        .terraform(args)
        .unwrap_or_else(|e| panic!("cannot run terraform {args:?}: {e}"));
    outcome.expect_code(0, what);
    outcome
}

/// Writes `main` as `main.tf` and runs `terraform init` and `terraform plan`, which must
/// both succeed (`what` names the plan in the failure); returns the plan's output.
#[track_caller]
pub fn init_and_plan(ws: &Workspace, main: &str, what: &str) -> String {
    ws.write("main.tf", main).expect("main.tf");
    terraform_ok(ws, &["init"], "init");
    terraform_ok(ws, &["plan"], what).output()
}

/// Copies the `.tf` files of an example directory into a workspace.
pub fn copy_example(example: &str, ws: &Workspace) {
    copy_tf_files(&repo_root().join("examples").join(example), &ws.path());
}

/// Copies the `.tf` files of `from` into `to` (not recursive).
pub fn copy_tf_files(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let p = e.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "tf" || x == "tfvars") {
            std::fs::copy(&p, to.join(p.file_name().expect("file name")))
                .expect("copy example file");
        }
    }
}

/// A free loopback port (bound and released; the caller binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("addr")
        .port()
}

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Boot time of every instance, emulated seconds.
    pub boot_seconds: f64,
    /// Emulated seconds per real second (emulator) = the agent's clock speed.
    pub time_scale: f64,
    /// Namespaces that get their own token (the admin token sees every namespace).
    pub namespaces: Vec<String>,
    /// The agent's interval for pools without a policy.
    pub default_interval: String,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            boot_seconds: 10.0,
            time_scale: 10.0,
            namespaces: vec!["team-a".into(), "team-b".into()],
            default_interval: "2s".into(),
        }
    }
}

/// `flexus-emulator` + `flexus-agent` on loopback, stopped on drop.
#[derive(Debug)]
pub struct Stack {
    pub dir: tempfile::TempDir,
    emulator: Child,
    agent: Child,
    pub emulator_url: String,
    pub agent_url: String,
    pub admin_token: String,
    pub tokens: BTreeMap<String, String>,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

const AK: &str = "E2EACCESSKEY00000001";
const SK: &str = "e2e-secret-key-not-real";
const PROJECT: &str = "0123456789abcdef0123456789abcdef";
/// The emulator's DeepSeek stand-in accepts this public local test key by default.
const DEEPSEEK_KEY: &str = "sk-flexus-emulator-0000000000000000";

fn token(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("tok-{tag}-{:x}{:x}", nanos, std::process::id())
}

impl Stack {
    /// Starts the emulator, then the agent against it; waits until both answer.
    pub fn start(opts: StackOptions) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("flexus-e2e-")
            .tempdir()
            .expect("temp dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");

        let emu_log = std::fs::File::create(dir.path().join("emulator.log")).expect("emulator log");
        let mut emulator = Command::new(bin("flexus-emulator"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--ak",
                AK,
                "--sk",
                SK,
                "--project-id",
                PROJECT,
            ])
            .args([
                "--boot-seconds",
                &opts.boot_seconds.to_string(),
                "--time-scale",
                &opts.time_scale.to_string(),
            ])
            .args(["--metric-interval", "15"])
            .stdout(Stdio::piped())
            .stderr(emu_log)
            .spawn()
            .expect("start flexus-emulator");
        let stdout = emulator.stdout.take().expect("emulator stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let emulator_url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("flexus-emulator did not announce its address (first line {first:?}); see {}/emulator.log", dir.path().display()))
            .to_string();
        std::thread::spawn(move || for _ in lines {});

        let admin_token = token("admin");
        let mut tokens = BTreeMap::new();
        let port = free_port();
        let mut toml = format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"agent.db\"\nlog_format = \"pretty\"\n\n[cloud]\nendpoint = \"{emulator_url}\"\nregion = \"cn-north-4\"\nproject_id = \"{PROJECT}\"\n\n[reconcile]\ndefault_interval = \"{}\"\njob_poll = \"250ms\"\nmax_backoff = \"2s\"\nclock_speed = {}\n\n[metrics.cloud_eye]\nperiod = 60\n\n[auth]\nadmin_token_env = \"FLEXUS_ADMIN_TOKEN\"\n",
            opts.default_interval, opts.time_scale
        );
        // The usage recorder samples often enough for a short demo; the advisor asks the
        // emulator's DeepSeek stand-in (its public local test key).
        toml.push_str(&format!(
            "\n[cost]\nsample_interval = \"15s\"\n\n[advisor]\nenabled = true\nbase_url = \"{emulator_url}\"\napi_key_env = \"FLEXUS_E2E_DEEPSEEK_KEY\"\ntimeout = \"60s\"\n\n"
        ));
        let mut agent_cmd = Command::new(bin("flexus-agent"));
        agent_cmd.env("FLEXUS_E2E_DEEPSEEK_KEY", DEEPSEEK_KEY);
        for (i, ns) in opts.namespaces.iter().enumerate() {
            let var = format!("FLEXUS_E2E_TOKEN_{i}");
            toml.push_str(&format!(
                "[[auth.namespaces]]\nname = \"{ns}\"\ntoken_env = \"{var}\"\n"
            ));
            let t = token(ns);
            agent_cmd.env(&var, &t);
            tokens.insert(ns.clone(), t);
        }
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, toml).expect("write agent.toml");
        let agent_log = std::fs::File::create(dir.path().join("agent.log")).expect("agent log");
        let agent = agent_cmd
            .args(["run", "--config"])
            .arg(&config)
            .env("FLEXUS_ADMIN_TOKEN", &admin_token)
            .env("HUAWEICLOUD_SDK_AK", AK)
            .env("HUAWEICLOUD_SDK_SK", SK)
            .env("FLEXUS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(agent_log)
            .spawn()
            .expect("start flexus-agent");
        let agent_url = format!("http://127.0.0.1:{port}");
        let stack = Stack {
            dir,
            emulator,
            agent,
            emulator_url,
            agent_url,
            admin_token,
            tokens,
            rt,
            http,
        };
        stack.wait_healthy();
        stack
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/healthz", self.agent_url);
        loop {
            let ok = self.rt.block_on(async {
                self.http
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "flexus-agent did not become healthy at {url} within 30 s; log:\n{}",
                self.agent_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The agent's log so far (for assertion messages).
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Runs a future on the stack's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// An API client with the admin token.
    pub fn client(&self) -> flexus_api::Client {
        flexus_api::Client::new(&self.agent_url, Some(self.admin_token.clone()))
            .expect("agent client")
    }

    /// `GET` on the emulator's control API.
    pub fn emulator_get(&self, path: &str) -> serde_json::Value {
        let body = self.emulator_send(reqwest::Method::GET, path, None);
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {}{path}: not JSON ({e}): {body}", self.emulator_url))
    }

    /// `POST` (JSON) on the emulator's control API.
    pub fn emulator_post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let text = self.emulator_send(reqwest::Method::POST, path, Some(body));
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// `DELETE` on the emulator's control API.
    pub fn emulator_delete(&self, path: &str) {
        self.emulator_send(reqwest::Method::DELETE, path, None);
    }

    /// A request on the emulator's control API (with a JSON body if given) that must
    /// succeed; returns the answer's body.
    fn emulator_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> String {
        let url = format!("{}{path}", self.emulator_url);
        self.rt.block_on(async {
            let mut req = self.http.request(method.clone(), &url);
            if let Some(body) = body {
                req = req.json(body);
            }
            let r = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            assert!(status.is_success(), "{method} {url}: {status} {text}");
            text
        })
    }

    /// Instances of the emulator carrying pool tag `pool` that are not deleted yet
    /// (booting, warming, ready, deleting or reclaiming), as the emulator reports them.
    pub fn emulator_instances(&self, pool: &str) -> Vec<serde_json::Value> {
        self.emulator_get(&format!("/_emulator/pools/{pool}/load"))["instances"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `f` every 200 ms until it returns `Some`, or panics after `timeout` with `what`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {}s waiting for {what}",
                timeout.as_secs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
        let _ = self.emulator.kill();
        let _ = self.emulator.wait();
    }
}
