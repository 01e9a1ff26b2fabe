//! The database connection (SQLite or PostgreSQL behind one type), its r2d2 pool and migrations.
//!
//! We build connections ourselves instead of using `MultiConnection::establish`, which tries each
//! backend in turn: SQLite accepts any string as a file name, so a PostgreSQL URL with a typo would
//! silently become a local file.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection to either backend; all queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
}

pub type DbPool = r2d2::Pool<Manager>;

/// How the pool is sized and how long a caller waits for a connection.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    pub connection_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self { max_size: 8, connection_timeout: Duration::from_secs(5) }
    }
}

/// r2d2 manager that opens the backend the URL names and prepares each SQLite connection.
#[derive(Debug, Clone)]
pub struct Manager {
    url: String,
    backend: Backend,
}

impl Manager {
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let backend = Backend::of_url(&url);
        Self { url, backend }
    }
}

#[derive(QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = diesel::sql_types::Text)]
    journal_mode: String,
}

/// Opens one connection to `url`, with SQLite's pragmas set.
pub fn connect(url: &str) -> Result<DbConnection, DbError> {
    match Backend::of_url(url) {
        Backend::Postgres => Ok(DbConnection::Pg(PgConnection::establish(url)?)),
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let mut conn = SqliteConnection::establish(path)?;
            // WAL lets readers run beside the writer; busy_timeout makes writers queue instead of
            // failing with SQLITE_BUSY; foreign keys are off by default in SQLite.
            conn.batch_execute("PRAGMA busy_timeout = 5000;")?;
            // Switching to WAL can fail with "database is locked" despite the busy timeout when
            // connections are opened side by side; WAL is a property of the file, so only the
            // first connection to a new database switches it (`build_pool` opens that one alone).
            let mode = diesel::sql_query("PRAGMA journal_mode").get_result::<JournalMode>(&mut conn)?;
            if !mode.journal_mode.eq_ignore_ascii_case("wal") {
                conn.batch_execute("PRAGMA journal_mode = WAL;")?;
            }
            conn.batch_execute("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
            Ok(DbConnection::Sqlite(conn))
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = DbError;

    fn connect(&self) -> Result<DbConnection, DbError> {
        connect(&self.url)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), DbError> {
        conn.batch_execute("SELECT 1").map_err(DbError::from)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Builds the pool; fails fast if the database cannot be reached.
pub fn build_pool(url: &str, options: &PoolOptions) -> Result<DbPool, DbError> {
    let manager = Manager::new(url);
    let max = match manager.backend {
        // One SQLite file has one writer at a time; a few connections suffice and avoid lock churn.
        // One connection first, alone: it switches a new file to WAL before the pool opens its
        // connections side by side (which would race for that switch).
        Backend::Sqlite => {
            drop(connect(url)?);
            options.max_size.clamp(1, 4)
        }
        Backend::Postgres => options.max_size.max(1),
    };
    Ok(r2d2::Pool::builder().max_size(max).connection_timeout(options.connection_timeout).build(manager)?)
}

/// Runs the pending migrations of the connection's backend; returns the versions applied.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    let applied = match conn {
        DbConnection::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
}

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Pg(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}
