//! Conversions between the protocol's messages and this crate's types.

use crate::diagnostics::{Diagnostic, Diagnostics, Severity};
use crate::path::{AttributePath, PathStep};
use crate::proto::tfplugin6 as pb;
use crate::schema::{
    Attribute, AttributeKind, Block, BlockNesting, NestedBlock, ObjectNesting, Schema,
};
use crate::value::{Type, Value, decode_json, decode_msgpack, encode_msgpack};

/// Decodes a `DynamicValue` of type `ty`: msgpack when present (Terraform always sends it),
/// else JSON, else null (an absent message).
pub fn decode_dynamic(value: Option<&pb::DynamicValue>, ty: &Type) -> Result<Value, Diagnostic> {
    let Some(value) = value else {
        return Ok(Value::Null);
    };
    let decoded = if !value.msgpack.is_empty() {
        decode_msgpack(&value.msgpack, ty).map_err(|error| (error.path, error.message))
    } else if !value.json.is_empty() {
        decode_json(&value.json, ty).map_err(|error| (error.path, error.message))
    } else {
        Ok(Value::Null)
    };
    decoded.map_err(|(path, message)| {
        Diagnostic::error(
            "Unable to Decode Value",
            format!("Terraform sent a value the provider's schema cannot hold: {message}."),
        )
        .at(path)
    })
}

/// Encodes a value of type `ty` as msgpack (JSON could not carry unknowns).
pub fn encode_dynamic(value: &Value, ty: &Type) -> Result<pb::DynamicValue, Diagnostic> {
    encode_msgpack(value, ty)
        .map(|msgpack| pb::DynamicValue { msgpack, json: Vec::new() })
        .map_err(|error| {
            Diagnostic::error(
                "Unable to Encode Value",
                format!("The provider produced a value that does not match its schema: {}. This is a bug in the provider.", error.message),
            )
            .at(error.path)
        })
}

pub(super) fn path_to_proto(path: &AttributePath) -> pb::AttributePath {
    use pb::attribute_path::{Step, step::Selector};
    pb::AttributePath {
        steps: path
            .steps()
            .iter()
            .map(|step| Step {
                selector: Some(match step {
                    PathStep::Attribute(name) => Selector::AttributeName(name.clone()),
                    PathStep::Key(key) => Selector::ElementKeyString(key.clone()),
                    PathStep::Index(index) => Selector::ElementKeyInt(*index),
                }),
            })
            .collect(),
    }
}

pub(super) fn diagnostics_to_proto(diagnostics: &Diagnostics) -> Vec<pb::Diagnostic> {
    diagnostics
        .iter()
        .map(|diagnostic| pb::Diagnostic {
            severity: match diagnostic.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: diagnostic.summary.clone(),
            detail: diagnostic.detail.clone(),
            attribute: diagnostic
                .attribute
                .as_ref()
                .filter(|path| !path.is_empty())
                .map(path_to_proto),
        })
        .collect()
}

pub(super) fn schema_to_proto(schema: &Schema) -> pb::Schema {
    pb::Schema {
        version: schema.version,
        block: Some(block_to_proto(&schema.block)),
    }
}

fn description(text: &Option<String>) -> (String, i32) {
    (
        text.clone().unwrap_or_default(),
        pb::StringKind::Markdown as i32,
    )
}

fn block_to_proto(block: &Block) -> pb::schema::Block {
    let (description, description_kind) = description(&block.description);
    pb::schema::Block {
        version: 0,
        attributes: block.attributes.iter().map(attribute_to_proto).collect(),
        block_types: block.blocks.iter().map(nested_block_to_proto).collect(),
        description,
        description_kind,
        deprecated: block.deprecation.is_some(),
    }
}

fn attribute_to_proto(attribute: &Attribute) -> pb::schema::Attribute {
    use pb::schema::object::NestingMode;
    let (description, description_kind) = description(&attribute.description);
    // Nested attributes travel in `nested_type` and leave `type` empty, as Terraform requires.
    let (ty, nested_type) = match &attribute.kind {
        AttributeKind::Type(ty) => (ty.to_json_bytes(), None),
        AttributeKind::Nested(nested) => (
            Vec::new(),
            Some(pb::schema::Object {
                attributes: nested.attributes.iter().map(attribute_to_proto).collect(),
                nesting: match nested.nesting {
                    ObjectNesting::Single => NestingMode::Single,
                    ObjectNesting::List => NestingMode::List,
                    ObjectNesting::Set => NestingMode::Set,
                    ObjectNesting::Map => NestingMode::Map,
                } as i32,
                ..Default::default()
            }),
        ),
    };
    pb::schema::Attribute {
        name: attribute.name.clone(),
        r#type: ty,
        nested_type,
        description,
        required: attribute.required,
        optional: attribute.optional,
        computed: attribute.computed,
        sensitive: attribute.sensitive,
        description_kind,
        deprecated: attribute.deprecation.is_some(),
        write_only: attribute.write_only,
    }
}

fn nested_block_to_proto(nested: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode;
    pb::schema::NestedBlock {
        type_name: nested.type_name.clone(),
        block: Some(block_to_proto(&nested.block)),
        nesting: match nested.nesting {
            BlockNesting::Single => NestingMode::Single,
            BlockNesting::List => NestingMode::List,
            BlockNesting::Set => NestingMode::Set,
            BlockNesting::Map => NestingMode::Map,
            BlockNesting::Group => NestingMode::Group,
        } as i32,
        min_items: nested.min_items,
        max_items: nested.max_items,
    }
}

pub(super) fn client_capabilities(
    capabilities: Option<&pb::ClientCapabilities>,
) -> crate::provider::ClientCapabilities {
    capabilities
        .map(|capabilities| crate::provider::ClientCapabilities {
            deferral_allowed: capabilities.deferral_allowed,
            write_only_attributes_allowed: capabilities.write_only_attributes_allowed,
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_leave_type_empty() {
        let attribute = Attribute::nested(
            "ports",
            ObjectNesting::List,
            vec![Attribute::number("port").required()],
        )
        .optional();
        let proto = attribute_to_proto(&attribute);
        assert!(proto.r#type.is_empty());
        assert_eq!(
            proto.nested_type.unwrap().nesting,
            pb::schema::object::NestingMode::List as i32
        );
        let plain = attribute_to_proto(&Attribute::list("names", Type::String).optional());
        assert_eq!(plain.r#type, br#"["list","string"]"#);
    }
}
