//! cty types and their JSON encoding, which is how schemas and `dynamic` values name types.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

/// A Terraform (cty) type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `string`.
    String,
    /// `number`: arbitrary precision.
    Number,
    /// `bool`.
    Bool,
    /// `dynamic`: any type, decided by the value. On the wire the value carries its type.
    Dynamic,
    /// `list(T)`.
    List(Box<Type>),
    /// `set(T)`.
    Set(Box<Type>),
    /// `map(T)`: string keys.
    Map(Box<Type>),
    /// `object({...})`: a fixed set of named attributes.
    Object(BTreeMap<String, Type>),
    /// `tuple([...])`: a fixed sequence of element types.
    Tuple(Vec<Type>),
}

/// A type's JSON that is not a cty type.
#[derive(Debug, thiserror::Error)]
#[error("invalid type JSON: {reason}")]
pub struct InvalidType {
    reason: String,
}

impl InvalidType {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl Type {
    /// `list(element)`.
    pub fn list(element: Type) -> Self {
        Self::List(Box::new(element))
    }

    /// `set(element)`.
    pub fn set(element: Type) -> Self {
        Self::Set(Box::new(element))
    }

    /// `map(element)`.
    pub fn map(element: Type) -> Self {
        Self::Map(Box::new(element))
    }

    /// `object({...})` from name/type pairs.
    pub fn object<N: Into<String>>(attributes: impl IntoIterator<Item = (N, Type)>) -> Self {
        Self::Object(
            attributes
                .into_iter()
                .map(|(name, ty)| (name.into(), ty))
                .collect(),
        )
    }

    /// The type as cty JSON, e.g. `["list","string"]`.
    pub fn to_json(&self) -> Json {
        match self {
            Self::String => Json::from("string"),
            Self::Number => Json::from("number"),
            Self::Bool => Json::from("bool"),
            Self::Dynamic => Json::from("dynamic"),
            Self::List(element) => Json::from(vec![Json::from("list"), element.to_json()]),
            Self::Set(element) => Json::from(vec![Json::from("set"), element.to_json()]),
            Self::Map(element) => Json::from(vec![Json::from("map"), element.to_json()]),
            Self::Object(attributes) => {
                let attributes: serde_json::Map<String, Json> = attributes
                    .iter()
                    .map(|(name, ty)| (name.clone(), ty.to_json()))
                    .collect();
                Json::from(vec![Json::from("object"), Json::Object(attributes)])
            }
            Self::Tuple(elements) => Json::from(vec![
                Json::from("tuple"),
                Json::from(elements.iter().map(Type::to_json).collect::<Vec<_>>()),
            ]),
        }
    }

    /// The type as cty JSON bytes, as schemas carry it.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Parses cty JSON bytes.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, InvalidType> {
        let json: Json =
            serde_json::from_slice(bytes).map_err(|error| InvalidType::new(error.to_string()))?;
        Self::from_json(&json)
    }

    /// Parses cty JSON. Object types with optional-attribute markers (a third array element,
    /// only seen in type constraints) are accepted and the markers ignored.
    pub fn from_json(json: &Json) -> Result<Self, InvalidType> {
        match json {
            Json::String(name) => match name.as_str() {
                "string" => Ok(Self::String),
                "number" => Ok(Self::Number),
                "bool" => Ok(Self::Bool),
                "dynamic" => Ok(Self::Dynamic),
                other => Err(InvalidType::new(format!(
                    "unknown primitive type {other:?}"
                ))),
            },
            Json::Array(parts) => {
                let kind = parts.first().and_then(Json::as_str).unwrap_or_default();
                let argument = parts
                    .get(1)
                    .ok_or_else(|| InvalidType::new(format!("{kind} needs an argument")))?;
                match kind {
                    "list" => Ok(Self::list(Self::from_json(argument)?)),
                    "set" => Ok(Self::set(Self::from_json(argument)?)),
                    "map" => Ok(Self::map(Self::from_json(argument)?)),
                    "object" => {
                        let attributes = argument.as_object().ok_or_else(|| {
                            InvalidType::new("object attributes must be a JSON object")
                        })?;
                        let attributes = attributes
                            .iter()
                            .map(|(name, ty)| Ok((name.clone(), Self::from_json(ty)?)))
                            .collect::<Result<_, InvalidType>>()?;
                        Ok(Self::Object(attributes))
                    }
                    "tuple" => {
                        let elements = argument.as_array().ok_or_else(|| {
                            InvalidType::new("tuple elements must be a JSON array")
                        })?;
                        Ok(Self::Tuple(
                            elements
                                .iter()
                                .map(Self::from_json)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    other => Err(InvalidType::new(format!(
                        "unknown type constructor {other:?}"
                    ))),
                }
            }
            other => Err(InvalidType::new(format!("unexpected {other}"))),
        }
    }

    /// The element type of a list, set or map.
    pub fn element_type(&self) -> Option<&Type> {
        match self {
            Self::List(element) | Self::Set(element) | Self::Map(element) => Some(element),
            _ => None,
        }
    }

    /// How the registry docs name the type: `String`, `List of String`, `Map of Number`.
    pub fn friendly_name(&self) -> String {
        match self {
            Self::String => "String".into(),
            Self::Number => "Number".into(),
            Self::Bool => "Boolean".into(),
            Self::Dynamic => "Dynamic".into(),
            Self::List(element) => format!("List of {}", element.friendly_name()),
            Self::Set(element) => format!("Set of {}", element.friendly_name()),
            Self::Map(element) => format!("Map of {}", element.friendly_name()),
            Self::Object(_) => "Object".into(),
            Self::Tuple(_) => "Tuple".into(),
        }
    }
}

impl fmt::Display for Type {
    /// The cty JSON form, as Terraform's own error messages show types.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let ty = Type::object([
            ("name", Type::String),
            ("ports", Type::list(Type::Number)),
            ("labels", Type::map(Type::String)),
            ("flags", Type::set(Type::Bool)),
            ("pair", Type::Tuple(vec![Type::String, Type::Dynamic])),
        ]);
        let json = String::from_utf8(ty.to_json_bytes()).unwrap();
        assert_eq!(
            json,
            r#"["object",{"flags":["set","bool"],"labels":["map","string"],"name":"string","pair":["tuple",["string","dynamic"]],"ports":["list","number"]}]"#
        );
        assert_eq!(Type::from_json_bytes(json.as_bytes()).unwrap(), ty);
    }

    #[test]
    fn optional_attribute_markers_are_accepted() {
        let ty = Type::from_json_bytes(br#"["object",{"a":"string"},["a"]]"#).unwrap();
        assert_eq!(ty, Type::object([("a", Type::String)]));
        assert!(Type::from_json_bytes(br#""float""#).is_err());
        assert!(Type::from_json_bytes(br#"["list"]"#).is_err());
    }
}
