//! An HTTP service over a record store: users listed in pages with signed continuation
//! tokens, filtered by an index, created, updated and deleted with JSON. See
//! `examples::api` for the routes.
//!
//! Run with `cargo run -p examples --bin paginated-api` (on FoundationDB: add
//! `--features fdb`), then for example:
//!
//! ```sh
//! curl 'http://127.0.0.1:3000/users?limit=5'
//! curl 'http://127.0.0.1:3000/users?city=Paris&limit=5&cursor=<next_cursor from above>'
//! curl -X POST -H 'content-type: application/json' \
//!      -d '{"id":1000,"email":"new@example.com","name":"New","city":"Oslo"}' http://127.0.0.1:3000/users
//! ```
//!
//! Options: `--addr 127.0.0.1:3000`, `--seed 50` (sample users to create first).
//! The token signing key comes from `PAGINATED_API_KEY` (a fixed demo key otherwise).

use examples::api::{serve, AppState};
use examples::backend::{reset, Backend};
use examples::users::{metadata_v1, sample_user};
use fdb_records::cursor::ContinuationCodec;
use fdb_records::kv::Database;
use fdb_records::store::{RecordStore, RecordStoreError};
use foundationdb_tuple::Subspace;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut addr = "127.0.0.1:3000".to_string();
    let mut seed = 50i64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--seed" => seed = args.next().ok_or("--seed needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let key = std::env::var("PAGINATED_API_KEY")
        .unwrap_or_else(|_| "demo key: set PAGINATED_API_KEY".into());
    let backend = Backend::open("paginated-api")?;
    let subspace = Subspace::from(("paginated-api",));
    reset(&backend.db, &subspace).await?;
    let metadata = metadata_v1()?;
    backend
        .db
        .run(|tx, _| {
            let (metadata, subspace) = (metadata.clone(), subspace.clone());
            async move {
                let store = RecordStore::open(&tx, subspace, metadata).await?;
                for id in 1..=seed {
                    store.save_record(&sample_user(id)).await?;
                }
                Ok::<_, RecordStoreError>(())
            }
        })
        .await?;
    let state = Arc::new(AppState {
        db: backend.db.clone(),
        metadata,
        subspace,
        codec: ContinuationCodec::signed(key.as_bytes()),
    });
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("database: {}", backend.location);
    println!(
        "{seed} sample users; listening on http://{}",
        listener.local_addr()?
    );
    println!(
        "try: curl 'http://{}/users?limit=5'   (Ctrl-C to stop)",
        listener.local_addr()?
    );
    tokio::select! {
        served = serve(listener, state) => served?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    drop(backend);
    Ok(())
}
