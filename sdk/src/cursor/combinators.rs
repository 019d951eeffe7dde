//! Union and intersection of scans ordered by primary key, with continuations that
//! hold every child's position.
//!
//! Each child's position moves only past items the combinator consumed: returned,
//! merged into a returned duplicate (union), or proven absent from the result
//! (intersection). An item a child has read but the combinator has not consumed is
//! read again after resuming, so nothing is skipped or repeated.

use super::continuation::{BindingHasher, ContinuationError, Position};
use super::{exhausted, CursorError, Limiter, NoNextReason, ScanPlan, Step, Steps};
use crate::kv::Transaction;
use crate::layout;
use crate::store::{IndexEntry, RecordStore, StoredRecord};
use futures::stream::{self, StreamExt};

/// Items that carry a primary key: what unions and intersections order and match by.
pub trait PrimaryKeyed {
    /// The primary key as ordered bytes ([`layout::primary_key_bytes`]).
    fn primary_key_bytes(&self) -> Vec<u8>;
}

impl PrimaryKeyed for IndexEntry {
    fn primary_key_bytes(&self) -> Vec<u8> {
        layout::primary_key_bytes(&self.primary_key)
    }
}

impl PrimaryKeyed for StoredRecord {
    fn primary_key_bytes(&self) -> Vec<u8> {
        layout::primary_key_bytes(&self.primary_key)
    }
}

type Child<T, I> = Box<dyn ScanPlan<T, Item = I>>;

/// Items in any child (OR), once each, in primary-key order. Children must return
/// items in primary-key order in the same direction (for index scans: equality
/// scans), else the cursor fails with [`CursorError::OutOfOrder`].
///
/// ```
/// use fdb_records::backend::embedded::EmbeddedTransaction;
/// use fdb_records::cursor::{IndexScan, Union};
/// use fdb_records::store::TupleRange;
/// use foundationdb_tuple::Element;
/// let pro_or_tagged: Union<EmbeddedTransaction, _> = Union::new()
///     .child(IndexScan::new("by_tier", TupleRange::prefix(vec![Element::Int(1)])))
///     .child(IndexScan::new("by_tag", TupleRange::prefix(vec![Element::String("vip".into())])));
/// # let _ = pro_or_tagged;
/// ```
pub struct Union<T: Transaction, I> {
    children: Vec<Child<T, I>>,
}

/// Items in every child (AND), in primary-key order (the first child's item is
/// returned). Same ordering requirement as [`Union`].
pub struct Intersection<T: Transaction, I> {
    children: Vec<Child<T, I>>,
}

macro_rules! builder {
    ($name:ident) => {
        impl<T: Transaction, I: PrimaryKeyed + Send + 'static> Default for $name<T, I> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T: Transaction, I: PrimaryKeyed + Send + 'static> $name<T, I> {
            /// No children yet: add them with [`child`](Self::child).
            pub fn new() -> Self {
                $name {
                    children: Vec::new(),
                }
            }
            /// Adds a child scan.
            pub fn child(mut self, plan: impl ScanPlan<T, Item = I> + 'static) -> Self {
                self.children.push(Box::new(plan));
                self
            }
            /// Adds a boxed child scan.
            pub fn boxed_child(mut self, plan: Child<T, I>) -> Self {
                self.children.push(plan);
                self
            }
        }
    };
}
builder!(Union);
builder!(Intersection);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Union,
    Intersection,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Union => "union",
            Mode::Intersection => "intersection",
        }
    }
}

fn bind_children<T: Transaction, I: Send + 'static>(
    h: &mut BindingHasher,
    mode: Mode,
    children: &[Child<T, I>],
) {
    h.bytes(mode.name().as_bytes());
    h.u64(children.len() as u64);
    for child in children {
        let mut sub = BindingHasher::new();
        child.bind(&mut sub);
        h.bytes(&sub.finish());
    }
}

fn open_children<T: Transaction, I: PrimaryKeyed + Send + 'static>(
    mode: Mode,
    children: &[Child<T, I>],
    store: &RecordStore<T>,
    position: Position,
    limiter: &Limiter,
) -> Result<Steps<I>, CursorError> {
    let Some(first) = children.first() else {
        return Err(CursorError::InvalidPlan(format!(
            "a {} needs at least one child",
            mode.name()
        )));
    };
    let reverse = first.is_reverse();
    if children.iter().any(|c| c.is_reverse() != reverse) {
        return Err(CursorError::InvalidPlan(format!(
            "the children of a {} must scan in the same direction",
            mode.name()
        )));
    }
    let (floor, positions) = match position {
        Position::Start => (None, vec![Position::Start; children.len()]),
        Position::End => return Ok(exhausted()),
        Position::Children { last, children: p } if p.len() == children.len() => (last, p),
        Position::Children { children: p, .. } => {
            return Err(ContinuationError::InvalidPosition(format!(
                "{} child positions for a {} of {}",
                p.len(),
                mode.name(),
                children.len()
            ))
            .into())
        }
        Position::After(_) => {
            return Err(ContinuationError::InvalidPosition(format!(
                "a single-scan position for a {}",
                mode.name()
            ))
            .into())
        }
    };
    let mut states = Vec::with_capacity(children.len());
    for (plan, position) in children.iter().zip(positions) {
        let steps = match position {
            Position::End => exhausted(),
            ref p => plan.open(store, p.clone(), limiter)?,
        };
        states.push(ChildState {
            steps,
            head: None,
            position,
            ended: None,
            last_key: None,
        });
    }
    let merge = Merge {
        mode,
        reverse,
        children: states,
        floor,
        done: false,
    };
    Ok(stream::unfold(merge, |mut m| async move {
        if m.done {
            return None;
        }
        let step = m.step().await;
        if !matches!(step, Ok(Step::Item(..))) {
            m.done = true;
        }
        Some((step, m))
    })
    .boxed())
}

impl<T: Transaction, I: PrimaryKeyed + Send + 'static> ScanPlan<T> for Union<T, I> {
    type Item = I;
    fn is_reverse(&self) -> bool {
        self.children.first().is_some_and(|c| c.is_reverse())
    }
    fn check(&self) -> Result<(), CursorError> {
        self.children.iter().try_for_each(|c| c.check())
    }
    fn bind(&self, h: &mut BindingHasher) {
        bind_children(h, Mode::Union, &self.children);
    }
    fn open(
        &self,
        store: &RecordStore<T>,
        position: Position,
        limiter: &Limiter,
    ) -> Result<Steps<I>, CursorError> {
        open_children(Mode::Union, &self.children, store, position, limiter)
    }
}

impl<T: Transaction, I: PrimaryKeyed + Send + 'static> ScanPlan<T> for Intersection<T, I> {
    type Item = I;
    fn is_reverse(&self) -> bool {
        self.children.first().is_some_and(|c| c.is_reverse())
    }
    fn check(&self) -> Result<(), CursorError> {
        self.children.iter().try_for_each(|c| c.check())
    }
    fn bind(&self, h: &mut BindingHasher) {
        bind_children(h, Mode::Intersection, &self.children);
    }
    fn open(
        &self,
        store: &RecordStore<T>,
        position: Position,
        limiter: &Limiter,
    ) -> Result<Steps<I>, CursorError> {
        open_children(Mode::Intersection, &self.children, store, position, limiter)
    }
}

struct ChildState<I> {
    steps: Steps<I>,
    /// Read from the child, not yet consumed: (item, primary key bytes, position after it).
    head: Option<(I, Vec<u8>, Position)>,
    /// After the last item consumed (or the child's end).
    position: Position,
    ended: Option<NoNextReason>,
    last_key: Option<Vec<u8>>,
}

impl<I> ChildState<I> {
    fn consume(&mut self) -> Option<I> {
        let (item, key, position) = self.head.take()?;
        self.position = position;
        self.last_key = Some(key);
        Some(item)
    }
    fn key(&self) -> Option<&[u8]> {
        self.head.as_ref().map(|(_, k, _)| k.as_slice())
    }
}

struct Merge<I> {
    mode: Mode,
    reverse: bool,
    children: Vec<ChildState<I>>,
    /// The primary key of the last item returned: children skip items at or before it.
    floor: Option<Vec<u8>>,
    done: bool,
}

impl<I: PrimaryKeyed + Send + 'static> Merge<I> {
    /// Gives every live child without a head its next item.
    async fn fill(&mut self) -> Result<(), CursorError> {
        let (mode, reverse) = (self.mode, self.reverse);
        for (i, child) in self.children.iter_mut().enumerate() {
            while child.head.is_none() && child.ended.is_none() {
                Self::fill_child(mode, reverse, self.floor.as_deref(), i, child).await?;
            }
        }
        Ok(())
    }

    async fn fill_child(
        mode: Mode,
        reverse: bool,
        floor: Option<&[u8]>,
        i: usize,
        child: &mut ChildState<I>,
    ) -> Result<(), CursorError> {
        {
            match child.steps.next().await {
                Some(Ok(Step::Item(item, position))) => {
                    let key = item.primary_key_bytes();
                    if let Some(last) = &child.last_key {
                        let ordered = if reverse { key < *last } else { key > *last };
                        if !ordered {
                            return Err(CursorError::OutOfOrder {
                                combinator: mode.name(),
                                child: i,
                            });
                        }
                    }
                    child.head = Some((item, key, position));
                    // Already returned (or moved behind the others while the scan was
                    // suspended): consume without returning it again.
                    let behind = floor.is_some_and(|f| {
                        let k = child.key().unwrap_or_default();
                        if reverse {
                            k >= f
                        } else {
                            k <= f
                        }
                    });
                    if behind {
                        child.consume();
                    }
                }
                Some(Ok(Step::End(reason, position))) => {
                    child.ended = Some(reason);
                    child.position = position;
                }
                Some(Err(e)) => return Err(e),
                None => {
                    child.ended = Some(NoNextReason::SourceExhausted);
                    child.position = Position::End;
                }
            }
        }
        Ok(())
    }

    fn positions(&self) -> Position {
        Position::Children {
            last: self.floor.clone(),
            children: self.children.iter().map(|c| c.position.clone()).collect(),
        }
    }

    /// The key that comes first in the scan's direction.
    fn first_of<'k>(&self, a: &'k [u8], b: &'k [u8]) -> &'k [u8] {
        if (a < b) != self.reverse {
            a
        } else {
            b
        }
    }

    async fn step(&mut self) -> Result<Step<I>, CursorError> {
        match self.mode {
            Mode::Union => self.union_step().await,
            Mode::Intersection => self.intersection_step().await,
        }
    }

    async fn union_step(&mut self) -> Result<Step<I>, CursorError> {
        self.fill().await?;
        // A child stopped by a limit may still hold items that sort before the
        // other heads: stop, resuming every child where it is.
        if let Some(reason) = self
            .children
            .iter()
            .find_map(|c| c.ended.filter(|r| r.has_more()))
        {
            return Ok(Step::End(reason, self.positions()));
        }
        let mut best: Option<Vec<u8>> = None;
        for key in self.children.iter().filter_map(ChildState::key) {
            best = Some(match &best {
                None => key.to_vec(),
                Some(b) => self.first_of(b, key).to_vec(),
            });
        }
        let Some(best) = best else {
            return Ok(Step::End(NoNextReason::SourceExhausted, Position::End));
        };
        let mut returned = None;
        for child in &mut self.children {
            if child.key() == Some(best.as_slice()) {
                let item = child.consume();
                if returned.is_none() {
                    returned = item;
                }
            }
        }
        let item = returned.expect("the best key came from a head");
        self.floor = Some(best);
        Ok(Step::Item(item, self.positions()))
    }

    async fn intersection_step(&mut self) -> Result<Step<I>, CursorError> {
        loop {
            self.fill().await?;
            if self
                .children
                .iter()
                .any(|c| c.ended == Some(NoNextReason::SourceExhausted))
            {
                return Ok(Step::End(NoNextReason::SourceExhausted, Position::End));
            }
            if let Some(reason) = self.children.iter().find_map(|c| c.ended) {
                return Ok(Step::End(reason, self.positions()));
            }
            // Every child has a head: the one furthest along bounds the others.
            let mut target: Option<Vec<u8>> = None;
            for key in self.children.iter().filter_map(ChildState::key) {
                target = Some(match &target {
                    None => key.to_vec(),
                    Some(t) => {
                        if self.first_of(t, key) == t.as_slice() {
                            key.to_vec()
                        } else {
                            t.clone()
                        }
                    }
                });
            }
            let target = target.expect("every child has a head");
            if self
                .children
                .iter()
                .all(|c| c.key() == Some(target.as_slice()))
            {
                let mut items = self.children.iter_mut().filter_map(ChildState::consume);
                let item = items.next().expect("at least one child");
                items.for_each(drop);
                self.floor = Some(target);
                return Ok(Step::Item(item, self.positions()));
            }
            // Heads before the target cannot be in every child: consume them.
            for child in &mut self.children {
                if child.key() != Some(target.as_slice()) {
                    child.consume();
                }
            }
        }
    }
}
