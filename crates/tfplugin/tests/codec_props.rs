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

/// Found by the `codec` fuzz target: numbers that JSON text held exactly came back from
/// `json::encode` as the nearest f64 (or not at all beyond f64's range).
#[test]
fn json_encode_keeps_numbers_beyond_f64_exact_so_decode_gives_them_back() {
    for text in [
        "574850295103181631816787",
        "-8839346831616908209618446744073709551616",
        "6.4801817616949223372036854775808e-156",
        "11821810695066757170.1",
        "4675085520250.557837310",
        "42528449223372036854775808e308",
        "-1e400",
    ] {
        let ty = Type::list(Type::Number);
        let parsed = json::parse_exact(format!("[{text}]").as_bytes()).expect("parse");
        let value = json::decode(&parsed, &ty, json::Extra::Reject).expect("decode");
        let encoded = json::encode(&value, false).expect("every decoded number encodes");
        let back = json::decode(&encoded, &ty, json::Extra::Reject).expect("decode again");
        assert_eq!(back, value, "{text}");
        let through_text = json::parse_exact(encoded.to_string().as_bytes())
            .and_then(|j| json::decode(&j, &ty, json::Extra::Reject))
            .expect("decode the text");
        assert_eq!(through_text, value, "{text}");
    }
    // What f64 holds exactly stays a JSON number.
    let v = Value::List(vec![
        Value::Number(Number::Decimal("0.1".into())),
        Value::Number(Number::Float(2.5)),
        Value::Number(Number::UInt(u64::MAX)),
    ]);
    assert_eq!(
        json::encode(&v, false).unwrap().to_string(),
        format!("[0.1,2.5,{}]", u64::MAX)
    );
}

/// Model conversion still reads a number with more precision than f64 as the nearest
/// f64 (a model's fields are f64/i64), not as a string.
#[test]
fn a_model_reads_a_high_precision_number_as_its_nearest_f64() {
    #[derive(serde::Deserialize)]
    struct Price {
        max_price: f64,
    }
    let v = Value::Object(BTreeMap::from([(
        "max_price".to_owned(),
        Value::Number(Number::Decimal("0.123456789012345678901234".into())),
    )]));
    let p: Price = tfplugin::model::from_value(&v, "price").expect("converts");
    assert_eq!(
        p.max_price,
        "0.123456789012345678901234".parse::<f64>().unwrap()
    );
}
