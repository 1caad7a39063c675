//! Operator benchmarks (a measurement, not a test):
//!
//! - `cost [POOLS] [hours=H] [db=PATH]`: `GET /v1/cost?window=23h` (24 hourly rollups)
//!   over POOLS pools, each with H hourly rollups stored (default 24; the newest 24 with
//!   their samples, as the recorder writes them) on a file SQLite store (kept at PATH and
//!   reused when it exists), served by the agent's router on loopback; 7 runs, median and
//!   max.
//! - `dashboard [POOLS]`: the dashboard in headless Chromium with POOLS pools: first
//!   contentful paint, the time until every pool row is painted, and the page weight
//!   (HTML + script + stylesheet, and the API data the overview loads); 5 loads.
//! - `advisor [POOLS] [ROUNDS]`: reconcile-pass latency percentiles against the emulator,
//!   with the advisor idle (A) and with the model hanging on every call while requests
//!   are queued (B), alternated A B A B in one run.
//! - `tune [POOLS] [ROUNDS]`: the same latencies with no tune job (A), with 4 tune jobs
//!   under the agent's default bound on concurrent searches (B), and with 4 searching at
//!   once (C, no bound), rotated A B C in one run.
//!
//! `cargo bench -p flexus-agent --bench operator -- cost 10000`

#[path = "../tests/browser/mod.rs"]
mod browser;
#[path = "../tests/common/mod.rs"]
mod common;
mod harness;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use flexus_agent::clock::{ManualClock, SharedClock, SystemClock};
use flexus_agent::config::{AuthConfig, Secret};
use flexus_agent::server::{AppState, router};
use flexus_agent::store::{RuntimeState, SqliteStore, Store, UsageHour, UsageSample};
use flexus_agent::telemetry::Telemetry;
use flexus_api::Purchase;

use common::ADMIN;
use common::fleet::hold_leases;
use harness::bench_args;

fn pool_spec() -> flexus_api::PoolSpec {
    serde_json::from_value(serde_json::json!({"flavor": "x1.2u.4g", "image": "img", "vpc_id": "vpc", "subnet_ids": ["s"],
        "min_size": 1, "max_size": 8, "boot_seconds": 2}))
    .expect("bench pool spec")
}

/// Declares `n` pools, the i-th in namespace `ns(i)`.
async fn put_pools(
    store: &dyn Store,
    n: usize,
    ns: impl Fn(usize) -> String,
) -> Vec<(String, String)> {
    let now = "2026-01-01T00:00:00Z";
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (ns, name) = (ns(i), format!("pool-{i}"));
        store.ensure_namespace(&ns, now).await.unwrap();
        store
            .put_pool(
                &ns,
                &name,
                &pool_spec(),
                flexus_agent::store::Expect::Any,
                now,
            )
            .await
            .unwrap();
        out.push((ns, name));
    }
    out
}

async fn state(store: Arc<dyn Store>, clock: SharedClock) -> AppState {
    let auth = AuthConfig {
        admin: Some(Secret::new(ADMIN)),
        namespaces: Default::default(),
    };
    // The cost and dashboard routes never ask the cloud: its facts point at a closed port.
    let cc = flexus_cloud::ClientConfig::single_endpoint(
        "http://127.0.0.1:9",
        "cn-north-4",
        "0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    let cloud: Arc<dyn flexus_cloud::Cloud> = Arc::new(
        flexus_cloud::HuaweiClient::new(cc, flexus_cloud::Credentials::new("UNUSED", "unused"))
            .unwrap(),
    );
    let (state, inbox) = AppState::detached(store, clock, auth, cloud);
    std::mem::forget(inbox);
    state
}

async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    url
}

/// `hours` hourly rollups of one pool up to `now_hour`; the newest 24 carry their 60
/// samples (older ones none, to keep the file small: the report never reads samples).
fn hour_rows(ns: &str, pool: &str, now_hour: i64, hours: i64) -> Vec<UsageHour> {
    (0..hours)
        .map(|k| {
            let hour = now_hour - 3600 * k;
            let mut h = UsageHour::new(ns, pool, hour, "x1.2u.4g");
            h.billed_seconds = 3.0 * 3600.0;
            h.ready_seconds = 3.0 * 3600.0;
            h.idle_seconds = 1800.0;
            h.load_seconds = 3600.0;
            h.covered_seconds = 3600.0;
            h.requests = 100.0 * 3600.0;
            h.actions = 2;
            h.by_purchase = vec![
                ("x1.2u.4g".into(), Purchase::OnDemand, 2.0 * 3600.0),
                ("x1.2u.4g".into(), Purchase::Spot, 3600.0),
            ];
            h.samples = (0..if k < 24 { 60 } else { 0 })
                .map(|m| UsageSample {
                    at_ms: (hour + 60 * m) * 1000,
                    load_rps: Some(100.0),
                    ready: 3,
                    billed: 3,
                    desired: Some(3),
                    forecast_capacity: None,
                })
                .collect();
            h
        })
        .collect()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Options of `cost`: `hours=H` rollups per pool (default 24: the report's window; 168
/// is the default 7-day retention), `db=PATH` keeps the store there and reuses it when
/// it exists (to time two builds on the same data without writing it again).
struct CostArgs {
    pools: usize,
    hours: i64,
    db: Option<std::path::PathBuf>,
}

async fn bench_cost(a: CostArgs) {
    let dir = tempfile::tempdir().unwrap();
    let path = a.db.clone().unwrap_or_else(|| dir.path().join("agent.db"));
    let reuse = path.exists();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let pools = a.pools;
    let now_ms = 1_780_000_000_000i64;
    let now_hour = now_ms.div_euclid(3_600_000) * 3600;
    let t = Instant::now();
    if reuse {
        eprintln!("reusing the rollups in {}", path.display());
    } else {
        // Rollups are fenced: the pools exist and this agent holds their leases.
        put_pools(store.as_ref(), pools, |i| format!("ns-{}", i % 10)).await;
        hold_leases(store.as_ref(), pools).await;
        let mut batch = Vec::new();
        for i in 0..pools {
            batch.extend(hour_rows(
                &format!("ns-{}", i % 10),
                &format!("pool-{i}"),
                now_hour,
                a.hours,
            ));
            if batch.len() >= 2400 {
                store.sync_leases().await.unwrap(); // renews them (a write is fenced)
                store.put_usage_hours(&batch).await.unwrap();
                batch.clear();
            }
        }
        store.sync_leases().await.unwrap();
        store.put_usage_hours(&batch).await.unwrap();
        eprintln!(
            "wrote {} rollups ({} per pool) in {:.1} s",
            pools as i64 * a.hours,
            a.hours,
            t.elapsed().as_secs_f64()
        );
    }
    // The store's part alone: the window's rollups summed per pool.
    let t = Instant::now();
    let from = now_hour - 23 * 3600;
    let totals = store
        .usage_totals(flexus_agent::store::UsageScope::All, from, now_hour)
        .await
        .unwrap();
    let sql_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let prices = flexus_agent::cost::PriceTable::default();
    let w = flexus_api::Window {
        from: String::new(),
        to: String::new(),
        hours: 24.0,
    };
    let r = flexus_agent::cost::report::report(&totals, &prices, w, "units");
    let report_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let body = serde_json::to_vec(&r).unwrap();
    eprintln!(
        "store usage_totals {sql_s:.3} s, report {report_s:.3} s, JSON encoding {:.3} s ({} bytes)",
        t.elapsed().as_secs_f64(),
        body.len()
    );
    let url = serve(state(store, ManualClock::new(now_ms)).await).await;
    let http = reqwest::Client::new();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let r = http
            .get(format!("{url}/v1/cost?window=23h"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let body = r.bytes().await.unwrap();
        times.push(t.elapsed().as_secs_f64());
        bytes = body.len();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["pools"].as_array().unwrap().len(), pools);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "| cost report, {pools} pools x 24 h ({} h stored) | median {:.3} s | max {:.3} s | response {:.1} MB |",
        a.hours,
        percentile(&times, 0.5),
        times[times.len() - 1],
        bytes as f64 / 1e6
    );
}

async fn bench_dashboard(pools: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("agent.db"))
            .await
            .unwrap(),
    );
    let declared = put_pools(store.as_ref(), pools, |i| format!("ns-{}", i % 4)).await;
    // Runtime state is fenced like every write of a pass: hold the pools' leases.
    hold_leases(store.as_ref(), pools).await;
    for (i, (ns, name)) in declared.into_iter().enumerate() {
        if i % 500 == 0 {
            store.sync_leases().await.unwrap(); // renews them
        }
        let status = serde_json::json!({"phase": "ready", "desired_size": 3, "current_size": 3, "ready_size": 3,
            "instance_ids": ["i-1", "i-2", "i-3"], "instances": []});
        let rt = RuntimeState {
            history: Default::default(),
            status: serde_json::from_value(status).expect("bench pool status"),
        };
        store.put_runtime(&ns, &name, &rt).await.unwrap();
    }
    let url = serve(state(store, Arc::new(SystemClock)).await).await;
    let b = browser::Browser::start().await;
    b.client.goto(&url).await.unwrap();
    b.client
        .execute(
            &format!("sessionStorage.setItem('flexus-token', '{ADMIN}')"),
            vec![],
        )
        .await
        .unwrap();
    let script = format!(
        "const done = arguments[arguments.length - 1];
         const tick = () => {{
           if (document.querySelectorAll('tr[data-pool]').length >= {pools}) {{
             requestAnimationFrame(() => {{
               const fcp = performance.getEntriesByName('first-contentful-paint')[0];
               const nav = performance.getEntriesByType('navigation')[0];
               const res = performance.getEntriesByType('resource');
               const assets = res.filter(r => r.initiatorType !== 'fetch').reduce((a, r) => a + r.decodedBodySize, nav.decodedBodySize);
               const api = res.filter(r => r.initiatorType === 'fetch').reduce((a, r) => a + r.decodedBodySize, 0);
               done([fcp ? fcp.startTime : -1, performance.now(), assets, api]);
             }});
           }} else setTimeout(tick, 5);
         }};
         tick();"
    );
    let mut rows = Vec::new();
    for _ in 0..5 {
        b.client
            .goto(&format!("{url}/?bench={}", rows.len()))
            .await
            .unwrap();
        let v = b.client.execute_async(&script, vec![]).await.unwrap();
        let a: Vec<f64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap_or(-1.0))
            .collect();
        rows.push(a);
    }
    b.stop().await;
    let col = |i: usize| {
        let mut v: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (fcp, table) = (col(0), col(1));
    println!(
        "| dashboard, {pools} pools | first contentful paint median {:.0} ms (max {:.0}) | every pool row painted median {:.0} ms (max {:.0}) | page {:.1} KB (HTML+JS+CSS) | API data {:.0} KB |",
        percentile(&fcp, 0.5),
        fcp[fcp.len() - 1],
        percentile(&table, 0.5),
        table[table.len() - 1],
        rows[0][2] / 1024.0,
        rows[0][3] / 1024.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(args) = bench_args(
        "operator",
        "cargo bench -p flexus-agent --bench operator -- cost",
    ) else {
        return;
    };
    let what = args.first().map(String::as_str).unwrap_or("cost");
    let opt = |k: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(k)?.strip_prefix('='))
    };
    let args: Vec<String> = args.iter().filter(|a| !a.contains('=')).cloned().collect();
    let n = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    match what {
        "cost" => {
            bench_cost(CostArgs {
                pools: n(1, 10_000),
                hours: opt("hours").map_or(24, |h| h.parse().expect("hours=N")),
                db: opt("db").map(Into::into),
            })
            .await
        }
        "dashboard" => bench_dashboard(n(1, 1_000)).await,
        "advisor" => advisor::bench(n(1, 100), n(2, 10)).await,
        "tune" => tune::bench(n(1, 100), n(2, 5)).await,
        other => panic!("unknown benchmark {other:?}: cost, dashboard, advisor or tune"),
    }
}

mod advisor {
    //! Reconcile passes timed one by one, with the advisor idle and hanging.

    use super::*;
    use flexus_agent::runtime::sources::{CloudEye, Sources};
    use flexus_agent::runtime::{Context, PoolKey};
    use flexus_emulator::{EmulatorConfig, Quota};

    use crate::common::{Emu, emulator_config};

    async fn emulator(pools: usize) -> Emu {
        Emu::serve(EmulatorConfig {
            boot_seconds: Some(1.0),
            quota: Quota {
                instances: pools as u32 * 2 + 10,
                vcpus: pools as u32 * 4 + 20,
                ram_mb: pools as u64 * 8192 + 100_000,
            },
            ..emulator_config()
        })
        .await
    }

    pub async fn round(ctx: &Arc<Context>, keys: &[PoolKey]) -> Vec<f64> {
        let mut set = tokio::task::JoinSet::new();
        for chunk in keys.chunks(keys.len().div_ceil(8).max(1)) {
            let (ctx, chunk) = (ctx.clone(), chunk.to_vec());
            set.spawn(async move {
                let mut t = Vec::new();
                for k in chunk {
                    let s = Instant::now();
                    let r = ctx.reconcile(&k).await;
                    // A pass that dropped its pool (no lease) did nothing to time.
                    assert!(
                        !matches!(r, Ok(flexus_agent::runtime::Next::Forget)),
                        "the pass of {k} did not run: this agent holds no lease on it"
                    );
                    t.push(s.elapsed().as_secs_f64() * 1000.0);
                }
                t
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.extend(r.unwrap());
        }
        out
    }

    /// The emulator with `pools` pools' room, a SQLite store in `dir` and a reconcile
    /// context on them.
    pub async fn setup(
        pools: usize,
        dir: &std::path::Path,
    ) -> (
        Emu,
        Arc<dyn Store>,
        SharedClock,
        Arc<Telemetry>,
        Arc<Context>,
    ) {
        let emu = emulator(pools).await;
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.join("agent.db")).await.unwrap());
        let clock: SharedClock = Arc::new(SystemClock);
        let cloud = emu.cloud_retrying(flexus_cloud::RetryPolicy::default());
        let telemetry = Arc::new(Telemetry::new());
        let ctx = Arc::new(Context::new(
            store.clone(),
            cloud,
            clock.clone(),
            Sources {
                cloud_eye: CloudEye {
                    period: 60,
                    lookback: Duration::from_secs(600),
                },
                prometheus: None,
                redis: None,
            },
            telemetry.clone(),
            Default::default(),
            Arc::new(AtomicBool::new(true)),
        ));
        (emu, store, clock, telemetry, ctx)
    }

    /// Pools `0..n` of namespace `bench`, each passed three times (created, settled).
    /// Passes run only on pools this agent holds the lease of, as alone on its store:
    /// the leases are taken, then renewed every second for the rest of the run.
    pub async fn settled_pools(
        store: &Arc<dyn Store>,
        ctx: &Arc<Context>,
        n: usize,
    ) -> Vec<PoolKey> {
        let keys: Vec<PoolKey> = put_pools(store.as_ref(), n, |_| "bench".into())
            .await
            .iter()
            .map(|(ns, name)| PoolKey::new(ns, name))
            .collect();
        hold_leases(store.as_ref(), n).await;
        let renew = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                renew.sync_leases().await.expect("lease renewal");
            }
        });
        for _ in 0..3 {
            round(ctx, &keys).await; // create, then settle
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        keys
    }

    /// `| name | passes | p50 | p90 | p99 | max |` of sorted pass times (ms).
    pub fn row(name: &str, v: &[f64]) {
        println!(
            "| {name} | {} passes | p50 {:.2} ms | p90 {:.2} ms | p99 {:.2} ms | max {:.2} ms |",
            v.len(),
            percentile(v, 0.5),
            percentile(v, 0.9),
            percentile(v, 0.99),
            v[v.len() - 1]
        );
    }

    pub async fn bench(pools: usize, rounds: usize) {
        let dir = tempfile::tempdir().unwrap();
        let (emu, store, clock, telemetry, ctx) = setup(pools, dir.path()).await;
        let emu_url = &emu.url;
        let mut config = flexus_agent::config::Config::parse(
            &format!("[cloud]\nregion = \"r\"\nproject_id = \"p\"\n[auth]\nadmin_token_env = \"A\"\n[advisor]\nenabled = true\nbase_url = \"{emu_url}\"\napi_key_env = \"K\"\ntimeout = \"600s\"\nattempts = 1\n"),
            "bench",
            dir.path(),
            |k| match k {
                "A" => Some(ADMIN.into()),
                "K" => Some(flexus_emulator::config::DEFAULT_DEEPSEEK_KEY.into()),
                _ => None,
            },
        )
        .unwrap();
        config.cost.sample_interval = Duration::from_secs(5);
        let (operator, tasks) =
            flexus_agent::web::Operator::assemble(&config, store.clone(), clock.clone(), telemetry);
        let stop = tokio_util::sync::CancellationToken::new();
        let _running = tokio::spawn(tasks.spawn(stop.clone()));
        let keys = settled_pools(&store, &ctx, pools).await;
        let http = reqwest::Client::new();
        let mut a = Vec::new();
        let mut b = Vec::new();
        for r in 0..rounds {
            let hanging = r % 2 == 1;
            if hanging {
                emu.control(
                    reqwest::Method::POST,
                    "/_emulator/deepseek",
                    serde_json::json!({"script": [{"kind": "hang", "times": 1000}]}),
                )
                .await;
                for k in keys.iter().take(8) {
                    let adv = flexus_agent::advisor::pending(&k.ns, &k.name, "deepseek-chat", 0);
                    let _ = operator.advisor.submit(&k.ns, &k.name, adv);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let t = round(&ctx, &keys).await;
            if hanging { b.extend(t) } else { a.extend(t) }
        }
        stop.cancel();
        let calls: serde_json::Value = http
            .get(format!("{emu_url}/_emulator/deepseek"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        row("A advisor idle", &a);
        row("B model hanging, 8 requests queued", &b);
        println!(
            "| ratio B/A | | p50 {:.2} | p90 {:.2} | p99 {:.2} | (model calls in flight or made: {}) |",
            percentile(&b, 0.5) / percentile(&a, 0.5),
            percentile(&b, 0.9) / percentile(&a, 0.9),
            percentile(&b, 0.99) / percentile(&a, 0.99),
            calls["calls"]
        );
    }
}

mod tune {
    //! Reconcile passes timed while tune searches run, with the agent's bound on them and
    //! without it.

    use super::*;
    use flexus_agent::tuner::{TuneConfig, TuneJobs};

    use crate::advisor::{round, row, settled_pools, setup};

    /// Tune jobs accepted before each loaded round (each far longer than the round).
    const JOBS: usize = 4;

    pub async fn bench(pools: usize, rounds: usize) {
        let dir = tempfile::tempdir().unwrap();
        let (_emu, store, clock, _telemetry, ctx) = setup(pools, dir.path()).await;
        let keys = settled_pools(&store, &ctx, pools).await;
        // The jobs tune pool-0 on a named trace (its policy records no history).
        let policy: flexus_api::PolicyModel = serde_json::from_value(serde_json::json!({
            "strategy": "target_tracking", "bounds": {"min": 1, "max": 60},
            "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                         "target": 30, "per_instance": true}]}))
        .unwrap();
        let spec = flexus_api::PolicySpec {
            pool: "pool-0".into(),
            policy,
        };
        store
            .put_policy(
                "bench",
                "p0",
                &spec,
                flexus_agent::store::Expect::Any,
                "2026-01-01T00:00:00Z",
            )
            .await
            .unwrap();
        let req = flexus_api::TuneRequest {
            trace: Some("nasa-http-1995".into()),
            max_evaluations: 500,
            ..flexus_api::TuneRequest::default()
        };
        let bounded = TuneConfig::default().searches;
        let sides = [
            ("A no tune job".to_owned(), None),
            (
                format!("B {JOBS} tune jobs, searches = {bounded} (the default here)"),
                Some(bounded),
            ),
            (
                format!("C {JOBS} tune jobs, searches = {JOBS} (no bound)"),
                Some(JOBS),
            ),
        ];
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
        for r in 0..rounds * sides.len() {
            let side = r % sides.len();
            let jobs = sides[side].1.map(|searches| {
                Arc::new(TuneJobs::new(
                    TuneConfig {
                        searches,
                        max_waiting: JOBS,
                    },
                    Arc::default(),
                ))
            });
            if let Some(jobs) = &jobs {
                for _ in 0..JOBS {
                    jobs.start(
                        store.clone(),
                        clock.clone(),
                        ("bench", "pool-0"),
                        req.clone(),
                    )
                    .await
                    .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            times[side].extend(round(&ctx, &keys).await);
            if let Some(jobs) = jobs {
                jobs.stop().await;
                // The searches give up before their next replay (one replay of the
                // whole trace takes well under a second here).
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        }
        for t in &mut times {
            t.sort_by(f64::total_cmp);
        }
        for ((name, _), t) in sides.iter().zip(&times) {
            row(name, t);
        }
        let ratio = |i: usize, q: f64| percentile(&times[i], q) / percentile(&times[0], q);
        for (i, name) in [(1, "B/A"), (2, "C/A")] {
            println!(
                "| ratio {name} | | p50 {:.2} | p90 {:.2} | p99 {:.2} | |",
                ratio(i, 0.5),
                ratio(i, 0.9),
                ratio(i, 0.99)
            );
        }
    }
}
