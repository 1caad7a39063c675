//! Shared helpers of the integration tests: build the toy provider, find Terraform.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tfplugin::testing::{ProviderUnderTest, terraform_from_env};

/// The go-plugin magic cookie as Terraform sets it (spelled out here, not taken from the
/// crate, so the tests check the provider's value).
pub const COOKIE: (&str, &str) = (
    "TF_PLUGIN_MAGIC_COOKIE",
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
);

fn tools_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin")
}

/// Terraform 1.15.5 (`FLEXUS_TERRAFORM`, default `.tools/bin/terraform`).
pub fn terraform_latest() -> PathBuf {
    terraform_from_env("FLEXUS_TERRAFORM", &tools_bin().join("terraform"))
}

/// Terraform 1.0.3 (`FLEXUS_TERRAFORM_1_0`, default `.tools/bin/terraform-1.0.3`).
pub fn terraform_1_0() -> PathBuf {
    terraform_from_env("FLEXUS_TERRAFORM_1_0", &tools_bin().join("terraform-1.0.3"))
}

/// Builds `examples/toyfs` (once per test binary) with the same cargo and target dir as the
/// tests, and returns its path.
pub fn toyfs_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // The test executable lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile dir")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug")
            .to_string();
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "-q",
            "-p",
            "tfplugin",
            "--features",
            "testing",
            "--example",
            "terraform-provider-toyfs",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the toy provider");
        assert!(status.success(), "building examples/toyfs failed");
        let bin = profile_dir
            .join("examples")
            .join("terraform-provider-toyfs");
        assert!(
            bin.is_file(),
            "toy provider binary missing at {}",
            bin.display()
        );
        bin
    })
    .clone()
}

pub fn toyfs() -> ProviderUnderTest {
    ProviderUnderTest::new(toyfs_binary(), "tfplugin", "toyfs", "0.1.0")
}
