//! The build helper's output: prost structs that implement ReflectMessage, usable by the SDK.

use examples::schema::examples::users::{order::Item, Order, User};
use examples::schema::{DESCRIPTOR_POOL, FILE_DESCRIPTOR_SET};
use fdb_records::key_expression::field;
use fdb_records::metadata::{RecordMetaData, RecordTypeDef};
use foundationdb_tuple::Element;
use prost::Message;
use prost_reflect::{DynamicMessage, ReflectMessage};

#[test]
fn generated_messages_reflect_including_nested_ones() {
    assert_eq!(
        User::default().descriptor().full_name(),
        "examples.users.User"
    );
    assert_eq!(
        Item::default().descriptor().full_name(),
        "examples.users.Order.Item"
    );
    assert!(DESCRIPTOR_POOL
        .get_message_by_name("examples.users.Order")
        .is_some());
    assert!(!FILE_DESCRIPTOR_SET.is_empty());
}

#[test]
fn typed_and_dynamic_apis_agree() {
    let metadata = RecordMetaData::builder(DESCRIPTOR_POOL.clone())
        .record_type(RecordTypeDef::new("examples.users.Order").primary_key(field("order_id")))
        .build()
        .unwrap();
    let order = Order {
        order_id: 9,
        items: vec![Item {
            sku: "pen".into(),
            quantity: 1,
            price_cents: 100,
        }],
        ..Order::default()
    };
    assert_eq!(metadata.primary_key(&order).unwrap(), vec![Element::Int(9)]);
    // The same bytes, decoded without the generated type.
    let descriptor = metadata
        .record_type("examples.users.Order")
        .unwrap()
        .descriptor
        .clone();
    let dynamic = DynamicMessage::decode(descriptor, order.encode_to_vec().as_slice()).unwrap();
    assert_eq!(
        metadata.primary_key(&dynamic).unwrap(),
        vec![Element::Int(9)]
    );
    let skus = field("items").fan_out().nest(field("sku"));
    assert_eq!(
        skus.evaluate(&dynamic).unwrap(),
        skus.evaluate_record(&order).unwrap()
    );
    // And back to the typed message.
    let typed: Order = dynamic.transcode_to().unwrap();
    assert_eq!(typed, order);
}
