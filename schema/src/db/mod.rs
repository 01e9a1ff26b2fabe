//! Storage shapes (feature `db`): diesel tables, row models, the connection type that is either
//! SQLite or PostgreSQL (`diesel::MultiConnection`), its r2d2 pool, and the embedded migrations
//! of each backend. The URL decides the backend: `postgres://` / `postgresql://` → PostgreSQL,
//! anything else is a SQLite file path.

pub mod models;
pub mod pool;
pub mod schema;

pub use pool::{Backend, DbConnection, DbError, DbPool, PoolOptions};
