//! The named traces load from ../shared/traces with real timestamps and gaps handled.

use flexus_sim::trace::{self, NAMED};

fn shared() -> std::path::PathBuf {
    let d = trace::traces_dir();
    assert!(
        d.join("README.md").is_file(),
        "shared traces not found at {} (set FLEXUS_TRACES_DIR)",
        d.display()
    );
    d
}

#[test]
fn every_named_trace_loads_as_a_regular_nonnegative_series() {
    let dir = shared();
    for info in NAMED {
        let t = trace::load_named_from(info.name, &dir)
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        assert!(
            t.rps.len() > 100,
            "{} has {} samples",
            info.name,
            t.rps.len()
        );
        assert!(
            t.rps.iter().all(|v| v.is_finite() && *v >= 0.0),
            "{}",
            info.name
        );
        assert!(t.rps.iter().any(|v| *v > 0.0), "{}", info.name);
    }
}

#[test]
fn nasa_replays_the_august_segment_after_the_hurricane_outage() {
    let t = trace::load_named_from("nasa-http-1995", &shared()).expect("nasa");
    // The outage (server_down=1) ends 1995-08-03T04:36-04:00; the next whole minute
    // is 04:36 -> 08:36 UTC = 807438960. The segment runs to Sep 1 00:00 -04:00.
    assert_eq!(t.start_unix, 807_438_960);
    assert_eq!(t.step_s, 60);
    let end = t.start_unix + t.rps.len() as i64 * 60;
    assert_eq!(end, 809_928_060, "segment ends at {end}");
    // Mean of ~42 requests per minute.
    let mean = t.rps.iter().sum::<f64>() / t.rps.len() as f64 * 60.0;
    assert!((30.0..60.0).contains(&mean), "mean {mean} req/min");
}

#[test]
fn worldcup_has_every_five_minute_bucket_and_its_documented_peak() {
    let t = trace::load_named_from("worldcup98", &shared()).expect("worldcup");
    assert_eq!(t.rps.len(), 8929);
    assert_eq!(t.filled, 0);
    let max = t.rps.iter().copied().fold(0.0, f64::max) * 300.0;
    assert!((max - 1_079_332.0).abs() < 0.5, "max {max}");
}

#[test]
fn azure_llm_is_bucketed_into_ten_second_token_weighted_rates() {
    let t = trace::load_named_from("azure-llm-code", &shared()).expect("azure");
    assert_eq!(t.step_s, 10);
    // ~57 minutes of requests; the weighted total equals the request count
    // (8,819 data rows in the file; SOURCE.md says 8,818).
    assert!((330..=360).contains(&t.rps.len()), "{}", t.rps.len());
    let total: f64 = t.rps.iter().sum::<f64>() * 10.0;
    assert!((total - 8819.0).abs() < 1e-6, "{total}");
}

#[test]
fn an_unknown_trace_name_lists_the_known_ones() {
    let e = trace::load("no-such-trace").expect_err("unknown");
    let msg = e.to_string();
    assert!(
        msg.contains("no-such-trace") && msg.contains("worldcup98"),
        "{msg}"
    );
}
