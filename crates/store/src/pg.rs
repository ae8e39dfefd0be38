//! The PostgreSQL backend (`store.url`), and throwaway schemas for tests.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgConnection, PgPool};
use vigil_config::redact_url;

use crate::StoreError;

/// The PostgreSQL backend: a pool of connections to one database; cheap to clone.
///
/// Its schema is kept by the migrations in `migrations-pg/`, the twins of the SQLite ones,
/// in the connection's first `search_path` schema (`public` unless the URL says otherwise,
/// e.g. `?options[search_path]=vigil`). Every connection commits with
/// `synchronous_commit = on`: a commit is answered once it is flushed to disk, as the SQLite
/// file's full fsync.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The URL without its password, for messages.
    location: String,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://[user[:password]@]host[:port]/db`) and
    /// applies any migration it lacks.
    ///
    /// # Errors
    /// When the URL is not understood, the server cannot be reached or refuses the
    /// connection, or a migration fails; the error names the URL without its password.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let location = redact_url(url);
        let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            location: location.clone(),
            source,
        };
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| open_err(Box::new(e)))?
            .options([("synchronous_commit", "on")]);
        // One connection first, which also runs the migrations: a server that is down is
        // said at once (a pool retries a refused connection until its timeout, and then
        // says only that it timed out).
        let mut conn = opts.connect().await.map_err(|e| open_err(Box::new(e)))?;
        sqlx::migrate!("./migrations-pg")
            .run(&mut conn)
            .await
            .map_err(|source| StoreError::Migrate {
                location: location.clone(),
                source,
            })?;
        conn.close().await.map_err(|e| open_err(Box::new(e)))?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(|e| open_err(Box::new(e)))?;
        Ok(Self { pool, location })
    }

    fn file_path(&self) -> Option<&Path> {
        None
    }

    /// PostgreSQL has no integrity check of its own: every table of the store is read in
    /// full (a damaged page fails the read when the cluster has data checksums on). Each
    /// failure is a line; none: passed.
    pub(crate) async fn integrity_report(&self) -> Result<Vec<String>, StoreError> {
        use sqlx::Row as _;
        let tables = sqlx::query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             ORDER BY table_name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|source| StoreError::Query {
            location: self.location.clone(),
            what: "listing the store's tables for the integrity check",
            source,
        })?;
        let mut report = Vec::new();
        for row in &tables {
            let table: String = row.get(0);
            // A sequential scan reads every page of the table.
            let read = sqlx::query(&format!(
                "SELECT COUNT(*) FROM (SELECT * FROM \"{}\") AS t",
                table.replace('"', "\"\"")
            ))
            .fetch_one(&self.pool)
            .await;
            if let Err(e) = read {
                report.push(format!("table {table}: {e}"));
            }
            if report.len() >= crate::INTEGRITY_REPORT_LINES {
                break;
            }
        }
        Ok(report)
    }
}

crate::backend::sql_backend!(
    PgStore,
    row = sqlx::postgres::PgRow,
    conn = sqlx::PgConnection,
    insertion_order = "seq"
);

/// A schema of its own on a PostgreSQL server, for one test: created with a name no other
/// test (nor an earlier run) uses, dropped by [`PgTestSchema::drop_schema`]. A store opened
/// at [`PgTestSchema::url`] keeps its tables there.
///
/// The server is `VIGIL_TEST_PG_URL`, by default [`PgTestSchema::DEFAULT_SERVER`]. When it
/// cannot be reached, [`PgTestSchema::create`] prints `SKIPPED: …` and gives `None`, so that
/// the tests pass on a machine without PostgreSQL, unless `VIGIL_TEST_PG_REQUIRED` is set
/// (as CI sets it): then it fails.
#[derive(Debug)]
pub struct PgTestSchema {
    server: String,
    name: String,
    url: String,
}

/// Tells apart the schemas of one test process.
static SCHEMAS: AtomicU32 = AtomicU32::new(0);

impl PgTestSchema {
    /// The server the tests use unless `VIGIL_TEST_PG_URL` names another: loopback, trust
    /// authentication, database `test`.
    pub const DEFAULT_SERVER: &'static str = "postgres://postgres@127.0.0.1:5432/test";

    /// Creates a schema for the test `test` (named in the `SKIPPED` line).
    ///
    /// # Errors
    /// When the server is reached but the schema cannot be created; when it cannot be
    /// reached and `VIGIL_TEST_PG_REQUIRED` is set; when `VIGIL_TEST_PG_URL` is not text.
    pub async fn create(test: &str) -> Result<Option<Self>, StoreError> {
        let server = match std::env::var("VIGIL_TEST_PG_URL") {
            Ok(url) => url,
            Err(std::env::VarError::NotPresent) => Self::DEFAULT_SERVER.to_string(),
            Err(e) => {
                return Err(StoreError::Open {
                    location: "VIGIL_TEST_PG_URL".into(),
                    source: Box::new(e),
                });
            }
        };
        let location = redact_url(&server);
        let mut admin = match connect(&server).await {
            Ok(conn) => conn,
            Err(why) if std::env::var_os("VIGIL_TEST_PG_REQUIRED").is_none() => {
                eprintln!(
                    "SKIPPED: PostgreSQL not reachable at {location} ({why}); {test} did not \
                     run against PostgreSQL (set VIGIL_TEST_PG_REQUIRED=1 to fail instead)"
                );
                return Ok(None);
            }
            Err(why) => {
                return Err(StoreError::Open {
                    location,
                    source: format!(
                        "PostgreSQL not reachable, and VIGIL_TEST_PG_REQUIRED is set: {why}"
                    )
                    .into(),
                });
            }
        };
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| StoreError::Open {
                location: "the system clock, for a test schema's name".into(),
                source: Box::new(e),
            })?
            .as_secs();
        let name = format!(
            "vigil_test_{secs}_{}_{}",
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut admin)
            .await
            .map_err(|source| StoreError::Query {
                location: location.clone(),
                what: "creating a test schema",
                source,
            })?;
        admin.close().await.map_err(|source| StoreError::Query {
            location,
            what: "closing the connection that created a test schema",
            source,
        })?;
        let joint = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{joint}options[search_path]={name}");
        Ok(Some(Self { server, name, url }))
    }

    /// The URL of a store kept in this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the schema and everything in it. Close the stores opened in it first.
    ///
    /// # Errors
    /// When the server cannot be reached or the schema cannot be dropped.
    pub async fn drop_schema(self) -> Result<(), StoreError> {
        let location = redact_url(&self.server);
        let mut admin = connect(&self.server)
            .await
            .map_err(|source| StoreError::Open {
                location: location.clone(),
                source: source.into(),
            })?;
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&mut admin)
            .await
            .map_err(|source| StoreError::Query {
                location: location.clone(),
                what: "dropping a test schema",
                source,
            })?;
        admin.close().await.map_err(|source| StoreError::Query {
            location,
            what: "closing the connection that dropped a test schema",
            source,
        })
    }
}

/// One connection to `url`, given up after 5 s; the error says why, without the URL.
async fn connect(url: &str) -> Result<PgConnection, String> {
    let opts = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(5), opts.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}
