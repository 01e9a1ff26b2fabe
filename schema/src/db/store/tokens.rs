//! Refresh tokens: stored as hashes, in families (one login and its rotations), used exactly once;
//! a reuse revokes the family and ends the user's access tokens. Reads no env vars.

use diesel::prelude::*;

use super::users::{end_access_tokens, token_state};
use super::{new_id, now, unstorable};
use crate::db::models::RefreshToken;
use crate::db::schema::{refresh_tokens, users};
use crate::db::DbConnection;

/// Stores a refresh token of `family_id` that expires `ttl` from now.
pub fn insert_refresh_token(
    conn: &mut DbConnection,
    user_id: &str,
    family_id: &str,
    token_hash: String,
    ttl: std::time::Duration,
) -> QueryResult<()> {
    let issued = now();
    let ttl = chrono::Duration::from_std(ttl).map_err(unstorable)?;
    let row = RefreshToken {
        id: new_id(),
        user_id: user_id.to_owned(),
        family_id: family_id.to_owned(),
        token_hash,
        issued_at: issued,
        expires_at: issued + ttl,
        used_at: None,
        revoked_at: None,
    };
    diesel::insert_into(refresh_tokens::table).values(&row).execute(conn)?;
    Ok(())
}

/// What using a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was valid and is now used up; its successor (same family) is stored.
    /// `generation` is the user's token generation as of that transaction: a reuse detected after
    /// it moves the generation on, which ends the access token issued with this one too.
    Rotated {
        user_id: String,
        generation: i64,
    },
    Unknown,
    Expired,
    /// The token was used before: somebody replayed it. The whole family is now revoked, and
    /// the user's access tokens are ended.
    Reused {
        user_id: String,
    },
}

/// Uses a refresh token exactly once and stores its successor `new_hash` in the same family, in
/// one transaction. Concurrent uses queue on the user's row (PostgreSQL: row lock; SQLite: the
/// write lock), the conditional update that marks the token used lets exactly one win, and the
/// successor commits together with the mark: whoever then sees the token
/// used and revokes the family also sees, and revokes, the successor. (Deciding first and
/// inserting the successor in a later transaction let a successor survive the revocation.)
pub fn rotate_refresh_token(
    conn: &mut DbConnection,
    token_hash: &str,
    new_hash: String,
    ttl: std::time::Duration,
) -> QueryResult<RefreshOutcome> {
    conn.transaction(|conn| {
        // Every use of this user's refresh tokens queues on the user's row first. Without it, a
        // loser that waited on the winner keeps a lock on the used token's row (PostgreSQL locks
        // the row before re-checking the condition) and then wants the user's row, while another
        // loser holds the user's row and wants the token's: a deadlock.
        diesel::update(
            users::table.filter(
                users::id.eq_any(
                    refresh_tokens::table
                        .filter(refresh_tokens::token_hash.eq(token_hash))
                        .select(refresh_tokens::user_id),
                ),
            ),
        )
        .set(users::token_generation.eq(users::token_generation))
        .execute(conn)?;
        let t = now();
        let won = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(token_hash))
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::revoked_at.is_null())
                .filter(refresh_tokens::expires_at.gt(t)),
        )
        .set(refresh_tokens::used_at.eq(Some(t)))
        .execute(conn)?;
        let Some(row) = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select(RefreshToken::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(RefreshOutcome::Unknown);
        };
        if won == 1 {
            insert_refresh_token(conn, &row.user_id, &row.family_id, new_hash, ttl)?;
            let generation = token_state(conn, &row.user_id)?.map_or(0, |(g, _)| g);
            return Ok(RefreshOutcome::Rotated { user_id: row.user_id, generation });
        }
        if row.used_at.is_none() && row.revoked_at.is_none() {
            return Ok(RefreshOutcome::Expired);
        }
        // The user's row first: concurrent reuses of one family then queue on it instead of
        // locking the family's rows in different orders (a deadlock on PostgreSQL).
        end_access_tokens(conn, &row.user_id)?;
        revoke_family(conn, &row.family_id)?;
        Ok(RefreshOutcome::Reused { user_id: row.user_id })
    })
}

pub fn revoke_family(conn: &mut DbConnection, family_id: &str) -> QueryResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now())))
    .execute(conn)?;
    Ok(())
}

/// Logout: revokes the family of a presented refresh token and ends the user's access tokens.
/// Returns the user it belonged to; unknown tokens are ignored.
pub fn revoke_by_token(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<String>> {
    conn.transaction(|conn| {
        let row = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select((refresh_tokens::family_id, refresh_tokens::user_id))
            .first::<(String, String)>(conn)
            .optional()?;
        let Some((family, user)) = row else { return Ok(None) };
        // Same lock order as `rotate_refresh_token`: the user's row, then the family's.
        end_access_tokens(conn, &user)?;
        revoke_family(conn, &family)?;
        Ok(Some(user))
    })
}

/// Revokes every refresh token of the user (a password change).
pub(super) fn revoke_user_tokens(conn: &mut DbConnection, user_id: &str) -> QueryResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now())))
    .execute(conn)?;
    Ok(())
}
