//! Teams and their members. Reads no env vars.

use diesel::prelude::*;

use super::{new_id, now, unless_taken, users, Refused, Taken};
use crate::db::models::{Team, TeamMember};
use crate::db::schema::{team_members, teams};
use crate::db::DbConnection;

/// Stores a new team; [`Taken::TeamName`] when the name is taken.
pub fn create_team(conn: &mut DbConnection, name: &str) -> QueryResult<Result<Team, Refused>> {
    let team = Team { id: new_id(), name: name.to_owned(), created_at: now() };
    let inserted = diesel::insert_into(teams::table).values(&team).execute(conn);
    Ok(unless_taken(inserted, || Taken::TeamName(name.to_owned()))?.map(|_| team))
}

/// One team; `NotFound` when there is none.
pub fn get_team(conn: &mut DbConnection, id: &str) -> QueryResult<Team> {
    teams::table.find(id).select(Team::as_select()).first(conn)
}

/// A team by id or by name (the CLI takes either); `NotFound` when there is none.
pub fn find_team(conn: &mut DbConnection, id_or_name: &str) -> QueryResult<Team> {
    teams::table
        .filter(teams::id.eq(id_or_name).or(teams::name.eq(id_or_name)))
        .select(Team::as_select())
        .first(conn)
}

/// All teams (`None`) or those with the given ids.
pub fn list_teams(conn: &mut DbConnection, only: Option<&[String]>) -> QueryResult<Vec<Team>> {
    let mut q = teams::table.order(teams::name.asc()).select(Team::as_select()).into_boxed();
    if let Some(ids) = only {
        q = q.filter(teams::id.eq_any(ids.to_vec()));
    }
    q.load(conn)
}

/// Whether `user_id` is a member of `team_id`.
pub fn is_member(conn: &mut DbConnection, team_id: &str, user_id: &str) -> QueryResult<bool> {
    Ok(team_members::table
        .find((team_id, user_id))
        .select(team_members::user_id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

/// Makes the user a member of the team (a member stays one); [`Refused::NoTeam`] or
/// [`Refused::NoUser`] when either does not exist.
pub fn add_member(conn: &mut DbConnection, team_id: &str, user_id: &str) -> QueryResult<Result<(), Refused>> {
    if let Err(refused) = team_and_user(conn, team_id, Some(user_id))? {
        return Ok(Err(refused));
    }
    if !is_member(conn, team_id, user_id)? {
        diesel::insert_into(team_members::table)
            .values(&TeamMember { team_id: team_id.to_owned(), user_id: user_id.to_owned() })
            .execute(conn)?;
    }
    Ok(Ok(()))
}

/// Whether the team, and the user if one is named, exist: [`Refused::NoTeam`] first.
pub(super) fn team_and_user(
    conn: &mut DbConnection,
    team_id: &str,
    user_id: Option<&str>,
) -> QueryResult<Result<(), Refused>> {
    if get_team(conn, team_id).optional()?.is_none() {
        return Ok(Err(Refused::NoTeam(team_id.to_owned())));
    }
    if let Some(uid) = user_id {
        if users::get_user(conn, uid).optional()?.is_none() {
            return Ok(Err(Refused::NoUser(uid.to_owned())));
        }
    }
    Ok(Ok(()))
}
