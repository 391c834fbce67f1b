//! Golden bytes of the msgpack codec, checked against what go-cty writes and reads.

use tfplugin::value::{decode_msgpack, encode_msgpack};
use tfplugin::{Attribute, Block, NestedBlock, Number, Schema, Type, Value};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn encode(value: &Value, ty: &Type) -> String {
    hex(&encode_msgpack(value, ty).expect("encodes"))
}

fn round_trip(value: &Value, ty: &Type) -> Value {
    decode_msgpack(&encode_msgpack(value, ty).expect("encodes"), ty).expect("decodes")
}

#[test]
fn unknown_is_fixext1_zero() {
    assert_eq!(encode(&Value::Unknown, &Type::String), "d4 00 00");
    assert_eq!(
        encode(&Value::Unknown, &Type::list(Type::Number)),
        "d4 00 00"
    );
    assert_eq!(encode(&Value::Unknown, &Type::Dynamic), "d4 00 00");
    assert_eq!(
        decode_msgpack(&[0xd4, 0x00, 0x00], &Type::String).unwrap(),
        Value::Unknown
    );
}

#[test]
fn null_is_nil_for_every_type() {
    for ty in [
        Type::String,
        Type::Number,
        Type::Bool,
        Type::Dynamic,
        Type::map(Type::String),
        Type::object([("a", Type::Bool)]),
    ] {
        assert_eq!(encode(&Value::Null, &ty), "c0", "{ty}");
        assert_eq!(decode_msgpack(&[0xc0], &ty).unwrap(), Value::Null);
    }
}

#[test]
fn refined_unknown_is_read_as_unknown() {
    // Extension 12 with refinements {1: false (not null), 2: "pre" (string prefix)}.
    let refined = [
        0xc7, 0x07, 0x0c, 0x82, 0x01, 0xc2, 0x02, 0xa3, b'p', b'r', b'e',
    ];
    assert_eq!(
        decode_msgpack(&refined, &Type::String).unwrap(),
        Value::Unknown
    );
    let ty = Type::object([("name", Type::String)]);
    let mut object = vec![0x81, 0xa4, b'n', b'a', b'm', b'e'];
    object.extend_from_slice(&refined);
    assert_eq!(
        decode_msgpack(&object, &ty).unwrap(),
        Value::object([("name", Value::Unknown)])
    );
    // Never written back refined: a plain unknown.
    assert_eq!(encode(&Value::Unknown, &Type::String), "d4 00 00");
}

#[test]
fn objects_carry_every_attribute() {
    let ty = Type::object([("a", Type::String), ("b", Type::Number)]);
    // {"a": "x", "b": nil}, attributes in sorted order as go-cty writes them.
    assert_eq!(
        encode(&Value::object([("a", "x".into())]), &ty),
        "82 a1 61 a1 78 a1 62 c0"
    );
    let extra = Value::object([("a", "x".into()), ("zzz", true.into())]);
    assert!(
        encode_msgpack(&extra, &ty).is_err(),
        "attributes outside the schema are refused"
    );
}

#[test]
fn nested_list_and_set_blocks_are_empty_arrays_never_nil() {
    let schema = Schema::new(
        Block::new()
            .attribute(Attribute::string("id").computed())
            .block(NestedBlock::list(
                "rule",
                Block::new().attribute(Attribute::number("port").required()),
            ))
            .block(NestedBlock::set(
                "tag",
                Block::new().attribute(Attribute::string("key").required()),
            )),
    );
    let state = schema.null_object();
    // {"id": nil, "rule": [], "tag": []}
    assert_eq!(
        encode(&state, &schema.value_type()),
        "83 a2 69 64 c0 a4 72 75 6c 65 90 a3 74 61 67 90"
    );
    // A struct that leaves the blocks out gets the same shape.
    #[derive(serde::Serialize)]
    struct Partial {
        id: &'static str,
    }
    let from_struct = schema.to_value(&Partial { id: "x" }).unwrap();
    assert_eq!(from_struct.attribute("rule"), &Value::List(vec![]));
    assert_eq!(from_struct.attribute("tag"), &Value::Set(vec![]));
}

#[test]
fn dynamic_values_round_trip_with_their_type() {
    let ty = Type::Dynamic;
    let typed = Value::Dynamic(Type::list(Type::String), Box::new(Value::List(vec![])));
    let bytes = encode_msgpack(&typed, &ty).unwrap();
    // [bin(`["list","string"]`), []]
    assert_eq!(hex(&bytes[..3]), "92 c4 11");
    assert_eq!(&bytes[3..20], br#"["list","string"]"#);
    assert_eq!(bytes[20], 0x90);
    assert_eq!(decode_msgpack(&bytes, &ty).unwrap(), typed);

    let object = Value::object([("n", 1.into()), ("s", "x".into())]);
    let decoded = round_trip(&object, &ty);
    assert_eq!(
        decoded,
        Value::Dynamic(
            Type::object([("n", Type::Number), ("s", Type::String)]),
            Box::new(object)
        )
    );
    assert_eq!(round_trip(&decoded, &ty), decoded);
    assert_eq!(round_trip(&Value::Null, &ty), Value::Null);
}

#[test]
fn numbers_keep_their_precision() {
    assert_eq!(encode(&Value::from(42), &Type::Number), "2a");
    assert_eq!(encode(&Value::from(-1), &Type::Number), "ff");
    assert_eq!(
        encode(
            &Value::Number(Number::from_f64(1.5).unwrap()),
            &Type::Number
        ),
        "cb 3f f8 00 00 00 00 00 00"
    );
    // 0.1 is not a float64: go-cty sends it as a decimal string, and so do we.
    let tenth = Value::Number(Number::parse("0.1").unwrap());
    assert_eq!(encode(&tenth, &Type::Number), "a3 30 2e 31");
    assert_eq!(round_trip(&tenth, &Type::Number), tenth);
    // A float64 0.1 stays that exact float.
    let float_tenth = decode_msgpack(
        &[0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a],
        &Type::Number,
    )
    .unwrap();
    assert_ne!(float_tenth, tenth);
    assert_eq!(
        encode(&float_tenth, &Type::Number),
        "cb 3f b9 99 99 99 99 99 9a"
    );
    let big = Value::Number(Number::parse("123456789012345678901234567890.25").unwrap());
    assert_eq!(round_trip(&big, &Type::Number), big);
    let max = decode_msgpack(
        &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &Type::Number,
    )
    .unwrap();
    assert_eq!(max.as_number().unwrap().as_u64(), Some(u64::MAX));
    assert_eq!(round_trip(&max, &Type::Number), max);
    // Integers decoded from a float equal the integer.
    assert_eq!(
        decode_msgpack(&[0xcb, 0x40, 0x45, 0, 0, 0, 0, 0, 0], &Type::Number).unwrap(),
        Value::from(42)
    );
}

#[test]
fn collections_round_trip() {
    let ty = Type::object([
        ("list", Type::list(Type::String)),
        ("set", Type::set(Type::Number)),
        ("map", Type::map(Type::Bool)),
        ("tuple", Type::Tuple(vec![Type::String, Type::Number])),
    ]);
    let value = Value::object([
        ("list", Value::list(["a".into(), Value::Unknown])),
        ("set", Value::set([1.into(), 2.into()])),
        ("map", Value::map([("k", true.into())])),
        ("tuple", Value::Tuple(vec!["x".into(), 7.into()])),
    ]);
    assert_eq!(round_trip(&value, &ty), value);
}

#[test]
fn mismatches_name_the_path() {
    let ty = Type::object([("rule", Type::list(Type::object([("port", Type::Number)])))]);
    let value = Value::object([(
        "rule",
        Value::list([Value::object([("port", "eighty".into())])]),
    )]);
    let error = encode_msgpack(&value, &ty).unwrap_err();
    assert_eq!(error.path.to_string(), "rule[0].port");
}
