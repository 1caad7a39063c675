//! Schema-level behaviour of the provider, checked without Terraform: the schemas load,
//! docs are current, policy validation points at attributes, plan rules hold offline.

use terraform_provider_flexus::{FlexusProvider, docs};
use tfplugin::{Provider, Resource};

#[test]
fn every_schema_loads_and_passes_terraforms_rules() {
    let p = FlexusProvider;
    p.schema().expect("provider schema");
    p.resources().expect("resource schemas");
    p.data_sources().expect("data source schemas");
}

#[test]
fn checked_in_docs_match_the_schemas() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let update = std::env::var_os("FLEXUS_UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for page in docs::pages().expect("docs render") {
        let path = root.join(page.path);
        if update {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &page.text).expect("write doc");
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != page.text {
            stale.push(page.path);
        }
    }
    assert!(
        stale.is_empty(),
        "docs are stale: {stale:?}; regenerate with `FLEXUS_UPDATE_DOCS=1 cargo test -p terraform-provider-flexus --test schema`"
    );
}

#[test]
fn pool_schema_marks_the_live_count_computed_and_the_name_as_forcing_replacement() {
    let s = terraform_provider_flexus::pool::PoolResource
        .schema()
        .expect("schema");
    let b = &s.schema.block;
    for computed in ["current_size", "ready_size", "instance_ids", "status", "id"] {
        let a = b.get_attribute(computed).expect(computed);
        assert!(a.computed && !a.optional, "{computed} is computed only");
    }
    let name = b.get_attribute("name").expect("name");
    assert!(name.required);
    assert!(!name.plan_modifiers.is_empty());
    assert!(b.get_block("spot").is_some() && b.get_block("root_volume").is_some());
}
