//! Metric sources against real servers on loopback: `redis-server` and `prometheus`
//! (installed by `scripts/install-services.sh`), each started with a temporary data
//! directory.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use flexus_agent::runtime::sources::{Prometheus, Redis};
use serde_json::json;

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn need(bin: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{bin} is not installed: run scripts/install-services.sh (make services) first"
    );
}

fn redis() -> (Server, String) {
    need("redis-server");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    (
        Server { child, _dir: dir },
        format!("redis://127.0.0.1:{port}"),
    )
}

async fn redis_cmd(url: &str, args: &[&str]) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let _: redis::Value = cmd.query_async(&mut conn).await.unwrap();
}

async fn wait_redis(url: &str) {
    for _ in 0..100 {
        if let Ok(c) = redis::Client::open(url)
            && c.get_multiplexed_async_connection().await.is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not start on {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_source_reads_list_length_and_numbers_and_names_bad_keys() {
    let (_srv, url) = redis();
    wait_redis(&url).await;
    redis_cmd(&url, &["RPUSH", "jobs", "a", "b", "c"]).await;
    redis_cmd(&url, &["SET", "backlog", "17.5"]).await;
    redis_cmd(&url, &["SET", "word", "many"]).await;
    redis_cmd(&url, &["SADD", "set", "x"]).await;
    let r = Redis::new(&url).unwrap();
    assert_eq!(r.read("jobs", 5).await.unwrap().unwrap().value, 3.0);
    assert_eq!(r.read("absent", 5).await.unwrap().unwrap().value, 0.0);
    assert_eq!(r.read("backlog", 5).await.unwrap().unwrap().value, 17.5);
    let e = r.read("word", 5).await.unwrap_err().to_string();
    assert!(e.contains("word") && e.contains("not a number"), "{e}");
    let e = r.read("set", 5).await.unwrap_err().to_string();
    assert!(e.contains("set"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_queue_drives_the_pool_size() {
    let (_srv, url) = redis();
    wait_redis(&url).await;
    let items: Vec<String> = (0..35).map(|i| format!("job-{i}")).collect();
    let mut args = vec!["RPUSH", "inference-queue"];
    args.extend(items.iter().map(String::as_str));
    redis_cmd(&url, &args).await;
    let emu = Emu::start(10.0, 10.0).await;
    let u = url.clone();
    let agent = InProcAgent::start(&emu, 10.0, move |c| c.metrics.redis_url = Some(u)).await;
    let c = &agent.client;
    let pol = json!({
        "strategy": "target_tracking",
        "bounds": {"min": 1, "max": 10},
        "metrics": [{"name": "queue", "kind": "queue_length", "source": {"type": "redis", "key": "inference-queue"},
                     "target": 10, "per_instance": true}],
        "scale_out": {"stabilisation_window": "0s", "cooldown": "0s"}
    });
    declare_pool(c, "queue", &pool_spec(1, 10), pol).await;
    // ceil(35 / 10) = 4
    let s = wait_status(
        c,
        ("team-a", "queue"),
        "four instances for 35 queued jobs",
        Duration::from_secs(30),
        |s| (s.desired_size == Some(4) && s.current_size == 4).then_some(s),
    )
    .await;
    let d = s.last_decision.unwrap();
    assert_eq!(d.detail["proposals"][0]["metric"], "queue", "{}", d.detail);
    assert_eq!(d.detail["proposals"][0]["value"], 35.0, "{}", d.detail);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_source_reads_a_scraped_gauge() {
    need("prometheus");
    // A tiny exporter for Prometheus to scrape.
    let exporter = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exp_addr = exporter.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            "# TYPE flexus_test_queue gauge\nflexus_test_queue{pool=\"web\"} 42\n"
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(exporter, app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: ['{exp_addr}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let _srv = Server { child, _dir: dir };
    let p = Prometheus::new(&format!("http://127.0.0.1:{port}"));
    let reading = wait_for(
        "prometheus to scrape the gauge",
        Duration::from_secs(60),
        || async { p.query("sum(flexus_test_queue)").await.ok().flatten() },
    )
    .await;
    assert_eq!(reading.value, 42.0);
    assert!(
        reading.at > 1_600_000_000_000,
        "timestamp in ms: {}",
        reading.at
    );
    // A query that matches nothing is missing, not zero.
    assert_eq!(p.query("flexus_no_such_metric").await.unwrap(), None);
    // A broken query names itself.
    let e = p.query("sum(").await.unwrap_err().to_string();
    assert!(e.contains("sum("), "{e}");
}
