//! A short run of every fuzz target over its checked-in corpus (what `make test` runs;
//! `make fuzz` runs each for 1,000,000 inputs), and the regressions the fuzzers found.

use std::time::Duration;

use flexus_fuzz::{Options, Target, corpus, run, targets};

/// Every seed of the target's corpus, then mutations for about `seconds`.
fn smoke(name: &str, seconds: u64) {
    let mut t = targets::by_name(name).unwrap();
    let seeds = corpus::read(&corpus::dir(name)).unwrap();
    assert!(
        seeds.len() >= 100,
        "{name}: the checked-in corpus has {} seeds",
        seeds.len()
    );
    let opts = Options {
        inputs: u64::MAX,
        time_limit: Some(Duration::from_secs(seconds)),
        seed: 7,
        ..Options::default()
    };
    let report = run(t.as_mut(), seeds.clone(), &opts);
    eprintln!("{}", report.summary());
    assert!(report.inputs >= seeds.len() as u64, "{}", report.summary());
    assert!(
        report.failures.is_empty(),
        "{}\n{:#?}",
        report.summary(),
        report
            .failures
            .iter()
            .map(|f| (String::from_utf8_lossy(&f.input).into_owned(), &f.message))
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_policy_parsers_survive_a_smoke_run_of_their_corpus_and_mutations() {
    smoke("policy", 4);
}

#[test]
fn the_value_codecs_survive_a_smoke_run_of_their_corpus_and_mutations() {
    smoke("codec", 4);
}

#[test]
fn the_agent_request_bodies_survive_a_smoke_run_of_their_corpus_and_mutations() {
    smoke("agent", 4);
}

/// The driver does find what breaks: a target that panics on some input is reported
/// with that input, and one that breaks a property is reported with its message.
#[test]
fn the_driver_reports_panics_and_broken_properties_with_their_inputs() {
    #[derive(Debug)]
    struct Fragile;
    impl Target for Fragile {
        fn name(&self) -> &'static str {
            "fragile"
        }
        fn dictionary(&self) -> &'static [&'static [u8]] {
            &[b"boom", b"bad"]
        }
        fn run(&mut self, input: &[u8]) -> Result<String, String> {
            let text = String::from_utf8_lossy(input);
            if text.contains("boom") {
                panic!("boom in {text:?}");
            }
            if text.contains("bad") {
                return Err("bad input accepted".into());
            }
            Ok(text.len().to_string())
        }
    }
    let opts = Options {
        inputs: 20_000,
        ..Options::default()
    };
    let report = run(&mut Fragile, vec![b"hello".to_vec()], &opts);
    assert_eq!(report.inputs, 20_000);
    assert!(
        report.failures.iter().any(|f| f.panicked
            && f.message.starts_with("panic: boom in")
            && String::from_utf8_lossy(&f.input).contains("boom")),
        "{:?}",
        report.failures
    );
    assert!(
        report
            .failures
            .iter()
            .any(|f| !f.panicked && f.message == "bad input accepted"),
        "{:?}",
        report.failures
    );
    assert!(report.outcomes > 1 && !report.discovered.is_empty());
}
