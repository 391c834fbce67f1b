//! Schemas: what a provider, resource or data source accepts and stores.
//!
//! A schema is plain data built with small builder methods, in the spirit of
//! terraform-plugin-framework: attributes (plain or with nested attributes), nested blocks in
//! every nesting mode, flags, markdown descriptions, defaults, validators and plan modifiers.
//! The same value drives the wire schema, the value codec, validation, planning and the
//! generated docs, so they cannot disagree. [`Schema::check`] enforces Terraform's rules at
//! start-up and in unit tests.

mod check;
mod timeouts;

use std::sync::Arc;

use serde::Serialize;

pub use check::{SchemaError, SchemaKind, is_valid_name};
pub use timeouts::{Timeouts, parse_duration};

use crate::diagnostics::Diagnostic;
use crate::plan_modifier::PlanModifier;
use crate::validator::Validator;
use crate::value::{Type, Value, to_value};

/// A versioned schema. The version is stored with each resource in state; raising it makes
/// Terraform send old states through [`crate::Resource::upgrade_state`].
#[derive(Clone, Default)]
pub struct Schema {
    /// The schema version (resources only; 0 elsewhere).
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// A version-0 schema.
    pub fn new(block: Block) -> Self {
        Self { version: 0, block }
    }

    /// Sets the schema version.
    #[must_use]
    pub fn version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// The type of a whole value (an object).
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }

    /// Converts a Rust model into a value of this schema: attributes the model lacks become
    /// null and nested LIST/SET/MAP blocks the model leaves null become empty, as Terraform
    /// requires.
    pub fn to_value<T: Serialize + ?Sized>(&self, model: &T) -> Result<Value, Diagnostic> {
        let value = to_value(model, &self.value_type())?;
        Ok(self.block.normalize(value))
    }

    /// The object with every attribute null and every nested block absent: the starting
    /// point for an imported resource or a fresh state.
    pub fn null_object(&self) -> Value {
        self.block.normalize(Value::Object(Default::default()))
    }
}

/// A block: attributes and nested blocks. The top level of every schema is one.
#[derive(Clone, Default)]
pub struct Block {
    /// Attributes, in the order they are documented.
    pub attributes: Vec<Attribute>,
    /// Nested block types.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description.
    pub description: Option<String>,
    /// Deprecation message; set means deprecated.
    pub deprecation: Option<String>,
    /// Validators of the whole block (e.g. exactly-one-of among its attributes).
    pub validators: Vec<Arc<dyn Validator>>,
}

impl Block {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an attribute.
    #[must_use]
    pub fn attribute(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// Adds a nested block type.
    #[must_use]
    pub fn block(mut self, block: NestedBlock) -> Self {
        self.blocks.push(block);
        self
    }

    /// Sets the markdown description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Marks the block deprecated.
    #[must_use]
    pub fn deprecated(mut self, message: impl Into<String>) -> Self {
        self.deprecation = Some(message.into());
        self
    }

    /// Adds a validator of the whole block, such as
    /// [`exactly_one_of`](crate::validator::exactly_one_of).
    #[must_use]
    pub fn validator(mut self, validator: impl Validator) -> Self {
        self.validators.push(Arc::new(validator));
        self
    }

    /// Adds the conventional `timeouts` block (single nesting, one optional duration string per
    /// operation, e.g. `&["create", "update", "delete"]`); read it with [`Timeouts`].
    #[must_use]
    pub fn timeouts(self, operations: &[&str]) -> Self {
        self.block(timeouts::block(operations))
    }

    /// The attribute called `name`.
    pub fn find_attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|attribute| attribute.name == name)
    }

    /// The nested block type called `name`.
    pub fn find_block(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|block| block.type_name == name)
    }

    /// The object type of this block's values.
    pub fn value_type(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|attribute| (attribute.name.clone(), attribute.value_type()))
                .chain(
                    self.blocks
                        .iter()
                        .map(|block| (block.type_name.clone(), block.value_type())),
                )
                .collect(),
        )
    }

    /// Brings a value into the shape Terraform requires: every attribute present, nested
    /// LIST/SET/MAP blocks empty rather than null, GROUP blocks never null.
    pub fn normalize(&self, value: Value) -> Value {
        let value = value.conform(&self.value_type());
        let Value::Object(mut attributes) = value else {
            return value;
        };
        for attribute in &self.attributes {
            if let (AttributeKind::Nested(nested), Some(slot)) =
                (&attribute.kind, attributes.get_mut(&attribute.name))
            {
                let inner = nested.as_block();
                map_elements(slot, |element| inner.normalize(element));
            }
        }
        for nested in &self.blocks {
            let slot = attributes
                .entry(nested.type_name.clone())
                .or_insert(Value::Null);
            if slot.is_null() {
                *slot = match nested.nesting {
                    BlockNesting::List => Value::List(Vec::new()),
                    BlockNesting::Set => Value::Set(Vec::new()),
                    BlockNesting::Map => Value::Map(Default::default()),
                    BlockNesting::Group => Value::Object(Default::default()),
                    BlockNesting::Single => Value::Null,
                };
            }
            map_elements(slot, |element| nested.block.normalize(element));
        }
        Value::Object(attributes)
    }
}

/// Applies `f` to each known object of a nested value: the value itself for single nesting,
/// each element for collections.
fn map_elements(slot: &mut Value, f: impl Fn(Value) -> Value) {
    let taken = std::mem::replace(slot, Value::Null);
    *slot = match taken {
        Value::Object(_) => f(taken),
        Value::List(items) => Value::List(items.into_iter().map(&f).collect()),
        Value::Set(items) => Value::Set(items.into_iter().map(&f).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(key, item)| (key, f(item)))
                .collect(),
        ),
        other => other,
    };
}

/// What an attribute holds: a plain type, or nested attributes (`nested_type` on the wire).
#[derive(Clone)]
pub enum AttributeKind {
    /// A value of a cty type.
    Type(Type),
    /// An object, or a collection of objects, whose attributes have their own flags.
    Nested(NestedAttributes),
}

/// Nested attributes: like a nested block, but assigned with `=` and allowed to be computed.
#[derive(Clone)]
pub struct NestedAttributes {
    /// How the objects are collected.
    pub nesting: ObjectNesting,
    /// The objects' attributes.
    pub attributes: Vec<Attribute>,
}

impl NestedAttributes {
    /// The objects' attributes viewed as a block, so one walker serves both kinds of nesting.
    pub fn as_block(&self) -> Block {
        Block {
            attributes: self.attributes.clone(),
            ..Block::default()
        }
    }

    fn value_type(&self) -> Type {
        let object = Type::Object(
            self.attributes
                .iter()
                .map(|attribute| (attribute.name.clone(), attribute.value_type()))
                .collect(),
        );
        match self.nesting {
            ObjectNesting::Single => object,
            ObjectNesting::List => Type::list(object),
            ObjectNesting::Set => Type::set(object),
            ObjectNesting::Map => Type::map(object),
        }
    }
}

/// Nesting of nested attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectNesting {
    /// One object (or null).
    Single,
    /// A list of objects.
    List,
    /// A set of objects.
    Set,
    /// A map of objects.
    Map,
}

/// Nesting of nested blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockNesting {
    /// At most one block; null when absent.
    Single,
    /// Blocks in order; empty list when absent.
    List,
    /// Blocks without order; empty set when absent.
    Set,
    /// Labelled blocks; empty map when absent.
    Map,
    /// Exactly one block that is never null: absent means all its attributes are null.
    Group,
}

/// One attribute of a block.
#[derive(Clone)]
pub struct Attribute {
    /// Lowercase name.
    pub name: String,
    /// Type or nested attributes.
    pub kind: AttributeKind,
    /// Markdown description.
    pub description: Option<String>,
    /// Must be set in configuration.
    pub required: bool,
    /// May be set in configuration.
    pub optional: bool,
    /// The provider may set it (when optional too: only where configuration leaves it null).
    pub computed: bool,
    /// Hidden in plan output.
    pub sensitive: bool,
    /// Sent in configuration but never stored in plan or state (Terraform 1.11+).
    pub write_only: bool,
    /// Deprecation message; set means deprecated, and using it warns.
    pub deprecation: Option<String>,
    /// Value planned when configuration leaves the attribute null (needs `computed`).
    pub default: Option<Value>,
    /// Checks of configured values.
    pub validators: Vec<Arc<dyn Validator>>,
    /// Adjustments of planned values, run in order.
    pub plan_modifiers: Vec<Arc<dyn PlanModifier>>,
}

impl Attribute {
    /// An attribute of a cty type, with no flags set yet.
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Self::with_kind(name, AttributeKind::Type(ty))
    }

    fn with_kind(name: impl Into<String>, kind: AttributeKind) -> Self {
        Self {
            name: name.into(),
            kind,
            description: None,
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecation: None,
            default: None,
            validators: Vec::new(),
            plan_modifiers: Vec::new(),
        }
    }

    /// A `string` attribute.
    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, Type::String)
    }

    /// A `number` attribute.
    pub fn number(name: impl Into<String>) -> Self {
        Self::new(name, Type::Number)
    }

    /// A `bool` attribute.
    pub fn bool(name: impl Into<String>) -> Self {
        Self::new(name, Type::Bool)
    }

    /// A `dynamic` attribute.
    pub fn dynamic(name: impl Into<String>) -> Self {
        Self::new(name, Type::Dynamic)
    }

    /// A `list(element)` attribute.
    pub fn list(name: impl Into<String>, element: Type) -> Self {
        Self::new(name, Type::list(element))
    }

    /// A `set(element)` attribute.
    pub fn set(name: impl Into<String>, element: Type) -> Self {
        Self::new(name, Type::set(element))
    }

    /// A `map(element)` attribute.
    pub fn map(name: impl Into<String>, element: Type) -> Self {
        Self::new(name, Type::map(element))
    }

    /// An attribute holding nested attributes.
    pub fn nested(
        name: impl Into<String>,
        nesting: ObjectNesting,
        attributes: Vec<Attribute>,
    ) -> Self {
        Self::with_kind(
            name,
            AttributeKind::Nested(NestedAttributes {
                nesting,
                attributes,
            }),
        )
    }

    /// Must be set in configuration.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// May be set in configuration.
    #[must_use]
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Set by the provider.
    #[must_use]
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }

    /// Hidden in plan output and logs.
    #[must_use]
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Never stored in plan or state.
    #[must_use]
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }

    /// Marks the attribute deprecated; configurations that set it get a warning.
    #[must_use]
    pub fn deprecated(mut self, message: impl Into<String>) -> Self {
        self.deprecation = Some(message.into());
        self
    }

    /// Sets the markdown description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The value planned when configuration leaves the attribute null. The attribute must be
    /// computed (usually optional too), as in terraform-plugin-framework.
    #[must_use]
    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Adds a validator.
    #[must_use]
    pub fn validator(mut self, validator: impl Validator) -> Self {
        self.validators.push(Arc::new(validator));
        self
    }

    /// Adds a plan modifier; modifiers run in the order added.
    #[must_use]
    pub fn plan_modifier(mut self, modifier: impl PlanModifier) -> Self {
        self.plan_modifiers.push(Arc::new(modifier));
        self
    }

    /// The type of the attribute's values.
    pub fn value_type(&self) -> Type {
        match &self.kind {
            AttributeKind::Type(ty) => ty.clone(),
            AttributeKind::Nested(nested) => nested.value_type(),
        }
    }
}

/// A nested block type.
#[derive(Clone)]
pub struct NestedBlock {
    /// Lowercase block type name.
    pub type_name: String,
    /// The block's contents.
    pub block: Block,
    /// How blocks of this type are collected.
    pub nesting: BlockNesting,
    /// Fewest blocks allowed (LIST/SET; 0 or 1 for SINGLE).
    pub min_items: i64,
    /// Most blocks allowed (LIST/SET; 0 = no limit).
    pub max_items: i64,
    /// Validators of the block value as a whole (the list, set, map or object).
    pub validators: Vec<Arc<dyn Validator>>,
    /// Plan modifiers of the block value as a whole (e.g. requires-replace).
    pub plan_modifiers: Vec<Arc<dyn PlanModifier>>,
}

impl NestedBlock {
    /// A nested block type.
    pub fn new(type_name: impl Into<String>, nesting: BlockNesting, block: Block) -> Self {
        Self {
            type_name: type_name.into(),
            block,
            nesting,
            min_items: 0,
            max_items: 0,
            validators: Vec::new(),
            plan_modifiers: Vec::new(),
        }
    }

    /// At most one block.
    pub fn single(type_name: impl Into<String>, block: Block) -> Self {
        Self::new(type_name, BlockNesting::Single, block)
    }

    /// Repeated blocks, in order.
    pub fn list(type_name: impl Into<String>, block: Block) -> Self {
        Self::new(type_name, BlockNesting::List, block)
    }

    /// Repeated blocks, unordered.
    pub fn set(type_name: impl Into<String>, block: Block) -> Self {
        Self::new(type_name, BlockNesting::Set, block)
    }

    /// Labelled blocks.
    pub fn map(type_name: impl Into<String>, block: Block) -> Self {
        Self::new(type_name, BlockNesting::Map, block)
    }

    /// One block that is never null.
    pub fn group(type_name: impl Into<String>, block: Block) -> Self {
        Self::new(type_name, BlockNesting::Group, block)
    }

    /// Sets the fewest blocks allowed.
    #[must_use]
    pub fn min_items(mut self, min_items: i64) -> Self {
        self.min_items = min_items;
        self
    }

    /// Sets the most blocks allowed.
    #[must_use]
    pub fn max_items(mut self, max_items: i64) -> Self {
        self.max_items = max_items;
        self
    }

    /// Adds a validator of the whole block value.
    #[must_use]
    pub fn validator(mut self, validator: impl Validator) -> Self {
        self.validators.push(Arc::new(validator));
        self
    }

    /// Adds a plan modifier of the whole block value.
    #[must_use]
    pub fn plan_modifier(mut self, modifier: impl PlanModifier) -> Self {
        self.plan_modifiers.push(Arc::new(modifier));
        self
    }

    /// The type of this block's value in its parent object.
    pub fn value_type(&self) -> Type {
        let object = self.block.value_type();
        match self.nesting {
            BlockNesting::Single | BlockNesting::Group => object,
            BlockNesting::List => Type::list(object),
            BlockNesting::Set => Type::set(object),
            BlockNesting::Map => Type::map(object),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_fills_blocks_never_nil() {
        let block = Block::new()
            .attribute(Attribute::string("name").required())
            .block(NestedBlock::list(
                "rule",
                Block::new().attribute(Attribute::number("port").optional()),
            ))
            .block(NestedBlock::set(
                "tag",
                Block::new().attribute(Attribute::string("key").optional()),
            ))
            .block(NestedBlock::group(
                "settings",
                Block::new().attribute(Attribute::bool("on").optional()),
            ))
            .block(NestedBlock::single(
                "extra",
                Block::new().attribute(Attribute::bool("on").optional()),
            ));
        let value = block.normalize(Value::object([("name", "x".into())]));
        assert_eq!(
            value,
            Value::object([
                ("name", "x".into()),
                ("rule", Value::List(vec![])),
                ("tag", Value::Set(vec![])),
                ("settings", Value::object([("on", Value::Null)])),
                ("extra", Value::Null),
            ])
        );
    }
}
