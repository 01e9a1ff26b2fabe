//! Team leases (cluster mode): which runtime node owns a team's actors, until when, and under
//! which fencing token. PostgreSQL is the authority: every statement takes the time from the
//! database's clock (`now()`), never from a node's, so nodes with skewed clocks agree on expiry.
//!
//! - [`acquire`]: one atomic upsert: a free team or an expired lease becomes the caller's with the
//!   token one higher (a new row starts at 1). The row is never deleted, so a token only ever
//!   increases. A live lease is never taken, not even by its own owner (two claims of one node
//!   racing would otherwise fence each other out).
//! - [`renew`]: only by the owner under its token.
//! - [`release`]: expires the lease now (keeping the token for the next owner to pass).
//! - [`check`]: inside a write transaction, whether the caller still holds the team under its
//!   token; on PostgreSQL it takes the row `FOR SHARE`, so a takeover (an UPDATE of that row)
//!   waits for the write to commit or the write sees the new token: a write under a stale token
//!   never commits. [`fenced`] runs a closure in a transaction behind that check.
//!
//! SQLite has the same table and statements (its clock is the machine's), so the schema stays
//! one; cluster mode itself needs PostgreSQL. Reads no env vars.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::db::DbConnection;

/// One team's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Lease {
    #[diesel(sql_type = Text)]
    pub team_id: String,
    #[diesel(sql_type = Text)]
    pub owner: String,
    #[diesel(sql_type = BigInt)]
    pub token: i64,
    #[diesel(sql_type = Timestamp)]
    pub expires_at: NaiveDateTime,
}

/// A lease and whether it is live by the database's clock.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct LeaseState {
    #[diesel(embed)]
    pub lease: Lease,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub live: bool,
}

#[derive(QueryableByName)]
struct Token {
    #[diesel(sql_type = BigInt)]
    token: i64,
}

/// What a write runs under: unchecked (single-process), a lease's token, or nothing (this node
/// does not hold the team: the write fails as fenced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ticket {
    Single,
    Owner { node: String, token: i64 },
    NotOwner,
}

impl Ticket {
    /// The token, when the write is fenced by one.
    pub fn token(&self) -> Option<i64> {
        match self {
            Ticket::Owner { token, .. } => Some(*token),
            _ => None,
        }
    }
}

/// The error a fenced write fails with: the caller no longer holds the team under its token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stale fencing token {token} for team {team_id}: this node no longer owns the team")]
pub struct Fenced {
    pub team_id: String,
    pub token: i64,
}

impl Fenced {
    /// As a diesel error, so that it rolls the write's transaction back.
    pub fn into_error(self) -> diesel::result::Error {
        diesel::result::Error::QueryBuilderError(Box::new(self))
    }

    /// The [`Fenced`] inside a diesel error, if that is what it is.
    pub fn of(e: &diesel::result::Error) -> Option<&Fenced> {
        match e {
            diesel::result::Error::QueryBuilderError(b) => b.downcast_ref::<Fenced>(),
            _ => None,
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The database's "now" and "now + ms" in each dialect (timestamps without time zone, UTC, as
/// every other column).
const PG_NOW: &str = "(now() AT TIME ZONE 'UTC')";
const PG_EXPIRY: &str = "((now() AT TIME ZONE 'UTC') + $3 * interval '1 millisecond')";
const SQLITE_NOW: &str = "strftime('%Y-%m-%d %H:%M:%f', 'now')";
const SQLITE_EXPIRY: &str = "strftime('%Y-%m-%d %H:%M:%f', 'now', ($3 / 1000.0) || ' seconds')";

/// SQLite reads `$3` as a parameter named "$3", numbered by first appearance; `?3` is the third.
fn numbered(conn: &DbConnection, sql: String) -> String {
    match conn {
        DbConnection::Pg(_) => sql,
        DbConnection::Sqlite(_) => sql.replace('$', "?"),
    }
}

fn dialect(conn: &DbConnection) -> (&'static str, &'static str) {
    match conn {
        DbConnection::Pg(_) => (PG_NOW, PG_EXPIRY),
        DbConnection::Sqlite(_) => (SQLITE_NOW, SQLITE_EXPIRY),
    }
}

/// Takes `team_id` for `owner` for `ttl` when it is free or its lease expired; answers the new
/// fencing token, or `None` while a live lease stands. One statement.
pub fn acquire(
    conn: &mut DbConnection,
    team_id: &str,
    owner: &str,
    ttl: Duration,
) -> QueryResult<Option<i64>> {
    let (now, expiry) = dialect(conn);
    let sql = format!(
        "INSERT INTO team_leases (team_id, owner, token, expires_at) VALUES ($1, $2, 1, {expiry}) \
         ON CONFLICT (team_id) DO UPDATE SET owner = excluded.owner, token = team_leases.token + 1, \
         expires_at = excluded.expires_at \
         WHERE team_leases.expires_at < {now} \
         RETURNING token"
    );
    let q = diesel::sql_query(numbered(conn, sql))
        .bind::<Text, _>(team_id)
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(millis(ttl));
    let row: Option<Token> = match conn {
        DbConnection::Pg(c) => q.get_result(c).optional()?,
        DbConnection::Sqlite(c) => q.get_result(c).optional()?,
    };
    Ok(row.map(|t| t.token))
}

/// Extends the lease by `ttl` from now if `owner` still holds it under `token`; `false` when it
/// does not (taken over, or released).
pub fn renew(
    conn: &mut DbConnection,
    team_id: &str,
    owner: &str,
    token: i64,
    ttl: Duration,
) -> QueryResult<bool> {
    let (_, expiry) = dialect(conn);
    let sql = format!(
        "UPDATE team_leases SET expires_at = {expiry} WHERE team_id = $1 AND owner = $2 AND token = $4"
    );
    let q = diesel::sql_query(numbered(conn, sql))
        .bind::<Text, _>(team_id)
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(millis(ttl))
        .bind::<BigInt, _>(token);
    let n = match conn {
        DbConnection::Pg(c) => q.execute(c)?,
        DbConnection::Sqlite(c) => q.execute(c)?,
    };
    Ok(n == 1)
}

/// Gives the lease up (it expires now; the token stays for the next owner to pass). `false` when
/// `owner` did not hold it under `token`.
pub fn release(conn: &mut DbConnection, team_id: &str, owner: &str, token: i64) -> QueryResult<bool> {
    let sql = match conn {
        DbConnection::Pg(_) => format!(
            "UPDATE team_leases SET expires_at = {PG_NOW} - interval '1 millisecond' \
             WHERE team_id = $1 AND owner = $2 AND token = $3"
        ),
        DbConnection::Sqlite(_) => "UPDATE team_leases SET expires_at = '1970-01-01 00:00:00' \
             WHERE team_id = $1 AND owner = $2 AND token = $3"
            .to_owned(),
    };
    let q = diesel::sql_query(numbered(conn, sql))
        .bind::<Text, _>(team_id)
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(token);
    let n = match conn {
        DbConnection::Pg(c) => q.execute(c)?,
        DbConnection::Sqlite(c) => q.execute(c)?,
    };
    Ok(n == 1)
}

/// Every lease, by team, with whether it is live now.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<LeaseState>> {
    let (now, _) = dialect(conn);
    let sql = format!(
        "SELECT team_id, owner, token, expires_at, expires_at >= {now} AS live FROM team_leases ORDER BY team_id"
    );
    let q = diesel::sql_query(sql);
    match conn {
        DbConnection::Pg(c) => q.load(c),
        DbConnection::Sqlite(c) => q.load(c),
    }
}

/// One team's lease, with whether it is live now.
pub fn get(conn: &mut DbConnection, team_id: &str) -> QueryResult<Option<LeaseState>> {
    let (now, _) = dialect(conn);
    let sql = numbered(
        conn,
        format!(
            "SELECT team_id, owner, token, expires_at, expires_at >= {now} AS live FROM team_leases \
             WHERE team_id = $1"
        ),
    );
    let q = diesel::sql_query(sql).bind::<Text, _>(team_id);
    match conn {
        DbConnection::Pg(c) => q.get_result(c).optional(),
        DbConnection::Sqlite(c) => q.get_result(c).optional(),
    }
}

/// How long a write that holds a lease row may sit idle inside its transaction before PostgreSQL
/// ends its session. A write's own statements take milliseconds; an owner paused (SIGSTOP, a VM
/// stall) in the middle of one would otherwise hold the row, and so block every takeover, for as
/// long as it stays paused.
const HOLD_IDLE_LIMIT: &str = "2s";

/// Inside a write transaction: `Ok(())` when `owner` still holds `team_id` under `token`, else
/// the [`Fenced`] error (which rolls the transaction back). On PostgreSQL the lease row is held
/// `FOR SHARE` until the transaction ends, so no takeover commits in between; and the transaction
/// may not sit idle longer than [`HOLD_IDLE_LIMIT`], so a paused owner cannot hold it for good.
pub fn check(conn: &mut DbConnection, team_id: &str, owner: &str, token: i64) -> QueryResult<()> {
    let base = "SELECT token FROM team_leases WHERE team_id = $1 AND owner = $2 AND token = $3";
    if let DbConnection::Pg(c) = conn {
        diesel::sql_query(format!("SET LOCAL idle_in_transaction_session_timeout = '{HOLD_IDLE_LIMIT}'"))
            .execute(c)?;
    }
    let row: Option<Token> = match conn {
        DbConnection::Pg(c) => diesel::sql_query(format!("{base} FOR SHARE"))
            .bind::<Text, _>(team_id)
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(token)
            .get_result(c)
            .optional()?,
        DbConnection::Sqlite(c) => diesel::sql_query(base.replace('$', "?"))
            .bind::<Text, _>(team_id)
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(token)
            .get_result(c)
            .optional()?,
    };
    match row {
        Some(_) => Ok(()),
        None => Err(Fenced { team_id: team_id.to_owned(), token }.into_error()),
    }
}

/// Runs `write` in a transaction behind [`check`]: nothing it writes commits unless `owner`
/// held `team_id` under `token` throughout.
pub fn fenced<T>(
    conn: &mut DbConnection,
    team_id: &str,
    owner: &str,
    token: i64,
    write: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    conn.transaction(|c| {
        check(c, team_id, owner, token)?;
        write(c)
    })
}
