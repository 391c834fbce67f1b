//! The msgpack encoding Terraform uses for every `DynamicValue` it sends, following go-cty's
//! `cty/msgpack`.
//!
//! - null is nil; unknown is any extension (we write fixext1 type 0: `d4 00 00`; refined
//!   unknowns, extension 12, are read as plain unknowns, see the module docs of
//!   [`crate::value`]);
//! - numbers are integers, float64s, or decimal strings for values neither can hold exactly;
//! - objects are maps carrying every attribute of their type;
//! - `dynamic` positions hold a 2-array `[type JSON as bytes, value]`.

use std::collections::BTreeMap;

use rmpv::Value as Msgpack;

use super::{Number, Type, Value};
use crate::path::AttributePath;

/// A value that does not match its type, or bytes that are not msgpack.
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("at {path}: ") })]
pub struct MsgpackError {
    /// Where in the value the problem is.
    pub path: AttributePath,
    /// What is wrong.
    pub message: String,
}

fn error(path: &AttributePath, message: impl Into<String>) -> MsgpackError {
    MsgpackError {
        path: path.clone(),
        message: message.into(),
    }
}

/// Decodes msgpack bytes as a value of `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, MsgpackError> {
    let root = AttributePath::empty();
    let mut reader = bytes;
    let raw = rmpv::decode::read_value(&mut reader)
        .map_err(|e| error(&root, format!("invalid msgpack: {e}")))?;
    from_msgpack(raw, ty, &root)
}

/// Encodes a value of `ty` as msgpack bytes.
pub fn encode_msgpack(value: &Value, ty: &Type) -> Result<Vec<u8>, MsgpackError> {
    let raw = to_msgpack(value, ty, &AttributePath::empty())?;
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &raw).map_err(|e| {
        error(
            &AttributePath::empty(),
            format!("msgpack write failed: {e}"),
        )
    })?;
    Ok(bytes)
}

fn from_msgpack(raw: Msgpack, ty: &Type, path: &AttributePath) -> Result<Value, MsgpackError> {
    match (raw, ty) {
        (Msgpack::Nil, _) => Ok(Value::Null),
        (Msgpack::Ext(..), _) => Ok(Value::Unknown),
        (Msgpack::Array(mut pair), Type::Dynamic) if pair.len() == 2 => {
            let inner = pair.pop().unwrap_or(Msgpack::Nil);
            let type_json = match pair.pop() {
                Some(Msgpack::Binary(bytes)) => bytes,
                Some(Msgpack::String(text)) => text.into_bytes(),
                _ => return Err(error(path, "dynamic value without a type")),
            };
            let concrete =
                Type::from_json_bytes(&type_json).map_err(|e| error(path, e.to_string()))?;
            let inner = from_msgpack(inner, &concrete, path)?;
            Ok(Value::Dynamic(concrete, Box::new(inner)))
        }
        (raw, Type::Dynamic) => Err(error(
            path,
            format!("expected a [type, value] pair for a dynamic value, got {raw}"),
        )),
        (Msgpack::Boolean(flag), Type::Bool) => Ok(Value::Bool(flag)),
        (Msgpack::String(text), Type::String) => text
            .into_str()
            .map(Value::String)
            .ok_or_else(|| error(path, "string is not valid UTF-8")),
        (Msgpack::Integer(integer), Type::Number) => integer
            .as_i64()
            .map(Number::from)
            .or_else(|| integer.as_u64().map(Number::from))
            .map(Value::Number)
            .ok_or_else(|| error(path, "integer out of range")),
        (Msgpack::F64(float), Type::Number) => float_number(float, path),
        (Msgpack::F32(float), Type::Number) => float_number(f64::from(float), path),
        (Msgpack::String(text), Type::Number) => {
            let text = text
                .into_str()
                .ok_or_else(|| error(path, "number is not valid UTF-8"))?;
            Number::parse(&text)
                .map(Value::Number)
                .map_err(|e| error(path, e.to_string()))
        }
        (Msgpack::Array(items), Type::List(element)) => {
            Ok(Value::List(elements(items, element, path)?))
        }
        (Msgpack::Array(items), Type::Set(element)) => {
            Ok(Value::Set(elements(items, element, path)?))
        }
        (Msgpack::Array(items), Type::Tuple(types)) => {
            if items.len() != types.len() {
                return Err(error(
                    path,
                    format!("tuple needs {} elements, got {}", types.len(), items.len()),
                ));
            }
            let values = items
                .into_iter()
                .zip(types)
                .enumerate()
                .map(|(index, (item, ty))| from_msgpack(item, ty, &path.clone().index(index)))
                .collect::<Result<_, _>>()?;
            Ok(Value::Tuple(values))
        }
        (Msgpack::Map(entries), Type::Map(element)) => {
            let mut map = BTreeMap::new();
            for (key, item) in entries {
                let key = key_string(key, path)?;
                let item = from_msgpack(item, element, &path.clone().key(key.clone()))?;
                map.insert(key, item);
            }
            Ok(Value::Map(map))
        }
        (Msgpack::Map(entries), Type::Object(attributes)) => {
            let mut object: BTreeMap<String, Value> = attributes
                .keys()
                .map(|name| (name.clone(), Value::Null))
                .collect();
            for (key, item) in entries {
                let name = key_string(key, path)?;
                let ty = attributes
                    .get(&name)
                    .ok_or_else(|| error(path, format!("unsupported attribute {name:?}")))?;
                let item = from_msgpack(item, ty, &path.clone().attribute(name.clone()))?;
                object.insert(name, item);
            }
            Ok(Value::Object(object))
        }
        (raw, ty) => Err(error(path, format!("expected {ty}, got msgpack {raw}"))),
    }
}

fn float_number(float: f64, path: &AttributePath) -> Result<Value, MsgpackError> {
    Number::from_f64(float)
        .map(Value::Number)
        .ok_or_else(|| error(path, "NaN and infinite numbers are not supported"))
}

fn elements(
    items: Vec<Msgpack>,
    element: &Type,
    path: &AttributePath,
) -> Result<Vec<Value>, MsgpackError> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| from_msgpack(item, element, &path.clone().index(index)))
        .collect()
}

fn key_string(key: Msgpack, path: &AttributePath) -> Result<String, MsgpackError> {
    match key {
        Msgpack::String(text) => text
            .into_str()
            .ok_or_else(|| error(path, "map key is not valid UTF-8")),
        other => Err(error(
            path,
            format!("map key must be a string, got {other}"),
        )),
    }
}

/// The fixext1 extension go-cty writes for an unknown value.
fn unknown() -> Msgpack {
    Msgpack::Ext(0, vec![0])
}

fn to_msgpack(value: &Value, ty: &Type, path: &AttributePath) -> Result<Msgpack, MsgpackError> {
    match (value, ty) {
        (Value::Null, _) => Ok(Msgpack::Nil),
        (Value::Unknown, _) => Ok(unknown()),
        (Value::Dynamic(concrete, inner), Type::Dynamic) => {
            if inner.is_null() {
                return Ok(Msgpack::Nil);
            }
            if inner.is_unknown() {
                return Ok(unknown());
            }
            Ok(Msgpack::Array(vec![
                Msgpack::Binary(concrete.to_json_bytes()),
                to_msgpack(inner, concrete, path)?,
            ]))
        }
        (value, Type::Dynamic) => {
            let concrete = value.infer_type();
            Ok(Msgpack::Array(vec![
                Msgpack::Binary(concrete.to_json_bytes()),
                to_msgpack(value, &concrete, path)?,
            ]))
        }
        (Value::Dynamic(_, inner), ty) => to_msgpack(inner, ty, path),
        (Value::Bool(flag), Type::Bool) => Ok(Msgpack::Boolean(*flag)),
        (Value::String(text), Type::String) => Ok(Msgpack::from(text.as_str())),
        (Value::Number(number), Type::Number) => Ok(number_to_msgpack(number)),
        (
            Value::List(items) | Value::Set(items) | Value::Tuple(items),
            Type::List(element) | Type::Set(element),
        ) => items
            .iter()
            .enumerate()
            .map(|(index, item)| to_msgpack(item, element, &path.clone().index(index)))
            .collect::<Result<_, _>>()
            .map(Msgpack::Array),
        (Value::List(items) | Value::Tuple(items), Type::Tuple(types)) => {
            if items.len() != types.len() {
                return Err(error(
                    path,
                    format!("tuple needs {} elements, got {}", types.len(), items.len()),
                ));
            }
            items
                .iter()
                .zip(types)
                .enumerate()
                .map(|(index, (item, ty))| to_msgpack(item, ty, &path.clone().index(index)))
                .collect::<Result<_, _>>()
                .map(Msgpack::Array)
        }
        (Value::Map(entries) | Value::Object(entries), Type::Map(element)) => entries
            .iter()
            .map(|(key, item)| {
                Ok((
                    Msgpack::from(key.as_str()),
                    to_msgpack(item, element, &path.clone().key(key.clone()))?,
                ))
            })
            .collect::<Result<_, _>>()
            .map(Msgpack::Map),
        (Value::Object(entries) | Value::Map(entries), Type::Object(attributes)) => {
            if let Some(extra) = entries.keys().find(|name| !attributes.contains_key(*name)) {
                return Err(error(
                    path,
                    format!("attribute {extra:?} is not in the schema"),
                ));
            }
            attributes
                .iter()
                .map(|(name, ty)| {
                    let item = entries.get(name).unwrap_or(&Value::Null);
                    Ok((
                        Msgpack::from(name.as_str()),
                        to_msgpack(item, ty, &path.clone().attribute(name.clone()))?,
                    ))
                })
                .collect::<Result<_, _>>()
                .map(Msgpack::Map)
        }
        (value, ty) => Err(error(
            path,
            format!(
                "a value of type {} cannot be encoded as {ty}",
                value.infer_type()
            ),
        )),
    }
}

/// go-cty's rule: an integer when one fits, else a float64 when exact, else decimal text.
fn number_to_msgpack(number: &Number) -> Msgpack {
    if let Some(integer) = number.as_i64() {
        Msgpack::from(integer)
    } else if let Some(float) = number.as_exact_f64() {
        Msgpack::F64(float)
    } else {
        Msgpack::from(number.as_str())
    }
}
