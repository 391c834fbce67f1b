//! Terraform values: the cty value model with null and unknown, its msgpack and JSON
//! encodings, and serde conversion to and from Rust structs.
//!
//! A [`Value`] does not carry its type: the schema does, and every codec here is driven by a
//! [`Type`]. The exception is `dynamic`, where the wire value carries a type and
//! [`Value::Dynamic`] keeps it so the value goes back exactly as it came.
//!
//! Unknown values may be *refined* by Terraform (msgpack extension 12: not null, string
//! prefix, number or length bounds). The decoder accepts refinements and drops them: this
//! crate never emits a refinement, so a planned unknown never promises more than "unknown",
//! which Terraform accepts for any configuration value and which apply can always honour.
//! Keeping them would oblige apply to satisfy bounds the provider never looked at.

mod json;
mod msgpack;
mod number;
mod typed;
mod types;

use std::collections::BTreeMap;

pub use json::{JsonError, decode_json};
pub use msgpack::{MsgpackError, decode_msgpack, encode_msgpack};
pub use number::{InvalidNumber, Number};
pub use typed::{MaybeUnknown, TypedError, from_value, to_value};
pub use types::{InvalidType, Type};

use crate::path::{AttributePath, PathStep};

/// A Terraform value.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// Null, of whatever type the position has.
    #[default]
    Null,
    /// Not known until apply.
    Unknown,
    /// A `bool`.
    Bool(bool),
    /// A `number`.
    Number(Number),
    /// A `string`.
    String(String),
    /// A `list`, in order.
    List(Vec<Value>),
    /// A `set`; compared without regard to order.
    Set(Vec<Value>),
    /// A `map` with string keys.
    Map(BTreeMap<String, Value>),
    /// An `object`; encoded with every attribute of its type, absent ones as null.
    Object(BTreeMap<String, Value>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A value in a `dynamic` position, with the concrete type it travels with.
    Dynamic(Type, Box<Value>),
}

impl PartialEq for Value {
    /// Structural equality as cty defines it: sets ignore order, numbers compare exactly,
    /// unknown equals unknown (same knowledge), and `dynamic` values are equal when both
    /// their types and their values are.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Null, Self::Null) | (Self::Unknown, Self::Unknown) => true,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Number(a), Self::Number(b)) => a == b,
            (Self::String(a), Self::String(b)) => a == b,
            (Self::List(a), Self::List(b)) | (Self::Tuple(a), Self::Tuple(b)) => a == b,
            (Self::Set(a), Self::Set(b)) => {
                a.len() == b.len()
                    && a.iter().all(|item| b.contains(item))
                    && b.iter().all(|item| a.contains(item))
            }
            (Self::Map(a), Self::Map(b)) | (Self::Object(a), Self::Object(b)) => a == b,
            (Self::Dynamic(ta, a), Self::Dynamic(tb, b)) => ta == tb && a == b,
            _ => false,
        }
    }
}

impl Value {
    /// An object from name/value pairs.
    pub fn object<N: Into<String>>(attributes: impl IntoIterator<Item = (N, Value)>) -> Self {
        Self::Object(
            attributes
                .into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
        )
    }

    /// A map from key/value pairs.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Self {
        Self::Map(
            entries
                .into_iter()
                .map(|(key, value)| (key.into(), value))
                .collect(),
        )
    }

    /// A list.
    pub fn list(elements: impl IntoIterator<Item = Value>) -> Self {
        Self::List(elements.into_iter().collect())
    }

    /// A set.
    pub fn set(elements: impl IntoIterator<Item = Value>) -> Self {
        Self::Set(elements.into_iter().collect())
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        match self {
            Self::Null => true,
            Self::Dynamic(_, inner) => inner.is_null(),
            _ => false,
        }
    }

    /// Whether the value itself is unknown (elements of a known collection may still be).
    pub fn is_unknown(&self) -> bool {
        match self {
            Self::Unknown => true,
            Self::Dynamic(_, inner) => inner.is_unknown(),
            _ => false,
        }
    }

    /// Whether the value and everything inside it is known.
    pub fn is_wholly_known(&self) -> bool {
        match self.unwrap_dynamic() {
            Self::Unknown => false,
            Self::List(items) | Self::Set(items) | Self::Tuple(items) => {
                items.iter().all(Self::is_wholly_known)
            }
            Self::Map(items) | Self::Object(items) => items.values().all(Self::is_wholly_known),
            _ => true,
        }
    }

    /// A copy with every unknown (at any depth) replaced by null. Apply-time code uses it to
    /// read a plan into a struct whose computed fields are `Option`s: the values still unknown
    /// are exactly the ones apply must fill in.
    pub fn unknowns_as_null(&self) -> Value {
        match self {
            Self::Unknown => Self::Null,
            Self::List(items) => Self::List(items.iter().map(Self::unknowns_as_null).collect()),
            Self::Set(items) => Self::Set(items.iter().map(Self::unknowns_as_null).collect()),
            Self::Tuple(items) => Self::Tuple(items.iter().map(Self::unknowns_as_null).collect()),
            Self::Map(entries) => Self::Map(
                entries
                    .iter()
                    .map(|(key, item)| (key.clone(), item.unknowns_as_null()))
                    .collect(),
            ),
            Self::Object(entries) => Self::Object(
                entries
                    .iter()
                    .map(|(key, item)| (key.clone(), item.unknowns_as_null()))
                    .collect(),
            ),
            Self::Dynamic(ty, inner) => {
                Self::Dynamic(ty.clone(), Box::new(inner.unknowns_as_null()))
            }
            known => known.clone(),
        }
    }

    /// The value without its `dynamic` wrapper, for code that only looks at content.
    pub fn unwrap_dynamic(&self) -> &Value {
        match self {
            Self::Dynamic(_, inner) => inner.unwrap_dynamic(),
            other => other,
        }
    }

    /// The string, when this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_dynamic() {
            Self::String(text) => Some(text),
            _ => None,
        }
    }

    /// The number, when this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self.unwrap_dynamic() {
            Self::Number(number) => Some(number),
            _ => None,
        }
    }

    /// The bool, when this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_dynamic() {
            Self::Bool(flag) => Some(*flag),
            _ => None,
        }
    }

    /// The attributes, when this is a known object (or map).
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self.unwrap_dynamic() {
            Self::Object(attributes) | Self::Map(attributes) => Some(attributes),
            _ => None,
        }
    }

    /// The elements, when this is a known list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Self::List(items) | Self::Set(items) | Self::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The number of elements of a known collection, or characters of a known string.
    pub fn length(&self) -> Option<usize> {
        match self.unwrap_dynamic() {
            Self::String(text) => Some(text.chars().count()),
            Self::List(items) | Self::Set(items) | Self::Tuple(items) => Some(items.len()),
            Self::Map(items) | Self::Object(items) => Some(items.len()),
            _ => None,
        }
    }

    /// An attribute of a known object; null when absent, so callers need not care whether
    /// an object was built with every attribute.
    pub fn attribute(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.as_object()
            .and_then(|attributes| attributes.get(name))
            .unwrap_or(&NULL)
    }

    /// The value at a path, or `None` when the path leaves known values.
    pub fn get(&self, path: &AttributePath) -> Option<&Value> {
        path.steps()
            .iter()
            .try_fold(self, |value, step| match (value.unwrap_dynamic(), step) {
                (Self::Object(attributes), PathStep::Attribute(name)) => attributes.get(name),
                (Self::Map(entries), PathStep::Key(key)) => entries.get(key),
                (Self::List(items) | Self::Tuple(items), PathStep::Index(index)) => {
                    usize::try_from(*index)
                        .ok()
                        .and_then(|index| items.get(index))
                }
                _ => None,
            })
    }

    /// A mutable reference to an object attribute, inserting null if absent. `None` when this
    /// is not an object.
    pub fn attribute_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Self::Object(attributes) => {
                Some(attributes.entry(name.to_owned()).or_insert(Value::Null))
            }
            Self::Dynamic(_, inner) => inner.attribute_mut(name),
            _ => None,
        }
    }

    /// Sets the value at a path inside known objects, maps, lists and tuples. Returns whether
    /// the path existed (objects gain missing attributes).
    pub fn set_at(&mut self, path: &AttributePath, new_value: Value) -> bool {
        let mut current = self;
        for step in path.steps() {
            let next = match (current, step) {
                (Self::Dynamic(_, inner), step) => match (inner.as_mut(), step) {
                    (Self::Object(attributes), PathStep::Attribute(name)) => {
                        Some(attributes.entry(name.clone()).or_insert(Value::Null))
                    }
                    _ => None,
                },
                (Self::Object(attributes), PathStep::Attribute(name)) => {
                    Some(attributes.entry(name.clone()).or_insert(Value::Null))
                }
                (Self::Map(entries), PathStep::Key(key)) => entries.get_mut(key),
                (Self::List(items) | Self::Tuple(items), PathStep::Index(index)) => {
                    usize::try_from(*index)
                        .ok()
                        .and_then(|index| items.get_mut(index))
                }
                _ => None,
            };
            match next {
                Some(next) => current = next,
                None => return false,
            }
        }
        *current = new_value;
        true
    }

    /// The type a value would have in a `dynamic` position. Empty lists, sets and maps, and
    /// nulls, cannot reveal an element type and get `dynamic`; a value decoded from the wire
    /// keeps its exact type in [`Value::Dynamic`] instead.
    pub fn infer_type(&self) -> Type {
        fn common(items: &[Value]) -> Type {
            let mut types = items
                .iter()
                .filter(|item| !item.is_null() && !item.is_unknown())
                .map(Value::infer_type);
            match types.next() {
                Some(first) if types.all(|ty| ty == first) => first,
                _ => Type::Dynamic,
            }
        }
        match self {
            Self::Null | Self::Unknown => Type::Dynamic,
            Self::Bool(_) => Type::Bool,
            Self::Number(_) => Type::Number,
            Self::String(_) => Type::String,
            Self::List(items) => Type::list(common(items)),
            Self::Set(items) => Type::set(common(items)),
            Self::Map(entries) => Type::map(common(&entries.values().cloned().collect::<Vec<_>>())),
            Self::Object(attributes) => Type::Object(
                attributes
                    .iter()
                    .map(|(name, value)| (name.clone(), value.infer_type()))
                    .collect(),
            ),
            Self::Tuple(items) => Type::Tuple(items.iter().map(Value::infer_type).collect()),
            Self::Dynamic(ty, _) => ty.clone(),
        }
    }

    /// Reshapes a value to a type: objects gain every missing attribute as null, lists become
    /// sets or tuples, maps become objects, and decimal strings become numbers where the type
    /// says so. This is what lets
    /// serde-produced values (which only know "sequence" and "map") and hand-built values
    /// satisfy Terraform's rule that every object carries every attribute.
    pub fn conform(self, ty: &Type) -> Value {
        match (self, ty) {
            (value @ (Self::Null | Self::Unknown), _) => value,
            (Self::Dynamic(_, inner), ty) if *ty != Type::Dynamic => inner.conform(ty),
            (value, Type::Dynamic) => value,
            // Models may hold big numbers as decimal text, as cty converts strings to numbers.
            (Self::String(text), Type::Number) => match Number::parse(&text) {
                Ok(number) => Self::Number(number),
                Err(_) => Self::String(text),
            },
            (Self::List(items) | Self::Set(items) | Self::Tuple(items), Type::List(element)) => {
                Self::List(
                    items
                        .into_iter()
                        .map(|item| item.conform(element))
                        .collect(),
                )
            }
            (Self::List(items) | Self::Set(items) | Self::Tuple(items), Type::Set(element)) => {
                Self::Set(
                    items
                        .into_iter()
                        .map(|item| item.conform(element))
                        .collect(),
                )
            }
            (Self::List(items) | Self::Set(items) | Self::Tuple(items), Type::Tuple(elements)) => {
                Self::Tuple(
                    items
                        .into_iter()
                        .zip(elements)
                        .map(|(item, ty)| item.conform(ty))
                        .collect(),
                )
            }
            (Self::Map(entries) | Self::Object(entries), Type::Map(element)) => Self::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, value.conform(element)))
                    .collect(),
            ),
            (Self::Map(mut entries) | Self::Object(mut entries), Type::Object(attributes)) => {
                Self::Object(
                    attributes
                        .iter()
                        .map(|(name, ty)| {
                            (
                                name.clone(),
                                entries.remove(name).unwrap_or(Value::Null).conform(ty),
                            )
                        })
                        .collect(),
                )
            }
            (value, _) => value,
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::String(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::String(text)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Self::Bool(flag)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Self::Number(number.into())
    }
}

impl From<i32> for Value {
    fn from(number: i32) -> Self {
        Self::Number(number.into())
    }
}

impl From<u64> for Value {
    fn from(number: u64) -> Self {
        Self::Number(number.into())
    }
}

impl From<Number> for Value {
    fn from(number: Number) -> Self {
        Self::Number(number)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

impl std::fmt::Display for Value {
    /// HCL-like rendering for messages: `"text"`, `42`, `null`, `(known after apply)`,
    /// `["a", "b"]`, `{ name = "x" }`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn join(f: &mut std::fmt::Formatter<'_>, items: &[Value]) -> std::fmt::Result {
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        match self {
            Self::Null => f.write_str("null"),
            Self::Unknown => f.write_str("(known after apply)"),
            Self::Bool(flag) => write!(f, "{flag}"),
            Self::Number(number) => write!(f, "{number}"),
            Self::String(text) => write!(f, "{text:?}"),
            Self::List(items) | Self::Tuple(items) | Self::Set(items) => {
                f.write_str("[")?;
                join(f, items)?;
                f.write_str("]")
            }
            Self::Map(entries) | Self::Object(entries) => {
                f.write_str("{")?;
                for (position, (key, item)) in entries.iter().enumerate() {
                    let separator = if position > 0 { ", " } else { " " };
                    write!(f, "{separator}{key} = {item}")?;
                }
                f.write_str(if entries.is_empty() { "}" } else { " }" })
            }
            Self::Dynamic(_, inner) => write!(f, "{inner}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_compare_without_order() {
        assert_eq!(
            Value::set(["a".into(), "b".into()]),
            Value::set(["b".into(), "a".into()])
        );
        assert_ne!(
            Value::list(["a".into(), "b".into()]),
            Value::list(["b".into(), "a".into()])
        );
    }

    #[test]
    fn conform_fills_attributes_and_shapes_collections() {
        let ty = Type::object([
            ("a", Type::String),
            ("b", Type::set(Type::Number)),
            ("c", Type::String),
        ]);
        let value = Value::object([("a", "x".into()), ("b", Value::list([1.into()]))]).conform(&ty);
        assert_eq!(
            value,
            Value::object([
                ("a", "x".into()),
                ("b", Value::set([1.into()])),
                ("c", Value::Null)
            ])
        );
    }

    #[test]
    fn paths_read_and_write() {
        let mut value =
            Value::object([("rule", Value::list([Value::object([("port", 80.into())])]))]);
        let path = AttributePath::root("rule").index(0).attribute("port");
        assert_eq!(value.get(&path), Some(&Value::from(80)));
        assert!(value.set_at(&path, 443.into()));
        assert_eq!(value.get(&path), Some(&Value::from(443)));
        assert!(!value.set_at(&AttributePath::root("rule").index(3), Value::Null));
    }
}
