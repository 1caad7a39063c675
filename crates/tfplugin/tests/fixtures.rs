//! Request values captured from real Terraform (see `tests/fixtures/README.md`) decode with the
//! schema type, re-encode byte for byte, and plan through the framework.

#[allow(dead_code)]
#[path = "../examples/toyfs/provider.rs"]
mod toyfs;

use std::path::{Path, PathBuf};

use tfplugin::codec::msgpack;
use tfplugin::{AttrPath, Number, Type, Value};

fn fixture(version: &str, name: &str) -> Vec<u8> {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("terraform-{version}"))
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

fn item_type() -> Type {
    tfplugin::testing::resource_type(&toyfs::ItemResource).expect("toyfs_item schema")
}

fn get<'a>(v: &'a Value, attr: &str) -> &'a Value {
    v.attr(attr)
        .unwrap_or_else(|| panic!("attribute {attr} missing in {v:?}"))
}

#[test]
fn known_configuration_round_trips_byte_for_byte() {
    for version in ["1.15.5", "1.0.3"] {
        let bytes = fixture(version, "plan-a-config.msgpack");
        let v = msgpack::decode(&bytes, &item_type()).expect("decode");
        assert_eq!(get(&v, "name"), &Value::from("alpha"));
        assert_eq!(
            get(&v, "ratio").as_number(),
            Some(&Number::Float(0.1)),
            "0.1 reads as 0.1"
        );
        assert_eq!(get(&v, "rule").len(), Some(1));
        assert_eq!(
            msgpack::encode(&v, &item_type()).expect("encode"),
            bytes,
            "terraform {version}: lossless re-encode"
        );
    }
}

#[test]
fn refined_and_plain_unknowns_from_both_versions_decode_as_unknown() {
    for version in ["1.15.5", "1.0.3"] {
        let bytes = fixture(version, "plan-b-config.msgpack");
        let v = msgpack::decode(&bytes, &item_type()).expect("decode");
        assert!(get(&v, "name").is_unknown(), "{version}: name is unknown");
        assert!(get(&v, "size").is_unknown(), "{version}: size is unknown");
        let ratio = get(&v, "ratio").as_number().expect("ratio");
        assert_eq!(
            ratio.to_string(),
            "12345678901234567890.5",
            "big decimal kept exactly"
        );
        let again = msgpack::decode(
            &msgpack::encode(&v, &item_type()).expect("encode"),
            &item_type(),
        )
        .expect("decode");
        assert_eq!(again, v);
    }
    // 1.15.5 sends a refined unknown (ext type 12), 1.0.3 a plain one.
    assert!(
        fixture("1.15.5", "plan-b-config.msgpack")
            .windows(2)
            .any(|w| w == [0x0a, 0x0c])
    );
    assert!(
        fixture("1.0.3", "plan-b-config.msgpack")
            .windows(3)
            .any(|w| w == [0xd4, 0x00, 0x00])
    );
}

#[test]
fn captured_create_plans_unknown_computed_values_and_the_default() {
    for version in ["1.15.5", "1.0.3"] {
        let ty = item_type();
        let config =
            msgpack::decode(&fixture(version, "plan-b-config.msgpack"), &ty).expect("config");
        let proposed =
            msgpack::decode(&fixture(version, "plan-b-proposed.msgpack"), &ty).expect("proposed");
        let (planned, replace) =
            tfplugin::testing::plan(toyfs::ItemResource, &Value::Null, &proposed, &config)
                .expect("plan");
        assert!(get(&planned, "id").is_unknown());
        assert!(get(&planned, "revision").is_unknown());
        assert!(
            get(&planned, "name").is_unknown(),
            "configured unknown stays unknown"
        );
        assert_eq!(
            get(&planned, "color"),
            &Value::from("blue"),
            "default applied"
        );
        assert_eq!(
            get(&planned, "ratio"),
            get(&config, "ratio"),
            "configured number echoed unchanged"
        );
        assert!(replace.is_empty(), "nothing to replace on create");
    }
}

#[test]
fn changing_the_name_of_an_existing_item_requires_replacement() {
    let ty = item_type();
    let config = msgpack::decode(&fixture("1.15.5", "plan-a-config.msgpack"), &ty).expect("config");
    let mut prior = config.clone();
    if let Some(o) = prior.as_object_mut() {
        o.insert("id".into(), Value::from("item-1"));
        o.insert("revision".into(), Value::from(1i64));
        o.insert("color".into(), Value::from("blue"));
        o.insert("name".into(), Value::from("old"));
    }
    // Terraform's proposed value: config for arguments, prior for unset computed ones.
    let mut proposed = config.clone();
    if let Some(o) = proposed.as_object_mut() {
        o.insert("id".into(), Value::from("item-1"));
        o.insert("revision".into(), Value::from(1i64));
        o.insert("color".into(), Value::from("blue"));
    }
    let (planned, replace) =
        tfplugin::testing::plan(toyfs::ItemResource, &prior, &proposed, &config).expect("plan");
    assert_eq!(replace, vec![AttrPath::new("name")]);
    assert_eq!(
        get(&planned, "id"),
        &Value::from("item-1"),
        "use_state_for_unknown keeps the id"
    );
    assert!(
        get(&planned, "revision").is_unknown(),
        "revision changes on update"
    );

    // No change at all: the plan equals the prior state, nothing unknown.
    let (same, replace) = tfplugin::testing::plan(toyfs::ItemResource, &prior, &prior, &{
        let mut c = prior.clone();
        if let Some(o) = c.as_object_mut() {
            o.insert("id".into(), Value::Null);
            o.insert("revision".into(), Value::Null);
            o.insert("color".into(), Value::Null);
        }
        c
    })
    .expect("plan");
    assert!(same.equals(&prior), "no-op plan equals prior: {same:?}");
    assert!(replace.is_empty());
}
