//! serde conversion between [`Value`]s and Rust structs, so resource code is written against
//! plain structs rather than value trees.
//!
//! - null maps to `Option::None` (and `()`); a null in a non-`Option` field is an error.
//! - unknown maps only to [`MaybeUnknown::Unknown`]. Reading an unknown into any other type is
//!   an error that names the attribute path: during plan, configuration may hold values only
//!   known after apply, and silently reading them as null or a default would plan the wrong
//!   thing. At apply time configuration and planned values are known, except computed
//!   attributes the plan left unknown, which a create or update should write, not read.
//! - numbers convert to any integer or float type that holds them (and to `String`, giving
//!   the exact decimal text); sets and lists both map to `Vec`; enums map to strings.
//! - struct → value goes through [`Value::conform`], so attributes a struct lacks become null
//!   and collections take the shape the type asks for.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize};

use super::{Number, Type, Value};
use crate::diagnostics::Diagnostic;
use crate::path::AttributePath;

/// serde name that tells this module's deserializer "unknown is allowed here".
const MAYBE_UNKNOWN: &str = "$tfplugin::MaybeUnknown";
/// serde name that tells this module's serializer "write an unknown here".
const UNKNOWN: &str = "$tfplugin::Unknown";

/// A value that may not be known until apply: the typed form of a [`Value::Unknown`].
///
/// Use it for fields read during plan (`modify_plan`, validation) whose configuration may
/// reference other resources' computed attributes, and for computed fields a plan leaves
/// unknown.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MaybeUnknown<T> {
    /// Not known until apply.
    Unknown,
    /// Known.
    Known(T),
}

impl<T> MaybeUnknown<T> {
    /// The value, if known.
    pub fn known(self) -> Option<T> {
        match self {
            Self::Known(value) => Some(value),
            Self::Unknown => None,
        }
    }

    /// A reference to the value, if known.
    pub fn as_known(&self) -> Option<&T> {
        match self {
            Self::Known(value) => Some(value),
            Self::Unknown => None,
        }
    }

    /// Whether the value is unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }
}

impl<T: Serialize> Serialize for MaybeUnknown<T> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Known(value) => value.serialize(serializer),
            Self::Unknown => serializer.serialize_unit_struct(UNKNOWN),
        }
    }
}

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for MaybeUnknown<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeUnknownVisitor<T>(PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>> Visitor<'de> for MaybeUnknownVisitor<T> {
            type Value = MaybeUnknown<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or unknown")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MaybeUnknown::Unknown)
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                T::deserialize(deserializer).map(MaybeUnknown::Known)
            }
        }
        deserializer.deserialize_newtype_struct(MAYBE_UNKNOWN, MaybeUnknownVisitor(PhantomData))
    }
}

/// A value that does not fit the Rust type it is converted to or from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedError {
    /// Where the mismatch is; `None` only before the error has left the deserializer.
    pub path: Option<AttributePath>,
    /// What is wrong.
    pub message: String,
}

impl TypedError {
    fn at(path: &AttributePath, message: impl Into<String>) -> Self {
        Self {
            path: Some(path.clone()),
            message: message.into(),
        }
    }

    fn within(mut self, path: &AttributePath) -> Self {
        self.path.get_or_insert_with(|| path.clone());
        self
    }
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) if !path.is_empty() => write!(f, "{path}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TypedError {}

impl de::Error for TypedError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self {
            path: None,
            message: message.to_string(),
        }
    }
}

impl ser::Error for TypedError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self {
            path: None,
            message: message.to_string(),
        }
    }
}

impl From<TypedError> for Diagnostic {
    /// A conversion failure is a provider bug (its structs disagree with its schema), so the
    /// diagnostic says so and names the attribute.
    fn from(error: TypedError) -> Self {
        let diagnostic = Diagnostic::error(
            "Value Conversion Error",
            format!(
                "The provider could not convert a value between its schema and its own types: {}. \
                 This is a bug in the provider; please report it.",
                error.message
            ),
        );
        match error.path {
            Some(path) => diagnostic.at(path),
            None => diagnostic,
        }
    }
}

/// Converts a value to a Rust type.
pub fn from_value<T: de::DeserializeOwned>(value: &Value) -> Result<T, TypedError> {
    let root = AttributePath::empty();
    T::deserialize(ValueDeserializer {
        value,
        path: root.clone(),
    })
    .map_err(|error| error.within(&root))
}

/// Converts a Rust value to a value of `ty` (see the module docs for how shapes are matched).
pub fn to_value<T: Serialize + ?Sized>(model: &T, ty: &Type) -> Result<Value, TypedError> {
    Ok(model.serialize(ValueSerializer)?.conform(ty))
}

impl Value {
    /// Converts this value to a Rust type; see [`from_value`].
    pub fn to_typed<T: de::DeserializeOwned>(&self) -> Result<T, TypedError> {
        from_value(self)
    }
}

struct ValueDeserializer<'a> {
    value: &'a Value,
    path: AttributePath,
}

impl<'a> ValueDeserializer<'a> {
    fn unknown_error(&self) -> TypedError {
        TypedError::at(
            &self.path,
            "the value is unknown (known only after apply) but was read as a known value; \
             declare the field as MaybeUnknown<_> to accept unknown values",
        )
    }
}

impl<'de, 'a> de::Deserializer<'de> for ValueDeserializer<'a> {
    type Error = TypedError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        let path = self.path.clone();
        let result = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Unknown => return Err(self.unknown_error()),
            Value::Bool(flag) => visitor.visit_bool(*flag),
            Value::Number(number) => visit_number(number, visitor),
            Value::String(text) => visitor.visit_str(text),
            Value::List(items) | Value::Tuple(items) => visitor.visit_seq(Elements {
                items: items.iter(),
                index: 0,
                path: self.path,
                indexed: true,
            }),
            Value::Set(items) => visitor.visit_seq(Elements {
                items: items.iter(),
                index: 0,
                path: self.path,
                indexed: false,
            }),
            Value::Object(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                pending: None,
                path: self.path,
                is_object: true,
            }),
            Value::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                pending: None,
                path: self.path,
                is_object: false,
            }),
            Value::Dynamic(_, inner) => {
                return ValueDeserializer {
                    value: inner,
                    path: self.path,
                }
                .deserialize_any(visitor);
            }
        };
        result.map_err(|error| error.within(&path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        if self.value.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        if name == MAYBE_UNKNOWN && self.value.is_unknown() {
            visitor.visit_unit()
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.value.unwrap_dynamic() {
            Value::Number(number) => visitor.visit_str(number.as_str()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        match self.value.unwrap_dynamic() {
            Value::String(text) => visitor
                .visit_enum(text.as_str().into_deserializer())
                .map_err(|error: TypedError| error.within(&self.path)),
            Value::Unknown => Err(self.unknown_error()),
            other => Err(TypedError::at(
                &self.path,
                format!("expected a string naming a variant, got {other:?}"),
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

fn visit_number<'de, V: Visitor<'de>>(number: &Number, visitor: V) -> Result<V::Value, TypedError> {
    if let Some(integer) = number.as_i64() {
        visitor.visit_i64(integer)
    } else if let Some(integer) = number.as_u64() {
        visitor.visit_u64(integer)
    } else {
        visitor.visit_f64(number.as_f64())
    }
}

struct Elements<'a, I: Iterator<Item = &'a Value>> {
    items: I,
    index: usize,
    path: AttributePath,
    /// Sets have no element index in Terraform's attribute paths, so errors inside a set
    /// point at the set.
    indexed: bool,
}

impl<'de, 'a, I: Iterator<Item = &'a Value>> SeqAccess<'de> for Elements<'a, I> {
    type Error = TypedError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TypedError> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        let path = if self.indexed {
            self.path.clone().index(self.index)
        } else {
            self.path.clone()
        };
        self.index += 1;
        seed.deserialize(ValueDeserializer {
            value,
            path: path.clone(),
        })
        .map(Some)
        .map_err(|error| error.within(&path))
    }
}

struct Entries<'a, I: Iterator<Item = (&'a String, &'a Value)>> {
    entries: I,
    pending: Option<(&'a String, &'a Value)>,
    path: AttributePath,
    is_object: bool,
}

impl<'de, 'a, I: Iterator<Item = (&'a String, &'a Value)>> MapAccess<'de> for Entries<'a, I> {
    type Error = TypedError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TypedError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some(entry);
        seed.deserialize(entry.0.as_str().into_deserializer())
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, TypedError> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("value requested before key"))?;
        let path = if self.is_object {
            self.path.clone().attribute(key)
        } else {
            self.path.clone().key(key)
        };
        seed.deserialize(ValueDeserializer {
            value,
            path: path.clone(),
        })
        .map_err(|error| error.within(&path))
    }
}

/// Serializes Rust values into [`Value`]s; shapes are fixed afterwards by [`Value::conform`].
struct ValueSerializer;

fn number_value(number: impl Into<Number>) -> Result<Value, TypedError> {
    Ok(Value::Number(number.into()))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = TypedError;
    type SerializeSeq = SequenceBuilder;
    type SerializeTuple = SequenceBuilder;
    type SerializeTupleStruct = SequenceBuilder;
    type SerializeTupleVariant = ser::Impossible<Value, TypedError>;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = ser::Impossible<Value, TypedError>;

    fn serialize_bool(self, v: bool) -> Result<Value, TypedError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, TypedError> {
        number_value(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, TypedError> {
        number_value(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, TypedError> {
        number_value(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Value, TypedError> {
        number_value(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, TypedError> {
        number_value(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, TypedError> {
        number_value(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, TypedError> {
        number_value(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Value, TypedError> {
        number_value(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Value, TypedError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, TypedError> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| {
            ser::Error::custom("NaN and infinite numbers cannot be Terraform values")
        })
    }
    fn serialize_char(self, v: char) -> Result<Value, TypedError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, TypedError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<Value, TypedError> {
        Err(ser::Error::custom(
            "Terraform has no bytes type; encode bytes as a string (e.g. base64)",
        ))
    }
    fn serialize_none(self) -> Result<Value, TypedError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, TypedError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, TypedError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Value, TypedError> {
        Ok(if name == UNKNOWN {
            Value::Unknown
        } else {
            Value::Null
        })
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, TypedError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, TypedError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, TypedError> {
        Ok(Value::object([(
            variant,
            value.serialize(ValueSerializer)?,
        )]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SequenceBuilder, TypedError> {
        Ok(SequenceBuilder {
            items: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SequenceBuilder, TypedError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SequenceBuilder, TypedError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, TypedError> {
        Err(ser::Error::custom(format!(
            "tuple variant {name}::{variant} has no Terraform form"
        )))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, TypedError> {
        Ok(MapBuilder {
            entries: Default::default(),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapBuilder, TypedError> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, TypedError> {
        Err(ser::Error::custom(format!(
            "struct variant {name}::{variant} has no Terraform form"
        )))
    }
}

struct SequenceBuilder {
    items: Vec<Value>,
}

impl SequenceBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TypedError> {
        let index = self.items.len();
        let item = value
            .serialize(ValueSerializer)
            .map_err(|error| error.within(&AttributePath::empty().index(index)))?;
        self.items.push(item);
        Ok(())
    }
}

impl ser::SerializeSeq for SequenceBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TypedError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::List(self.items))
    }
}

impl ser::SerializeTuple for SequenceBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TypedError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::List(self.items))
    }
}

impl ser::SerializeTupleStruct for SequenceBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TypedError> {
        self.push(value)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::List(self.items))
    }
}

struct MapBuilder {
    entries: std::collections::BTreeMap<String, Value>,
    key: Option<String>,
}

impl MapBuilder {
    fn insert<T: Serialize + ?Sized>(&mut self, key: String, value: &T) -> Result<(), TypedError> {
        let item = value
            .serialize(ValueSerializer)
            .map_err(|error| error.within(&AttributePath::root(key.clone())))?;
        self.entries.insert(key, item);
        Ok(())
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), TypedError> {
        let key = match key.serialize(ValueSerializer)? {
            Value::String(text) => text,
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            other => {
                return Err(ser::Error::custom(format!(
                    "map keys must be strings, got {other:?}"
                )));
            }
        };
        self.key = Some(key);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TypedError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ser::Error::custom("map value without key"))?;
        self.insert(key, value)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::Map(self.entries))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), TypedError> {
        self.insert(key.to_owned(), value)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::Object(self.entries))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum State {
        Running,
        Paused,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rule {
        port: u16,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Model {
        name: String,
        id: MaybeUnknown<Option<String>>,
        count: Option<i64>,
        state: State,
        rule: Vec<Rule>,
        big: String,
    }

    fn model_type() -> Type {
        Type::object([
            ("name", Type::String),
            ("id", Type::String),
            ("count", Type::Number),
            ("state", Type::String),
            ("rule", Type::list(Type::object([("port", Type::Number)]))),
            ("big", Type::Number),
            ("extra", Type::Bool),
        ])
    }

    #[test]
    fn round_trip_through_a_struct() {
        let value = Value::object([
            ("name", "x".into()),
            ("id", Value::Unknown),
            ("count", Value::Null),
            ("state", "paused".into()),
            ("rule", Value::list([Value::object([("port", 80.into())])])),
            (
                "big",
                Value::Number(Number::parse("123456789012345678901234567890").unwrap()),
            ),
            ("extra", true.into()),
        ]);
        let model: Model = value.to_typed().unwrap();
        assert_eq!(model.id, MaybeUnknown::Unknown);
        assert_eq!(model.state, State::Paused);
        assert_eq!(model.big, "123456789012345678901234567890");
        let back = to_value(&model, &model_type()).unwrap();
        assert_eq!(back.attribute("id"), &Value::Unknown);
        assert_eq!(back.attribute("extra"), &Value::Null);
        assert_eq!(back.attribute("rule"), value.attribute("rule"));
        assert_eq!(back.attribute("big"), value.attribute("big"));
    }

    #[test]
    fn unknown_in_a_plain_field_names_the_path() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Plain {
            rule: Vec<Rule>,
        }
        let value = Value::object([(
            "rule",
            Value::list([Value::object([("port", Value::Unknown)])]),
        )]);
        let error = value.to_typed::<Plain>().unwrap_err();
        assert_eq!(error.path.unwrap().to_string(), "rule[0].port");
        assert!(error.message.contains("MaybeUnknown"));
    }

    #[test]
    fn null_in_a_required_field_is_an_error_with_path() {
        let value = Value::object([("port", Value::Null)]);
        let error = value.to_typed::<Rule>().unwrap_err();
        assert_eq!(error.path.unwrap().to_string(), "port");
    }
}
