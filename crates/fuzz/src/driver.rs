//! The driver: runs a [`Target`] over inputs mutated from a corpus, on the stable
//! toolchain, in-process. Feedback is the outcome, not code coverage: an input whose
//! outcome (the kind of answer or error the target reports) was not seen before joins
//! the live corpus, so the run keeps exploring inputs that reach new diagnostics.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::mutate::Mutator;

/// A fuzz target: one input in, its outcome out.
pub trait Target {
    fn name(&self) -> &'static str;
    /// Tokens of the input language the mutator inserts.
    fn dictionary(&self) -> &'static [&'static [u8]];
    /// Runs one input. `Ok` carries a short outcome signature (equal signatures mean
    /// "the same kind of answer"); `Err` is a broken property (a 5xx, a lossy round
    /// trip, an error without a message). A panic is caught by the driver.
    fn run(&mut self, input: &[u8]) -> Result<String, String>;
}

/// How long a run lasts and how it is seeded.
#[derive(Debug, Clone)]
pub struct Options {
    /// Inputs to run.
    pub inputs: u64,
    /// Stop earlier once this much time has passed (a smoke run).
    pub time_limit: Option<Duration>,
    pub seed: u64,
    /// Longest input, in bytes.
    pub max_len: usize,
    /// Most inputs the live corpus holds.
    pub max_corpus: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            inputs: 1_000_000,
            time_limit: None,
            seed: 1,
            max_len: 4096,
            max_corpus: 4096,
        }
    }
}

/// An input that broke a property or panicked.
#[derive(Debug, Clone)]
pub struct Failure {
    pub input: Vec<u8>,
    pub message: String,
    pub panicked: bool,
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub target: &'static str,
    pub inputs: u64,
    pub failures: Vec<Failure>,
    /// Distinct outcome signatures seen.
    pub outcomes: usize,
    pub corpus_start: usize,
    /// Inputs added to the corpus because their outcome was new.
    pub discovered: Vec<Vec<u8>>,
    pub elapsed: Duration,
}

impl Report {
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        format!(
            "{}: {} inputs, {} failures, {} distinct outcomes, corpus {} + {} found, {:.1} s, {:.0} inputs/s",
            self.target,
            self.inputs,
            self.failures.len(),
            self.outcomes,
            self.corpus_start,
            self.discovered.len(),
            secs,
            self.inputs as f64 / secs
        )
    }
}

/// The most failures kept (the run goes on counting them).
const MAX_KEPT_FAILURES: usize = 20;

/// Runs `target` over `seeds` (every seed first, as it is), then mutated inputs.
pub fn run(target: &mut dyn Target, seeds: Vec<Vec<u8>>, opts: &Options) -> Report {
    let start = Instant::now();
    let mut m = Mutator::new(opts.seed, target.dictionary());
    let corpus_start = seeds.len();
    let mut corpus = seeds.clone();
    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    let mut discovered = Vec::new();
    let mut ran = 0u64;
    let quiet = silence_panics();
    while ran < opts.inputs {
        if ran.is_multiple_of(256) && opts.time_limit.is_some_and(|t| start.elapsed() >= t) {
            break;
        }
        let input = if (ran as usize) < seeds.len() {
            seeds[ran as usize].clone()
        } else if corpus.is_empty() || m.rng().random_ratio(1, 32) {
            m.fresh(opts.max_len)
        } else {
            let a = m.rng().random_range(0..corpus.len());
            let b = m.rng().random_range(0..corpus.len());
            let (base, other) = (corpus[a].clone(), corpus[b].clone());
            m.mutate(&base, &other, opts.max_len)
        };
        ran += 1;
        match catch_unwind(AssertUnwindSafe(|| target.run(&input))) {
            Ok(Ok(outcome)) => {
                if seen.insert(outcome) && (ran as usize) > seeds.len() {
                    if corpus.len() < opts.max_corpus {
                        corpus.push(input.clone());
                    }
                    discovered.push(input);
                }
            }
            Ok(Err(message)) => keep(&mut failures, input, message, false),
            Err(payload) => keep(&mut failures, input, panic_text(&payload), true),
        }
    }
    drop(quiet);
    Report {
        target: target.name(),
        inputs: ran,
        failures,
        outcomes: seen.len(),
        corpus_start,
        discovered,
        elapsed: start.elapsed(),
    }
}

fn keep(failures: &mut Vec<Failure>, input: Vec<u8>, message: String, panicked: bool) {
    if failures.len() < MAX_KEPT_FAILURES {
        failures.push(Failure {
            input,
            message,
            panicked,
        });
    }
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_owned());
    format!("panic: {text}")
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While alive, panics on this thread print nothing (the driver reports the ones it
/// catches); other threads, and this one afterwards, print as before.
#[derive(Debug)]
struct QuietPanics;

fn silence_panics() -> QuietPanics {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    QuietPanics
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(false));
    }
}
