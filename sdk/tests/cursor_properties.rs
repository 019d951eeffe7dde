//! Property tests: page through random data with random limits, in both directions,
//! with and without writers between pages, through signed string tokens; check that
//! every record present and unchanged throughout is returned exactly once, in strict
//! order, and nothing else is returned twice (record scans, index scans, union,
//! intersection). Also: random bytes never panic the token decoder.

mod cursor_common;

use cursor_common::*;
use fdb_records::backend::embedded::{EmbeddedDatabase, EmbeddedTransaction};
use fdb_records::cursor::{
    Continuation, ContinuationCodec, ExecuteOptions, Intersection, NoNextReason, RecordScan,
    ScanLimits, ScanPlan, Union,
};
use fdb_records::metadata::RecordMetaData;
use fdb_records::store::{IndexEntry, RecordRange, TupleRange};
use foundationdb_tuple::Element;
use futures::executor::block_on;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Clone, Debug)]
struct Spec {
    tier: i32,
    mask: u8,
    big: bool,
}

fn tags_of(mask: u8) -> Vec<&'static str> {
    TAGS.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, t)| *t)
        .collect()
}

fn make(id: i64, s: &Spec) -> User {
    let tags = tags_of(s.mask);
    if s.big {
        big_user(id, s.tier, &tags)
    } else {
        user(id, s.tier, &tags)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Save(i64, Spec),
    Delete(i64),
}

fn spec() -> impl Strategy<Value = Spec> {
    (0i32..3, 0u8..16, prop::bool::weighted(0.04)).prop_map(|(tier, mask, big)| Spec {
        tier,
        mask,
        big,
    })
}

fn data() -> impl Strategy<Value = BTreeMap<i64, Spec>> {
    prop::collection::btree_map(0i64..120, spec(), 0..60)
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0i64..130, spec()).prop_map(|(id, s)| Op::Save(id, Spec { big: false, ..s })),
            2 => (0i64..130).prop_map(Op::Delete),
        ],
        0..40,
    )
}

fn limits() -> impl Strategy<Value = (Option<usize>, ScanLimits)> {
    (
        prop::option::of(1usize..12),
        prop::option::of(1usize..25),
        prop::option::of(40usize..3000),
    )
        .prop_map(|(ret, keys, bytes)| {
            let mut l = ScanLimits::unlimited();
            l.scanned_keys = keys;
            l.bytes = bytes;
            (ret, l)
        })
}

/// The database and its model, with the ids written while the scan ran.
struct World {
    db: EmbeddedDatabase,
    md: Arc<RecordMetaData>,
    initial: BTreeMap<i64, Spec>,
    touched: BTreeSet<i64>,
    ever: BTreeSet<i64>,
}

impl World {
    async fn new(data: &BTreeMap<i64, Spec>) -> World {
        let db = EmbeddedDatabase::in_memory().unwrap();
        let md = metadata();
        let users: Vec<User> = data.iter().map(|(id, s)| make(*id, s)).collect();
        save(&db, &md, &users).await;
        World {
            db,
            md,
            initial: data.clone(),
            touched: BTreeSet::new(),
            ever: data.keys().copied().collect(),
        }
    }

    async fn apply(&mut self, op: &Op) {
        match op {
            Op::Save(id, s) => {
                save(&self.db, &self.md, &[make(*id, s)]).await;
                self.touched.insert(*id);
                self.ever.insert(*id);
            }
            Op::Delete(id) => {
                delete(&self.db, &self.md, &[*id]).await;
                self.touched.insert(*id);
            }
        }
    }

    /// Ids present and unchanged throughout that satisfy `keep`.
    fn stable(&self, keep: impl Fn(i64, &Spec) -> bool) -> Vec<i64> {
        self.initial
            .iter()
            .filter(|(id, s)| !self.touched.contains(id) && keep(**id, s))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Pages through `plan`, applying one writer op after each page.
    async fn page_through<P, K>(
        &mut self,
        plan: &P,
        ret: Option<usize>,
        limits: &ScanLimits,
        writes: &[Op],
        key: impl Fn(&P::Item) -> K,
    ) -> Vec<K>
    where
        P: ScanPlan<EmbeddedTransaction>,
    {
        let codec = ContinuationCodec::signed(b"prop");
        let mut token: Option<String> = None;
        let mut out = Vec::new();
        let mut writes = writes.iter();
        for _ in 0..5_000 {
            let continuation: Option<Continuation> =
                token.as_deref().map(|t| codec.decode_str(t).unwrap());
            let mut options = ExecuteOptions::new()
                .continuation(continuation)
                .limits(limits.clone());
            options.return_limit = ret;
            let page = page(&self.db, &self.md, plan, &options).await.unwrap();
            out.extend(page.items.iter().map(&key));
            if page.reason == NoNextReason::SourceExhausted {
                return out;
            }
            token = Some(codec.encode_string(&page.continuation));
            if let Some(op) = writes.next() {
                self.apply(op).await;
            }
        }
        panic!("scan did not finish");
    }
}

/// Strictly increasing (or decreasing), hence no duplicates.
fn assert_strict<K: Ord + std::fmt::Debug>(keys: &[K], reverse: bool) {
    for w in keys.windows(2) {
        let ok = if reverse { w[0] > w[1] } else { w[0] < w[1] };
        assert!(ok, "out of order or repeated: {:?} then {:?}", w[0], w[1]);
    }
}

fn check_ids(got: &[i64], stable: &[i64], world: &World, reverse: bool) {
    assert_strict(got, reverse);
    let got_set: BTreeSet<i64> = got.iter().copied().collect();
    for id in stable {
        assert!(
            got_set.contains(id),
            "stable record {id} missing from {got:?}"
        );
    }
    for id in got {
        assert!(world.ever.contains(id), "record {id} never existed");
    }
    if world.touched.is_empty() {
        let mut want = stable.to_vec();
        if reverse {
            want.reverse();
        }
        assert_eq!(got, want.as_slice(), "without writers: exactly the records");
    }
}

fn pk_of(pk: &[Element<'_>]) -> i64 {
    pk_int(pk)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn record_scans_page_exactly_once(
        data in data(),
        (ret, limits) in limits(),
        reverse in any::<bool>(),
        bounds in (0i64..130, 0i64..130),
        filter_mod in prop::option::of(2i64..4),
        concurrent in any::<bool>(),
        writes in ops(),
    ) {
        block_on(async {
            let mut world = World::new(&data).await;
            let (lo, hi) = (bounds.0.min(bounds.1), bounds.0.max(bounds.1));
            let plan = RecordScan::new(RecordRange::between(vec![Element::Int(lo)], vec![Element::Int(hi)]))
                .reverse(reverse);
            let keep = move |id: i64| filter_mod.is_none_or(|m| id % m != 0);
            let writes = if concurrent { writes } else { Vec::new() };
            // The filter runs on the cursor, so pages go through `page` by hand.
            let codec = ContinuationCodec::unsigned();
            let mut token: Option<Vec<u8>> = None;
            let mut got = Vec::new();
            let mut w = writes.iter();
            loop {
                let continuation = token.as_deref().map(|t| codec.decode(t).unwrap());
                let mut options = ExecuteOptions::new().continuation(continuation).limits(limits.clone());
                options.return_limit = None;
                let tx = fdb_records::kv::Database::create_transaction(&world.db).unwrap();
                let store = fdb_records::store::RecordStore::open(&tx, subspace(), world.md.clone()).await.unwrap();
                let mut cursor = store.execute(&plan, &options).unwrap().filter(move |r| keep(pk_of(&r.primary_key)));
                if let Some(n) = ret {
                    cursor = cursor.limit(n);
                }
                let page = cursor.collect_page().await.unwrap();
                for r in &page.items {
                    let u: User = r.to_record().unwrap();
                    assert_eq!(u.avatar_hash.len() > 100_000, u.avatar_hash.len() == 250_000);
                }
                got.extend(page.items.iter().map(|r| pk_of(&r.primary_key)));
                drop(store);
                if page.reason == NoNextReason::SourceExhausted {
                    break;
                }
                token = Some(codec.encode(&page.continuation));
                if let Some(op) = w.next() {
                    world.apply(op).await;
                }
            }
            let stable = world.stable(|id, _| (lo..hi).contains(&id) && keep(id));
            check_ids(&got, &stable, &world, reverse);
        });
    }

    #[test]
    fn index_range_scans_page_exactly_once(
        data in data(),
        (ret, limits) in limits(),
        reverse in any::<bool>(),
        tiers in (0i64..3, 0i64..3),
        concurrent in any::<bool>(),
        writes in ops(),
    ) {
        block_on(async {
            let mut world = World::new(&data).await;
            let (lo, hi) = (tiers.0.min(tiers.1), tiers.0.max(tiers.1));
            let plan = fdb_records::cursor::IndexScan::new(
                "by_tier",
                TupleRange::between_inclusive(vec![Element::Int(lo)], vec![Element::Int(hi)]),
            )
            .reverse(reverse);
            let writes = if concurrent { writes } else { Vec::new() };
            let got = world
                .page_through(&plan, ret, &limits, &writes, |e: &IndexEntry| {
                    (e.values.first().and_then(|v| v.as_i64()).unwrap(), pk_of(&e.primary_key))
                })
                .await;
            assert_strict(&got, reverse);
            let got_set: BTreeSet<(i64, i64)> = got.iter().copied().collect();
            for id in world.stable(|_, s| (lo..=hi).contains(&(s.tier as i64))) {
                let tier = world.initial[&id].tier as i64;
                assert!(got_set.contains(&(tier, id)), "entry ({tier}, {id}) missing");
            }
        });
    }

    #[test]
    fn unions_and_intersections_page_exactly_once(
        data in data(),
        (ret, limits) in limits(),
        reverse in any::<bool>(),
        tier in 0i64..3,
        tag_a in 0usize..4,
        tag_b in 0usize..4,
        concurrent in any::<bool>(),
        writes in ops(),
    ) {
        block_on(async {
            let mut world = World::new(&data).await;
            let writes = if concurrent { writes } else { Vec::new() };
            let has = |s: &Spec, t: usize| s.mask & (1 << t) != 0;
            let union: Union<_, IndexEntry> = Union::new()
                .child(tier_scan(tier).reverse(reverse))
                .child(tag_scan(TAGS[tag_a]).reverse(reverse))
                .child(tag_scan(TAGS[tag_b]).reverse(reverse));
            let got = world
                .page_through(&union, ret, &limits, &writes, |e: &IndexEntry| pk_of(&e.primary_key))
                .await;
            let stable = world.stable(|_, s| s.tier as i64 == tier || has(s, tag_a) || has(s, tag_b));
            check_ids(&got, &stable, &world, reverse);

            let mut world = World::new(&data).await;
            let inter: Intersection<_, IndexEntry> = Intersection::new()
                .child(tier_scan(tier).reverse(reverse))
                .child(tag_scan(TAGS[tag_a]).reverse(reverse));
            let got = world
                .page_through(&inter, ret, &limits, &writes, |e: &IndexEntry| pk_of(&e.primary_key))
                .await;
            let stable = world.stable(|_, s| s.tier as i64 == tier && has(s, tag_a));
            check_ids(&got, &stable, &world, reverse);
        });
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let signed = ContinuationCodec::signed(b"k");
        let _ = signed.decode(&bytes);
        let _ = Continuation::from_bytes(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = signed.decode_str(&text);
        let _ = Continuation::from_token_string(&text);
    }

    #[test]
    fn mutated_tokens_never_panic_and_signed_ones_are_rejected(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        // A real union token, mutated.
        let c = block_on(async {
            let world = World::new(&(0..20).map(|i| (i, Spec { tier: (i % 3) as i32, mask: (i % 16) as u8, big: false })).collect()).await;
            let union: Union<_, IndexEntry> = Union::new().child(tier_scan(1)).child(tag_scan("a"));
            page(&world.db, &world.md, &union, &ExecuteOptions::new().return_limit(3)).await.unwrap().continuation
        });
        let signed = ContinuationCodec::signed(b"k");
        let mut bytes = signed.encode(&c);
        let original = bytes.clone();
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if bytes != original {
            prop_assert!(signed.decode(&bytes).is_err());
        }
        let _ = Continuation::from_bytes(&bytes);
        let n = cut.index(original.len());
        prop_assert!(signed.decode(&original[..n]).is_err());
    }
}
