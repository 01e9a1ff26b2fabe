//! The coach's panels: the coaching feed (one driver's, or the team's), each message with its
//! priority, confidence, lap and the findings with their corner and numbers; the strategy panel
//! (fuel, laps of fuel, to the finish, pit window, stint per car, live after every lap); and a
//! lap's corner table against its reference. Reads no env vars.

use pitbox_schema::wire::{AiCoaching, LapCorners};
use yew::prelude::*;

use super::Ctx;
use crate::model::store::Action;

fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |s| format!("{s:+.2} s"))
}

fn metres(v: Option<f64>) -> String {
    v.map_or("–".into(), |m| format!("{m:+.0} m"))
}

fn message(c: &AiCoaching, who: Option<String>) -> Html {
    let items: Html = c
        .items
        .iter()
        .filter(|i| !i.topic.ends_with("/gain"))
        .take(5)
        .map(|i| {
            html! {
                <li class={classes!("item", i.priority.as_str())}>
                    <span class="corner">{ i.corner.clone().unwrap_or_else(|| i.topic.split('/').next().unwrap_or("").to_owned()) }</span>
                    <span class="mono">{ i.time_gained_s.map_or(String::new(), |t| format!("{t:+.2} s")) }</span>
                    <span class="pattern">{ i.pattern.map_or(String::new(), |(n, of)| format!("{n}/{of} laps")) }</span>
                    <span class="text">{ &i.text }</span>
                </li>
            }
        })
        .collect();
    html! {
        <li class={classes!("msg", "coach-msg", c.priority.as_str())}>
            <span class={classes!("prio", c.priority.as_str())}>{ c.priority.as_str() }</span>
            <span class="conf">{ format!("{:.0}% sure", c.confidence * 100.0) }</span>
            if let Some(w) = who { <span class="who">{ w }</span> }
            if let Some(n) = c.lap_number { <span class="lap">{ format!("lap {n}") }</span> }
            <span class="when">{ c.timestamp.format("%H:%M:%S").to_string() }</span>
            <div class="text">{ &c.feedback }</div>
            if let Some(t) = &c.tip { <div class="tip">{ format!("told the driver: {t}") }</div> }
            if !c.items.is_empty() { <ul class="items">{ items }</ul> }
        </li>
    }
}

#[derive(Properties, PartialEq)]
pub struct FeedProps {
    /// One driver's feed; the team's when `None`.
    pub driver_id: Option<String>,
}

#[function_component(CoachingFeed)]
pub fn coaching_feed(props: &FeedProps) -> Html {
    let Some(ctx) = use_context::<Ctx>() else { return html! {} };
    let store = ctx.store.read();
    let list: Html = store
        .coaching_of(props.driver_id.as_deref())
        .take(if props.driver_id.is_some() { 10 } else { 15 })
        .map(|c| {
            let who = props
                .driver_id
                .is_none()
                .then(|| c.driver_id.as_ref().and_then(|d| store.cars.get(d)).map(|car| car.name()))
                .flatten();
            message(c, who)
        })
        .collect();
    let id = if props.driver_id.is_some() { "coaching" } else { "team-coaching" };
    html! {
        if store.coaching_of(props.driver_id.as_deref()).next().is_none() {
            <p class="empty">{ "The coach's feedback appears here, live, after every lap it analyses." }</p>
        } else {
            <ul class="messages" id={id}>{ list }</ul>
        }
    }
}

#[function_component(StrategyPanel)]
pub fn strategy_panel() -> Html {
    let Some(ctx) = use_context::<Ctx>() else { return html! {} };
    let store = ctx.store.read();
    if store.strategies.is_empty() {
        return html! { <p class="empty">{ "Fuel and pit windows appear after each car's first laps." }</p> };
    }
    let rows: Html = store
        .strategies
        .values()
        .map(|s| {
            let name = store.cars.get(&s.driver_id).map_or_else(|| s.driver_id.clone(), |c| c.name());
            let f = |v: Option<f64>, unit: &str| v.map_or("–".into(), |x| format!("{x:.1}{unit}"));
            html! {
                <tr class={classes!("strategy-row", s.alert.is_some().then_some("alert"))} data-driver={s.driver_id.clone()}>
                    <td class="name">{ name }</td>
                    <td class="mono fuel-per-lap">{ s.fuel_per_lap.map_or("–".into(), |x| format!("{x:.2} L")) }</td>
                    <td class="mono">{ f(s.fuel_level, " L") }</td>
                    <td class="mono laps-of-fuel">{ f(s.laps_of_fuel, "") }</td>
                    <td class="mono">{ f(s.fuel_to_finish, " L") }</td>
                    <td class="mono">{ s.pit_window.map_or("–".into(), |(a, b)| format!("{a:.0}–{b:.0}")) }</td>
                    <td class="mono">{ s.stint_laps.map_or("–".into(), |n| n.to_string()) }</td>
                    <td class="alert-text">{ s.alert.clone().unwrap_or_default() }</td>
                </tr>
            }
        })
        .collect();
    html! {
        <table class="strategy" id="strategy">
            <thead><tr>
                <th>{ "Car" }</th><th>{ "Fuel/lap" }</th><th>{ "Fuel" }</th><th>{ "Laps left" }</th>
                <th>{ "To finish" }</th><th>{ "Pit window" }</th><th>{ "Stint" }</th><th>{ "Alert" }</th>
            </tr></thead>
            <tbody>{ rows }</tbody>
        </table>
    }
}

#[derive(Properties, PartialEq)]
pub struct CornerProps {
    pub lap_id: Option<String>,
}

/// A lap's corners against its reference (the driver's best lap of the session).
#[function_component(CornerTable)]
pub fn corner_table(props: &CornerProps) -> Html {
    let ctx = use_context::<Ctx>();
    {
        let ctx = ctx.clone();
        use_effect_with(props.lap_id.clone(), move |lap| {
            if let (Some(ctx), Some(lap)) = (ctx, lap.clone()) {
                if !ctx.store.read().corner_tables.contains_key(&lap) {
                    wasm_bindgen_futures::spawn_local(async move {
                        match ctx.api.get::<LapCorners>(&format!("/api/laps/{lap}/corners")).await {
                            Ok(t) => ctx.dispatch(Action::CornerTable(t)),
                            // A lap without a reference yet (the first clean lap) has no table.
                            Err(e) => ctx.notice(format!("corners: {e}")),
                        }
                    });
                }
            }
        });
    }
    let Some(ctx) = ctx else { return html! {} };
    let store = ctx.store.read();
    let Some(t) = props.lap_id.as_ref().and_then(|l| store.corner_tables.get(l)) else {
        return html! { <p class="empty">{ "Pick a lap (A) to see its corners against the reference." }</p> };
    };
    let rows: Html = t
        .rows
        .iter()
        .map(|r| {
            let cls = if r.delta_s > 0.05 {
                "slower"
            } else if r.delta_s < -0.05 {
                "faster"
            } else {
                ""
            };
            html! {
                <tr class={classes!("corner-row", r.kind.clone())}>
                    <td>{ &r.name }</td>
                    <td class={classes!("mono", cls)}>{ format!("{:+.3} s", r.delta_s) }</td>
                    <td class="mono">{ metres(r.braking_point_delta_m) }</td>
                    <td class="mono">{ r.min_speed.map_or("–".into(), |v| format!("{v:.0}")) }</td>
                    <td class="mono">{ r.reference_min_speed.map_or("–".into(), |v| format!("{v:.0}")) }</td>
                    <td class="mono">{ metres(r.throttle_pickup_delta_m) }</td>
                    <td class="mono">{ r.coasting_m.map_or("–".into(), |v| format!("{v:.0} m")) }</td>
                </tr>
            }
        })
        .collect();
    html! {
        <>
            <p class="sub">{ format!("{} against the reference lap: {}", t.track, secs(Some(t.lap_delta_s))) }</p>
            <table class="corners" id="corners">
                <thead><tr>
                    <th>{ "Where" }</th><th>{ "Δ time" }</th><th>{ "Braking" }</th><th>{ "Min km/h" }</th>
                    <th>{ "Ref min" }</th><th>{ "Throttle" }</th><th>{ "Coasting" }</th>
                </tr></thead>
                <tbody>{ rows }</tbody>
            </table>
        </>
    }
}
