//! The team overview: every driver with status, role, connection, position, lap, last/best lap,
//! fuel and laps of fuel left, pit status, live speed; the track map with all cars; the strategy
//! panel per car and the team's coaching feed. Reads no env vars.

use pitbox_schema::wire::DriverStatusKind;
use yew::prelude::*;

use super::canvas::TrackMap;
use super::coach::{CoachingFeed, StrategyPanel};
use super::{Ctx, Route};
use crate::model::format;
use crate::net::now_ms;

#[function_component(Overview)]
pub fn overview() -> Html {
    let Some(ctx) = use_context::<Ctx>() else { return html! {} };
    let store = ctx.store.read();
    let now = now_ms();
    let rows: Html = store
        .cars
        .values()
        .map(|car| {
            let p = car.profile.as_ref();
            let s = car.latest.as_ref().map(|f| &f.sample);
            let stale = car.is_stale(now);
            let status = car.status.map_or("–", DriverStatusKind::as_str);
            let role = p.map_or("–", |p| p.role.as_str());
            let conn = if !car.connected {
                "offline"
            } else if stale {
                "stale"
            } else {
                "live"
            };
            let pit = s.map_or("–", |s| if s.on_pit_road { "PIT" } else { "track" });
            let go = {
                let (nav, id) = (ctx.navigate.clone(), car.driver_id.clone());
                Callback::from(move |_| nav.emit(Route::Driver(id.clone())))
            };
            html! {
                <tr class={classes!("car", stale.then_some("stale"))} data-driver={car.driver_id.clone()} onclick={go}>
                    <td class="num">{ p.map_or(String::new(), |p| format!("#{}", p.number)) }</td>
                    <td class="name">{ car.name() }</td>
                    <td><span class={classes!("status", status)}>{ status }</span></td>
                    <td>{ role }</td>
                    <td><span class={classes!("dot", conn)} title={conn}></span>{ conn }</td>
                    <td>{ s.map_or("–".into(), |s| format::position(s.position)) }</td>
                    <td>{ s.map_or("–".into(), |s| s.lap.to_string()) }</td>
                    <td class="speed">{ s.map_or("–".into(), |s| format!("{:.0}", s.speed)) }</td>
                    <td class="mono">{ format::lap_time(car.last_lap_time()) }</td>
                    <td class="mono">{ format::lap_time(car.best_lap_time()) }</td>
                    <td>{ s.map_or("–".into(), |s| format::litres(s.fuel_level)) }</td>
                    <td class="fuel-laps">{ format::laps_left(car.fuel_laps()) }</td>
                    <td class={classes!("pit", (pit == "PIT").then_some("in"))}>{ pit }</td>
                    <td class="age">{ if car.latest.is_some() { format::age(now - car.received_at) } else { "–".into() } }</td>
                </tr>
            }
        })
        .collect();
    let empty = store.cars.is_empty();
    html! {
        <div class="overview">
            <super::voice::BoxBanner />
            <section class="panel">
                <h2>{ "Team" }</h2>
                if empty {
                    <p class="empty">{ "No drivers yet. Start a driver node: pitbox-driver run" }</p>
                } else {
                    <table class="cars" id="cars">
                        <thead><tr>
                            <th>{ "#" }</th><th>{ "Driver" }</th><th>{ "Status" }</th><th>{ "Role" }</th>
                            <th>{ "Link" }</th><th>{ "Pos" }</th><th>{ "Lap" }</th><th>{ "km/h" }</th>
                            <th>{ "Last" }</th><th>{ "Best" }</th><th>{ "Fuel" }</th><th>{ "Laps left" }</th>
                            <th>{ "Pit" }</th><th>{ "Seen" }</th>
                        </tr></thead>
                        <tbody>{ rows }</tbody>
                    </table>
                }
            </section>
            <section class="panel map">
                <h2>{ "Track" }</h2>
                <TrackMap focus={None::<String>} />
            </section>
            <section class="panel strategy-panel">
                <h2>{ "Strategy" }</h2>
                <StrategyPanel />
            </section>
            <section class="panel coaching">
                <h2>{ "AI coaching (team)" }</h2>
                <CoachingFeed driver_id={None::<String>} />
            </section>
        </div>
    }
}
