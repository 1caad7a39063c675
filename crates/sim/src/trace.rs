//! Workload traces: loaders for the copied public traces, normalised to a
//! regular request-rate series with real timestamps.
//!
//! Every loader turns its file into `(unix seconds, requests/s)` points on a
//! fixed step. Gaps are handled in one place ([`regularise`]): a gap of at most
//! `max_fill_gap_s` is filled by linear interpolation, a longer one (missing
//! data, or a server outage that is not zero demand) splits the series, and a
//! named trace replays its longest contiguous segment.
//!
//! Fleet scaling ([`Trace::scaled_to_fleet`]) is deterministic: the rate is
//! multiplied so that the trace's 99.9th-percentile rate needs exactly
//! `peak_instances` instances of the chosen flavor at its SLO rate. The
//! factor is kept in [`Trace::scale`] so any figure can be mapped back.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;

use crate::SimError;
use crate::capacity::Flavor;

/// Steps longer than this (s) are interpolated to the simulation tick ([`Trace::interpolated`]).
pub const INTERPOLATE_ABOVE_S: u32 = 300;

/// A regular request-rate series.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// Trace name (a catalogue name, or the file name).
    pub name: String,
    /// Unix time (s) of the first sample.
    pub start_unix: i64,
    /// Seconds per sample.
    pub step_s: u32,
    /// Requests per second during each step.
    pub rps: Vec<f64>,
    /// Samples that were filled by interpolation across a short gap.
    pub filled: usize,
    /// Factor applied to the raw rate (1.0 until scaled).
    pub scale: f64,
    /// Whether the trace has a strong daily cycle (used to pick the oracle goal).
    pub periodic: bool,
}

/// How a named trace is stored and what it means.
#[derive(Debug, Clone, Copy)]
pub struct TraceInfo {
    /// Name used on the command line.
    pub name: &'static str,
    /// File under `data/traces/` (built in) or `$FLEXUS_TRACES_DIR`.
    pub file: &'static str,
    /// One-line description.
    pub about: &'static str,
    /// Default flavor of the pool that serves it.
    pub flavor: &'static str,
    /// Strong daily cycle.
    pub periodic: bool,
}

/// The named traces, in benchmark order.
pub const NAMED: &[TraceInfo] = &[
    TraceInfo {
        name: "nasa-http-1995",
        file: "nasa-http-1995/nasa_http_per_minute.csv",
        about: "NASA KSC web server, per minute, Aug 3-31 1995 (longest segment, after the outage)",
        flavor: "x1.2u.4g",
        periodic: true,
    },
    TraceInfo {
        name: "worldcup98",
        file: "worldcup98/worldcup98_5m.csv",
        about: "World Cup 1998 web site, 5 min, May 30 - Jun 30 1998 (flash crowds)",
        flavor: "x1.2u.4g",
        periodic: false,
    },
    TraceInfo {
        name: "nab-elb",
        file: "nab-cloud-and-bursts/elb_request_count_8c0756.csv",
        about: "NAB AWS ELB request count, 5 min, 2 weeks (spiky)",
        flavor: "x1.2u.4g",
        periodic: false,
    },
    TraceInfo {
        name: "nyc-taxi",
        file: "nab-cloud-and-bursts/nyc_taxi.csv",
        about: "NYC taxi demand as request rate, 30 min, Jul 2014 - Jan 2015",
        flavor: "x1.2u.4g",
        periodic: true,
    },
    TraceInfo {
        name: "google-cluster-cpu",
        file: "google-cluster-2011-job-5m/google_5m.csv",
        about: "Google 2011 workload CPU as load, 5 min, 29 days (nominal start 2011-05-01)",
        flavor: "x1.2u.4g",
        periodic: false,
    },
    TraceInfo {
        name: "azure-llm-code",
        file: "azure-llm-inference-2023/AzureLLMInferenceTrace_code.csv",
        about: "Azure LLM code completion, token-weighted requests per 10 s, 1 h (on/off)",
        flavor: "pi2.2xlarge.4",
        periodic: false,
    },
    TraceInfo {
        name: "azure-llm-conv",
        file: "azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv",
        about: "Azure LLM conversation, token-weighted requests per 10 s, 1 h",
        flavor: "pi2.2xlarge.4",
        periodic: false,
    },
];

/// Where trace data comes from: a built-in trace compiled into the binary, or a file.
///
/// Errors name it by [`Input::label`]: `built-in trace worldcup98` or the file's path.
#[derive(Debug, Clone)]
pub struct Input {
    /// What error messages call it.
    pub label: String,
    /// The CSV text.
    pub bytes: std::borrow::Cow<'static, [u8]>,
}

impl Input {
    /// Reads a file.
    pub fn file(path: &Path) -> Result<Input, SimError> {
        let bytes = std::fs::read(path).map_err(|source| SimError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Input {
            label: path.display().to_string(),
            bytes: bytes.into(),
        })
    }
}

/// The named traces' files, compiled in from `data/traces/` of the repository (each
/// folder there has the trace's SOURCE.md with origin and licence).
fn bundled(file: &str) -> Option<&'static [u8]> {
    macro_rules! data {
        ($($f:literal),* $(,)?) => {
            match file {
                $($f => Some(include_bytes!(concat!("../../../data/traces/", $f)).as_slice()),)*
                _ => None,
            }
        };
    }
    data!(
        "nasa-http-1995/nasa_http_per_minute.csv",
        "worldcup98/worldcup98_5m.csv",
        "nab-cloud-and-bursts/elb_request_count_8c0756.csv",
        "nab-cloud-and-bursts/nyc_taxi.csv",
        "google-cluster-2011-job-5m/google_5m.csv",
        "azure-llm-inference-2023/AzureLLMInferenceTrace_code.csv",
        "azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv",
    )
}

/// The directory given by `$FLEXUS_TRACES_DIR`, if set: a named trace whose file is there
/// is read from it instead of the built-in copy, and `NAME` also finds `NAME.csv` there.
pub fn traces_dir() -> Option<PathBuf> {
    std::env::var_os("FLEXUS_TRACES_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// Looks up a named trace's description.
pub fn info(name: &str) -> Result<&'static TraceInfo, SimError> {
    NAMED.iter().find(|t| t.name == name).ok_or_else(|| {
        SimError::UnknownTrace(
            name.to_owned(),
            NAMED.iter().map(|t| t.name).collect::<Vec<_>>().join(", "),
        )
    })
}

/// Loads a named trace: from `$FLEXUS_TRACES_DIR` when that directory holds its file,
/// else the built-in copy.
pub fn load_named(name: &str) -> Result<Trace, SimError> {
    let info = info(name)?;
    if let Some(dir) = traces_dir() {
        let path = dir.join(info.file);
        if path.is_file() {
            return load_named_from(name, &dir);
        }
    }
    let bytes = bundled(info.file).ok_or_else(|| {
        SimError::BadTrace(name.to_owned(), "no built-in copy of this trace".into())
    })?;
    parse_named(
        info,
        &Input {
            label: format!("built-in trace {name}"),
            bytes: bytes.into(),
        },
    )
}

/// Loads a named trace from a given traces directory (laid out as `data/traces/`).
pub fn load_named_from(name: &str, dir: &Path) -> Result<Trace, SimError> {
    let info = info(name)?;
    parse_named(info, &Input::file(&dir.join(info.file))?)
}

fn parse_named(info: &TraceInfo, input: &Input) -> Result<Trace, SimError> {
    let mut t = match info.name {
        "nasa-http-1995" => load_nasa_minutes(input)?,
        "worldcup98" => load_counts_csv(input, 1, 300)?,
        "nab-elb" => load_counts_csv(input, 1, 300)?,
        "nyc-taxi" => load_counts_csv(input, 1, 1800)?,
        "google-cluster-cpu" => load_google(input)?,
        _ => load_requests(input, REQUEST_BUCKET_S, Some((1, 2)))?,
    };
    t.name = info.name.to_owned();
    t.periodic = info.periodic;
    Ok(t)
}

/// Loads a trace by name, or from a file path (`timestamp,value` CSV, value =
/// requests in the step, or a per-request log, [`load_csv_file`]; timestamps RFC 3339,
/// `YYYY-MM-DD HH:MM:SS[.frac]`, `YYYY-MM-DD` or unix seconds, fractions allowed). A name that is not built in is also looked up as
/// `$FLEXUS_TRACES_DIR/NAME.csv`.
pub fn load(name_or_file: &str) -> Result<Trace, SimError> {
    if info(name_or_file).is_ok() {
        return load_named(name_or_file);
    }
    let mut p = PathBuf::from(name_or_file);
    if !p.is_file()
        && let Some(candidate) = traces_dir().map(|d| d.join(format!("{name_or_file}.csv")))
        && candidate.is_file()
    {
        p = candidate;
    }
    if p.is_file() {
        return load_csv_file(&p);
    }
    Err(info(name_or_file)
        .err()
        .unwrap_or_else(|| SimError::BadTrace(name_or_file.to_owned(), "not found".into())))
}

/// Loads a CSV file: a `timestamp,count` series (its step inferred from the timestamps),
/// or a per-request log (one row per request, [`is_request_log`]), bucketed to requests
/// per [`REQUEST_BUCKET_S`] — weighted by token work when the header names the input
/// and output token columns ([`token_columns`]).
pub fn load_csv_file(path: &Path) -> Result<Trace, SimError> {
    let input = Input::file(path)?;
    let first = first_times(&input, 1000)?;
    let mut t = if is_request_log(&first) {
        load_requests(&input, REQUEST_BUCKET_S, token_columns(&input))?
    } else {
        let step = infer_step(&input, &first[..first.len().min(200)])?;
        load_counts_csv(&input, 1, step)?
    };
    t.name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(t)
}

fn parse_err(input: &Input, line: usize, reason: impl Into<String>) -> SimError {
    SimError::Parse {
        origin: input.label.clone(),
        line,
        reason: reason.into(),
    }
}

/// The field delimiter of a CSV input, from its first line: a tab if it has one, else a
/// semicolon if it has one (as spreadsheets with a decimal comma write), else a comma.
fn delimiter(bytes: &[u8]) -> u8 {
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    [b'\t', b';']
        .into_iter()
        .find(|d| first.contains(d))
        .unwrap_or(b',')
}

/// A reader of the records of CSV text whose first column is a timestamp: the
/// delimiter read from the first line ([`delimiter`]), a first line that is a header
/// skipped ([`has_header`]), rows of any length.
pub fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    let d = delimiter(bytes);
    csv::ReaderBuilder::new()
        .has_headers(has_header(bytes, d))
        .flexible(true)
        .delimiter(d)
        .from_reader(bytes)
}

/// Whether the first line is a header: unless its first field is a timestamp and its
/// second a number (then it is the first sample, and a file without a header loses
/// none).
fn has_header(bytes: &[u8], delimiter: u8) -> bool {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes);
    let Some(Ok(first)) = r.records().next() else {
        return true;
    };
    let sample = first.get(0).and_then(parse_timestamp_f64).is_some()
        && first
            .get(1)
            .is_some_and(|v| v.trim().parse::<f64>().is_ok());
    !sample
}

/// Rows of a CSV input with their 1-based line numbers (a header is line 1); a row
/// the CSV reader cannot read, or that is not UTF-8, is an error naming its line.
fn rows(input: &Input) -> impl Iterator<Item = Result<(usize, csv::StringRecord), SimError>> + '_ {
    csv_reader(&input.bytes).into_records().map(move |rec| {
        rec.map(|r| {
            let line = r.position().map_or(0, |p| p.line() as usize);
            (line, r)
        })
        .map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            parse_err(input, line, e.to_string())
        })
    })
}

/// Parses a timestamp: RFC 3339, `YYYY-MM-DD HH:MM:SS[.frac]`, a date `YYYY-MM-DD` or an
/// hour `YYYYMMDDHH` (taken as UTC, a date at midnight), or a unix
/// epoch number (with an optional fraction) in seconds, or in milliseconds, microseconds
/// or nanoseconds as exports of monitoring systems write them — told apart by size
/// ([`epoch_seconds`]). Fractions are truncated to the second.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    parse_timestamp_f64(s).map(|t| t.floor() as i64)
}

/// [`parse_timestamp`], keeping the fraction of a second.
pub fn parse_timestamp_f64(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp() as f64 + f64::from(d.timestamp_subsec_nanos()) * 1e-9);
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            let d = d.and_utc();
            return Some(d.timestamp() as f64 + f64::from(d.timestamp_subsec_nanos()) * 1e-9);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_time(NaiveTime::MIN).and_utc().timestamp() as f64);
    }
    // `YYYYMMDDHH` (Wikimedia's hourly page views) for the years 1900-2099: as a unix
    // time those ten digits would be 2030-2036, after any recorded data.
    if s.len() == 10
        && (s.starts_with("19") || s.starts_with("20"))
        && s.bytes().all(|b| b.is_ascii_digit())
        && let Ok(d) = NaiveDateTime::parse_from_str(&format!("{s}0000"), "%Y%m%d%H%M%S")
    {
        return Some(d.and_utc().timestamp() as f64);
    }
    s.parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
        .map(epoch_seconds)
}

/// A unix epoch number in seconds. From 10^11 on it is read as milliseconds (10^11 s is
/// the year 5138; 10^11 ms is March 1973), from 10^14 as microseconds and from 10^17 as
/// nanoseconds: every time since 1973 in any of the four units maps to itself.
pub fn epoch_seconds(t: f64) -> f64 {
    match t.abs() {
        a if a >= 1e17 => t / 1e9,
        a if a >= 1e14 => t / 1e6,
        a if a >= 1e11 => t / 1e3,
        _ => t,
    }
}

fn field<'a>(
    rec: &'a csv::StringRecord,
    i: usize,
    input: &Input,
    line: usize,
) -> Result<&'a str, SimError> {
    rec.get(i)
        .ok_or_else(|| parse_err(input, line, format!("missing column {}", i + 1)))
}

fn number(s: &str, input: &Input, line: usize, what: &str) -> Result<f64, SimError> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| parse_err(input, line, format!("{what} {s:?} is not a number")))?;
    if !v.is_finite() || v < 0.0 {
        return Err(parse_err(
            input,
            line,
            format!("{what} {s:?} must be a finite non-negative number"),
        ));
    }
    Ok(v)
}

fn timestamp(rec: &csv::StringRecord, input: &Input, line: usize) -> Result<f64, SimError> {
    let ts = field(rec, 0, input, line)?;
    parse_timestamp_f64(ts).ok_or_else(|| parse_err(input, line, format!("bad timestamp {ts:?}")))
}

/// `timestamp,count[,...]` with `count` requests per `step_s` bucket.
fn load_counts_csv(input: &Input, col: usize, step_s: u32) -> Result<Trace, SimError> {
    let mut pts = Vec::new();
    for row in rows(input) {
        let (line, rec) = row?;
        let ts = timestamp(&rec, input, line)?;
        let v = number(field(&rec, col, input, line)?, input, line, "count")?;
        pts.push((ts.floor() as i64, v / f64::from(step_s)));
    }
    finish(input, pts, step_s)
}

fn load_nasa_minutes(input: &Input) -> Result<Trace, SimError> {
    let mut pts = Vec::new();
    for row in rows(input) {
        let (line, rec) = row?;
        let ts = timestamp(&rec, input, line)?;
        let v = number(field(&rec, 1, input, line)?, input, line, "requests")?;
        let down = field(&rec, 2, input, line)?.trim() == "1";
        if !down {
            // Outage minutes are missing data, not zero demand: leave them out.
            pts.push((ts.floor() as i64, v / 60.0));
        }
    }
    finish(input, pts, 60)
}

/// Google 2011: `time_stamp` in seconds from the trace start, CPU usage as load.
fn load_google(input: &Input) -> Result<Trace, SimError> {
    // Nominal start of ClusterData2011 (May 2011); the copied file has offsets only.
    const NOMINAL_START: i64 = 1_304_208_000; // 2011-05-01T00:00:00Z
    let mut pts = Vec::new();
    for row in rows(input) {
        let (line, rec) = row?;
        let off = number(field(&rec, 0, input, line)?, input, line, "time_stamp")?;
        let cpu = number(field(&rec, 1, input, line)?, input, line, "meanCPUUsage")?;
        pts.push((NOMINAL_START + off as i64, cpu));
    }
    finish(input, pts, 300)
}

/// Bucket (s) of a per-request log: requests (or their work) per 10 s.
pub const REQUEST_BUCKET_S: u32 = 10;

/// Longest span of a per-request log (days): about 3.2 million buckets.
pub const MAX_REQUEST_LOG_DAYS: i64 = 366;

/// Whether a CSV input is a log with one row per request rather than a series on a grid.
/// Among its first rows (in time order): at least half of them share their timestamp with
/// the row before (requests logged to the second), or fewer than half of the gaps between
/// distinct timestamps are within 10 % of their median gap. A series sampled every step
/// has almost all of its gaps there (a missing sample, or a few seconds of jitter in an
/// export, aside); the arrival gaps of requests are spread out (for Poisson arrivals about
/// 7 % fall in that band).
fn is_request_log(first: &[f64]) -> bool {
    let mut ts = first.to_vec();
    ts.sort_by(f64::total_cmp);
    let all = ts.len().saturating_sub(1);
    let mut gaps: Vec<f64> = ts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .collect();
    if all < 10 {
        return false;
    }
    if 2 * (all - gaps.len()) >= all {
        return true;
    }
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    let on_grid = gaps
        .iter()
        .filter(|d| (**d - median).abs() <= 0.1 * median)
        .count();
    2 * on_grid < gaps.len()
}

/// The timestamps of the input's first `n` rows, in file order (what [`is_request_log`]
/// and [`infer_step`] judge it by); a row that does not parse is an error naming its line.
fn first_times(input: &Input, n: usize) -> Result<Vec<f64>, SimError> {
    rows(input)
        .take(n)
        .map(|row| {
            let (line, rec) = row?;
            timestamp(&rec, input, line)
        })
        .collect()
}

/// The input and output token columns of a per-request log, by header name (case,
/// spaces and `_` ignored): `ContextTokens` / `GeneratedTokens` (Azure LLM traces),
/// `Request tokens` / `Response tokens` (BurstGPT), `input_tokens` / `output_tokens`,
/// `prompt_tokens` / `completion_tokens`. `None` unless both are found.
fn token_columns(input: &Input) -> Option<(usize, usize)> {
    let mut r = csv_reader(&input.bytes);
    let header = r.headers().ok()?.clone();
    let norm = |h: &str| {
        h.chars()
            .filter(|c| c.is_alphanumeric())
            .collect::<String>()
            .to_lowercase()
    };
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&norm(h).as_str()))
    };
    let input_col = find(&[
        "contexttokens",
        "requesttokens",
        "inputtokens",
        "prompttokens",
    ])?;
    let output_col = find(&[
        "generatedtokens",
        "responsetokens",
        "outputtokens",
        "completiontokens",
    ])?;
    Some((input_col, output_col))
}

/// Per-request trace: requests per `bucket_s`. With `tokens` (the input and output token
/// columns), each request is weighted by its work relative to the log's mean request, so
/// the series is in "mean requests" per second. Work ≈ prefill (input tokens, fast per
/// token) plus decode (output tokens, ~40x dearer per token). Without, each request counts 1.
fn load_requests(
    input: &Input,
    bucket_s: u32,
    tokens: Option<(usize, usize)>,
) -> Result<Trace, SimError> {
    let mut reqs: Vec<(f64, f64)> = Vec::new();
    for row in rows(input) {
        let (line, rec) = row?;
        let t = timestamp(&rec, input, line)?;
        let work = match tokens {
            Some((i, o)) => {
                let ctx = number(field(&rec, i, input, line)?, input, line, "input tokens")?;
                let generated = number(field(&rec, o, input, line)?, input, line, "output tokens")?;
                ctx + 40.0 * generated
            }
            None => 1.0,
        };
        reqs.push((t, work));
    }
    if reqs.is_empty() {
        return Err(SimError::BadTrace(
            input.label.clone(),
            "no requests".into(),
        ));
    }
    // A log whose requests all did no work (0 tokens) counts them as requests.
    let mean_work = reqs.iter().map(|r| r.1).sum::<f64>() / reqs.len() as f64;
    let weight = |w: f64| if mean_work > 0.0 { w / mean_work } else { 1.0 };
    let t0 = reqs
        .iter()
        .map(|r| r.0)
        .fold(f64::INFINITY, f64::min)
        .floor() as i64;
    let t0 = t0 - t0.rem_euclid(i64::from(bucket_s));
    let t1 = reqs.iter().map(|r| r.0).fold(f64::NEG_INFINITY, f64::max) as i64;
    if t1 - t0 > MAX_REQUEST_LOG_DAYS * 86_400 {
        return Err(SimError::BadTrace(
            input.label.clone(),
            format!(
                "its requests span {:.0} days (unix {t0} to {t1}); a per-request log is bucketed every {bucket_s} s and may span at most {MAX_REQUEST_LOG_DAYS} days: check its timestamps, or aggregate it to a `timestamp,count` series",
                (t1 - t0) as f64 / 86_400.0
            ),
        ));
    }
    let n = ((t1 - t0) / i64::from(bucket_s) + 1) as usize;
    let mut work = vec![0.0; n];
    for (t, w) in &reqs {
        let k = ((*t as i64 - t0) / i64::from(bucket_s)) as usize;
        if let Some(slot) = work.get_mut(k.min(n - 1)) {
            *slot += weight(*w);
        }
    }
    Ok(Trace {
        name: String::new(),
        start_unix: t0,
        step_s: bucket_s,
        rps: work.into_iter().map(|w| w / f64::from(bucket_s)).collect(),
        filled: 0,
        scale: 1.0,
        periodic: false,
    })
}

/// Usual sampling periods (s), which an inferred step within 10 % of one snaps to.
const STEPS: [u32; 13] = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 86_400];

/// The sampling step of a series: the median gap between the distinct timestamps of its
/// `first` rows, snapped to a usual period ([`STEPS`]) within 10 % of it ([`step_of`]).
fn infer_step(input: &Input, first: &[f64]) -> Result<u32, SimError> {
    let ts: Vec<i64> = first.iter().map(|t| t.floor() as i64).collect();
    step_of(&ts).ok_or_else(|| {
        SimError::BadTrace(
            input.label.clone(),
            "cannot infer the sampling step (need at least two distinct timestamps)".into(),
        )
    })
}

/// The step (s) of a series sampled at `times` (unix seconds, in any order): the median gap
/// between distinct times, snapped to a usual period ([`STEPS`]) within 10 % of it, so an
/// export's few seconds of jitter do not make a 62 s series. `None` with fewer than two
/// distinct times.
pub fn step_of(times: &[i64]) -> Option<u32> {
    let mut ts = times.to_vec();
    ts.sort_unstable();
    let mut d: Vec<i64> = ts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0)
        .collect();
    d.sort_unstable();
    let s = u32::try_from(*d.get(d.len() / 2)?).ok()?;
    Some(
        STEPS
            .into_iter()
            .find(|p| f64::from(s.abs_diff(*p)) <= 0.1 * f64::from(*p))
            .unwrap_or(s),
    )
}

/// A contiguous run of regular samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Unix time of the first sample.
    pub start_unix: i64,
    /// Values, one per step.
    pub values: Vec<f64>,
    /// Samples filled by interpolation.
    pub filled: usize,
}

/// Puts `(unix time, value)` points on a regular `step_s` grid. Points are
/// sorted; duplicates of the same slot are summed-then-averaged away (the last
/// wins is avoided by averaging). Gaps up to `max_fill_gap_s` are linearly
/// interpolated; longer gaps start a new segment.
pub fn regularise(mut pts: Vec<(i64, f64)>, step_s: u32, max_fill_gap_s: i64) -> Vec<Segment> {
    pts.sort_by_key(|p| p.0);
    let step = i64::from(step_s.max(1));
    let mut segs: Vec<Segment> = Vec::new();
    let mut last: Option<(i64, f64)> = None; // slot time, value
    for (t, v) in pts {
        let slot = t - t.rem_euclid(step);
        match (last, segs.last_mut()) {
            (Some((ls, lv)), Some(seg)) if slot == ls => {
                // Same slot twice: average.
                let avg = 0.5 * (lv + v);
                if let Some(x) = seg.values.last_mut() {
                    *x = avg;
                }
                last = Some((ls, avg));
            }
            (Some((ls, lv)), Some(seg)) if slot - ls <= max_fill_gap_s.max(step) => {
                let missing = (slot - ls) / step - 1;
                for k in 1..=missing {
                    let w = k as f64 / (missing + 1) as f64;
                    seg.values.push(lv + (v - lv) * w);
                }
                seg.filled += missing.max(0) as usize;
                seg.values.push(v);
                last = Some((slot, v));
            }
            _ => {
                segs.push(Segment {
                    start_unix: slot,
                    values: vec![v],
                    filled: 0,
                });
                last = Some((slot, v));
            }
        }
    }
    segs
}

fn finish(input: &Input, pts: Vec<(i64, f64)>, step_s: u32) -> Result<Trace, SimError> {
    // Fill gaps up to an hour; longer ones split the series.
    let segs = regularise(pts, step_s, 3600);
    let best = segs
        .into_iter()
        .max_by_key(|s| s.values.len())
        .ok_or_else(|| SimError::BadTrace(input.label.clone(), "no data rows".into()))?;
    if best.values.len() < 2 {
        return Err(SimError::BadTrace(
            input.label.clone(),
            "fewer than 2 samples".into(),
        ));
    }
    Ok(Trace {
        name: String::new(),
        start_unix: best.start_unix,
        step_s,
        rps: best.values,
        filled: best.filled,
        scale: 1.0,
        periodic: false,
    })
}

/// Nominal start of the M4-Hourly series (they carry no dates): 2016-01-04T00:00:00Z, a Monday.
pub const M4_NOMINAL_START: i64 = 1_451_865_600;

/// Reads an M4 wide CSV (`"V1","V2",...` header; per row a series id, then its values,
/// ragged: empty cells after the end). Errors name the file and line.
pub fn read_m4_wide(path: &Path) -> Result<Vec<(String, Vec<f64>)>, SimError> {
    let input = Input::file(path)?;
    let mut out = Vec::new();
    for row in rows(&input) {
        let (line, rec) = row?;
        let id = field(&rec, 0, &input, line)?.trim().to_owned();
        let vals = rec
            .iter()
            .skip(1)
            .filter(|v| !v.trim().is_empty())
            .map(|v| number(v, &input, line, "value"))
            .collect::<Result<Vec<_>, _>>()?;
        out.push((id, vals));
    }
    Ok(out)
}

/// The M4-Hourly series of `dir` (`Hourly-train.csv` + `Hourly-test.csv`, each series'
/// 48 test hours appended to its training hours) as hourly traces named `m4-<id>`,
/// starting at [`M4_NOMINAL_START`]. Hourly steps are interpolated to the tick like
/// every series coarser than 5 minutes ([`Trace::interpolated`]).
pub fn load_m4_hourly(dir: &Path) -> Result<Vec<Trace>, SimError> {
    let train = read_m4_wide(&dir.join("Hourly-train.csv"))?;
    let test = read_m4_wide(&dir.join("Hourly-test.csv"))?;
    if train.len() != test.len() {
        return Err(SimError::BadTrace(
            dir.display().to_string(),
            format!(
                "Hourly-train.csv has {} series, Hourly-test.csv {}",
                train.len(),
                test.len()
            ),
        ));
    }
    train
        .into_iter()
        .zip(test)
        .map(|((id, mut y), (id2, t))| {
            if id != id2 {
                return Err(SimError::BadTrace(
                    dir.display().to_string(),
                    format!("series {id} of the training file meets {id2} in the test file"),
                ));
            }
            y.extend(t);
            Trace::from_rps(&format!("m4-{id}"), M4_NOMINAL_START, 3600, y)
        })
        .collect()
}

impl Trace {
    /// Builds a trace from values (requests/s) on a regular grid.
    pub fn from_rps(
        name: &str,
        start_unix: i64,
        step_s: u32,
        rps: Vec<f64>,
    ) -> Result<Trace, SimError> {
        if step_s == 0 {
            return Err(SimError::BadTrace(
                name.to_owned(),
                "step must be positive".into(),
            ));
        }
        if rps.is_empty() {
            return Err(SimError::BadTrace(name.to_owned(), "no samples".into()));
        }
        if let Some(i) = rps.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(SimError::BadTrace(
                name.to_owned(),
                format!("sample {i} is negative or not finite"),
            ));
        }
        Ok(Trace {
            name: name.to_owned(),
            start_unix,
            step_s,
            rps,
            filled: 0,
            scale: 1.0,
            periodic: false,
        })
    }

    /// Length in seconds.
    pub fn duration_s(&self) -> f64 {
        self.rps.len() as f64 * f64::from(self.step_s)
    }

    /// Whether [`Trace::rate_at`] interpolates: steps coarser than
    /// [`INTERPOLATE_ABOVE_S`] (hourly page views, 30-minute counts) are read as a
    /// line through the step centres, so that hour boundaries do not become load
    /// steps the autoscalers react to; 5-minute and finer series are held constant
    /// over each step (their step is a measurement interval close to the monitoring
    /// period).
    pub fn interpolated(&self) -> bool {
        self.step_s > INTERPOLATE_ABOVE_S
    }

    /// Request rate at `t` seconds from the start: held constant over each step, or
    /// linear between step centres on an [interpolated](Trace::interpolated) trace
    /// (constant before the first centre and after the last).
    pub fn rate_at(&self, t: f64) -> f64 {
        let step = f64::from(self.step_s);
        let last = self.rps.last().copied().unwrap_or(0.0);
        if t < 0.0 {
            return self.rps.first().copied().unwrap_or(0.0);
        }
        if !self.interpolated() {
            let k = (t / step) as usize;
            return self.rps.get(k).copied().unwrap_or(last);
        }
        let x = t / step - 0.5;
        if x <= 0.0 {
            return self.rps.first().copied().unwrap_or(0.0);
        }
        let k = x.floor() as usize;
        match (self.rps.get(k), self.rps.get(k + 1)) {
            (Some(a), Some(b)) => a + (b - a) * (x - k as f64),
            _ => last,
        }
    }

    /// The `q` quantile of the rate (nearest rank).
    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.rps.clone();
        v.sort_by(f64::total_cmp);
        let i = ((q.clamp(0.0, 1.0) * (v.len() - 1) as f64).round()) as usize;
        v.get(i).copied().unwrap_or(0.0)
    }

    /// Keeps samples `[from, from + len)`.
    pub fn slice(&self, from: usize, len: usize) -> Trace {
        let end = (from + len).min(self.rps.len());
        let from = from.min(end);
        Trace {
            start_unix: self.start_unix + from as i64 * i64::from(self.step_s),
            rps: self.rps[from..end].to_vec(),
            ..self.clone()
        }
    }

    /// Scales the rate so that its 99.9th percentile needs `peak_instances`
    /// instances of `flavor` at the flavor's SLO rate.
    pub fn scaled_to_fleet(&self, flavor: &Flavor, peak_instances: u32) -> Trace {
        let q = self.quantile(0.999);
        let factor = if q > 0.0 {
            f64::from(peak_instances) * flavor.rps_at_slo() / q
        } else {
            1.0
        };
        Trace {
            rps: self.rps.iter().map(|v| v * factor).collect(),
            scale: self.scale * factor,
            ..self.clone()
        }
    }

    /// Sums consecutive samples into coarser steps of `factor` samples (mean rate).
    pub fn resample(&self, factor: usize) -> Trace {
        let factor = factor.max(1);
        let rps = self
            .rps
            .chunks(factor)
            .map(|c| c.iter().sum::<f64>() / c.len() as f64)
            .collect();
        Trace {
            step_s: self.step_s * factor as u32,
            rps,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_steps_are_read_as_a_line_through_step_centres_and_five_minute_steps_as_steps() {
        let hourly = Trace::from_rps("h", 0, 3600, vec![10.0, 20.0, 40.0]).expect("trace");
        assert!(hourly.interpolated());
        // Centres at 1800, 5400, 9000 s; halfway between the first two is 3600 s.
        assert_eq!(hourly.rate_at(900.0), 10.0);
        assert!((hourly.rate_at(3600.0) - 15.0).abs() < 1e-9);
        assert!((hourly.rate_at(7200.0) - 30.0).abs() < 1e-9);
        assert_eq!(hourly.rate_at(10_000.0), 40.0);
        // No jump at the hour boundary: 15 s before and after it differ by 1/240 of a step.
        let (a, b) = (hourly.rate_at(3585.0), hourly.rate_at(3615.0));
        assert!((b - a - 10.0 / 120.0).abs() < 1e-9, "{a} {b}");
        let five = Trace::from_rps("f", 0, 300, vec![10.0, 20.0]).expect("trace");
        assert!(!five.interpolated());
        assert_eq!((five.rate_at(299.0), five.rate_at(300.0)), (10.0, 20.0));
    }

    #[test]
    fn short_gaps_are_interpolated_and_long_gaps_split() {
        let pts = vec![
            (0, 1.0),
            (60, 2.0),
            (240, 5.0),
            (10_000, 7.0),
            (10_060, 8.0),
        ];
        let segs = regularise(pts, 60, 600);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].values, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(segs[0].filled, 2);
        assert_eq!(segs[1].start_unix, 9_960);
        assert_eq!(segs[1].values, vec![7.0, 8.0]);
    }

    #[test]
    fn timestamps_in_all_supported_forms_parse() {
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_timestamp("1995-07-01T00:00:00-04:00"),
            Some(804_571_200)
        );
        assert_eq!(parse_timestamp("1998-05-30 21:50:00"), Some(896_565_000));
        assert_eq!(parse_timestamp("123"), Some(123));
        for epoch in [
            "1700000000",
            "1700000000000",
            "1700000000000000",
            "1700000000000000000",
        ] {
            assert_eq!(parse_timestamp(epoch), Some(1_700_000_000), "{epoch}");
        }
        assert_eq!(parse_timestamp("1700000000123.5"), Some(1_700_000_000));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn fleet_scaling_maps_the_high_quantile_to_the_peak_count() {
        let f = crate::capacity::lookup("x1.2u.4g").expect("flavor");
        let t = Trace::from_rps("t", 0, 60, (0..1000).map(f64::from).collect()).expect("trace");
        let s = t.scaled_to_fleet(&f, 40);
        assert_eq!(f.demand_instances(s.quantile(0.999)), 40);
        assert!((s.scale - 40.0 * f.rps_at_slo() / t.quantile(0.999)).abs() < 1e-9);
    }

    #[test]
    fn a_negative_sample_is_rejected_with_its_index() {
        let e = Trace::from_rps("t", 0, 60, vec![1.0, -1.0]).expect_err("negative");
        assert!(e.to_string().contains("sample 1"), "{e}");
    }
}
