//! Property tests of the value codecs: any value of any type survives msgpack, and any known
//! value survives JSON (text → parse_exact → decode), numbers included.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tfplugin::codec::{json, msgpack};
use tfplugin::{Number, Type, Value};

fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![Just(Type::String), Just(Type::Number), Just(Type::Bool)];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::btree_map("[a-z_]{1,6}", inner.clone(), 0..4).prop_map(Type::Object),
            prop::collection::vec(inner, 0..3).prop_map(Type::Tuple),
        ]
    })
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::Int),
        any::<u64>().prop_map(Number::UInt),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Number::Float),
        ("-?[1-9][0-9]{0,30}", "[0-9]{0,25}[1-9]")
            .prop_map(|(i, f)| Number::Decimal(format!("{i}.{f}"))),
        "-?[1-9][0-9]{19,40}".prop_map(Number::Decimal),
    ]
}

/// A value of `ty`; `unknowns` allows unknown values anywhere.
fn arb_value(ty: Type, unknowns: bool) -> BoxedStrategy<Value> {
    let known: BoxedStrategy<Value> = match ty {
        Type::String => ".{0,12}".prop_map(Value::String).boxed(),
        Type::Number => arb_number().prop_map(Value::Number).boxed(),
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Dynamic => Just(Value::Null).boxed(),
        Type::List(t) => prop::collection::vec(arb_value(*t, unknowns), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(t) => prop::collection::vec(arb_value(*t, unknowns), 0..4)
            .prop_map(Value::Set)
            .boxed(),
        Type::Map(t) => prop::collection::btree_map("[a-z]{0,5}", arb_value(*t, unknowns), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Object(attrs) => {
            let parts: Vec<BoxedStrategy<(String, Value)>> = attrs
                .into_iter()
                .map(|(k, t)| {
                    arb_value(t, unknowns)
                        .prop_map(move |v| (k.clone(), v))
                        .boxed()
                })
                .collect();
            parts
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<BTreeMap<_, _>>()))
                .boxed()
        }
        Type::Tuple(ts) => {
            let parts: Vec<BoxedStrategy<Value>> =
                ts.into_iter().map(|t| arb_value(t, unknowns)).collect();
            parts.prop_map(Value::Tuple).boxed()
        }
    };
    if unknowns {
        prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
    } else {
        prop_oneof![1 => Just(Value::Null), 6 => known].boxed()
    }
}

fn typed_value(unknowns: bool) -> impl Strategy<Value = (Type, Value)> {
    arb_type()
        .prop_flat_map(move |t| arb_value(t.clone(), unknowns).prop_map(move |v| (t.clone(), v)))
}

/// Writes a known value as JSON text with numbers verbatim (as Terraform writes state).
fn to_json_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Unknown => unreachable!("no unknowns in JSON"),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Number(n) => match n {
            Number::Float(x) => format!("{x:e}"),
            other => other.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::List(xs) | Value::Set(xs) | Value::Tuple(xs) => {
            format!(
                "[{}]",
                xs.iter().map(to_json_text).collect::<Vec<_>>().join(",")
            )
        }
        Value::Map(m) | Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!(
                    "{}:{}",
                    serde_json::to_string(k).unwrap_or_default(),
                    to_json_text(x)
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Dynamic(t, x) => {
            format!("{{\"type\":{},\"value\":{}}}", t.to_json(), to_json_text(x))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn msgpack_round_trips_every_value((ty, v) in typed_value(true)) {
        let bytes = msgpack::encode(&v, &ty).expect("encode");
        let back = msgpack::decode(&bytes, &ty).expect("decode");
        prop_assert_eq!(back, v);
    }

    #[test]
    fn numbers_keep_their_exact_value_through_msgpack(n in arb_number()) {
        let v = Value::Number(n.clone());
        let back = msgpack::decode(&msgpack::encode(&v, &Type::Number).expect("encode"), &Type::Number).expect("decode");
        let m = back.as_number().expect("number").clone();
        prop_assert_eq!(m.to_decimal_string().parse::<f64>().ok(), n.to_decimal_string().parse::<f64>().ok());
        prop_assert_eq!(m, n);
    }

    #[test]
    fn json_state_text_round_trips_every_known_value((ty, v) in typed_value(false)) {
        let text = to_json_text(&v);
        let parsed = json::parse_exact(text.as_bytes()).expect("parse");
        let back = json::decode(&parsed, &ty, json::Extra::Reject).expect("decode");
        prop_assert_eq!(back, v);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), ty in arb_type()) {
        let _ = msgpack::decode(&bytes, &ty);
        let _ = json::parse_exact(&bytes);
    }
}
