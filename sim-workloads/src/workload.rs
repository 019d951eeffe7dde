//! The workloads, written once against the SDK's public API and generic over
//! [`Database`]: writers (index integrity, exactly-once aggregates, adversarial inputs,
//! conflict storms, transactions near the size limit), pagers (continuation
//! completeness), a change-feed follower (version sync) and an online index builder.

use crate::schema::{self, ORDER};
use crate::{Shared, Violation};
use fdb_records::cursor::{
    Continuation, CursorError, ExecuteOptions, IndexScan, Intersection, RecordScan, Union,
};
use fdb_records::kv::{self, Database, FdbError, RangeOption, RetryableError, Transaction};
use fdb_records::metadata::RecordMetaData;
use fdb_records::store::{
    BuildConfig, IndexEntry, OnlineIndexBuilder, RecordExistence, RecordRange, RecordStore,
    RecordStoreError, RecordVersion, StoreChecker, StoredRecord, TupleRange,
};
use foundationdb_tuple::{Element, Subspace};
use futures::future::{BoxFuture, FutureExt};
use prost_reflect::{DescriptorPool, DynamicMessage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Errors inside a workload transaction: the SDK's, kept typed so the retry loop sees
/// every FoundationDB error.
#[derive(Debug)]
pub enum WlError {
    Fdb(FdbError),
    Store(RecordStoreError),
    Cursor(CursorError),
}

impl std::fmt::Display for WlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WlError::Fdb(e) => write!(f, "{e}"),
            WlError::Store(e) => write!(f, "{e}"),
            WlError::Cursor(e) => write!(f, "{e}"),
        }
    }
}

impl From<FdbError> for WlError {
    fn from(e: FdbError) -> Self {
        WlError::Fdb(e)
    }
}
impl From<RecordStoreError> for WlError {
    fn from(e: RecordStoreError) -> Self {
        WlError::Store(e)
    }
}
impl From<CursorError> for WlError {
    fn from(e: CursorError) -> Self {
        WlError::Cursor(e)
    }
}
impl RetryableError for WlError {
    fn fdb_error(&self) -> Option<FdbError> {
        match self {
            WlError::Fdb(e) => Some(*e),
            WlError::Store(e) => e.fdb_error(),
            WlError::Cursor(e) => e.fdb_error(),
        }
    }
}

/// Equal as stored: compares encodings (a proto3 default set explicitly is not stored).
fn same(a: &DynamicMessage, b: &DynamicMessage) -> bool {
    use prost::Message;
    a.encode_to_vec() == b.encode_to_vec()
}

fn sdk(what: &str, e: impl std::fmt::Display) -> Violation {
    Violation::new("sdk-error", format!("{what}: {e}"))
}

/// Everything a workload client needs; cheap to share by reference.
pub struct Ctx<D: Database> {
    pub db: D,
    pub store: Subspace,
    pub log: Subspace,
    pub markers: Subspace,
    pub md: Arc<RecordMetaData>,
    pub pool: DescriptorPool,
    pub shared: Arc<Mutex<Shared>>,
}

/// The hot record every writer increments: the conflict storm.
pub const HOT: i64 = 7_777_777;
/// Orders live above this primary key (users below), so the two types never collide.
pub const ORDER_BASE: i64 = 1 << 40;

/// Aggregates the op log tracks: (kind, group) → delta.
pub const LOG_PER_TIER: u8 = 0;
pub const LOG_DELTA_SUM: u8 = 1;
pub const LOG_USERS: u8 = 2;

fn pk(i: i64) -> Vec<Element<'static>> {
    vec![Element::Int(i)]
}

fn pk_of(t: &[Element<'_>]) -> Option<i64> {
    match t {
        [Element::Int(i)] => Some(*i),
        _ => None,
    }
}

/// Yields to the other clients `n` times (deterministic under a single-threaded executor).
pub async fn yield_n(n: u32) {
    for _ in 0..n {
        let mut yielded = false;
        futures::future::poll_fn(|cx| {
            if yielded {
                std::task::Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await
    }
}

fn effect(m: &DynamicMessage, sign: i64, out: &mut Vec<(u8, i64, i64)>) {
    if schema::is_user(m) {
        out.push((LOG_PER_TIER, schema::tier(m), sign));
        out.push((LOG_USERS, 0, sign));
    } else {
        let d = schema::get_i64(m, "delta");
        let d = if sign < 0 { d.wrapping_neg() } else { d };
        out.push((LOG_DELTA_SUM, schema::get_i64(m, "user_id"), d));
    }
}

fn encode_log(entries: &[(u8, i64, i64)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(entries.len() * 17);
    for (k, g, d) in entries {
        v.push(*k);
        v.extend_from_slice(&g.to_le_bytes());
        v.extend_from_slice(&d.to_le_bytes());
    }
    v
}

/// Decodes an op-log value; `None` if it is malformed.
pub fn decode_log(v: &[u8]) -> Option<Vec<(u8, i64, i64)>> {
    if !v.len().is_multiple_of(17) {
        return None;
    }
    v.chunks(17)
        .map(|c| {
            let g = i64::from_le_bytes(c[1..9].try_into().ok()?);
            let d = i64::from_le_bytes(c[9..17].try_into().ok()?);
            Some((c[0], g, d))
        })
        .collect()
}

/// One change a writer makes.
#[derive(Clone, Debug)]
pub enum Action {
    Save(i64, DynamicMessage),
    Delete(i64),
}

impl Action {
    fn pk(&self) -> i64 {
        match self {
            Action::Save(p, _) | Action::Delete(p) => *p,
        }
    }
}

/// Applies `actions` in one transaction (retried by the run loop) together with an
/// op-log entry of the aggregate deltas this attempt observed, as FoundationDB's
/// AtomicOps workload does. Returns the run's outcome as a trace string.
async fn apply<D: Database>(
    ctx: &Ctx<D>,
    client: usize,
    seq: u64,
    actions: Vec<Action>,
    inner_yields: u32,
) -> String {
    let pks: Vec<i64> = actions.iter().map(Action::pk).collect();
    ctx.shared.lock().unwrap().begin(&pks);
    let mut attempt = 0i64;
    let result = kv::run(&ctx.db, |tx, _maybe| {
        attempt += 1;
        let (md, sub, actions) = (ctx.md.clone(), ctx.store.clone(), actions.clone());
        let log_key = ctx.log.pack(&(client as i64, seq as i64, attempt));
        async move {
            let store = RecordStore::open(&tx, sub, md).await?;
            let mut deltas = Vec::new();
            for a in &actions {
                let old = store.load_dynamic(&pk(a.pk())).await?;
                yield_n(inner_yields).await;
                if let Some(o) = &old {
                    effect(&o.message, -1, &mut deltas);
                }
                match a {
                    Action::Save(_, m) => {
                        effect(m, 1, &mut deltas);
                        store.save_dynamic(m, RecordExistence::Any).await?;
                    }
                    Action::Delete(p) => {
                        store.delete_record(&pk(*p)).await?;
                    }
                }
            }
            store.prepare_commit();
            tx.set(&log_key, &encode_log(&deltas));
            Ok::<_, WlError>(())
        }
    })
    .await;
    let mut sh = ctx.shared.lock().unwrap();
    let outcome = match &result {
        Ok(o) => {
            for a in &actions {
                sh.set(
                    a.pk(),
                    matches!(a, Action::Save(..)).then(|| match a {
                        Action::Save(_, m) => m.clone(),
                        Action::Delete(_) => unreachable!(),
                    }),
                );
            }
            format!("ok v{} a{}", o.committed.version, o.attempts)
        }
        Err(e) => {
            sh.uncertain.extend(pks.iter().copied());
            format!("err {e}")
        }
    };
    sh.end(&pks);
    outcome
}

const EMAILS: usize = 12;

fn email(rng: &mut ChaCha8Rng, id: i64) -> String {
    if rng.random_bool(0.7) {
        return format!("u{id}.{}@x", rng.random_range(0..3)); // the record's own
    }
    match rng.random_range(0..EMAILS) {
        0 => String::new(),
        1 => "ü✓@例え.jp".into(),
        2 => "nul\0byte@x".into(),
        3 => "\0".into(),
        4 => "\u{10FFFF}".into(),
        5 => "k".repeat(9_000),    // near the key size limit
        6 => "K".repeat(10_050),   // over it: key_too_large, written nothing
        n => format!("user{n}@x"), // shared pool: uniqueness collisions
    }
}

fn random_tags(rng: &mut ChaCha8Rng) -> Vec<String> {
    const T: [&str; 5] = ["x", "y", "", "\0", "ü"];
    (0..rng.random_range(0..4))
        .map(|_| T[rng.random_range(0..T.len())].to_string())
        .collect()
}

fn boundary_i64(rng: &mut ChaCha8Rng) -> i64 {
    match rng.random_range(0..8) {
        0 => 0,
        1 => -1,
        2 => i64::MIN,
        3 => i64::MAX,
        4 => 1,
        _ => rng.random_range(-1000..1000),
    }
}

fn user_id(rng: &mut ChaCha8Rng, client: usize) -> i64 {
    if client == 0 && rng.random_bool(0.3) {
        [0, -1, i64::MIN, i64::MAX][rng.random_range(0..4)]
    } else {
        1000 * (client as i64 + 1) + rng.random_range(0..12)
    }
}

fn random_user(
    ctx_pool: &DescriptorPool,
    rng: &mut ChaCha8Rng,
    id: i64,
    name_len: usize,
) -> DynamicMessage {
    let age = match rng.random_range(0..6) {
        0 => None,
        1 => Some(i32::MIN),
        2 => Some(i32::MAX),
        3 => Some(-1),
        _ => Some(rng.random_range(0..100)),
    };
    let name = if name_len > 0 {
        "ü".repeat(name_len / 2)
    } else {
        format!("n{}\0{}", rng.random_range(0..100u32), "é")
    };
    schema::user(
        ctx_pool,
        id,
        &email(rng, id),
        rng.random_range(0..3),
        &random_tags(rng),
        age,
        name,
    )
}

fn random_order(
    pool: &DescriptorPool,
    rng: &mut ChaCha8Rng,
    client: usize,
) -> (i64, DynamicMessage) {
    let id = ORDER_BASE + 1000 * client as i64 + rng.random_range(0..12);
    let owner = [0, 1, 2, -1, i64::MAX, i64::MIN][rng.random_range(0..6)];
    (id, schema::order(pool, id, owner, boundary_i64(rng)))
}

#[derive(Clone, Copy, Debug)]
enum Op {
    SaveUser,
    DeleteUser,
    SaveOrder,
    DeleteOrder,
    Batch,
    BigRecord,
    NearSizeLimit,
    HotIncrement,
}

const OPS: [(Op, u32); 8] = [
    (Op::SaveUser, 30),
    (Op::DeleteUser, 8),
    (Op::SaveOrder, 25),
    (Op::DeleteOrder, 6),
    (Op::Batch, 8),
    (Op::BigRecord, 3),
    (Op::NearSizeLimit, 1),
    (Op::HotIncrement, 12),
];

fn pick(rng: &mut ChaCha8Rng, storm: bool) -> Op {
    if storm {
        return Op::HotIncrement;
    }
    let total: u32 = OPS.iter().map(|o| o.1).sum();
    let mut n = rng.random_range(0..total);
    for (op, w) in OPS {
        if n < w {
            return op;
        }
        n -= w;
    }
    Op::SaveUser
}

/// Writer knobs.
#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    pub ops: usize,
    /// Allow the ~10 MB transaction (slow in debug builds).
    pub near_limit: bool,
}

/// A writer: `ops` operations drawn from the alphabet, with conflict storms on the
/// hot record now and then.
pub async fn writer<D: Database>(
    ctx: &Ctx<D>,
    client: usize,
    phase: u32,
    cfg: WriterConfig,
    mut rng: ChaCha8Rng,
) -> Result<(), Violation> {
    let mut storm = 0u32;
    for i in 0..cfg.ops {
        let seq = (u64::from(phase) << 32) | i as u64;
        yield_n(rng.random_range(0..3)).await;
        if storm == 0 && rng.random_bool(0.03) {
            storm = rng.random_range(3..8);
        }
        let op = pick(&mut rng, storm > 0);
        storm = storm.saturating_sub(1);
        let inner = rng.random_range(0..3);
        let outcome = match op {
            Op::SaveUser => {
                let id = user_id(&mut rng, client);
                let m = random_user(&ctx.pool, &mut rng, id, 0);
                apply(ctx, client, seq, vec![Action::Save(id, m)], inner).await
            }
            Op::DeleteUser => {
                let id = user_id(&mut rng, client);
                apply(ctx, client, seq, vec![Action::Delete(id)], inner).await
            }
            Op::SaveOrder => {
                let (id, m) = random_order(&ctx.pool, &mut rng, client);
                apply(ctx, client, seq, vec![Action::Save(id, m)], inner).await
            }
            Op::DeleteOrder => {
                let (id, _) = random_order(&ctx.pool, &mut rng, client);
                apply(ctx, client, seq, vec![Action::Delete(id)], inner).await
            }
            Op::Batch => {
                let n = rng.random_range(2..6);
                let mut actions = Vec::new();
                for _ in 0..n {
                    actions.push(match rng.random_range(0..4) {
                        0 => {
                            let id = user_id(&mut rng, client);
                            Action::Save(id, random_user(&ctx.pool, &mut rng, id, 0))
                        }
                        1 => Action::Delete(user_id(&mut rng, client)),
                        2 => {
                            let (id, m) = random_order(&ctx.pool, &mut rng, client);
                            Action::Save(id, m)
                        }
                        _ => Action::Delete(random_order(&ctx.pool, &mut rng, client).0),
                    });
                }
                apply(ctx, client, seq, actions, inner).await
            }
            Op::BigRecord => {
                // A split record: above the 100 kB value limit.
                let id = user_id(&mut rng, client);
                let len = rng.random_range(100_001..350_000);
                let m = random_user(&ctx.pool, &mut rng, id, len);
                apply(ctx, client, seq, vec![Action::Save(id, m)], inner).await
            }
            Op::NearSizeLimit if cfg.near_limit => {
                // ~9.6 MB in one transaction (may exceed the limit with index entries:
                // then a typed error and nothing written), then cleared again.
                let base = 1000 * (client as i64 + 1) + 500;
                let actions: Vec<Action> = (0..24)
                    .map(|k| {
                        let mut m = random_user(&ctx.pool, &mut rng, base + k, 400_000);
                        m.set_field_by_name(
                            "email",
                            prost_reflect::Value::String(format!("big{}@x", base + k)),
                        );
                        Action::Save(base + k, m)
                    })
                    .collect();
                let first = apply(ctx, client, seq, actions, 0).await;
                let deletes = (0..24).map(|k| Action::Delete(base + k)).collect();
                let second = apply(ctx, client, seq | 1 << 31, deletes, 0).await;
                format!("{first}; {second}")
            }
            Op::NearSizeLimit => "skipped".into(),
            Op::HotIncrement => hot_increment(ctx, client, seq, inner).await,
        };
        ctx.shared
            .lock()
            .unwrap()
            .trace(&format!("w{client} {seq} {op:?} {outcome}"));
    }
    Ok(())
}

/// Read-modify-write of the hot record's `age`, made idempotent by a marker written
/// in the same transaction (a retry after `commit_unknown_result` finds it).
async fn hot_increment<D: Database>(ctx: &Ctx<D>, client: usize, seq: u64, inner: u32) -> String {
    let marker = ctx.markers.pack(&(client as i64, seq as i64));
    ctx.shared
        .lock()
        .unwrap()
        .hot_pending
        .insert(marker.clone());
    let mut attempt = 0i64;
    let result = kv::run(&ctx.db, |tx, _| {
        attempt += 1;
        let (md, sub, pool, marker) = (
            ctx.md.clone(),
            ctx.store.clone(),
            ctx.pool.clone(),
            marker.clone(),
        );
        let log_key = ctx.log.pack(&(client as i64, seq as i64, attempt));
        async move {
            let store = RecordStore::open(&tx, sub, md).await?;
            if tx.get(&marker, false).await?.is_some() {
                return Ok::<_, WlError>(false);
            }
            let old = store.load_dynamic(&pk(HOT)).await?;
            yield_n(inner).await;
            let mut deltas = Vec::new();
            let age = match &old {
                Some(o) => {
                    effect(&o.message, -1, &mut deltas);
                    schema::get_i32(&o.message, "age").unwrap_or(0) + 1
                }
                None => 1,
            };
            let m = schema::user(&pool, HOT, "hot@x", 0, &[], Some(age), "hot".into());
            effect(&m, 1, &mut deltas);
            store.save_dynamic(&m, RecordExistence::Any).await?;
            store.prepare_commit();
            tx.set(&marker, b"");
            tx.set(&log_key, &encode_log(&deltas));
            Ok(true)
        }
    })
    .await;
    let mut sh = ctx.shared.lock().unwrap();
    sh.hot_pending.remove(&marker);
    match result {
        Ok(o) => {
            sh.hot_done += 1;
            format!("ok {} v{} a{}", o.value, o.committed.version, o.attempts)
        }
        Err(e) => {
            sh.hot_uncertain.push(marker);
            format!("err {e}")
        }
    }
}

/// Which scan a pager runs.
#[derive(Clone, Copy, Debug)]
enum ScanKind {
    Plain,
    Union,
    Intersection,
}

fn matches(kind: ScanKind, m: &DynamicMessage) -> bool {
    match kind {
        ScanKind::Plain => true,
        ScanKind::Union => schema::is_user(m) && matches!(schema::tier(m), 1 | 2),
        ScanKind::Intersection => {
            schema::is_user(m) && schema::tier(m) == 1 && schema::tags(m).iter().any(|t| t == "x")
        }
    }
}

/// Continuation completeness: pages through scans with random limits, one page per
/// transaction, while writers run. Records present and unchanged for the whole scan
/// must be returned exactly once, in primary-key order.
pub async fn pager<D: Database>(
    ctx: &Ctx<D>,
    client: usize,
    scans: usize,
    mut rng: ChaCha8Rng,
) -> Result<(), Violation> {
    for s in 0..scans {
        let kind =
            [ScanKind::Plain, ScanKind::Union, ScanKind::Intersection][rng.random_range(0..3)];
        let before = ctx.shared.lock().unwrap().stable_snapshot();
        let mut cont: Option<Continuation> = None;
        let mut got: Vec<i64> = Vec::new();
        let mut pages = 0;
        loop {
            yield_n(rng.random_range(0..4)).await;
            let limit = rng.random_range(1..=6);
            let page = read_page(ctx, kind, cont.clone(), limit).await?;
            pages += 1;
            for p in page.0 {
                got.push(p.ok_or_else(|| {
                    Violation::new(
                        "continuation-completeness",
                        "non-integer primary key returned".into(),
                    )
                })?);
            }
            if page.1.is_end() {
                break;
            }
            cont = Some(page.1);
        }
        let after = ctx.shared.lock().unwrap().stable_snapshot();
        check_scan(kind, &before, &after, &got, pages)?;
        ctx.shared.lock().unwrap().trace(&format!(
            "p{client} {s} {kind:?} pages={pages} n={}",
            got.len()
        ));
    }
    Ok(())
}

/// One page of a scan, in its own transaction.
async fn read_page<D: Database>(
    ctx: &Ctx<D>,
    kind: ScanKind,
    cont: Option<Continuation>,
    limit: usize,
) -> Result<(Vec<Option<i64>>, Continuation), Violation> {
    let (md, sub) = (ctx.md.clone(), ctx.store.clone());
    ctx.db
        .run(|tx, _| {
            let (md, sub, cont) = (md.clone(), sub.clone(), cont.clone());
            async move {
                let store = RecordStore::open(&tx, sub, md).await?;
                let opts = ExecuteOptions::new().continuation(cont).return_limit(limit);
                let (pks, c) = match kind {
                    ScanKind::Plain => {
                        let p = store
                            .execute(&RecordScan::new(RecordRange::all()), &opts)?
                            .collect_page()
                            .await?;
                        (
                            p.items
                                .iter()
                                .map(|r: &StoredRecord| pk_of(&r.primary_key))
                                .collect::<Vec<_>>(),
                            p.continuation,
                        )
                    }
                    ScanKind::Union => {
                        let plan: Union<_, IndexEntry> = Union::new()
                            .child(IndexScan::new(
                                "by_tier",
                                TupleRange::prefix(vec![Element::Int(1)]),
                            ))
                            .child(IndexScan::new(
                                "by_tier",
                                TupleRange::prefix(vec![Element::Int(2)]),
                            ));
                        let p = store.execute(&plan, &opts)?.collect_page().await?;
                        (
                            p.items.iter().map(|e| pk_of(&e.primary_key)).collect(),
                            p.continuation,
                        )
                    }
                    ScanKind::Intersection => {
                        let plan: Intersection<_, IndexEntry> = Intersection::new()
                            .child(IndexScan::new(
                                "by_tier",
                                TupleRange::prefix(vec![Element::Int(1)]),
                            ))
                            .child(IndexScan::new(
                                "by_tag",
                                TupleRange::prefix(vec![Element::String("x".to_string().into())]),
                            ));
                        let p = store.execute(&plan, &opts)?.collect_page().await?;
                        (
                            p.items.iter().map(|e| pk_of(&e.primary_key)).collect(),
                            p.continuation,
                        )
                    }
                };
                Ok::<_, WlError>((pks, c))
            }
        })
        .await
        .map_err(|e| sdk("paged scan", e))
}

type Snapshot = BTreeMap<i64, (u64, Option<DynamicMessage>)>;

/// Strictly increasing primary keys; every record present and unchanged between the
/// two snapshots returned iff it matches the scan.
fn check_scan(
    kind: ScanKind,
    before: &Snapshot,
    after: &Snapshot,
    got: &[i64],
    pages: usize,
) -> Result<(), Violation> {
    for w in got.windows(2) {
        if w[0] >= w[1] {
            return Err(Violation::new(
                "continuation-completeness",
                format!(
                    "{kind:?} scan returned primary key {} then {} (duplicate or out of order)",
                    w[0], w[1]
                ),
            ));
        }
    }
    let got_set: BTreeSet<i64> = got.iter().copied().collect();
    for (p, (stamp, rec)) in before {
        let Some((stamp2, _)) = after.get(p) else {
            continue;
        };
        if stamp != stamp2 {
            continue;
        }
        let expected = rec.as_ref().is_some_and(|m| matches(kind, m));
        if expected && !got_set.contains(p) {
            return Err(Violation::new(
                    "continuation-completeness",
                    format!("{kind:?} scan over {pages} pages skipped record {p}, present and unchanged throughout"),
                ));
        }
        if !expected && got_set.contains(p) {
            return Err(Violation::new(
                "continuation-completeness",
                format!("{kind:?} scan returned record {p}, absent or not matching throughout"),
            ));
        }
    }
    Ok(())
}

/// A scan whose pages span engine restarts: `pages` pages in this phase (all the rest
/// when `finish`), its continuation kept as bytes across restarts and decoded again.
pub async fn long_pager<D: Database>(
    ctx: &Ctx<D>,
    pages: usize,
    finish: bool,
    mut rng: ChaCha8Rng,
) -> Result<(), Violation> {
    let pending = ctx.shared.lock().unwrap().long_scan.take();
    let mut st = match pending {
        Some(st) => st,
        None => {
            let before = ctx.shared.lock().unwrap().stable_snapshot();
            crate::LongScan {
                kind: rng.random_range(0..3),
                token: None,
                got: Vec::new(),
                before,
                pages: 0,
            }
        }
    };
    let kind = [ScanKind::Plain, ScanKind::Union, ScanKind::Intersection][st.kind % 3];
    for i in 0.. {
        if !finish && i >= pages {
            ctx.shared.lock().unwrap().long_scan = Some(st);
            return Ok(());
        }
        yield_n(rng.random_range(0..4)).await;
        let cont = match &st.token {
            None => None,
            Some(t) => Some(Continuation::from_bytes(t).map_err(|e| {
                Violation::new(
                    "continuation-completeness",
                    format!("a stored token no longer decodes: {e}"),
                )
            })?),
        };
        let (pks, next) = read_page(ctx, kind, cont, rng.random_range(1..=4)).await?;
        st.pages += 1;
        for p in pks {
            st.got.push(p.ok_or_else(|| {
                Violation::new(
                    "continuation-completeness",
                    "non-integer primary key returned".into(),
                )
            })?);
        }
        if next.is_end() {
            break;
        }
        st.token = Some(next.to_bytes());
    }
    let after = ctx.shared.lock().unwrap().stable_snapshot();
    check_scan(kind, &st.before, &after, &st.got, st.pages)?;
    ctx.shared.lock().unwrap().trace(&format!(
        "long {kind:?} pages={} n={}",
        st.pages,
        st.got.len()
    ));
    Ok(())
}

/// Version sync: follows the VERSION index from a watermark kept across restarts;
/// every poll returns only changes after it, in strictly increasing commit order.
pub async fn follow_changes<D: Database>(ctx: &Ctx<D>, limit: usize) -> Result<usize, Violation> {
    let mut total = 0;
    loop {
        let wm = ctx.shared.lock().unwrap().watermark;
        let (md, sub) = (ctx.md.clone(), ctx.store.clone());
        let entries = ctx
            .db
            .run(|tx, _| {
                let (md, sub) = (md.clone(), sub.clone());
                async move {
                    let store = RecordStore::open(&tx, sub, md).await?;
                    Ok::<_, WlError>(store.changes_since("changes", &[], wm, Some(limit)).await?)
                }
            })
            .await
            .map_err(|e| sdk("changes_since", e))?;
        let n = entries.len();
        let mut sh = ctx.shared.lock().unwrap();
        let mut last = wm;
        for e in entries {
            let Some(v) = e.version else {
                return Err(Violation::new(
                    "version-sync",
                    "VERSION index entry without a version".into(),
                ));
            };
            if last.is_some_and(|l| v <= l) {
                return Err(Violation::new(
                    "version-sync",
                    format!("change feed went backwards or repeated: {v:?} after {last:?}"),
                ));
            }
            last = Some(v);
            let p = pk_of(&e.primary_key).unwrap_or(i64::MIN);
            sh.seen_versions.insert((p, v));
        }
        sh.watermark = last;
        total += n;
        if n < limit {
            return Ok(total);
        }
    }
}

pub async fn follower<D: Database>(
    ctx: &Ctx<D>,
    polls: usize,
    mut rng: ChaCha8Rng,
) -> Result<(), Violation> {
    for i in 0..polls {
        yield_n(rng.random_range(1..6)).await;
        let n = follow_changes(ctx, rng.random_range(1..20)).await?;
        ctx.shared.lock().unwrap().trace(&format!("f {i} {n}"));
    }
    Ok(())
}

/// Online build under load: builds the late indexes in slices of a few transactions
/// (yielding between slices), stopping after `max_slices` (a crash mid-build when the
/// engine restarts next) or when every index is readable.
pub async fn builder<D: Database>(
    ctx: &Ctx<D>,
    max_slices: Option<u32>,
    mut rng: ChaCha8Rng,
) -> Result<bool, Violation> {
    let mut slices = 0;
    for (late, _) in schema::LATE_INDEXES {
        loop {
            if max_slices.is_some_and(|m| slices >= m) {
                return Ok(false);
            }
            slices += 1;
            yield_n(rng.random_range(0..4)).await;
            let report =
                OnlineIndexBuilder::new(ctx.db.clone(), ctx.store.clone(), ctx.md.clone(), late)
                    .config(BuildConfig {
                        initial_batch: rng.random_range(1..8),
                        max_batch: 16,
                        max_transactions: Some(rng.random_range(1..4)),
                        ..BuildConfig::default()
                    })
                    .build()
                    .await
                    .map_err(|e| {
                        Violation::new("online-build", format!("building `{late}`: {e}"))
                    })?;
            ctx.shared.lock().unwrap().trace(&format!(
                "b {late} n={} t={} complete={}",
                report.records_indexed, report.transactions, report.complete
            ));
            if report.readable {
                break;
            }
            if report.complete {
                return Err(Violation::new(
                    "online-build",
                    format!(
                        "`{late}` complete but not readable: {:?}",
                        report.uniqueness_violations
                    ),
                ));
            }
        }
    }
    Ok(true)
}

/// Deterministic per-client generator.
pub fn client_rng(seed: u64, phase: u32, client: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(
        seed ^ (u64::from(phase) << 48) ^ client.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
}

/// Knobs of one phase of clients.
#[derive(Clone, Copy, Debug)]
pub struct PhaseConfig {
    pub writers: usize,
    pub pagers: usize,
    pub writer: WriterConfig,
    pub scans: usize,
    pub polls: usize,
    /// Run the online builder; `Some(n)`: stop after n slices.
    pub build: Option<Option<u32>>,
    /// Continue the scan that spans restarts; `Some(true)`: finish it.
    pub long_scan: Option<bool>,
    /// Crash: drop every client in the middle of whatever it is doing after this many
    /// scheduling rounds (the engine restarts next).
    pub crash_after: Option<u32>,
}

/// Runs one phase: every client as a future, all joined on the caller's executor.
/// The first violation ends the phase.
pub async fn run_clients<D: Database>(
    ctx: &Ctx<D>,
    seed: u64,
    phase: u32,
    cfg: PhaseConfig,
) -> Result<(), Violation> {
    let mut clients: Vec<BoxFuture<'_, Result<(), Violation>>> = Vec::new();
    for c in 0..cfg.writers {
        clients.push(writer(ctx, c, phase, cfg.writer, client_rng(seed, phase, c as u64)).boxed());
    }
    for p in 0..cfg.pagers {
        clients.push(pager(ctx, p, cfg.scans, client_rng(seed, phase, 100 + p as u64)).boxed());
    }
    clients.push(follower(ctx, cfg.polls, client_rng(seed, phase, 200)).boxed());
    if let Some(finish) = cfg.long_scan {
        clients.push(long_pager(ctx, 3, finish, client_rng(seed, phase, 400)).boxed());
    }
    if let Some(slices) = cfg.build {
        clients.push(
            builder(ctx, slices, client_rng(seed, phase, 300))
                .map(|r| r.map(|_| ()))
                .boxed(),
        );
    }
    let all = futures::future::try_join_all(clients);
    let Some(rounds) = cfg.crash_after else {
        return all.await.map(|_| ());
    };
    let (all, crash) = (Box::pin(all), Box::pin(yield_n(rounds)));
    match futures::future::select(all, crash).await {
        futures::future::Either::Left((r, _)) => r.map(|_| ()),
        futures::future::Either::Right(((), all)) => {
            drop(all); // every client, mid-transaction or not
            let mut sh = ctx.shared.lock().unwrap();
            sh.crash();
            sh.trace(&format!("crash after {rounds} rounds"));
            Ok(())
        }
    }
}

async fn read_all<D: Database>(ctx: &Ctx<D>) -> Result<Vec<StoredRecord>, Violation> {
    let mut out = Vec::new();
    let mut cont: Option<Continuation> = None;
    loop {
        let (md, sub) = (ctx.md.clone(), ctx.store.clone());
        let page = ctx
            .db
            .run(|tx, _| {
                let (md, sub, cont) = (md.clone(), sub.clone(), cont.clone());
                async move {
                    let store = RecordStore::open(&tx, sub, md).await?;
                    let opts = ExecuteOptions::new().continuation(cont).return_limit(40);
                    Ok::<_, WlError>(
                        store
                            .execute(&RecordScan::new(RecordRange::all()), &opts)?
                            .collect_page()
                            .await?,
                    )
                }
            })
            .await
            .map_err(|e| sdk("reading every record", e))?;
        out.extend(page.items);
        if page.continuation.is_end() {
            return Ok(out);
        }
        cont = Some(page.continuation);
    }
}

/// Continuous and final validation: resolves uncertain outcomes, then checks the
/// model, the SDK's consistency checker, exactly-once aggregates against the op log,
/// the hot counter, version sync and (when built) the online-built indexes.
pub async fn validate<D: Database>(ctx: &Ctx<D>) -> Result<String, Violation> {
    // 1. Resolve uncertain outcomes by reading what is there.
    let uncertain: Vec<i64> = std::mem::take(&mut ctx.shared.lock().unwrap().uncertain)
        .into_iter()
        .collect();
    for p in uncertain {
        let (md, sub) = (ctx.md.clone(), ctx.store.clone());
        let rec = ctx
            .db
            .run(|tx, _| {
                let (md, sub) = (md.clone(), sub.clone());
                async move {
                    let store = RecordStore::open(&tx, sub, md).await?;
                    Ok::<_, WlError>(store.load_dynamic(&pk(p)).await?)
                }
            })
            .await
            .map_err(|e| sdk("resync", e))?;
        ctx.shared.lock().unwrap().set(p, rec.map(|r| r.message));
    }
    let markers = std::mem::take(&mut ctx.shared.lock().unwrap().hot_uncertain);
    for m in markers {
        let present = ctx
            .db
            .run(|tx, _| {
                let m = m.clone();
                async move { tx.get(&m, false).await.map(|v| v.is_some()) }
            })
            .await
            .map_err(|e| sdk("marker", e))?;
        if present {
            ctx.shared.lock().unwrap().hot_done += 1;
        }
    }

    // 2. Model agreement.
    let records = read_all(ctx).await?;
    let mut hot_age = 0;
    {
        let sh = ctx.shared.lock().unwrap();
        let mut found = BTreeSet::new();
        for r in &records {
            let p = pk_of(&r.primary_key).ok_or_else(|| {
                Violation::new("model-agreement", "non-integer primary key".into())
            })?;
            if p == HOT {
                hot_age = i64::from(schema::get_i32(&r.message, "age").unwrap_or(0));
                continue;
            }
            found.insert(p);
            match sh.model.get(&p).and_then(|e| e.rec.as_ref()) {
                Some(m) if same(m, &r.message) => {}
                Some(_) => {
                    return Err(Violation::new(
                        "model-agreement",
                        format!("record {p} differs from the last acknowledged save"),
                    ))
                }
                None => {
                    return Err(Violation::new(
                        "model-agreement",
                        format!("record {p} exists but was deleted or never saved"),
                    ))
                }
            }
        }
        for (p, e) in &sh.model {
            if e.rec.is_some() && !found.contains(p) {
                return Err(Violation::new(
                    "model-agreement",
                    format!("record {p} was saved but is missing"),
                ));
            }
        }
        // Hot counter: increments acknowledged (or resolved) == stored counter.
        if hot_age != sh.hot_done {
            return Err(Violation::new(
                "hot-counter",
                format!(
                    "hot record counts {hot_age} increments, {} were acknowledged",
                    sh.hot_done
                ),
            ));
        }
    }

    // 4. Exactly-once: aggregates equal the sum of the op log.
    let (log, aggs, late) = {
        let (md, sub, log_sub) = (ctx.md.clone(), ctx.store.clone(), ctx.log.clone());
        ctx.db
            .run(|tx, _| {
                let (md, sub, log_sub) = (md.clone(), sub.clone(), log_sub.clone());
                async move {
                    let (b, e) = log_sub.range();
                    let log = tx
                        .get_range_all(RangeOption::from_keys(&b, &e), false)
                        .await?;
                    let store = RecordStore::open(&tx, sub, md.clone()).await?;
                    let mut aggs = BTreeMap::new();
                    for name in ["per_tier", "users", "delta_sum", "delta_min", "delta_max"] {
                        aggs.insert(name, store.scan_aggregates(name).await?);
                    }
                    let mut late = Vec::new();
                    for (l, orig) in schema::LATE_INDEXES {
                        if md.index(l).is_none()
                            || store
                                .index_state(l)
                                .map(|s| s != fdb_records::store::IndexState::Readable)
                                .unwrap_or(true)
                        {
                            continue;
                        }
                        let pair = if l == "late_tag" {
                            let a = store
                                .scan_index(
                                    l,
                                    &TupleRange::all(),
                                    fdb_records::store::ScanOptions::forward(),
                                )
                                .await?;
                            let b = store
                                .scan_index(
                                    orig,
                                    &TupleRange::all(),
                                    fdb_records::store::ScanOptions::forward(),
                                )
                                .await?;
                            (
                                format!(
                                    "{:?}",
                                    a.iter()
                                        .map(|e| (&e.values, &e.primary_key))
                                        .collect::<Vec<_>>()
                                ),
                                format!(
                                    "{:?}",
                                    b.iter()
                                        .map(|e| (&e.values, &e.primary_key))
                                        .collect::<Vec<_>>()
                                ),
                            )
                        } else {
                            let nz = |v: Vec<(Vec<Element<'static>>, i64)>| {
                                v.into_iter().filter(|x| x.1 != 0).collect::<Vec<_>>()
                            };
                            (
                                format!("{:?}", nz(store.scan_aggregates(l).await?)),
                                format!("{:?}", nz(store.scan_aggregates(orig).await?)),
                            )
                        };
                        late.push((l, orig, pair));
                    }
                    Ok::<_, WlError>((log, aggs, late))
                }
            })
            .await
            .map_err(|e| sdk("reading aggregates", e))?
    };
    let mut expected: BTreeMap<(u8, i64), i64> = BTreeMap::new();
    for kv in &log {
        let entries = decode_log(&kv.value)
            .ok_or_else(|| Violation::new("exactly-once", "malformed op-log entry".into()))?;
        for (k, g, d) in entries {
            let e = expected.entry((k, g)).or_insert(0);
            *e = e.wrapping_add(d);
        }
    }
    for (name, kind) in [
        ("per_tier", LOG_PER_TIER),
        ("users", LOG_USERS),
        ("delta_sum", LOG_DELTA_SUM),
    ] {
        let mut stored: BTreeMap<i64, i64> = BTreeMap::new();
        for (group, v) in &aggs[name] {
            let g = if kind == LOG_USERS {
                Some(0)
            } else {
                pk_of(group)
            };
            let g = g.ok_or_else(|| {
                Violation::new("exactly-once", format!("`{name}` has a non-integer group"))
            })?;
            if *v != 0 {
                stored.insert(g, *v);
            }
        }
        let want: BTreeMap<i64, i64> = expected
            .iter()
            .filter(|((k, _), v)| *k == kind && **v != 0)
            .map(|((_, g), v)| (*g, *v))
            .collect();
        if stored != want {
            return Err(Violation::new(
                "exactly-once",
                format!("aggregate index `{name}` is {stored:?} but the operation log ({} transactions) says {want:?}", log.len()),
            ));
        }
    }
    let _ = ORDER;

    // 3. The SDK's consistency checker, paged over transactions.
    let mut checker = StoreChecker::new().page_size(50);
    while !checker.is_done() {
        let (md, sub) = (ctx.md.clone(), ctx.store.clone());
        checker = ctx
            .db
            .run(|tx, _| {
                let (md, sub, checker) = (md.clone(), sub.clone(), checker.clone());
                async move {
                    let store = RecordStore::open(&tx, sub, md).await?;
                    Ok::<_, WlError>(checker.step(&store).await?)
                }
            })
            .await
            .map_err(|e| sdk("consistency checker", e))?;
    }
    let report = checker.into_report();
    if let Some(problem) = report.problems.first() {
        return Err(Violation::new(
            "index-consistency",
            format!(
                "the consistency checker found {} problem(s), first: {problem}",
                report.problems.len()
            ),
        ));
    }

    // MIN_EVER / MAX_EVER bound every live value of their group (they never shrink back).
    for r in &records {
        if schema::is_user(&r.message) {
            continue;
        }
        let (g, d) = (
            schema::get_i64(&r.message, "user_id"),
            schema::get_i64(&r.message, "delta"),
        );
        let stored = |name: &str| {
            aggs[name]
                .iter()
                .find(|(k, _)| pk_of(k) == Some(g))
                .map(|x| x.1)
        };
        let (min, max) = (stored("delta_min"), stored("delta_max"));
        if min.is_none_or(|m| m > d) || max.is_none_or(|m| m < d) {
            return Err(Violation::new(
                "index-consistency",
                format!("group {g}: MIN_EVER {min:?} / MAX_EVER {max:?} do not bound live value {d} of order {:?}", pk_of(&r.primary_key)),
            ));
        }
    }

    // 5. Online-built indexes equal their from-scratch twins.
    for (l, orig, (a, b)) in &late {
        if a != b {
            return Err(Violation::new(
                "online-build",
                format!("index `{l}` built online differs from `{orig}` maintained from scratch: {a} vs {b}"),
            ));
        }
    }

    // 6. Version sync: catch up, then every live record's latest version was seen.
    follow_changes(ctx, 25).await?;
    {
        let sh = ctx.shared.lock().unwrap();
        for r in &records {
            let p = pk_of(&r.primary_key).unwrap_or(i64::MIN);
            let Some(v) = r.version else {
                return Err(Violation::new(
                    "version-sync",
                    format!("record {p} has no version"),
                ));
            };
            if !sh.seen_versions.contains(&(p, v)) {
                return Err(Violation::new(
                    "version-sync",
                    format!("the change feed never returned record {p} at its version {v:?}"),
                ));
            }
        }
    }
    Ok(format!(
        "records={} log={} checked={} entries={} late_built={}",
        records.len(),
        log.len(),
        report.records_checked,
        report.entries_checked,
        late.len()
    ))
}

#[allow(dead_code)]
fn _assert_version_ord(a: RecordVersion, b: RecordVersion) -> bool {
    a < b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(entries: &[(i64, u64, Option<i64>)]) -> Snapshot {
        let pool = schema::pool();
        entries
            .iter()
            .map(|(p, stamp, tier)| {
                let rec =
                    tier.map(|t| schema::user(&pool, *p, "e", t as i32, &[], None, String::new()));
                (*p, (*stamp, rec))
            })
            .collect()
    }

    #[test]
    fn check_scan_catches_skips_duplicates_disorder_and_phantoms() {
        let before = snap(&[
            (1, 1, Some(1)),
            (2, 1, Some(2)),
            (3, 1, None),
            (4, 1, Some(1)),
        ]);
        let kind = ScanKind::Plain;
        assert!(check_scan(kind, &before, &before, &[1, 2, 4], 2).is_ok());
        let skip = check_scan(kind, &before, &before, &[1, 4], 2).unwrap_err();
        assert!(skip.detail.contains("skipped record 2"), "{skip}");
        let dup = check_scan(kind, &before, &before, &[1, 2, 2, 4], 2).unwrap_err();
        assert!(dup.detail.contains("duplicate or out of order"), "{dup}");
        let order = check_scan(kind, &before, &before, &[2, 1, 4], 2).unwrap_err();
        assert_eq!(order.invariant, "continuation-completeness");
        let phantom = check_scan(kind, &before, &before, &[1, 2, 3, 4], 2).unwrap_err();
        assert!(phantom.detail.contains("record 3"), "{phantom}");
        // A record changed during the scan may or may not be returned.
        let after = snap(&[(1, 1, Some(1)), (2, 5, None), (3, 1, None), (4, 1, Some(1))]);
        assert!(check_scan(kind, &before, &after, &[1, 4], 2).is_ok());
        assert!(check_scan(kind, &before, &after, &[1, 2, 4], 2).is_ok());
        // The union scan wants tiers 1 and 2 only.
        let union = check_scan(ScanKind::Union, &before, &before, &[1, 2], 2).unwrap_err();
        assert!(union.detail.contains("skipped record 4"), "{union}");
    }

    #[test]
    fn op_log_round_trips_and_rejects_garbage() {
        let e = vec![(LOG_PER_TIER, -1, i64::MIN), (LOG_DELTA_SUM, i64::MAX, 0)];
        assert_eq!(decode_log(&encode_log(&e)), Some(e));
        assert_eq!(decode_log(&[1, 2, 3]), None);
        assert_eq!(decode_log(&[]), Some(vec![]));
    }
}
