//! Registry-layout documentation (`docs/index.md`, `docs/resources/*.md`,
//! `docs/data-sources/*.md`) generated from the schemas' descriptions, with an example and
//! an import section per page. The examples are Terraform files in the registry layout
//! (`examples/provider/provider.tf`, `examples/resources/<type>/resource.tf`,
//! `examples/data-sources/<type>/data-source.tf`), included here, so the pages, the tests
//! that run them and the provider benchmark read one copy. `terraform-provider-flexus docs
//! <dir>` writes the pages; a test fails when the checked-in files are stale.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tfplugin::schema::{Attribute, Block, Nesting};
use tfplugin::{DataSource, Provider, Resource};

use crate::FlexusProvider;

/// One generated page.
#[derive(Debug, Clone)]
pub struct Page {
    /// Path relative to the docs directory.
    pub path: &'static str,
    pub text: String,
}

/// Example of the provider block (with `required_providers`, as a user writes it).
pub const PROVIDER_EXAMPLE: &str = include_str!("../../examples/provider/provider.tf");

/// How to get the provider (it is not on the public registry); `tests/terraform_matrix.rs`
/// runs both ways with both Terraform versions.
const INSTALLATION: &str = r#"## Installation

The provider is not published on the public Terraform Registry, so `terraform init` cannot
download it ("Could not retrieve the list of available versions for provider flexus/flexus").
Install it from a checkout of this repository:

```sh
make install
```

This builds the release binary and copies it to the filesystem mirror Terraform searches
without any configuration, `~/.terraform.d/plugins/registry.terraform.io/flexus/flexus/VERSION/OS_ARCH/`
(for example `.../0.1.0/linux_amd64/terraform-provider-flexus_v0.1.0`). `terraform init` then
installs `flexus/flexus` from there; other providers still come from their registries.

If your CLI configuration (`~/.terraformrc` or `TF_CLI_CONFIG_FILE`) has a
`provider_installation` block, the implied mirror is not used: add it yourself.

```hcl
provider_installation {
  filesystem_mirror {
    path    = "/home/you/.terraform.d/plugins"
    include = ["registry.terraform.io/flexus/*"]
  }
  direct {
    exclude = ["registry.terraform.io/flexus/*"]
  }
}
```

While developing the provider, `dev_overrides` points Terraform at a build directory
instead (no `terraform init` needed; Terraform warns that overrides are in effect):

```hcl
provider_installation {
  dev_overrides {
    "flexus/flexus" = "/path/to/checkout/target/release"
  }
  direct {}
}
```

`make release` writes the registry release layout to `dist/`: one
`terraform-provider-flexus_VERSION_OS_ARCH.zip` per platform, `..._manifest.json` (protocol
6.0) and `..._SHA256SUMS`. A zip placed under `<mirror>/registry.terraform.io/flexus/flexus/`
is a packed filesystem or network mirror entry.
"#;

/// Example of `flexus_x_pool` (also checked by `terraform validate` in the tests).
pub const POOL_EXAMPLE: &str = include_str!("../../examples/resources/flexus_x_pool/resource.tf");

/// Example of `flexus_autoscaling_policy`.
pub const POLICY_EXAMPLE: &str =
    include_str!("../../examples/resources/flexus_autoscaling_policy/resource.tf");

/// Example of the `flexus_x_pool` data source.
pub const POOL_DATA_EXAMPLE: &str =
    include_str!("../../examples/data-sources/flexus_x_pool/data-source.tf");

/// Example of the `flexus_x_flavors` data source.
pub const FLAVORS_EXAMPLE: &str =
    include_str!("../../examples/data-sources/flexus_x_flavors/data-source.tf");

/// Example of the `flexus_policy_simulation` data source.
pub const SIMULATION_EXAMPLE: &str =
    include_str!("../../examples/data-sources/flexus_policy_simulation/data-source.tf");

/// Example of the `flexus_policy_recommendation` data source: the agent tunes the `web`
/// pool's policy on its recorded history at plan time, and the recommended target and
/// scale-in window are fed into a policy.
pub const RECOMMENDATION_EXAMPLE: &str =
    include_str!("../../examples/data-sources/flexus_policy_recommendation/data-source.tf");

fn type_label(a: &Attribute) -> String {
    a.ty.friendly()
}

fn attr_line(out: &mut String, a: &Attribute, kind: &str) {
    let mut flags = vec![kind.to_string()];
    if a.sensitive {
        flags.push("Sensitive".into());
    }
    if let Some(d) = &a.default {
        flags.push(format!("Default `{}`", default_text(d)));
    }
    if a.plan_modifiers
        .iter()
        .any(|m| m.description().contains("replaces"))
    {
        flags.push("Forces replacement".into());
    }
    let _ = writeln!(
        out,
        "- `{}` ({}, {}) {}",
        a.name,
        flags.join(", "),
        type_label(a),
        one_line(&a.description)
    );
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn default_text(v: &tfplugin::Value) -> String {
    match v {
        tfplugin::Value::String(s) => format!("\"{s}\""),
        tfplugin::Value::Number(n) => n.to_decimal_string(),
        tfplugin::Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn block_args(
    out: &mut String,
    b: &Block,
    heading: &str,
    nested: &mut Vec<(String, Block)>,
    prefix: &str,
) {
    let args: Vec<&Attribute> = b
        .attributes
        .iter()
        .filter(|a| a.required || a.optional)
        .collect();
    let computed: Vec<&Attribute> = b
        .attributes
        .iter()
        .filter(|a| a.computed && !a.optional)
        .collect();
    if !args.is_empty() || !b.blocks.is_empty() {
        let _ = writeln!(out, "{heading}\n");
        for a in &args {
            attr_line(out, a, if a.required { "Required" } else { "Optional" });
        }
        for nb in &b.blocks {
            let how = match (nb.nesting, nb.min_items, nb.max_items) {
                (Nesting::Single, 1, _) => "Required block".to_string(),
                (Nesting::Single | Nesting::Group, _, _) => "Optional block".to_string(),
                (_, 0, 0) => "Block list".to_string(),
                (_, min, 0) => format!("Block list, at least {min}"),
                (_, min, max) => format!("Block list, {min} to {max}"),
            };
            let anchor = format!("{prefix}{}", nb.name);
            let _ = writeln!(
                out,
                "- `{}` ({how}) {} See [{anchor}](#{}) below.",
                nb.name,
                one_line(&nb.block.description),
                anchor.replace('.', "-")
            );
            nested.push((anchor, nb.block.clone()));
        }
        out.push('\n');
    }
    if !computed.is_empty() && prefix.is_empty() {
        let _ = writeln!(
            out,
            "## Attribute Reference\n\nIn addition to the arguments above, these attributes are exported:\n"
        );
        for a in &computed {
            attr_line(out, a, "Computed");
        }
        out.push('\n');
    }
}

fn render(kind: &str, name: &str, block: &Block, example: &str, import: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "---\npage_title: \"{name} {kind} - flexus\"\nsubcategory: \"\"\ndescription: |-\n  {}\n---\n",
        first_sentence(&block.description)
    );
    let _ = writeln!(out, "# {name} ({kind})\n\n{}\n", block.description.trim());
    let _ = writeln!(out, "## Example Usage\n\n```terraform\n{}```\n", example);
    let mut nested = Vec::new();
    block_args(&mut out, block, "## Argument Reference", &mut nested, "");
    let mut i = 0;
    while i < nested.len() {
        let (anchor, b) = nested[i].clone();
        let mut sub = Vec::new();
        let mut section = String::new();
        block_args(
            &mut section,
            &b,
            &format!("### {anchor}"),
            &mut sub,
            &format!("{anchor}."),
        );
        out.push_str(&section);
        nested.extend(sub);
        i += 1;
    }
    if let Some(imp) = import {
        let _ = writeln!(out, "## Import\n\n{imp}");
    }
    out.trim_end().to_string() + "\n"
}

fn first_sentence(s: &str) -> String {
    let s = s.trim().replace('\n', " ");
    match s.find(". ") {
        Some(i) => s[..=i].to_string(),
        None => s,
    }
}

fn import_text(resource: &str) -> String {
    format!(
        "Import an existing object by `<namespace>/<name>` (or `<name>` when the provider sets a namespace):\n\n\
         ```shell\nterraform import {resource}.example team-a/inference\n```\n\n\
         With Terraform 1.5 and later, an `import` block works too:\n\n\
         ```terraform\nimport {{\n  to = {resource}.example\n  id = \"team-a/inference\"\n}}\n```"
    )
}

/// Every page, generated from the current schemas.
pub fn pages() -> Result<Vec<Page>, tfplugin::Error> {
    let provider_schema = FlexusProvider.schema()?;
    let mut index = String::new();
    let _ = writeln!(
        index,
        "---\npage_title: \"Provider: Flexus\"\ndescription: |-\n  Declare Flexus X instance pools and their autoscaling policies, enforced by the Flexus agent.\n---\n"
    );
    let _ = writeln!(
        index,
        "# Flexus Provider\n\nThe Flexus provider declares pools of Huawei Cloud Flexus X instances and their \
         autoscaling policies. It talks to a running `flexus-agent` (the control plane), which creates and \
         deletes the instances and enforces the policies. Terraform owns the declarations; the agent owns the \
         instances, so the agent scaling a pool is never drift, while a declaration changed outside Terraform is.\n\n\
         Policies are validated at plan time with the same code the agent runs (`flexus-policy`); each \
         problem points at the offending attribute.\n"
    );
    let _ = writeln!(index, "{INSTALLATION}");
    let _ = writeln!(
        index,
        "## Example Usage\n\n```terraform\n{PROVIDER_EXAMPLE}```\n"
    );
    let mut nested = Vec::new();
    block_args(
        &mut index,
        &provider_schema.block,
        "## Argument Reference",
        &mut nested,
        "",
    );
    let _ = writeln!(
        index,
        "## Environment\n\n| variable | instead of |\n|---|---|\n| `FLEXUS_ENDPOINT` | `endpoint` |\n| `FLEXUS_TOKEN` | `token` |\n| `FLEXUS_NAMESPACE` | `namespace` |"
    );

    let pool = crate::pool::PoolResource.schema()?.wire_schema().block;
    let policy = crate::policy::PolicyResource.schema()?.wire_schema().block;
    let pool_ds = crate::pool_data::PoolDataSource.schema()?.block;
    let sim_ds = crate::simulation::SimulationDataSource.schema()?.block;
    let flavors_ds = crate::flavors_data::FlavorsDataSource.schema()?.block;
    let rec_ds = crate::recommendation::RecommendationDataSource
        .schema()?
        .block;
    Ok(vec![
        Page {
            path: "index.md",
            text: index.trim_end().to_string() + "\n",
        },
        Page {
            path: "resources/x_pool.md",
            text: render(
                "Resource",
                "flexus_x_pool",
                &pool,
                POOL_EXAMPLE,
                Some(&import_text("flexus_x_pool")),
            ),
        },
        Page {
            path: "resources/autoscaling_policy.md",
            text: render(
                "Resource",
                "flexus_autoscaling_policy",
                &policy,
                POLICY_EXAMPLE,
                Some(&import_text("flexus_autoscaling_policy")),
            ),
        },
        Page {
            path: "data-sources/x_pool.md",
            text: render(
                "Data Source",
                "flexus_x_pool",
                &pool_ds,
                POOL_DATA_EXAMPLE,
                None,
            ),
        },
        Page {
            path: "data-sources/x_flavors.md",
            text: render(
                "Data Source",
                "flexus_x_flavors",
                &flavors_ds,
                FLAVORS_EXAMPLE,
                None,
            ),
        },
        Page {
            path: "data-sources/policy_simulation.md",
            text: render(
                "Data Source",
                "flexus_policy_simulation",
                &sim_ds,
                SIMULATION_EXAMPLE,
                None,
            ),
        },
        Page {
            path: "data-sources/policy_recommendation.md",
            text: render(
                "Data Source",
                "flexus_policy_recommendation",
                &rec_ds,
                RECOMMENDATION_EXAMPLE,
                None,
            ),
        },
    ])
}

/// Writes every page under `dir`.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let mut written = Vec::new();
    for p in pages()? {
        let path = dir.join(p.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, p.text)?;
        written.push(path);
    }
    Ok(written)
}
