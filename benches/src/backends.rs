//! The two backends: the embedded engine, and redb used directly with the same layout.

use crate::{key, value, Backend, Key, KEY_LEN, PREFIX};
use fdb_records::backend::embedded::EmbeddedDatabase;
use fdb_records::kv::{strinc, Database, FdbError, RangeOption, Transaction};
use futures::executor::block_on;
use redb::{Durability, ReadableDatabase, TableDefinition};
use std::hint::black_box;
use std::ops::Range;
use std::path::Path;

/// Keys per transaction when loading the engine: well under FoundationDB's 10 MB
/// transaction size limit.
const ENGINE_LOAD_CHUNK: u64 = 5_000;

/// The embedded engine's table layout, reproduced for the raw baseline.
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");

/// The embedded engine: `EmbeddedDatabase::open`, driven with `block_on`.
pub struct EngineBackend {
    db: EmbeddedDatabase,
    /// End of the data set's key range (`strinc(PREFIX)`).
    end: Vec<u8>,
}

impl EngineBackend {
    pub fn database(&self) -> &EmbeddedDatabase {
        &self.db
    }
}

impl Backend for EngineBackend {
    const NAME: &'static str = "engine";

    fn open(path: &Path) -> Self {
        let db = EmbeddedDatabase::open(path).expect("open the embedded engine");
        EngineBackend {
            db,
            end: strinc(PREFIX),
        }
    }

    fn load(&self, range: Range<u64>) {
        let mut next = range.start;
        while next < range.end {
            let chunk = next..(next + ENGINE_LOAD_CHUNK).min(range.end);
            next = chunk.end;
            block_on(self.db.run(|tx, _| {
                for i in chunk.clone() {
                    tx.set(&key(i), &value(i));
                }
                futures::future::ready(Ok::<_, FdbError>(()))
            }))
            .expect("load the engine");
        }
    }

    fn point_reads(&self, keys: &[Key]) -> usize {
        let tx = self.db.create_transaction().expect("create a transaction");
        block_on(async {
            let mut found = 0;
            for k in keys {
                if let Some(v) = tx.get(k, false).await.expect("engine get") {
                    found += v.len();
                }
            }
            found
        })
    }

    fn scan(&self, start: &Key, rows: usize) -> usize {
        let tx = self.db.create_transaction().expect("create a transaction");
        let range = RangeOption::from_keys(start, &self.end).with_limit(rows);
        let result = block_on(tx.get_range(&range, 1, false)).expect("engine get_range");
        black_box(&result);
        result.key_values.len()
    }

    fn commit(&self, key: &Key, value: &[u8]) {
        block_on(self.db.run(|tx, _| {
            tx.set(key, value);
            futures::future::ready(Ok::<_, FdbError>(()))
        }))
        .expect("engine commit");
    }

    fn storage_commits(&self) -> Option<u64> {
        // One version per durable batch.
        Some(self.db.committed_version() as u64)
    }
}

/// redb used directly: one table `data: &[u8] -> &[u8]`, `Durability::Immediate`.
pub struct RedbBackend {
    db: redb::Database,
}

impl RedbBackend {
    /// [`Backend::point_reads`] without copying values out: each value is only
    /// borrowed from redb's page cache (the floor any API returning owned data sits above).
    pub fn point_reads_borrowed(&self, keys: &[Key]) -> usize {
        let tx = self.db.begin_read().expect("redb begin_read");
        let table = tx.open_table(DATA).expect("redb open_table");
        let mut found = 0;
        for k in keys {
            if let Some(v) = table.get(k.as_slice()).expect("redb get") {
                found += black_box(v.value()).len();
            }
        }
        found
    }

    /// [`Backend::scan`] without copying rows out.
    pub fn scan_borrowed(&self, start: &Key, rows: usize) -> usize {
        let tx = self.db.begin_read().expect("redb begin_read");
        let table = tx.open_table(DATA).expect("redb open_table");
        let mut n = 0;
        for row in table
            .range::<&[u8]>(start.as_slice()..)
            .expect("redb range")
            .take(rows)
        {
            let (k, v) = row.expect("redb range row");
            debug_assert_eq!(k.value().len(), KEY_LEN);
            black_box((k.value(), v.value()));
            n += 1;
        }
        n
    }

    fn write(&self, f: impl FnOnce(&mut redb::Table<'_, &'static [u8], &'static [u8]>)) {
        let mut tx = self.db.begin_write().expect("redb begin_write");
        tx.set_durability(Durability::Immediate)
            .expect("redb set_durability");
        {
            let mut table = tx.open_table(DATA).expect("redb open_table");
            f(&mut table);
        }
        tx.commit().expect("redb commit");
    }
}

impl Backend for RedbBackend {
    const NAME: &'static str = "redb";

    fn open(path: &Path) -> Self {
        let db = redb::Database::create(path).expect("create the redb database");
        let backend = RedbBackend { db };
        backend.write(|_| {});
        backend
    }

    fn load(&self, range: Range<u64>) {
        self.write(|table| {
            for i in range {
                table
                    .insert(key(i).as_slice(), value(i).as_slice())
                    .expect("redb insert");
            }
        });
    }

    fn point_reads(&self, keys: &[Key]) -> usize {
        let tx = self.db.begin_read().expect("redb begin_read");
        let table = tx.open_table(DATA).expect("redb open_table");
        let mut found = 0;
        for k in keys {
            if let Some(v) = table.get(k.as_slice()).expect("redb get") {
                found += black_box(v.value().to_vec()).len();
            }
        }
        found
    }

    fn scan(&self, start: &Key, rows: usize) -> usize {
        let tx = self.db.begin_read().expect("redb begin_read");
        let table = tx.open_table(DATA).expect("redb open_table");
        let mut out = Vec::with_capacity(rows);
        for row in table
            .range::<&[u8]>(start.as_slice()..)
            .expect("redb range")
            .take(rows)
        {
            let (k, v) = row.expect("redb range row");
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        black_box(&out);
        out.len()
    }

    fn commit(&self, key: &Key, value: &[u8]) {
        self.write(|table| {
            table.insert(key.as_slice(), value).expect("redb insert");
        });
    }
}
