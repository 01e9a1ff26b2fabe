//! Storage shapes (feature `db`): diesel tables, row models, the connection type that is either
//! SQLite or PostgreSQL (`diesel::MultiConnection`), its r2d2 pool, and the embedded migrations
//! of each backend. The URL decides the backend: `postgres://` / `postgresql://` → PostgreSQL,
//! anything else is a SQLite file path. `store`: every query, per model, and the lap codec.

pub mod models;
pub mod pool;
pub mod schema;
pub mod store;

pub use pool::{Backend, DbConnection, DbError, DbPool, PoolOptions};
