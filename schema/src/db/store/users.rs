//! Users: accounts with a username, a password hash and a role, and what decides whether their
//! access tokens still count (the token generation, the disabled flag). Reads no env vars.

use diesel::prelude::*;

use super::{new_id, now, tokens, unless_taken, unreadable, Refused, Taken};
use crate::db::models::User;
use crate::db::schema::{drivers, team_members, users};
use crate::db::DbConnection;
use crate::wire::{self, Role};

/// Stores a new user; [`Taken::Username`] when the name is taken.
pub fn create_user(
    conn: &mut DbConnection,
    username: &str,
    password_hash: String,
    role: Role,
) -> QueryResult<Result<User, Refused>> {
    let user = User {
        id: new_id(),
        username: username.to_owned(),
        password_hash,
        role: role.as_str().to_owned(),
        disabled: false,
        created_at: now(),
    };
    let inserted = diesel::insert_into(users::table).values(&user).execute(conn);
    Ok(unless_taken(inserted, || Taken::Username(username.to_owned()))?.map(|_| user))
}

pub fn find_user_by_name(conn: &mut DbConnection, username: &str) -> QueryResult<Option<User>> {
    users::table.filter(users::username.eq(username)).select(User::as_select()).first(conn).optional()
}

/// One user; `NotFound` when there is none.
pub fn get_user(conn: &mut DbConnection, id: &str) -> QueryResult<User> {
    users::table.find(id).select(User::as_select()).first(conn)
}

pub fn list_users(conn: &mut DbConnection) -> QueryResult<Vec<User>> {
    users::table.order(users::username.asc()).select(User::as_select()).load(conn)
}

/// Sets a user's password hash and ends every session of the old password; `NotFound` when there
/// is no such user.
pub fn set_password(conn: &mut DbConnection, user_id: &str, hash: String) -> QueryResult<()> {
    conn.transaction(|conn| {
        let n =
            diesel::update(users::table.find(user_id)).set(users::password_hash.eq(hash)).execute(conn)?;
        if n == 0 {
            return Err(diesel::result::Error::NotFound);
        }
        // A new password ends every session of the old one: access tokens and refresh tokens
        // (the user's row is already locked by the update above, then the tokens: same order).
        end_access_tokens(conn, user_id)?;
        tokens::revoke_user_tokens(conn, user_id)
    })
}

/// What decides whether a verified access token still counts: the user's token generation (an
/// access token carries the one it was issued under) and whether the account is disabled. `None`
/// when the user no longer exists.
pub fn token_state(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<(i64, bool)>> {
    users::table
        .find(user_id)
        .select((users::token_generation, users::disabled))
        .first::<(i64, bool)>(conn)
        .optional()
}

/// Ends every access token issued to `user_id` so far (logout, password change, refresh-token
/// reuse): they carry an older generation from now on. Tokens issued afterwards carry the new one.
pub fn end_access_tokens(conn: &mut DbConnection, user_id: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::token_generation.eq(users::token_generation + 1))
        .execute(conn)?;
    Ok(())
}

/// What the token and login answer say about a user: role, teams, driver profile. A role this
/// version does not know is a deserialization error.
pub fn user_info(conn: &mut DbConnection, user: &User) -> QueryResult<wire::UserInfo> {
    let role: Role = user.role.parse().map_err(unreadable)?;
    let teams = team_members::table
        .filter(team_members::user_id.eq(&user.id))
        .select(team_members::team_id)
        .order(team_members::team_id.asc())
        .load::<String>(conn)?;
    let driver_id = drivers::table
        .filter(drivers::user_id.eq(&user.id))
        .select(drivers::id)
        .first::<String>(conn)
        .optional()?;
    Ok(wire::UserInfo { id: user.id.clone(), username: user.username.clone(), role, teams, driver_id })
}
