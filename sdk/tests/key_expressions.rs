//! Key expression evaluation: every kind, presence rules and the scalar mapping.

mod common;

use common::{Address, Item, Order, Tier, User};
use fdb_records::key_expression::{
    concat, empty, field, record_type_key, version, EvaluationContext, ExpressionError,
    KeyExpression,
};
use foundationdb_tuple::{Element, Versionstamp};
use prost_reflect::{DynamicMessage, ReflectMessage, Value};

fn s(v: &str) -> Element<'static> {
    Element::String(v.to_string().into())
}

fn eval<M: ReflectMessage>(expr: &KeyExpression, m: &M) -> Vec<Vec<Element<'static>>> {
    expr.evaluate_record(m).unwrap()
}

fn user() -> User {
    User {
        id: 7,
        email: "ada@example.com".into(),
        name: "Ada".into(),
        age: Some(36),
        tier: Tier::Pro as i32,
        tags: vec!["math".into(), "poetry".into()],
        address: Some(Address {
            city: "London".into(),
            zip: None,
        }),
        active: true,
        avatar_hash: vec![0xde, 0xad],
    }
}

fn order() -> Order {
    Order {
        order_id: 1,
        user_id: 7,
        items: vec![
            Item {
                sku: "pen".into(),
                quantity: 2,
                price_cents: -150,
            },
            Item {
                sku: "ink".into(),
                quantity: 1,
                price_cents: 900,
            },
        ],
        labels: vec!["gift".into(), "rush".into()],
        coupon: None,
        created_at: u64::MAX,
        total: 7.5,
        weight: 0.25,
        region: 4_000_000_000,
        delta: -5,
        big: 1 << 40,
    }
}

#[test]
fn scalar_fields_map_to_tuple_elements() {
    let u = user();
    assert_eq!(eval(&field("id"), &u), vec![vec![Element::Int(7)]]);
    assert_eq!(eval(&field("email"), &u), vec![vec![s("ada@example.com")]]);
    assert_eq!(eval(&field("age"), &u), vec![vec![Element::Int(36)]]);
    assert_eq!(
        eval(&field("tier"), &u),
        vec![vec![Element::Int(1)]],
        "enums are their number"
    );
    assert_eq!(eval(&field("active"), &u), vec![vec![Element::Bool(true)]]);
    assert_eq!(
        eval(&field("avatar_hash"), &u),
        vec![vec![Element::Bytes(vec![0xde, 0xad].into())]]
    );
    let o = order();
    assert_eq!(eval(&field("total"), &o), vec![vec![Element::Double(7.5)]]);
    assert_eq!(eval(&field("weight"), &o), vec![vec![Element::Float(0.25)]]);
    assert_eq!(
        eval(&field("region"), &o),
        vec![vec![Element::Int(4_000_000_000)]],
        "fixed32 above i32::MAX"
    );
    assert_eq!(eval(&field("delta"), &o), vec![vec![Element::Int(-5)]]);
    assert_eq!(eval(&field("big"), &o), vec![vec![Element::Int(1 << 40)]]);
    let created = eval(&field("created_at"), &o);
    assert_eq!(
        created,
        vec![vec![Element::BigInt(u64::MAX.into())]],
        "uint64 above i64::MAX"
    );
    // ... which packs exactly like a u64 and sorts after every i64.
    assert_eq!(
        foundationdb_tuple::pack(&created[0]),
        foundationdb_tuple::pack(&(u64::MAX,))
    );
    assert!(created[0][0] > Element::Int(i64::MAX));
    let items = eval(
        &field("items")
            .fan_out()
            .nest(concat([field("quantity"), field("price_cents")])),
        &o,
    );
    assert_eq!(
        items,
        vec![
            vec![Element::Int(2), Element::Int(-150)],
            vec![Element::Int(1), Element::Int(900)]
        ]
    );
}

#[test]
fn implicit_presence_fields_evaluate_to_their_default() {
    let u = User::default();
    assert_eq!(eval(&field("id"), &u), vec![vec![Element::Int(0)]]);
    assert_eq!(eval(&field("name"), &u), vec![vec![s("")]]);
    assert_eq!(eval(&field("active"), &u), vec![vec![Element::Bool(false)]]);
    assert_eq!(
        eval(&field("avatar_hash"), &u),
        vec![vec![Element::Bytes(Vec::new().into())]]
    );
    assert_eq!(eval(&field("tier"), &u), vec![vec![Element::Int(0)]]);
}

#[test]
fn explicit_presence_fields_evaluate_to_nil_when_unset() {
    let mut u = user();
    u.age = None;
    assert_eq!(eval(&field("age"), &u), vec![vec![Element::Nil]]);
    u.age = Some(0);
    assert_eq!(
        eval(&field("age"), &u),
        vec![vec![Element::Int(0)]],
        "set to the default is still set"
    );
    assert_eq!(eval(&field("coupon"), &order()), vec![vec![Element::Nil]]);
}

#[test]
fn nested_fields_and_unset_parents() {
    let mut u = user();
    let city = field("address").nest(field("city"));
    let zip = field("address").nest(field("zip"));
    assert_eq!(eval(&city, &u), vec![vec![s("London")]]);
    assert_eq!(
        eval(&zip, &u),
        vec![vec![Element::Nil]],
        "optional child unset"
    );
    u.address.as_mut().unwrap().zip = Some("N1".into());
    assert_eq!(eval(&zip, &u), vec![vec![s("N1")]]);
    u.address = None;
    assert_eq!(
        eval(&city, &u),
        vec![vec![Element::Nil]],
        "unset parent: children are Nil"
    );
    // A present-but-empty sub-message gives the child's implicit default.
    u.address = Some(Address::default());
    assert_eq!(eval(&city, &u), vec![vec![s("")]]);
}

#[test]
fn fan_out_yields_one_tuple_per_element_and_none_for_empty() {
    let mut u = user();
    assert_eq!(
        eval(&field("tags").fan_out(), &u),
        vec![vec![s("math")], vec![s("poetry")]]
    );
    u.tags.clear();
    assert!(eval(&field("tags").fan_out(), &u).is_empty());
    // A fan-out inside a concatenation empties the whole product.
    assert!(eval(&concat([field("id"), field("tags").fan_out()]), &u).is_empty());
}

#[test]
fn concatenate_yields_one_nested_tuple() {
    let mut u = user();
    assert_eq!(
        eval(&field("tags").concatenate(), &u),
        vec![vec![Element::Tuple(vec![s("math"), s("poetry")])]]
    );
    u.tags.clear();
    assert_eq!(
        eval(&field("tags").concatenate(), &u),
        vec![vec![Element::Tuple(vec![])]]
    );
}

#[test]
fn nested_fan_out_and_cartesian_products() {
    let o = order();
    let skus = field("items").fan_out().nest(field("sku"));
    assert_eq!(eval(&skus, &o), vec![vec![s("pen")], vec![s("ink")]]);
    let by_user_sku = concat([field("user_id"), skus.clone()]);
    assert_eq!(
        eval(&by_user_sku, &o),
        vec![
            vec![Element::Int(7), s("pen")],
            vec![Element::Int(7), s("ink")]
        ]
    );
    let product = concat([field("labels").fan_out(), skus]);
    assert_eq!(
        eval(&product, &o),
        vec![
            vec![s("gift"), s("pen")],
            vec![s("gift"), s("ink")],
            vec![s("rush"), s("pen")],
            vec![s("rush"), s("ink")]
        ]
    );
    assert!(product.creates_duplicates());
    assert_eq!(product.column_count(), 2);
    let mut none = o.clone();
    none.items.clear();
    assert!(eval(&field("items").fan_out().nest(field("sku")), &none).is_empty());
}

#[test]
fn record_type_key_and_version_come_from_the_context() {
    let u = user().transcode_to_dynamic();
    let expr = concat([record_type_key(), field("id"), version()]);
    let stamp = Versionstamp::complete([1; 10], 3);
    let context = EvaluationContext {
        record_type_key: Some(Element::Int(1)),
        version: Some(stamp.clone()),
    };
    assert_eq!(
        expr.evaluate_with(&u, &context).unwrap(),
        vec![vec![
            Element::Int(1),
            Element::Int(7),
            Element::Versionstamp(stamp)
        ]]
    );
    assert_eq!(
        record_type_key().evaluate(&u),
        Err(ExpressionError::RecordTypeKeyUnavailable)
    );
    assert_eq!(
        version().evaluate(&u),
        Err(ExpressionError::VersionUnavailable)
    );
    assert!(expr.has_version());
}

#[test]
fn grouping_and_empty() {
    let o = order();
    let sum = field("total").group_by(field("user_id"));
    assert_eq!(sum.grouping_split(), Some((1, 1)));
    assert_eq!(
        eval(&sum, &o),
        vec![vec![Element::Int(7), Element::Double(7.5)]]
    );
    let count = empty().group_by(field("user_id"));
    assert_eq!(count.grouping_split(), Some((1, 0)));
    assert_eq!(eval(&count, &o), vec![vec![Element::Int(7)]]);
    let total = field("total").ungrouped();
    assert_eq!(total.grouping_split(), Some((0, 1)));
    assert_eq!(eval(&empty(), &o), vec![Vec::<Element>::new()]);
    assert_eq!(sum.to_string(), "group(concat(user_id, total), grouped=1)");
}

#[test]
fn dynamic_messages_evaluate_like_generated_ones() {
    let pool = common::example_pool();
    let mut m = DynamicMessage::new(pool.get_message_by_name("examples.users.User").unwrap());
    m.set_field_by_name("id", Value::I64(7));
    m.set_field_by_name("tags", Value::List(vec![Value::String("x".into())]));
    let expr = concat([field("id"), field("tags").fan_out(), field("age")]);
    assert_eq!(
        expr.evaluate(&m).unwrap(),
        vec![vec![Element::Int(7), s("x"), Element::Nil]]
    );
    let typed = User {
        id: 7,
        tags: vec!["x".into()],
        ..User::default()
    };
    assert_eq!(expr.evaluate(&m).unwrap(), eval(&expr, &typed));
}

#[test]
fn expressions_that_do_not_fit_the_message_are_typed_errors() {
    let u = user();
    let err = |e: KeyExpression| e.evaluate_record(&u).unwrap_err();
    let names = |f: &str| ("examples.users.User".to_string(), f.to_string());
    let (message, field_name) = names("nope");
    assert_eq!(
        err(field("nope")),
        ExpressionError::UnknownField {
            message,
            field: field_name
        }
    );
    let (message, f) = names("tags");
    assert_eq!(
        err(field("tags")),
        ExpressionError::RepeatedFieldWithoutFanType { message, field: f }
    );
    let (message, f) = names("id");
    assert_eq!(
        err(field("id").fan_out()),
        ExpressionError::FanTypeOnSingularField { message, field: f }
    );
    let (message, f) = names("address");
    assert_eq!(
        err(field("address")),
        ExpressionError::MessageFieldAsScalar { message, field: f }
    );
    let (message, f) = names("email");
    assert_eq!(
        err(field("email").nest(field("x"))),
        ExpressionError::NestIntoScalar { message, field: f }
    );
    let o = order();
    assert_eq!(
        field("items")
            .concatenate()
            .nest(field("sku"))
            .evaluate_record(&o)
            .unwrap_err(),
        ExpressionError::ConcatenatedNest {
            message: "examples.users.Order".into(),
            field: "items".into()
        }
    );
    let bad_group = KeyExpression::Grouping {
        whole: Box::new(field("id")),
        grouped_count: 2,
    };
    let descriptor = u.descriptor();
    assert_eq!(
        bad_group.validate(&descriptor).unwrap_err(),
        ExpressionError::InvalidGrouping {
            grouped_count: 2,
            columns: 1
        }
    );
    let columns = concat([
        field("address").nest(field("city")),
        field("tags").fan_out(),
    ])
    .validate(&descriptor)
    .unwrap();
    assert_eq!(
        columns.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(),
        ["address.city", "tags"]
    );
}
