//! Shared harness: an in-process emulator on 127.0.0.1:0 and a real signed client.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use flexus_cloud::{
    ClientConfig, CreateServersRequest, Credentials, HuaweiClient, RateLimits, RetryPolicy,
    RootVolume, SpotOptions,
};
use flexus_emulator::{AcceptedKey, Emulator, EmulatorConfig};
use serde_json::Value;

pub const AK: &str = "EMULATORTESTAK000001";
pub const SK: &str = "emulator-test-secret-key-0001";
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
pub const POOL_TAG: &str = "flexus-pool";

pub struct Harness {
    pub emu: Arc<Emulator>,
    pub base: String,
    pub client: HuaweiClient,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), flexus_emulator::EmulatorError>>>,
}

/// Frozen clock (time moves only through `/_emulator/clock`), 30 s boots.
pub fn config() -> EmulatorConfig {
    EmulatorConfig::frozen(PROJECT, AcceptedKey::new(AK, SK), 30.0)
}

pub fn client_config(base: &str) -> ClientConfig {
    let mut c = ClientConfig::single_endpoint(base, "cn-north-4", PROJECT).expect("client config");
    c.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
    };
    c.rate_limits = RateLimits::unlimited();
    c.request_timeout = Duration::from_secs(10);
    c
}

pub async fn start(cfg: EmulatorConfig) -> Harness {
    let emu = Emulator::new(cfg).expect("emulator starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(flexus_emulator::serve(listener, emu.clone(), async move {
        let _ = rx.await;
    }));
    let base = format!("http://{addr}");
    let client = HuaweiClient::new(client_config(&base), Credentials::new(AK, SK)).expect("client");
    Harness {
        emu,
        base,
        client,
        http: reqwest::Client::new(),
        stop: Some(tx),
        task: Some(task),
    }
}

impl Harness {
    /// Calls the control API; returns status and JSON body.
    pub async fn ctl(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.expect("control call");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.ctl(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 200, "POST {path}: {v}");
        v
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.ctl(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// The emulated clock, ms since the epoch.
    pub async fn now_ms(&self) -> i64 {
        self.get("/_emulator/clock").await["now_ms"]
            .as_i64()
            .expect("now")
    }

    /// Moves the emulated clock forward.
    pub async fn advance(&self, seconds: f64) {
        self.post(
            "/_emulator/clock",
            serde_json::json!({"advance_seconds": seconds}),
        )
        .await;
    }

    /// API calls the emulator received for `op`.
    pub async fn calls(&self, op: &str) -> u64 {
        self.get("/_emulator/stats").await["calls"][op]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("serve ends cleanly");
        }
    }
}

pub fn create_req(name: &str, pool: &str, count: u32, spot: bool) -> CreateServersRequest {
    CreateServersRequest {
        client_token: uuid::Uuid::new_v4(),
        name: name.into(),
        flavor: "x1.2u.4g".into(),
        image: "img-ubuntu-22".into(),
        vpc_id: "vpc-1".into(),
        subnet_ids: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
        availability_zone: None,
        key_name: Some("kp-1".into()),
        user_data: None,
        root_volume: RootVolume {
            volume_type: "SSD".into(),
            size_gb: Some(40),
        },
        tags: vec![(POOL_TAG.into(), pool.into())],
        count,
        spot: spot.then(SpotOptions::default),
    }
}
