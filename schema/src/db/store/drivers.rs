//! Driver profiles: a team's drivers (each maybe a user's), their roster status and role.
//! Reads no env vars.

use diesel::prelude::*;

use super::{new_id, now, teams, unless_taken, Refused, Taken};
use crate::db::models::Driver;
use crate::db::schema::drivers;
use crate::db::DbConnection;
use crate::wire;

/// Stores a new driver of the team, inactive; its user, if named, becomes a member of the team.
/// [`Refused::NoTeam`], [`Refused::NoUser`], or [`Taken::DriverProfile`] when the user has one.
pub fn create_driver(
    conn: &mut DbConnection,
    team_id: &str,
    d: &wire::NewDriver,
) -> QueryResult<Result<Driver, Refused>> {
    if let Err(refused) = teams::team_and_user(conn, team_id, d.user_id.as_deref())? {
        return Ok(Err(refused));
    }
    let row = Driver {
        id: new_id(),
        team_id: team_id.to_owned(),
        user_id: d.user_id.clone(),
        name: d.name.clone(),
        number: d.number,
        status: wire::DriverStatusKind::Inactive.as_str().to_owned(),
        role: d.role.as_str().to_owned(),
        avatar_url: d.avatar_url.clone(),
        last_active: None,
        created_at: now(),
    };
    let inserted = diesel::insert_into(drivers::table).values(&row).execute(conn);
    if let Err(refused) = unless_taken(inserted, || Taken::DriverProfile)? {
        return Ok(Err(refused));
    }
    if let Some(uid) = &d.user_id {
        if let Err(refused) = teams::add_member(conn, team_id, uid)? {
            return Ok(Err(refused));
        }
    }
    Ok(Ok(row))
}

/// One driver; `NotFound` when there is none.
pub fn get_driver(conn: &mut DbConnection, id: &str) -> QueryResult<Driver> {
    drivers::table.find(id).select(Driver::as_select()).first(conn)
}

/// A team's drivers by number, then name.
pub fn list_drivers(conn: &mut DbConnection, team_id: &str) -> QueryResult<Vec<Driver>> {
    drivers::table
        .filter(drivers::team_id.eq(team_id))
        .order((drivers::number.asc(), drivers::name.asc()))
        .select(Driver::as_select())
        .load(conn)
}

/// Changes what the update names and answers the driver; `NotFound` when there is none.
pub fn update_driver(conn: &mut DbConnection, id: &str, u: &wire::DriverUpdate) -> QueryResult<Driver> {
    conn.transaction(|conn| {
        let mut d = get_driver(conn, id)?;
        if let Some(s) = u.status {
            d.status = s.as_str().to_owned();
        }
        if let Some(r) = u.role {
            d.role = r.as_str().to_owned();
        }
        if let Some(n) = &u.name {
            d.name = n.clone();
        }
        if let Some(n) = u.number {
            d.number = n;
        }
        if let Some(a) = &u.avatar_url {
            d.avatar_url = Some(a.clone());
        }
        diesel::update(drivers::table.find(id))
            .set((
                drivers::status.eq(&d.status),
                drivers::role.eq(&d.role),
                drivers::name.eq(&d.name),
                drivers::number.eq(d.number),
                drivers::avatar_url.eq(&d.avatar_url),
            ))
            .execute(conn)?;
        Ok(d)
    })
}
