//! Decoding cty JSON, the form Terraform stores state in and hands to `UpgradeResourceState`.
//!
//! Numbers are read from their literal text, so big integers and decimals survive exactly
//! (`serde_json` alone would round them through `f64`). Attributes the type does not know are
//! skipped: they are attributes a newer schema removed, and refusing them would make every
//! such schema change a state-breaking one. Missing attributes become null.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::{Number, Type, Value};
use crate::path::AttributePath;

/// JSON that does not fit the type it is decoded as.
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("at {path}: ") })]
pub struct JsonError {
    /// Where in the value the problem is.
    pub path: AttributePath,
    /// What is wrong.
    pub message: String,
}

fn error(path: &AttributePath, message: impl Into<String>) -> JsonError {
    JsonError {
        path: path.clone(),
        message: message.into(),
    }
}

/// Decodes cty JSON bytes as a value of `ty`.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, JsonError> {
    let root = AttributePath::empty();
    let raw: &RawValue =
        serde_json::from_slice(bytes).map_err(|e| error(&root, format!("invalid JSON: {e}")))?;
    from_raw(raw, ty, &root)
}

fn parse<'a, T: serde::Deserialize<'a>>(
    raw: &'a RawValue,
    path: &AttributePath,
    what: &str,
) -> Result<T, JsonError> {
    serde_json::from_str(raw.get()).map_err(|e| error(path, format!("expected {what}: {e}")))
}

fn from_raw(raw: &RawValue, ty: &Type, path: &AttributePath) -> Result<Value, JsonError> {
    let text = raw.get().trim();
    if text == "null" {
        return Ok(Value::Null);
    }
    match ty {
        Type::Dynamic => {
            let wrapper: BTreeMap<String, &RawValue> =
                parse(raw, path, "a {\"type\", \"value\"} object")?;
            let (Some(type_json), Some(inner)) = (wrapper.get("type"), wrapper.get("value")) else {
                return Err(error(path, "a dynamic value needs \"type\" and \"value\""));
            };
            let concrete = Type::from_json_bytes(type_json.get().as_bytes())
                .map_err(|e| error(path, e.to_string()))?;
            let inner = from_raw(inner, &concrete, path)?;
            Ok(Value::Dynamic(concrete, Box::new(inner)))
        }
        Type::String => parse(raw, path, "a string").map(Value::String),
        Type::Bool => parse(raw, path, "a bool").map(Value::Bool),
        Type::Number => {
            // Terraform writes numbers as literals; some older states hold them as strings.
            let literal = if text.starts_with('"') {
                parse::<String>(raw, path, "a number")?
            } else {
                text.to_owned()
            };
            Number::parse(&literal)
                .map(Value::Number)
                .map_err(|e| error(path, e.to_string()))
        }
        Type::List(element) | Type::Set(element) => {
            let items: Vec<&RawValue> = parse(raw, path, "an array")?;
            let values = items
                .into_iter()
                .enumerate()
                .map(|(index, item)| from_raw(item, element, &path.clone().index(index)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::Set(_)) {
                Value::Set(values)
            } else {
                Value::List(values)
            })
        }
        Type::Tuple(types) => {
            let items: Vec<&RawValue> = parse(raw, path, "an array")?;
            if items.len() != types.len() {
                return Err(error(
                    path,
                    format!("tuple needs {} elements, got {}", types.len(), items.len()),
                ));
            }
            items
                .into_iter()
                .zip(types)
                .enumerate()
                .map(|(index, (item, ty))| from_raw(item, ty, &path.clone().index(index)))
                .collect::<Result<_, _>>()
                .map(Value::Tuple)
        }
        Type::Map(element) => {
            let entries: BTreeMap<String, &RawValue> = parse(raw, path, "an object")?;
            entries
                .into_iter()
                .map(|(key, item)| {
                    let value = from_raw(item, element, &path.clone().key(key.clone()))?;
                    Ok((key, value))
                })
                .collect::<Result<_, _>>()
                .map(Value::Map)
        }
        Type::Object(attributes) => {
            let mut entries: BTreeMap<String, &RawValue> = parse(raw, path, "an object")?;
            attributes
                .iter()
                .map(|(name, ty)| {
                    let value = match entries.remove(name) {
                        Some(item) => from_raw(item, ty, &path.clone().attribute(name.clone()))?,
                        None => Value::Null,
                    };
                    Ok((name.clone(), value))
                })
                .collect::<Result<_, _>>()
                .map(Value::Object)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_json_decodes_exactly() {
        let ty = Type::object([
            ("id", Type::String),
            ("big", Type::Number),
            ("ratio", Type::Number),
            ("tags", Type::map(Type::String)),
            ("ports", Type::set(Type::Number)),
            ("extra", Type::Dynamic),
            ("added_later", Type::Bool),
        ]);
        let json = br#"{"id":"x","big":123456789012345678901234567890,"ratio":0.1,"tags":{"a":"b"},
            "ports":[80,443],"extra":{"type":["list","string"],"value":[]},"removed":true}"#;
        let value = decode_json(json, &ty).unwrap();
        assert_eq!(
            value.attribute("big").as_number().unwrap().as_str(),
            "123456789012345678901234567890"
        );
        assert_eq!(
            value.attribute("ratio").as_number().unwrap().as_str(),
            "0.1"
        );
        assert_eq!(
            value.attribute("extra"),
            &Value::Dynamic(Type::list(Type::String), Box::new(Value::List(vec![])))
        );
        assert_eq!(value.attribute("added_later"), &Value::Null);
        assert!(value.as_object().unwrap().get("removed").is_none());
    }

    #[test]
    fn mismatches_name_the_path() {
        let ty = Type::object([("ports", Type::list(Type::Number))]);
        let err = decode_json(br#"{"ports":[1,"x"]}"#, &ty).unwrap_err();
        assert_eq!(err.path.to_string(), "ports[1]");
    }
}
