//! Test support (feature `testing`): install a provider binary into a filesystem mirror, write
//! a Terraform CLI config that uses it (no network), and drive real Terraform in a temporary
//! working directory. Everything fails loudly when a tool is missing — tests never skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A provider binary and the address it is installed under.
#[derive(Debug, Clone)]
pub struct ProviderUnderTest {
    /// The built provider executable.
    pub binary: PathBuf,
    /// Registry host, usually `registry.terraform.io`.
    pub hostname: String,
    /// e.g. `flexus`.
    pub namespace: String,
    /// e.g. `flexus` (the binary is installed as `terraform-provider-<type>_v<version>`).
    pub type_name: String,
    /// Semver, e.g. `0.1.0`.
    pub version: String,
}

impl ProviderUnderTest {
    pub fn new(
        binary: impl Into<PathBuf>,
        namespace: &str,
        type_name: &str,
        version: &str,
    ) -> Self {
        ProviderUnderTest {
            binary: binary.into(),
            hostname: "registry.terraform.io".into(),
            namespace: namespace.into(),
            type_name: type_name.into(),
            version: version.into(),
        }
    }
    /// `registry.terraform.io/<ns>/<type>`.
    pub fn source_address(&self) -> String {
        format!("{}/{}/{}", self.hostname, self.namespace, self.type_name)
    }
    /// A `terraform { required_providers { ... } }` block pinning this provider.
    pub fn required_providers_block(&self) -> String {
        format!(
            "terraform {{\n  required_providers {{\n    {t} = {{\n      source  = \"{ns}/{t}\"\n      version = \"{v}\"\n    }}\n  }}\n}}\n",
            t = self.type_name,
            ns = self.namespace,
            v = self.version
        )
    }
}

/// Copies the provider binary into `mirror` in the unpacked layout
/// `HOST/NS/TYPE/VERSION/linux_amd64/terraform-provider-TYPE_vVERSION` and returns its path.
pub fn install_in_mirror(mirror: &Path, p: &ProviderUnderTest) -> std::io::Result<PathBuf> {
    let dir = mirror
        .join(&p.hostname)
        .join(&p.namespace)
        .join(&p.type_name)
        .join(&p.version)
        .join(platform());
    std::fs::create_dir_all(&dir)?;
    let dest = dir.join(format!("terraform-provider-{}_v{}", p.type_name, p.version));
    std::fs::copy(&p.binary, &dest)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(dest)
}

/// Terraform's platform name for this machine, e.g. `linux_amd64`.
pub fn platform() -> String {
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{os}_{arch}")
}

/// Writes a CLI config installing the given sources (`registry.terraform.io/ns/*`) only from
/// the mirrors and nothing from the network.
pub fn write_cli_config(path: &Path, mirrors: &[(&Path, Vec<String>)]) -> std::io::Result<()> {
    let mut text = String::from("provider_installation {\n");
    let mut all = Vec::new();
    for (mirror, include) in mirrors {
        let inc = include
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ");
        text.push_str(&format!(
            "  filesystem_mirror {{\n    path    = \"{}\"\n    include = [{inc}]\n  }}\n",
            mirror.display()
        ));
        all.extend(include.iter().cloned());
    }
    let exc = all
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ");
    text.push_str(&format!("  direct {{\n    exclude = [{exc}]\n  }}\n}}\n"));
    std::fs::write(path, text)
}

/// Finds a Terraform executable from `env_var`, else `default`; panics with a message naming
/// both (and `make tools`) when it is missing.
pub fn terraform_from_env(env_var: &str, default: &Path) -> PathBuf {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| default.to_path_buf());
    assert!(
        path.is_file(),
        "terraform not found at {} (set {env_var} or run `make tools`, which installs it)",
        path.display()
    );
    path
}

/// Result of one Terraform command.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Panics with the full output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "{what}: expected exit code {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
    /// Panics with stdout unless it contains `text`.
    #[track_caller]
    pub fn expect_stdout(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "expected {text:?} in stdout:\n{}",
            self.stdout
        );
        self
    }
    /// stdout and stderr together.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A temporary Terraform working directory wired to a private filesystem mirror.
#[derive(Debug)]
pub struct Workspace {
    dir: tempfile::TempDir,
    terraform: PathBuf,
    env: BTreeMap<String, String>,
}

impl Workspace {
    /// Creates the directory, installs `providers` into its mirror (plus `extra_mirrors`, e.g.
    /// a mirror holding hashicorp/null) and writes the CLI config.
    pub fn new(
        terraform: &Path,
        providers: &[ProviderUnderTest],
        extra_mirrors: &[(&Path, Vec<String>)],
    ) -> std::io::Result<Workspace> {
        let dir = tempfile::Builder::new().prefix("tfplugin-ws-").tempdir()?;
        let mirror = dir.path().join("mirror");
        let mut include = Vec::new();
        for p in providers {
            install_in_mirror(&mirror, p)?;
            include.push(format!("{}/{}/*", p.hostname, p.namespace));
        }
        include.sort();
        include.dedup();
        let mut mirrors: Vec<(&Path, Vec<String>)> = Vec::new();
        if !include.is_empty() {
            mirrors.push((mirror.as_path(), include));
        }
        mirrors.extend(extra_mirrors.iter().cloned());
        let cli = dir.path().join("terraformrc");
        write_cli_config(&cli, &mirrors)?;
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work)?;
        let mut env = BTreeMap::new();
        env.insert("TF_CLI_CONFIG_FILE".into(), cli.display().to_string());
        env.insert("CHECKPOINT_DISABLE".into(), "1".into());
        env.insert("TF_IN_AUTOMATION".into(), "1".into());
        env.insert("TF_INPUT".into(), "0".into());
        Ok(Workspace {
            dir,
            terraform: terraform.to_path_buf(),
            env,
        })
    }

    /// The directory Terraform runs in (holds `main.tf`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Sets an environment variable for later commands.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.insert(k.into(), v.into());
    }

    /// Removes an environment variable for later commands.
    pub fn unset_env(&mut self, k: &str) {
        self.env.remove(k);
    }

    /// Writes a file in the working directory.
    pub fn write(&self, name: &str, contents: &str) -> std::io::Result<()> {
        std::fs::write(self.path().join(name), contents)
    }

    /// Runs Terraform like [`Workspace::terraform`] and panics, with its output, unless it
    /// exits with `code` (`what` names the step in the message).
    #[track_caller]
    pub fn terraform_expect(&self, args: &[&str], code: i32, what: &str) -> Outcome {
        let out = self
            .terraform(args)
            .unwrap_or_else(|e| panic!("cannot run terraform {}: {e}", args.join(" ")));
        out.expect_code(code, what);
        out
    }

    /// Runs Terraform with `args` (`-no-color` is added) and captures the outcome.
    pub fn terraform(&self, args: &[&str]) -> std::io::Result<Outcome> {
        let mut cmd = Command::new(&self.terraform);
        cmd.current_dir(self.path()).stdin(Stdio::null());
        // `-no-color` goes right after the (sub)command words, before positional arguments.
        let words = match args.first() {
            Some(&("state" | "providers" | "workspace")) if args.len() > 1 => 2,
            Some(_) => 1,
            None => 0,
        };
        cmd.args(&args[..words]);
        if words > 0 && args[0] != "version" {
            cmd.arg("-no-color");
        }
        cmd.args(&args[words..]);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output()?;
        Ok(Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Runs the framework's plan pipeline for `resource` offline (no Terraform, no gRPC), exactly
/// as `PlanResourceChange` would: defaults, unknown computed values, plan modifiers,
/// `modify_plan`, and the plan consistency rules. Returns the planned value and the paths
/// that force replacement. For provider unit tests.
pub fn plan<R: crate::Resource>(
    resource: R,
    prior: &crate::Value,
    proposed: &crate::Value,
    config: &crate::Value,
) -> Result<(crate::Value, Vec<crate::AttrPath>), crate::Diagnostics> {
    Ok(match plan_offline(resource, prior, proposed, config)? {
        Some(p) => (p.planned, p.requires_replace),
        None => (crate::Value::Null, Vec::new()),
    })
}

/// The warnings `modify_plan` adds for this change (the plan pipeline as [`plan`] runs it).
pub fn plan_warnings<R: crate::Resource>(
    resource: R,
    prior: &crate::Value,
    proposed: &crate::Value,
    config: &crate::Value,
) -> Result<crate::Diagnostics, crate::Diagnostics> {
    Ok(plan_offline(resource, prior, proposed, config)?
        .map(|p| p.warnings)
        .unwrap_or_default())
}

/// The plan pipeline of [`plan`]; `None` for a destroy (`proposed` is null).
fn plan_offline<R: crate::Resource>(
    resource: R,
    prior: &crate::Value,
    proposed: &crate::Value,
    config: &crate::Value,
) -> Result<Option<crate::framework::plan::Planned>, crate::Diagnostics> {
    let typed = crate::framework::erased::TypedResource::new(resource).map_err(|e| {
        crate::Diagnostics::from(crate::Diagnostic::error("Invalid schema", e.to_string()))
    })?;
    if proposed.is_null() {
        return Ok(None);
    }
    crate::framework::plan::plan(&typed, prior, proposed, config).map(Some)
}

/// The value type Terraform uses for `resource` (its schema's implied object type, timeouts
/// block included) — what `codec::msgpack::decode` needs to read captured request values.
pub fn resource_type<R: crate::Resource>(resource: &R) -> Result<crate::Type, crate::Error> {
    Ok(resource.schema()?.wire_schema().ty())
}

/// Runs the framework's `ValidateResourceConfig` for `resource` offline, exactly as Terraform
/// would get it: attribute validators, `Resource::validate`, and `Resource::validate_model`
/// over the rounds that stand in for unknown values. For provider unit tests.
pub fn validate<R: crate::Resource>(
    resource: R,
    config: &crate::Value,
) -> Result<crate::Diagnostics, crate::Error> {
    let typed = crate::framework::erased::TypedResource::new(resource)?;
    Ok(crate::framework::validate::validate_resource(
        &typed, config,
    ))
}
