//! Storage wiring: the pool built from the config, migrations at start-up, and [`Db::run`], which
//! moves blocking diesel work onto actix's blocking thread pool so it never stalls the async
//! executor threads.

use pitbox_schema::db::pool::{build_pool, run_migrations};
use pitbox_schema::db::{Backend, DbConnection, DbError, DbPool, PoolOptions};

use crate::config::Config;
use crate::error::ApiError;

#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    backend: Backend,
}

impl Db {
    /// Opens the database named by the config (creating the data directory for SQLite).
    pub fn open(config: &Config) -> Result<Db, DbError> {
        let backend = Backend::of_url(&config.database_url);
        if backend == Backend::Sqlite {
            if let Some(parent) = std::path::Path::new(&config.database_url).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        DbError::Migration(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
            }
        }
        let options = PoolOptions { max_size: config.db_pool_size, ..PoolOptions::default() };
        let pool = build_pool(&config.database_url, &options)?;
        Ok(Db { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.pool.get()?;
        run_migrations(&mut conn)
    }

    /// Runs `f` with a pooled connection, synchronously (for the CLI and start-up).
    pub fn run_blocking<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut conn = self.pool.get().map_err(DbError::from)?;
        f(&mut conn)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            f(&mut conn)
        })
        .await?
    }

    /// The pool itself, for the actors' store writer.
    pub fn pool(&self) -> DbPool {
        self.pool.clone()
    }

    /// Pool state for `/metrics`: (connections, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }
}
