//! Benchmarks of the protocol layer (run with `cargo bench -p tfplugin --bench handshake`):
//!
//! 1. provider process start → handshake line on stdout, plaintext and AutoMTLS (which
//!    includes generating the server certificate), N runs each, median and p90;
//! 2. `terraform plan -refresh=false` over 500 resources of the toy provider against 500
//!    `null_resource`s (hashicorp/null 2.1.2), same Terraform, same machine, one run.
//!
//! Results go to stdout as a Markdown table for docs/benchmarks.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tfplugin::testing::Workspace;

use common::COOKIE;

fn time_to_handshake(bin: &Path, client_cert: Option<&str>) -> Duration {
    let mut cmd = Command::new(bin);
    cmd.env(COOKIE.0, COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match client_cert {
        Some(pem) => cmd.env("PLUGIN_CLIENT_CERT", pem),
        None => cmd.env_remove("PLUGIN_CLIENT_CERT"),
    };
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("handshake line");
    let took = start.elapsed();
    assert!(line.starts_with("1|6|tcp|"), "bad handshake {line:?}");
    let _ = child.kill();
    let _ = child.wait();
    took
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[0]), ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]))
}

fn null_provider_binary(root: &Path) -> Option<PathBuf> {
    let candidates = [
        root.join(".tools/mirror/registry.terraform.io/hashicorp/null/2.1.2/linux_amd64/terraform-provider-null_v2.1.2_x4"),
        root.join(".tools/venv/lib/terraform-provider-null_v2.1.2_x4"),
    ];
    candidates.into_iter().find(|p| p.is_file())
}

/// One row of the results table: min, median and p90 with `decimals` digits.
fn row(label: &str, runs: usize, (min, median, p90): (f64, f64, f64), decimals: usize) {
    println!("| {label} | {runs} | {min:.decimals$} | {median:.decimals$} | {p90:.decimals$} |");
}

/// Writes `main_tf`, then runs init and apply (`what` names the workspace in failures).
fn apply(ws: &Workspace, main_tf: &str, what: &str) {
    ws.write("main.tf", main_tf).expect("write");
    ws.terraform_expect(&["init"], 0, &format!("init {what}"));
    ws.terraform_expect(
        &["apply", "-auto-approve", "-parallelism=50"],
        0,
        &format!("apply {what}"),
    );
}

fn time_plan(ws: &Workspace, runs: usize) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            ws.terraform_expect(
                &["plan", "-refresh=false", "-detailed-exitcode"],
                0,
                "plan over applied state",
            );
            start.elapsed()
        })
        .collect()
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: measure only under
    // `cargo bench`, never as part of the test suite.
    if !std::env::args().any(|a| a == "--bench") {
        println!("handshake bench: skipped outside `cargo bench`");
        return;
    }
    let bin = common::toyfs_binary();
    let runs = 40;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert")
        .pem();

    // Warm the page cache once.
    time_to_handshake(&bin, None);
    let plain = stats((0..runs).map(|_| time_to_handshake(&bin, None)).collect());
    let tls = stats(
        (0..runs)
            .map(|_| time_to_handshake(&bin, Some(&cert)))
            .collect(),
    );
    println!("| measurement | runs | min ms | median ms | p90 ms |");
    println!("|---|---|---|---|---|");
    row("process start → handshake line, plaintext", runs, plain, 1);
    row(
        "process start → handshake line, AutoMTLS (cert generated)",
        runs,
        tls,
        1,
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let terraform = common::terraform_latest();
    let Some(null_bin) = null_provider_binary(&root) else {
        panic!("hashicorp/null 2.1.2 not found under .tools (run `make tools`)");
    };
    let n = 500;
    let plan_runs = 3;

    // Toy provider: 500 items.
    let toy = common::toyfs();
    let ws = Workspace::new(&terraform, std::slice::from_ref(&toy), &[]).expect("workspace");
    apply(
        &ws,
        &format!(
            "{}\nprovider \"toyfs\" {{\n  path = \"store.json\"\n}}\nresource \"toyfs_item\" \"x\" {{\n  count = {n}\n  name  = \"item-${{count.index}}\"\n  size  = count.index\n}}\n",
            toy.required_providers_block()
        ),
        "toy",
    );

    // hashicorp/null: 500 null_resources.
    let null = tfplugin::testing::ProviderUnderTest::new(null_bin, "hashicorp", "null", "2.1.2");
    let mirror_dir = tempfile::tempdir().expect("temp dir");
    let mirror = mirror_dir.path().to_path_buf();
    let installed = tfplugin::testing::install_in_mirror(&mirror, &null).expect("install null");
    // The null binary keeps its original file name (`_x4` suffix) in the mirror.
    std::fs::rename(
        &installed,
        installed.with_file_name("terraform-provider-null_v2.1.2_x4"),
    )
    .expect("rename");
    let nws = Workspace::new(
        &terraform,
        &[],
        &[(
            mirror.as_path(),
            vec!["registry.terraform.io/hashicorp/null".into()],
        )],
    )
    .expect("workspace");
    apply(
        &nws,
        &format!(
            "{}\nresource \"null_resource\" \"x\" {{\n  count = {n}\n  triggers = {{ i = count.index }}\n}}\n",
            null.required_providers_block()
        ),
        "null",
    );

    let toy_t = stats(time_plan(&ws, plan_runs));
    let null_t = stats(time_plan(&nws, plan_runs));
    row(
        &format!("`terraform plan -refresh=false`, {n} toyfs_item (tfplugin)"),
        plan_runs,
        toy_t,
        0,
    );
    row(
        &format!("`terraform plan -refresh=false`, {n} null_resource (hashicorp/null 2.1.2, Go)"),
        plan_runs,
        null_t,
        0,
    );
    println!(
        "\nratio tfplugin / null (median plan): {:.2}",
        toy_t.1 / null_t.1
    );
}
