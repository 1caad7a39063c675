//! The named traces (built in from data/traces/) load with real timestamps and gaps
//! handled; user CSV files load with their problems named by line.

use flexus_sim::trace::{self, NAMED};

/// The repository's copy of the traces, the files the built-in ones are compiled from.
fn repo_traces() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/traces")
}

#[test]
fn every_named_trace_loads_as_a_regular_nonnegative_series() {
    for info in NAMED {
        let t = trace::load_named(info.name).unwrap_or_else(|e| panic!("{}: {e}", info.name));
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
    let t = trace::load_named("nasa-http-1995").expect("nasa");
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
    let t = trace::load_named("worldcup98").expect("worldcup");
    assert_eq!(t.rps.len(), 8929);
    assert_eq!(t.filled, 0);
    let max = t.rps.iter().copied().fold(0.0, f64::max) * 300.0;
    assert!((max - 1_079_332.0).abs() < 0.5, "max {max}");
}

#[test]
fn azure_llm_is_bucketed_into_ten_second_token_weighted_rates() {
    let t = trace::load_named("azure-llm-code").expect("azure");
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

#[test]
fn the_built_in_copy_equals_the_repository_file() {
    for info in NAMED {
        let built_in = trace::load_named(info.name).expect("built in");
        let file = trace::load_named_from(info.name, &repo_traces()).expect("file");
        assert_eq!(built_in.rps, file.rps, "{}", info.name);
        assert_eq!(built_in.start_unix, file.start_unix, "{}", info.name);
    }
}

fn write_csv(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flexus-sim-traces-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write csv");
    p
}

#[test]
fn a_csv_file_with_fractional_second_timestamps_loads() {
    let p = write_csv(
        "fractional.csv",
        "timestamp,count\n2024-01-01 00:00:00.250,60\n2024-01-01 00:01:00.750,120\n\
         2024-01-01 00:02:00.5,60\n1704067380.5,30\n",
    );
    let t = trace::load(p.to_str().expect("utf-8 path")).expect("loads");
    assert_eq!(t.step_s, 60);
    assert_eq!(t.rps, vec![1.0, 2.0, 1.0, 0.5]);
}

#[test]
fn a_malformed_csv_line_is_reported_with_its_line_number() {
    let p = write_csv(
        "malformed.csv",
        "timestamp,count\n2024-01-01 00:00:00,1\n2024-01-01 00:01:00,1\n2024-01-01 00:02:00,lots\n",
    );
    let e = trace::load(p.to_str().expect("utf-8 path")).expect_err("bad count");
    let msg = e.to_string();
    assert!(msg.contains("line 4") && msg.contains("\"lots\""), "{msg}");
    let p = write_csv(
        "badtime.csv",
        "timestamp,count\n2024-01-01 00:00:00,1\nnot-a-time,1\n2024-01-01 00:02:00,1\n",
    );
    let msg = trace::load(p.to_str().expect("utf-8 path"))
        .expect_err("bad time")
        .to_string();
    assert!(
        msg.contains("line 3") && msg.contains("not-a-time"),
        "{msg}"
    );
}

#[test]
fn the_m4_hourly_series_load_with_their_test_hours_appended() {
    let dir = repo_traces().join("m4-hourly");
    let all = trace::load_m4_hourly(&dir).expect("loads");
    assert_eq!(all.len(), 414);
    let h1 = &all[0];
    assert_eq!(h1.name, "m4-H1");
    assert_eq!(h1.step_s, 3600);
    assert_eq!(h1.start_unix, trace::M4_NOMINAL_START);
    // H1: 700 training hours, then the 48 test hours, first values as in the files.
    assert_eq!(h1.rps.len(), 700 + 48);
    assert_eq!(&h1.rps[..3], &[605.0, 586.0, 586.0]);
    let train = trace::read_m4_wide(&dir.join("Hourly-train.csv")).expect("train");
    let test = trace::read_m4_wide(&dir.join("Hourly-test.csv")).expect("test");
    for (t, ((id, y), (_, z))) in all.iter().zip(train.iter().zip(&test)) {
        assert_eq!(t.name, format!("m4-{id}"));
        assert_eq!(t.rps.len(), y.len() + z.len(), "{id}");
        assert_eq!(t.rps.last(), z.last(), "{id}");
    }
}

#[test]
fn m4_files_that_disagree_are_refused_naming_the_series() {
    let dir = std::env::temp_dir().join(format!("flexus-sim-m4-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Writes one file (header + one row) and loads the pair.
    let with = |file: &str, row: &str| {
        std::fs::write(dir.join(file), format!("\"V1\",\"V2\",\"V3\"\n{row}\n")).expect("write");
        trace::load_m4_hourly(&dir)
    };
    let msg = with("Hourly-train.csv", "\"H1\",\"1\",\"2\"")
        .expect_err("no test file yet")
        .to_string();
    assert!(msg.contains("Hourly-test.csv"), "{msg}");
    let msg = with("Hourly-test.csv", "\"H2\",\"3\",\"\"")
        .expect_err("ids differ")
        .to_string();
    assert!(msg.contains("H1") && msg.contains("H2"), "{msg}");
    let msg = with("Hourly-test.csv", "\"H1\",\"3\",\"many\"")
        .expect_err("bad value")
        .to_string();
    assert!(msg.contains("line 2") && msg.contains("many"), "{msg}");
    let ok = with("Hourly-test.csv", "\"H1\",\"3\",\"4\"").expect("consistent files load");
    assert_eq!(ok[0].rps, vec![1.0, 2.0, 3.0, 4.0]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn csv_files_without_a_header_with_other_delimiters_epoch_units_or_row_order_load_alike() {
    let rows: Vec<(i64, u32)> = (0..30)
        .map(|i| (1_699_999_980 + 60 * i, 60 + 6 * i as u32))
        .collect();
    let text = |header: &str, sep: &str, unit: i64, reversed: bool| {
        let mut lines: Vec<String> = rows
            .iter()
            .map(|(t, c)| format!("{}{sep}{c}", t * unit))
            .collect();
        if reversed {
            lines.reverse();
        }
        format!("{header}{}\n", lines.join("\n"))
    };
    let load = |name: &str, body: String| {
        let p = write_csv(name, &body);
        trace::load(p.to_str().expect("utf-8 path")).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let want = load("plain.csv", text("timestamp,count\n", ",", 1, false));
    assert_eq!(
        (want.start_unix, want.step_s, want.rps.len()),
        (1_699_999_980, 60, 30)
    );
    assert_eq!(want.rps[..2], [1.0, 1.1]);
    for (name, body) in [
        ("no-header.csv", text("", ",", 1, false)),
        ("semicolons.csv", text("time;requests\n", ";", 1, false)),
        ("tabs.tsv", text("", "\t", 1, false)),
        ("millis.csv", text("ts,value\n", ",", 1_000, false)),
        ("micros.csv", text("", ",", 1_000_000, false)),
        ("nanos.csv", text("ts,value\n", ",", 1_000_000_000, false)),
        ("newest-first.csv", text("timestamp,count\n", ",", 1, true)),
    ] {
        let got = load(name, body);
        assert_eq!(
            (got.start_unix, got.step_s, &got.rps),
            (want.start_unix, want.step_s, &want.rps),
            "{name}"
        );
    }
    // A header is still a header, and a bad line after it is still named.
    let p = write_csv(
        "semicolon-bad.csv",
        "time;count\n1700000000;1\n1700000060;x\n",
    );
    let msg = trace::load(p.to_str().expect("utf-8 path"))
        .expect_err("bad count")
        .to_string();
    assert!(msg.contains("line 3") && msg.contains("\"x\""), "{msg}");
}

#[test]
fn a_per_request_log_given_as_a_file_loads_as_the_named_trace_of_its_kind_does() {
    // The repository's Azure LLM log, read as a user's file: one row per request, so it
    // is bucketed and weighted by tokens exactly as the built-in trace is (before, its
    // context-token column was read as a request count per second).
    let p = repo_traces().join("azure-llm-inference-2023/AzureLLMInferenceTrace_code.csv");
    let file = trace::load(p.to_str().expect("utf-8 path")).expect("loads");
    let named = trace::load_named("azure-llm-code").expect("named");
    assert_eq!(
        (file.start_unix, file.step_s, &file.rps),
        (named.start_unix, named.step_s, &named.rps)
    );
    assert_eq!(file.step_s, trace::REQUEST_BUCKET_S);
}

#[test]
fn per_request_logs_are_counted_by_request_or_weighted_by_their_token_columns() {
    // Requests at irregular times, fractions of a second and offsets in the timestamps,
    // several in one second: 3 in the first 10 s, 1 in the next, 2 in the third.
    let times = [0.2, 0.9, 7.5, 13.0, 21.25, 29.9];
    let stamp = |t: f64| {
        let s = 1_715_299_200.0 + t; // 2024-05-10T00:00:00Z
        let whole = s.floor() as i64;
        let d =
            chrono::DateTime::from_timestamp(whole, ((s - s.floor()) * 1e9) as u32).expect("time");
        d.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
    };
    // Enough rows for the log to be told from a series: the pattern repeats every 30 s.
    let rows = |line: &dyn Fn(f64, usize) -> String| -> String {
        (0..40)
            .flat_map(|k| {
                times
                    .iter()
                    .enumerate()
                    .map(move |(i, t)| (30.0 * k as f64 + t, i))
            })
            .map(|(t, i)| line(t, i))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // A log without token columns (BurstGPT's layout: a model name in the second column):
    // requests per 10 s.
    let text = format!(
        "Timestamp,Model,Log Type\n{}\n",
        rows(&|t, _| format!("{},ChatGPT,Conversation log", stamp(t)))
    );
    let t = trace::load(write_csv("plain-log.csv", &text).to_str().expect("utf-8")).expect("loads");
    assert_eq!(t.step_s, 10);
    assert_eq!(t.rps[..3], [0.3, 0.1, 0.2]);
    // With input and output token columns (any of the names the known logs use), each
    // request weighs input + 40 × output tokens relative to the log's mean request: the
    // request alone in its bucket does 3× the others' work here.
    for (header, cols) in [
        ("TIMESTAMP,ContextTokens,GeneratedTokens", "{i},{o}"),
        (
            "Timestamp,Model,Request tokens,Response tokens",
            "m,{i},{o}",
        ),
        ("time,prompt_tokens,completion_tokens", "{i},{o}"),
    ] {
        let text = format!(
            "{header}\n{}\n",
            rows(&|t, i| {
                let (inp, out) = if i == 3 { (120, 3) } else { (40, 1) };
                let c = cols
                    .replace("{i}", &inp.to_string())
                    .replace("{o}", &out.to_string());
                format!("{},{c}", stamp(t))
            })
        );
        let t = trace::load(write_csv("token-log.csv", &text).to_str().expect("utf-8"))
            .unwrap_or_else(|e| panic!("{header}: {e}"));
        // Work 80 for five requests, 240 for one: mean 640/6.
        let mean = 640.0 / 6.0;
        let want = [
            3.0 * 80.0 / mean / 10.0,
            240.0 / mean / 10.0,
            2.0 * 80.0 / mean / 10.0,
        ];
        for (got, want) in t.rps[..3].iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{header}: {:?}", &t.rps[..3]);
        }
    }
    // A token that is not a number is named with its line.
    let text = format!(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n{}\n{},12,many\n",
        rows(&|t, _| format!("{},10,1", stamp(t))),
        stamp(1300.0)
    );
    let msg = trace::load(write_csv("bad-token.csv", &text).to_str().expect("utf-8"))
        .expect_err("bad token")
        .to_string();
    assert!(
        msg.contains("line 242") && msg.contains("\"many\""),
        "{msg}"
    );
}

#[test]
fn series_with_jittered_or_missing_samples_and_requests_logged_to_the_second_are_told_apart() {
    // An export every 60 s with up to 4 s of jitter and a missing sample is a series.
    let text: String = (0..100)
        .filter(|i| *i != 50)
        .map(|i| format!("{},{}\n", 1_700_000_000 + 60 * i + (i * 7) % 5, 120))
        .collect();
    let t = trace::load(write_csv("jitter.csv", &text).to_str().expect("utf-8")).expect("loads");
    assert_eq!(t.step_s, 60);
    assert!(
        t.rps.iter().all(|v| (v - 2.0).abs() < 0.5),
        "{:?}",
        &t.rps[..5]
    );
    // The same rule for any list of sample times (the emulator's column loader uses it):
    // a 7 s step is nobody's period and stays; one distinct time has no step.
    assert_eq!(trace::step_of(&[181, 0, 62, 119]), Some(60));
    assert_eq!(trace::step_of(&[0, 7, 14, 21]), Some(7));
    assert_eq!(trace::step_of(&[5, 5]), None);
    // Requests logged to the whole second, several per second: a log, not a 1 s series.
    let text: String = (0..300)
        .map(|i| format!("{},1\n", 1_700_000_000 + i / 3))
        .collect();
    let t = trace::load(
        write_csv("to-the-second.csv", &text)
            .to_str()
            .expect("utf-8"),
    )
    .expect("loads");
    assert_eq!(t.step_s, 10);
    assert!(
        t.rps[..9].iter().all(|v| (v - 3.0).abs() < 1e-9),
        "{:?}",
        &t.rps
    );
}

#[test]
fn daily_and_hourly_series_with_plain_dates_load_and_a_log_spanning_centuries_is_refused() {
    let text: String = (0..40)
        .map(|d| {
            let day =
                chrono::NaiveDate::from_ymd_opt(2015, 7, 1).expect("date") + chrono::Days::new(d);
            format!("{day},{}\n", 86_400 * (1 + d % 2))
        })
        .collect();
    let t = trace::load(
        write_csv("daily.csv", &format!("date,views\n{text}"))
            .to_str()
            .expect("utf-8"),
    )
    .expect("loads");
    assert_eq!((t.start_unix, t.step_s), (1_435_708_800, 86_400));
    assert_eq!(t.rps[..2], [1.0, 2.0]);
    // Hourly page views stamped `YYYYMMDDHH` (Wikimedia's form), across a day boundary.
    let text: String = (0..48)
        .map(|h| {
            format!(
                "201507{:02}{:02},{}\n",
                1 + h / 24,
                h % 24,
                3600 * (1 + h % 3)
            )
        })
        .collect();
    let t = trace::load(
        write_csv("hourly.csv", &format!("timestamp,views\n{text}"))
            .to_str()
            .expect("utf-8"),
    )
    .expect("loads");
    assert_eq!(
        (t.start_unix, t.step_s, t.rps.len()),
        (1_435_708_800, 3600, 48)
    );
    assert_eq!(t.rps[..4], [1.0, 2.0, 3.0, 1.0]);
    // Ten digits that are not such an hour stay unix seconds.
    assert_eq!(trace::parse_timestamp("1786000000"), Some(1_786_000_000));
    assert_eq!(trace::parse_timestamp("2015071324"), Some(2_015_071_324));
    // A per-request log with one timestamp in 1970 among 2024's: refused, not a
    // billion-bucket allocation.
    let mut at = 1_715_299_200.0;
    let mut text = String::new();
    for i in 0..50 {
        at += 0.3 * f64::from(i * 37 % 11) + 0.15;
        text.push_str(&format!("{at:.2},1\n"));
    }
    text.push_str("12.5,1\n");
    let msg = trace::load(write_csv("stray.csv", &text).to_str().expect("utf-8"))
        .expect_err("too long a span")
        .to_string();
    assert!(msg.contains("days") && msg.contains("timestamps"), "{msg}");
}
