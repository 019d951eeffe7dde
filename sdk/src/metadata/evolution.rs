//! Metadata evolution: which changes between two metadata versions are safe for
//! stores that already hold data written with the old one.
//!
//! [`validate_evolution`] reports *every* problem it finds.
//!
//! | change | verdict |
//! |---|---|
//! | version not increased | rejected |
//! | record type removed (or renamed without permission) | rejected |
//! | record type's primary key or record type key changed | rejected |
//! | field removed, unless its number or name is `reserved` | rejected |
//! | field renamed (same number) | rejected unless [`EvolutionOptions::allow_field_renames`] |
//! | field type changed in a way that alters the wire or tuple encoding | rejected |
//! | field widened `int32→int64`, `uint32→uint64`, `sint32→sint64`, enum↔`int32`/`int64` | accepted: same wire format, same tuple `Int` |
//! | singular↔repeated, or explicit↔implicit presence | rejected (stored values or `Nil`-vs-default keys would change) |
//! | index changed in place (type, expression, record types, options) | rejected: add a new index under a new name |
//! | index removed without a former-index entry | rejected |
//! | new fields, new record types, new indexes | accepted |
//! | record type renamed via [`EvolutionOptions::record_type_renames`] | accepted |
//! | [storing record versions](super::RecordMetaDataBuilder::store_record_versions) turned on or off | accepted (as in Apple's record layer): records saved while versions were off have none; versions stored before they were turned off are ignored until the record is saved or deleted. Turning them off removes any VERSION index, which needs a former-index entry |
//!
//! Index expressions are compared by field *number*, so a permitted field rename does
//! not count as an index change.

use super::{Index, RecordMetaData};
use crate::key_expression::KeyExpression;
use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};
use std::collections::{BTreeMap, BTreeSet};

/// What a metadata change may include beyond the always-safe changes.
#[derive(Clone, Debug, Default)]
pub struct EvolutionOptions {
    /// Accept fields renamed in place (same number, new name).
    pub allow_field_renames: bool,
    /// Record types renamed: old full name → new full name.
    pub record_type_renames: BTreeMap<String, String>,
}

/// One unsafe change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvolutionError {
    #[error("metadata version must increase: old {old}, new {new}")]
    VersionNotIncreased { old: u32, new: u32 },
    #[error("record type `{record_type}` was removed")]
    RecordTypeRemoved { record_type: String },
    #[error("primary key of `{record_type}` changed from `{old}` to `{new}`")]
    PrimaryKeyChanged {
        record_type: String,
        old: String,
        new: String,
    },
    #[error("record type key of `{record_type}` changed")]
    RecordTypeKeyChanged { record_type: String },
    #[error("field `{message}.{field}` (number {number}) was removed without being reserved")]
    FieldRemoved {
        message: String,
        field: String,
        number: u32,
    },
    #[error("field number {number} of `{message}` was renamed from `{old}` to `{new}`")]
    FieldRenamed {
        message: String,
        number: u32,
        old: String,
        new: String,
    },
    #[error("field `{message}.{field}` changed type from {old} to {new}")]
    FieldTypeChanged {
        message: String,
        field: String,
        old: String,
        new: String,
    },
    #[error("field `{message}.{field}` changed between singular and repeated")]
    FieldCardinalityChanged { message: String, field: String },
    #[error("field `{message}.{field}` changed presence (optional vs implicit): unset values would index differently")]
    FieldPresenceChanged { message: String, field: String },
    #[error("index `{index}` changed in place ({change}): give the new definition a new name")]
    IndexChanged { index: String, change: String },
    #[error("index `{index}` was removed without a former-index entry")]
    IndexRemovedWithoutFormerIndex { index: String },
}

/// Checks `old → new` with default options (no renames). See the [module docs](self).
///
/// ```
/// # use fdb_records::key_expression::field;
/// # use fdb_records::metadata::{RecordMetaData, RecordTypeDef, Index, IndexType};
/// # use fdb_records::metadata::evolution::{validate_evolution, EvolutionError};
/// # let pool = fdb_records::metadata::example_pool();
/// let user = || RecordTypeDef::new("examples.users.User").primary_key(field("id"));
/// let v1 = RecordMetaData::builder(pool.clone()).version(1).record_type(user()).build().unwrap();
/// let v2 = RecordMetaData::builder(pool).version(2).record_type(user())
///     .index(Index::new("by_email", IndexType::Value, field("email")).on("examples.users.User"))
///     .build().unwrap();
/// assert!(validate_evolution(&v1, &v2).is_ok()); // a new index is fine
/// assert_eq!(
///     validate_evolution(&v2, &v1).unwrap_err(),
///     vec![
///         EvolutionError::VersionNotIncreased { old: 2, new: 1 },
///         EvolutionError::IndexRemovedWithoutFormerIndex { index: "by_email".into() },
///     ]
/// );
/// ```
pub fn validate_evolution(
    old: &RecordMetaData,
    new: &RecordMetaData,
) -> Result<(), Vec<EvolutionError>> {
    validate_evolution_with(old, new, &EvolutionOptions::default())
}

/// Checks `old → new` with explicit permissions.
pub fn validate_evolution_with(
    old: &RecordMetaData,
    new: &RecordMetaData,
    options: &EvolutionOptions,
) -> Result<(), Vec<EvolutionError>> {
    let mut errors = Vec::new();
    if new.version <= old.version {
        errors.push(EvolutionError::VersionNotIncreased {
            old: old.version,
            new: new.version,
        });
    }
    let renamed = |name: &str| {
        options
            .record_type_renames
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    };

    let mut checker = MessageChecker {
        options,
        visited: BTreeSet::new(),
        errors: &mut errors,
    };
    for (name, old_type) in &old.record_types {
        let Some(new_type) = new.record_types.get(&renamed(name)) else {
            checker.errors.push(EvolutionError::RecordTypeRemoved {
                record_type: name.clone(),
            });
            continue;
        };
        checker.check_message(&old_type.descriptor, &new_type.descriptor);
        let old_pk = signature(&old_type.primary_key, &old_type.descriptor);
        let new_pk = signature(&new_type.primary_key, &new_type.descriptor);
        if old_pk != new_pk {
            checker.errors.push(EvolutionError::PrimaryKeyChanged {
                record_type: name.clone(),
                old: old_type.primary_key.to_string(),
                new: new_type.primary_key.to_string(),
            });
        }
        let type_key_renamed =
            old_type.explicit_type_key.is_none() && new_type.name != old_type.name;
        if old_type.explicit_type_key != new_type.explicit_type_key || type_key_renamed {
            checker.errors.push(EvolutionError::RecordTypeKeyChanged {
                record_type: name.clone(),
            });
        }
    }

    for (name, old_index) in &old.indexes {
        match new.indexes.get(name) {
            None if new.former_indexes.contains_key(name) => {}
            None => errors.push(EvolutionError::IndexRemovedWithoutFormerIndex {
                index: name.clone(),
            }),
            Some(new_index) => {
                if let Some(change) = index_change(old, old_index, new, new_index, &renamed) {
                    errors.push(EvolutionError::IndexChanged {
                        index: name.clone(),
                        change,
                    });
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn index_change(
    old: &RecordMetaData,
    old_index: &Index,
    new: &RecordMetaData,
    new_index: &Index,
    renamed: &dyn Fn(&str) -> String,
) -> Option<String> {
    if old_index.index_type != new_index.index_type {
        return Some(format!(
            "type {} → {}",
            old_index.index_type, new_index.index_type
        ));
    }
    let old_types: Vec<String> = old_index
        .record_types
        .iter()
        .map(|t| renamed(t))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if old_types != new_index.record_types {
        return Some(format!(
            "record types {:?} → {:?}",
            old_index.record_types, new_index.record_types
        ));
    }
    for (old_type, new_type) in old_index.record_types.iter().zip(&old_types) {
        let (Some(o), Some(n)) = (old.record_type(old_type), new.record_type(new_type)) else {
            continue;
        };
        if signature(&old_index.expression, &o.descriptor)
            != signature(&new_index.expression, &n.descriptor)
        {
            return Some(format!(
                "expression `{}` → `{}`",
                old_index.expression, new_index.expression
            ));
        }
    }
    if old_index.options != new_index.options {
        return Some(format!(
            "options {:?} → {:?}",
            old_index.options, new_index.options
        ));
    }
    None
}

/// The expression with fields identified by number (names only as a fallback), so that
/// permitted renames compare equal and a re-used name with a new number does not.
fn signature(expr: &KeyExpression, descriptor: &MessageDescriptor) -> String {
    let field_id = |name: &str| match descriptor.get_field_by_name(name) {
        Some(f) => format!("#{}", f.number()),
        None => format!("?{name}"),
    };
    match expr {
        KeyExpression::Field { name, fan_type } => format!("{}{fan_type:?}", field_id(name)),
        KeyExpression::Nest {
            parent,
            fan_type,
            child,
        } => {
            let child_sig = match descriptor.get_field_by_name(parent).map(|f| f.kind()) {
                Some(Kind::Message(child_descriptor)) => signature(child, &child_descriptor),
                _ => child.to_string(),
            };
            format!("{}{fan_type:?}.({child_sig})", field_id(parent))
        }
        KeyExpression::Then(children) => {
            let parts: Vec<String> = children.iter().map(|c| signature(c, descriptor)).collect();
            format!("then({})", parts.join(","))
        }
        KeyExpression::Grouping {
            whole,
            grouped_count,
        } => {
            format!("group({},{grouped_count})", signature(whole, descriptor))
        }
        other => other.to_string(),
    }
}

struct MessageChecker<'a> {
    options: &'a EvolutionOptions,
    visited: BTreeSet<String>,
    errors: &'a mut Vec<EvolutionError>,
}

impl MessageChecker<'_> {
    /// Compares a message type and, recursively, the message types of its fields.
    fn check_message(&mut self, old: &MessageDescriptor, new: &MessageDescriptor) {
        if !self.visited.insert(old.full_name().to_string()) {
            return;
        }
        let message = old.full_name().to_string();
        for old_field in old.fields() {
            let number = old_field.number();
            let Some(new_field) = new.get_field(number) else {
                let reserved = new.reserved_ranges().any(|r| r.contains(&number))
                    || new.reserved_names().any(|n| n == old_field.name());
                if !reserved {
                    self.errors.push(EvolutionError::FieldRemoved {
                        message: message.clone(),
                        field: old_field.name().to_string(),
                        number,
                    });
                }
                continue;
            };
            if old_field.name() != new_field.name() && !self.options.allow_field_renames {
                self.errors.push(EvolutionError::FieldRenamed {
                    message: message.clone(),
                    number,
                    old: old_field.name().to_string(),
                    new: new_field.name().to_string(),
                });
            }
            let field = old_field.name().to_string();
            if old_field.is_list() != new_field.is_list()
                || old_field.is_map() != new_field.is_map()
            {
                self.errors.push(EvolutionError::FieldCardinalityChanged {
                    message: message.clone(),
                    field,
                });
                continue;
            }
            if !old_field.is_list() && presence(&old_field) != presence(&new_field) {
                self.errors.push(EvolutionError::FieldPresenceChanged {
                    message: message.clone(),
                    field: field.clone(),
                });
            }
            match (old_field.kind(), new_field.kind()) {
                (Kind::Message(o), Kind::Message(n)) => {
                    let expected = self
                        .options
                        .record_type_renames
                        .get(o.full_name())
                        .map(String::as_str);
                    if o.full_name() != n.full_name() && expected != Some(n.full_name()) {
                        self.type_changed(&message, &field, &old_field, &new_field);
                    } else {
                        self.check_message(&o, &n);
                    }
                }
                (o, n) if !compatible(&o, &n) => {
                    self.type_changed(&message, &field, &old_field, &new_field)
                }
                _ => {}
            }
        }
    }

    fn type_changed(
        &mut self,
        message: &str,
        field: &str,
        old: &FieldDescriptor,
        new: &FieldDescriptor,
    ) {
        self.errors.push(EvolutionError::FieldTypeChanged {
            message: message.to_string(),
            field: field.to_string(),
            old: kind_name(&old.kind()),
            new: kind_name(&new.kind()),
        });
    }
}

fn presence(field: &FieldDescriptor) -> bool {
    field.supports_presence() || field.cardinality() == Cardinality::Required
}

/// Same wire format and same tuple encoding for every value the old type can hold.
fn compatible(old: &Kind, new: &Kind) -> bool {
    use Kind::*;
    match (old, new) {
        (Enum(o), Enum(n)) => o.full_name() == n.full_name(),
        (Int32 | Enum(_), Int32 | Int64 | Enum(_)) => true,
        (Int64, Int64) => true,
        (Uint32, Uint32 | Uint64) | (Uint64, Uint64) => true,
        (Sint32, Sint32 | Sint64) | (Sint64, Sint64) => true,
        (o, n) => {
            std::mem::discriminant(o) == std::mem::discriminant(n)
                && !matches!(o, Enum(_) | Message(_))
        }
    }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
        other => format!("{other:?}").to_lowercase(),
    }
}
