//! Key expressions: which values of a record make up its primary key or an index entry.
//!
//! An expression is evaluated against a protobuf message (a
//! [`DynamicMessage`], or any generated type through
//! [`ReflectMessage::transcode_to_dynamic`]) into zero or more *key tuples*
//! (`Vec<Element>`), ready to pack with `foundationdb-tuple`. Fan-out over a repeated
//! field yields one tuple per element; every other expression yields exactly one tuple
//! per tuple of its parts (concatenation is a cartesian product).
//!
//! | expression | columns | result |
//! |---|---|---|
//! | [`field`]`("email")` | 1 | the field's value |
//! | `field("tags").`[`fan_out`](KeyExpression::fan_out)`()` | 1 | one tuple per element (none if empty) |
//! | `field("tags").`[`concatenate`](KeyExpression::concatenate)`()` | 1 | one nested tuple of all elements |
//! | `field("address").`[`nest`](KeyExpression::nest)`(field("city"))` | child's | the child, evaluated in the sub-message |
//! | [`concat()`]`([a, b])` | sum | `a`'s columns then `b`'s |
//! | [`record_type_key`]`()` | 1 | the record type's key |
//! | [`version`]`()` | 1 | the record's version (a versionstamp the store supplies) |
//! | `value.`[`group_by`](KeyExpression::group_by)`(group)` | sum | group columns, then grouped columns (aggregate indexes) |
//! | [`empty`]`()` | 0 | the empty tuple |
//!
//! # Missing and default values
//!
//! Protobuf can only tell what the wire format tells, so:
//! - a field with **explicit presence** (proto3 `optional`, any message field, proto2
//!   fields, oneof members) that is unset evaluates to [`Element::Nil`];
//! - a field with **implicit presence** (plain proto3 scalars) that is unset evaluates
//!   to its default (`0`, `""`, `false`, empty bytes, the first enum value): proto3
//!   does not distinguish "unset" from "set to the default";
//! - nesting into an unset message field evaluates the child against "no message":
//!   every field below is `Nil`, a fan-out below yields no tuples;
//! - fan-out over an empty repeated field yields **no** tuples (so no index entries),
//!   and concatenating an empty repeated field yields the empty nested tuple.
//!
//! # Protobuf scalars as tuple elements
//!
//! | protobuf | tuple element |
//! |---|---|
//! | `int32`, `int64`, `sint32`, `sint64`, `sfixed32`, `sfixed64` | `Int` |
//! | `uint32`, `fixed32` | `Int` |
//! | `uint64`, `fixed64` | `Int` up to `i64::MAX`, `BigInt` above (same integer encoding, same order) |
//! | `bool` | `Bool` |
//! | `float` / `double` | `Float` / `Double` |
//! | `string` / `bytes` | `String` / `Bytes` |
//! | enum | `Int` (the number, so renaming values never moves keys) |
//! | message | not a scalar: nest into one of its fields |
//!
//! ```
//! use fdb_records::key_expression::{concat, field};
//! let by_city_then_name = concat([field("address").nest(field("city")), field("name")]);
//! assert_eq!(by_city_then_name.column_count(), 2);
//! assert_eq!(by_city_then_name.to_string(), "concat(address.city, name)");
//! ```

use foundationdb_tuple::{Bytes, Element, Versionstamp};
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};
use std::borrow::Cow;
use std::fmt;

/// One key tuple: what a key expression produces per entry.
pub type KeyTuple = Vec<Element<'static>>;

/// How a field expression treats a repeated field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum FanType {
    /// A singular field: one value.
    #[default]
    Scalar,
    /// A repeated field: one tuple per element.
    FanOut,
    /// A repeated field: one nested tuple holding every element.
    Concatenate,
}

/// A key expression; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyExpression {
    /// A field of the message, by name.
    Field { name: String, fan_type: FanType },
    /// A message-typed field, then `child` evaluated inside it (or each element, with fan-out).
    Nest {
        parent: String,
        fan_type: FanType,
        child: Box<KeyExpression>,
    },
    /// Concatenation: the columns of each child in order (cartesian product of entries).
    Then(Vec<KeyExpression>),
    /// No columns.
    Empty,
    /// The record type's key (see [`crate::metadata::RecordType::record_type_key`]).
    RecordTypeKey,
    /// An aggregate index's shape: the last `grouped_count` columns of `whole` are the
    /// aggregated value(s), the columns before them are the group.
    Grouping {
        whole: Box<KeyExpression>,
        grouped_count: usize,
    },
    /// The record's version, filled in by the record store.
    Version,
}

/// A field of the message. Use [`KeyExpression::fan_out`] / [`KeyExpression::concatenate`]
/// for repeated fields and [`KeyExpression::nest`] to go into a message field.
pub fn field(name: impl Into<String>) -> KeyExpression {
    KeyExpression::Field {
        name: name.into(),
        fan_type: FanType::Scalar,
    }
}

/// The concatenation of `children` (their columns one after the other).
pub fn concat(children: impl IntoIterator<Item = KeyExpression>) -> KeyExpression {
    KeyExpression::Then(children.into_iter().collect())
}

/// The record type key (one column).
pub fn record_type_key() -> KeyExpression {
    KeyExpression::RecordTypeKey
}

/// The record version (one column), filled in by the record store.
pub fn version() -> KeyExpression {
    KeyExpression::Version
}

/// The expression with no columns (e.g. an ungrouped count: `empty().group_by(empty())`).
pub fn empty() -> KeyExpression {
    KeyExpression::Empty
}

impl KeyExpression {
    /// This field expression, fanned out: one tuple per element of the repeated field.
    /// Other expressions are returned unchanged.
    pub fn fan_out(self) -> Self {
        self.with_fan_type(FanType::FanOut)
    }

    /// This field expression, concatenated: one nested tuple of all elements.
    pub fn concatenate(self) -> Self {
        self.with_fan_type(FanType::Concatenate)
    }

    fn with_fan_type(self, fan: FanType) -> Self {
        match self {
            KeyExpression::Field { name, .. } => KeyExpression::Field {
                name,
                fan_type: fan,
            },
            other => other,
        }
    }

    /// Nests `child` inside this (message-typed) field expression. Anything other than a
    /// field is returned as `concat([self, child])`.
    pub fn nest(self, child: KeyExpression) -> Self {
        match self {
            KeyExpression::Field { name, fan_type } => KeyExpression::Nest {
                parent: name,
                fan_type,
                child: Box::new(child),
            },
            other => concat([other, child]),
        }
    }

    /// Groups this (aggregated) expression by `group`: the shape of COUNT/SUM/MIN/MAX
    /// indexes. `field("amount").group_by(field("user_id"))` sums `amount` per `user_id`.
    pub fn group_by(self, group: KeyExpression) -> Self {
        let grouped_count = self.column_count();
        let whole = match (group, self) {
            (KeyExpression::Empty, value) => value,
            (group, KeyExpression::Empty) => group,
            (group, value) => concat([group, value]),
        };
        KeyExpression::Grouping {
            whole: Box::new(whole),
            grouped_count,
        }
    }

    /// This expression as an aggregate over the whole store (no group columns).
    pub fn ungrouped(self) -> Self {
        self.group_by(KeyExpression::Empty)
    }

    /// Number of columns (tuple elements) in each tuple this expression produces.
    pub fn column_count(&self) -> usize {
        match self {
            KeyExpression::Field { .. } | KeyExpression::RecordTypeKey | KeyExpression::Version => {
                1
            }
            KeyExpression::Nest { child, .. } => child.column_count(),
            KeyExpression::Then(children) => children.iter().map(KeyExpression::column_count).sum(),
            KeyExpression::Empty => 0,
            KeyExpression::Grouping { whole, .. } => whole.column_count(),
        }
    }

    /// For a [`KeyExpression::Grouping`], `(group columns, grouped columns)`.
    pub fn grouping_split(&self) -> Option<(usize, usize)> {
        match self {
            KeyExpression::Grouping {
                whole,
                grouped_count,
            } => Some((
                whole.column_count().saturating_sub(*grouped_count),
                *grouped_count,
            )),
            _ => None,
        }
    }

    /// Whether a record can produce more than one tuple (a fan-out somewhere).
    pub fn creates_duplicates(&self) -> bool {
        match self {
            KeyExpression::Field { fan_type, .. } => *fan_type == FanType::FanOut,
            KeyExpression::Nest {
                fan_type, child, ..
            } => *fan_type == FanType::FanOut || child.creates_duplicates(),
            KeyExpression::Then(children) => children.iter().any(KeyExpression::creates_duplicates),
            KeyExpression::Grouping { whole, .. } => whole.creates_duplicates(),
            KeyExpression::Empty | KeyExpression::RecordTypeKey | KeyExpression::Version => false,
        }
    }

    /// Whether [`KeyExpression::Version`] appears anywhere.
    pub fn has_version(&self) -> bool {
        match self {
            KeyExpression::Version => true,
            KeyExpression::Nest { child, .. } => child.has_version(),
            KeyExpression::Then(children) => children.iter().any(KeyExpression::has_version),
            KeyExpression::Grouping { whole, .. } => whole.has_version(),
            _ => false,
        }
    }

    /// Evaluates against a message with no record context (no record type key, no
    /// version): see [`KeyExpression::evaluate_with`].
    ///
    /// ```
    /// # use fdb_records::key_expression::field;
    /// # use prost_reflect::{DynamicMessage, ReflectMessage};
    /// // Any ReflectMessage works; prost-types' Duration is one.
    /// let d = prost_types::Duration { seconds: 5, nanos: 0 };
    /// let tuples = field("seconds").evaluate(&d.transcode_to_dynamic()).unwrap();
    /// assert_eq!(tuples, vec![vec![foundationdb_tuple::Element::Int(5)]]);
    /// ```
    pub fn evaluate(&self, message: &DynamicMessage) -> Result<Vec<KeyTuple>, ExpressionError> {
        self.evaluate_with(message, &EvaluationContext::default())
    }

    /// Evaluates against any generated message type.
    pub fn evaluate_record<M: ReflectMessage>(
        &self,
        record: &M,
    ) -> Result<Vec<KeyTuple>, ExpressionError> {
        self.evaluate(&record.transcode_to_dynamic())
    }

    /// Evaluates against `message`, taking the record type key and version from `context`.
    pub fn evaluate_with(
        &self,
        message: &DynamicMessage,
        context: &EvaluationContext,
    ) -> Result<Vec<KeyTuple>, ExpressionError> {
        eval(self, &message.descriptor(), Some(message), context)
    }

    /// Checks the expression against a message type without evaluating it, returning
    /// the field behind each column (`None` for record type key / version columns).
    pub fn validate(&self, descriptor: &MessageDescriptor) -> Result<Vec<Column>, ExpressionError> {
        let mut columns = Vec::new();
        check(self, descriptor, "", &mut columns)?;
        if let KeyExpression::Grouping {
            whole,
            grouped_count,
        } = self
        {
            if *grouped_count > whole.column_count() {
                return Err(ExpressionError::InvalidGrouping {
                    grouped_count: *grouped_count,
                    columns: whole.column_count(),
                });
            }
        }
        Ok(columns)
    }
}

/// What [`KeyExpression::validate`] learns about one column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Dotted field path from the record (`"address.city"`); empty for non-field columns.
    pub path: String,
    /// The field, for field columns.
    pub field: Option<FieldDescriptor>,
    /// How the field is read.
    pub fan_type: FanType,
}

/// Record context for evaluation, supplied by the record store.
#[derive(Clone, Debug, Default)]
pub struct EvaluationContext {
    /// Value of [`KeyExpression::RecordTypeKey`].
    pub record_type_key: Option<Element<'static>>,
    /// Value of [`KeyExpression::Version`] (an incomplete versionstamp while saving).
    pub version: Option<Versionstamp>,
}

/// Why an expression does not apply to a message type, or could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    #[error("message `{message}` has no field `{field}`")]
    UnknownField { message: String, field: String },
    #[error("field `{message}.{field}` is repeated: use fan_out() or concatenate()")]
    RepeatedFieldWithoutFanType { message: String, field: String },
    #[error(
        "field `{message}.{field}` is not repeated: fan_out()/concatenate() need a repeated field"
    )]
    FanTypeOnSingularField { message: String, field: String },
    #[error("field `{message}.{field}` is a message where a scalar is required: nest() into one of its fields")]
    MessageFieldAsScalar { message: String, field: String },
    #[error("field `{message}.{field}` is not a message: there is nothing to nest into")]
    NestIntoScalar { message: String, field: String },
    #[error("field `{message}.{field}` is a map: maps cannot be used in key expressions")]
    MapField { message: String, field: String },
    #[error("concatenate() over repeated message field `{message}.{field}` is not supported: use fan_out()")]
    ConcatenatedNest { message: String, field: String },
    #[error(
        "grouping keeps {grouped_count} grouped columns but the expression has only {columns}"
    )]
    InvalidGrouping {
        grouped_count: usize,
        columns: usize,
    },
    #[error("the expression uses the record type key but none was supplied")]
    RecordTypeKeyUnavailable,
    #[error("the expression uses the record version but none was supplied")]
    VersionUnavailable,
    /// A concatenation of fan-outs multiplies their lengths; beyond this many tuples the
    /// entries could not fit in a transaction anyway, and building them would exhaust
    /// memory first.
    #[error("the expression yields {count} tuples for one record; the limit is {limit}")]
    TooManyTuples { count: u64, limit: usize },
}

/// Most tuples one evaluation may yield: each becomes an index entry of at least a
/// few bytes, twice over with its write conflict, in a 10 MB transaction.
pub const MAX_EVALUATED_TUPLES: usize = 1_000_000;

/// Fails an evaluation that would yield more than [`MAX_EVALUATED_TUPLES`], before
/// they are built.
fn check_tuple_count(count: u64) -> Result<(), ExpressionError> {
    if count > MAX_EVALUATED_TUPLES as u64 {
        return Err(ExpressionError::TooManyTuples {
            count,
            limit: MAX_EVALUATED_TUPLES,
        });
    }
    Ok(())
}

fn eval(
    expr: &KeyExpression,
    descriptor: &MessageDescriptor,
    message: Option<&DynamicMessage>,
    context: &EvaluationContext,
) -> Result<Vec<KeyTuple>, ExpressionError> {
    match expr {
        KeyExpression::Field { name, fan_type } => {
            let fd = lookup(descriptor, name)?;
            check_field(&fd, *fan_type, false, descriptor)?;
            let values = match message {
                None => match fan_type {
                    FanType::Scalar => vec![vec![Element::Nil]],
                    FanType::FanOut => vec![],
                    FanType::Concatenate => vec![vec![Element::Tuple(vec![])]],
                },
                Some(m) => match fan_type {
                    FanType::Scalar => {
                        if fd.supports_presence() && !m.has_field(&fd) {
                            vec![vec![Element::Nil]]
                        } else {
                            vec![vec![to_element(&m.get_field(&fd), &fd)?]]
                        }
                    }
                    FanType::FanOut => list(m, &fd)
                        .iter()
                        .map(|v| Ok(vec![to_element(v, &fd)?]))
                        .collect::<Result<_, _>>()?,
                    FanType::Concatenate => {
                        let items = list(m, &fd)
                            .iter()
                            .map(|v| to_element(v, &fd))
                            .collect::<Result<Vec<_>, _>>()?;
                        vec![vec![Element::Tuple(items)]]
                    }
                },
            };
            Ok(values)
        }
        KeyExpression::Nest {
            parent,
            fan_type,
            child,
        } => {
            let fd = lookup(descriptor, parent)?;
            check_field(&fd, *fan_type, true, descriptor)?;
            let Kind::Message(child_descriptor) = fd.kind() else {
                unreachable!("check_field verified the kind")
            };
            match (fan_type, message) {
                (FanType::Scalar, Some(m)) if m.has_field(&fd) => {
                    let value = m.get_field(&fd);
                    eval(child, &child_descriptor, value.as_message(), context)
                }
                (FanType::Scalar, _) => eval(child, &child_descriptor, None, context),
                (_, None) => Ok(vec![]),
                (_, Some(m)) => {
                    let mut out = Vec::new();
                    for item in list(m, &fd).iter() {
                        let tuples = eval(child, &child_descriptor, item.as_message(), context)?;
                        check_tuple_count(out.len() as u64 + tuples.len() as u64)?;
                        out.extend(tuples);
                    }
                    Ok(out)
                }
            }
        }
        KeyExpression::Then(children) => {
            let mut acc: Vec<KeyTuple> = vec![vec![]];
            for child in children {
                let parts = eval(child, descriptor, message, context)?;
                let count = (acc.len() as u64).saturating_mul(parts.len() as u64);
                check_tuple_count(count)?;
                let mut next = Vec::with_capacity(count as usize);
                for prefix in &acc {
                    for part in &parts {
                        let mut tuple = prefix.clone();
                        tuple.extend(part.iter().cloned());
                        next.push(tuple);
                    }
                }
                acc = next;
            }
            Ok(acc)
        }
        KeyExpression::Empty => Ok(vec![vec![]]),
        KeyExpression::RecordTypeKey => context
            .record_type_key
            .clone()
            .map(|k| vec![vec![k]])
            .ok_or(ExpressionError::RecordTypeKeyUnavailable),
        KeyExpression::Version => context
            .version
            .clone()
            .map(|v| vec![vec![Element::Versionstamp(v)]])
            .ok_or(ExpressionError::VersionUnavailable),
        KeyExpression::Grouping { whole, .. } => eval(whole, descriptor, message, context),
    }
}

fn list<'a>(message: &'a DynamicMessage, fd: &FieldDescriptor) -> Cow<'a, [Value]> {
    match message.get_field(fd) {
        Cow::Borrowed(Value::List(items)) => Cow::Borrowed(items.as_slice()),
        Cow::Owned(Value::List(items)) => Cow::Owned(items),
        _ => Cow::Owned(Vec::new()),
    }
}

fn lookup(descriptor: &MessageDescriptor, name: &str) -> Result<FieldDescriptor, ExpressionError> {
    descriptor
        .get_field_by_name(name)
        .ok_or_else(|| ExpressionError::UnknownField {
            message: descriptor.full_name().to_string(),
            field: name.to_string(),
        })
}

/// Checks that `fd` can be read with `fan_type`, as a scalar (`nest == false`) or as a
/// message to nest into.
fn check_field(
    fd: &FieldDescriptor,
    fan_type: FanType,
    nest: bool,
    descriptor: &MessageDescriptor,
) -> Result<(), ExpressionError> {
    let names = || (descriptor.full_name().to_string(), fd.name().to_string());
    if fd.is_map() {
        let (message, field) = names();
        return Err(ExpressionError::MapField { message, field });
    }
    match (fd.is_list(), fan_type) {
        (true, FanType::Scalar) => {
            let (message, field) = names();
            return Err(ExpressionError::RepeatedFieldWithoutFanType { message, field });
        }
        (false, FanType::FanOut | FanType::Concatenate) => {
            let (message, field) = names();
            return Err(ExpressionError::FanTypeOnSingularField { message, field });
        }
        _ => {}
    }
    let is_message = matches!(fd.kind(), Kind::Message(_));
    if nest && !is_message {
        let (message, field) = names();
        return Err(ExpressionError::NestIntoScalar { message, field });
    }
    if nest && fan_type == FanType::Concatenate {
        let (message, field) = names();
        return Err(ExpressionError::ConcatenatedNest { message, field });
    }
    if !nest && is_message {
        let (message, field) = names();
        return Err(ExpressionError::MessageFieldAsScalar { message, field });
    }
    Ok(())
}

fn check(
    expr: &KeyExpression,
    descriptor: &MessageDescriptor,
    prefix: &str,
    columns: &mut Vec<Column>,
) -> Result<(), ExpressionError> {
    match expr {
        KeyExpression::Field { name, fan_type } => {
            let fd = lookup(descriptor, name)?;
            check_field(&fd, *fan_type, false, descriptor)?;
            columns.push(Column {
                path: format!("{prefix}{name}"),
                field: Some(fd),
                fan_type: *fan_type,
            });
        }
        KeyExpression::Nest {
            parent,
            fan_type,
            child,
        } => {
            let fd = lookup(descriptor, parent)?;
            check_field(&fd, *fan_type, true, descriptor)?;
            let Kind::Message(child_descriptor) = fd.kind() else {
                unreachable!("check_field verified the kind")
            };
            let start = columns.len();
            check(
                child,
                &child_descriptor,
                &format!("{prefix}{parent}."),
                columns,
            )?;
            if *fan_type == FanType::FanOut {
                for column in &mut columns[start..] {
                    column.fan_type = FanType::FanOut;
                }
            }
        }
        KeyExpression::Then(children) => {
            for child in children {
                check(child, descriptor, prefix, columns)?;
            }
        }
        KeyExpression::Empty => {}
        KeyExpression::RecordTypeKey | KeyExpression::Version => {
            columns.push(Column {
                path: String::new(),
                field: None,
                fan_type: FanType::Scalar,
            });
        }
        KeyExpression::Grouping { whole, .. } => check(whole, descriptor, prefix, columns)?,
    }
    Ok(())
}

/// Converts one protobuf value to a tuple element (see the table in the module docs).
fn to_element(value: &Value, fd: &FieldDescriptor) -> Result<Element<'static>, ExpressionError> {
    Ok(match value {
        Value::Bool(b) => Element::Bool(*b),
        Value::I32(i) => Element::Int(i64::from(*i)),
        Value::I64(i) => Element::Int(*i),
        Value::U32(u) => Element::Int(i64::from(*u)),
        Value::U64(u) => match i64::try_from(*u) {
            Ok(i) => Element::Int(i),
            Err(_) => Element::BigInt(num_bigint::BigInt::from(*u)),
        },
        Value::F32(f) => Element::Float(*f),
        Value::F64(f) => Element::Double(*f),
        Value::String(s) => Element::String(Cow::Owned(s.clone())),
        Value::Bytes(b) => Element::Bytes(Bytes::from(b.to_vec())),
        Value::EnumNumber(n) => Element::Int(i64::from(*n)),
        Value::Message(_) | Value::List(_) | Value::Map(_) => {
            return Err(ExpressionError::MessageFieldAsScalar {
                message: fd.parent_message().full_name().to_string(),
                field: fd.name().to_string(),
            })
        }
    })
}

impl fmt::Display for FanType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FanType::Scalar => "",
            FanType::FanOut => "[*]",
            FanType::Concatenate => "[]",
        })
    }
}

/// A compact, readable rendering: `name`, `tags[*]` (fan-out), `tags[]` (concatenated),
/// `address.city`, `concat(a, b)`, `sum(amount) by (user_id)`-style `group(..)`.
impl fmt::Display for KeyExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyExpression::Field { name, fan_type } => write!(f, "{name}{fan_type}"),
            KeyExpression::Nest {
                parent,
                fan_type,
                child,
            } => write!(f, "{parent}{fan_type}.{child}"),
            KeyExpression::Then(children) => {
                f.write_str("concat(")?;
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{child}")?;
                }
                f.write_str(")")
            }
            KeyExpression::Empty => f.write_str("empty()"),
            KeyExpression::RecordTypeKey => f.write_str("record_type_key()"),
            KeyExpression::Version => f.write_str("version()"),
            KeyExpression::Grouping {
                whole,
                grouped_count,
            } => {
                write!(f, "group({whole}, grouped={grouped_count})")
            }
        }
    }
}
