//! One driver's view: live speed, rpm, gear, inputs, fuel and tyres; the live delta to the
//! reference (best) lap; rolling traces; the track map; the lap table with sectors and deltas; the
//! coach's feed and a lap's corner table; a comparison of two chosen laps over lap distance; the
//! onboard video. Reads no env vars.

use pitbox_schema::wire::{LapChannels, TireSet};
use yew::prelude::*;

use super::canvas::{CompareChart, TraceChart, TrackMap};
use super::coach::{CoachingFeed, CornerTable};
use super::{value_of, Ctx, Route};
use crate::model::format;
use crate::model::laps::{LapTrace, TRACE_CHANNELS};
use crate::model::store::Action;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub driver_id: String,
}

fn bar(id: &'static str, label: &'static str, value: f32, class: &'static str) -> Html {
    let pct = value.clamp(0.0, 100.0);
    html! {
        <div class="bar-row">
            <span class="bar-label">{ label }</span>
            <div class="bar"><div id={id} class={classes!("fill", class)} style={format!("width:{pct:.0}%")}></div></div>
            <span class="bar-value">{ format!("{pct:.0}%") }</span>
        </div>
    }
}

fn tyres(title: &str, t: Option<&TireSet>, unit: &str) -> Html {
    let Some(t) = t else { return html! {} };
    let cell = |v: f32| html! { <td>{ format!("{v:.0}{unit}") }</td> };
    html! {
        <table class="tyres">
            <caption>{ title }</caption>
            <tr>{ cell(t.front_left) }{ cell(t.front_right) }</tr>
            <tr>{ cell(t.rear_left) }{ cell(t.rear_right) }</tr>
        </table>
    }
}

#[function_component(DriverView)]
pub fn driver_view(props: &Props) -> Html {
    let ctx = use_context::<Ctx>();
    let pick_a = use_state(|| None::<String>);
    let pick_b = use_state(|| None::<String>);
    // Default comparison: best lap (A) against the latest other lap (B).
    let (default_a, default_b) = ctx
        .as_ref()
        .and_then(|c| {
            let store = c.store.read();
            let car = store.cars.get(&props.driver_id)?;
            let best = car.best_lap().map(|l| l.id.clone());
            // B: the latest valid lap that is not A (comparing a lap with itself shows nothing).
            let others = || car.laps.iter().rev().filter(|l| Some(&l.id) != best.as_ref());
            let other = others().find(|l| l.valid).or_else(|| others().next()).map(|l| l.id.clone());
            Some((best, other))
        })
        .unwrap_or_default();
    let a = (*pick_a).clone().or(default_a);
    let b = (*pick_b).clone().or(default_b);
    // Fetch the traces of the laps being compared (once each; the store caches them).
    {
        let ctx = ctx.clone();
        let wanted = [a.clone(), b.clone()];
        use_effect_with(wanted, move |wanted| {
            if let Some(ctx) = ctx {
                for id in wanted.iter().flatten() {
                    if ctx.store.read().lap_traces.contains_key(id) {
                        continue;
                    }
                    let (ctx, id) = (ctx.clone(), id.clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        match ctx
                            .api
                            .get::<LapChannels>(&format!("/api/laps/{id}?channels={TRACE_CHANNELS}"))
                            .await
                        {
                            Ok(ch) => match LapTrace::from_channels(&ch) {
                                Some(t) => ctx.dispatch(Action::LapTrace(t)),
                                None => ctx.notice("that lap has too few samples to draw"),
                            },
                            Err(e) => ctx.notice(format!("lap {id}: {e}")),
                        }
                    });
                }
            }
        });
    }
    let Some(ctx) = ctx else { return html! {} };
    let store = ctx.store.read();
    let Some(car) = store.cars.get(&props.driver_id) else {
        let back = {
            let nav = ctx.navigate.clone();
            Callback::from(move |_| nav.emit(Route::Overview))
        };
        return html! { <div class="panel"><p class="empty">{ "Unknown driver. " }<a onclick={back}>{ "Back to the pit wall" }</a></p></div> };
    };
    let s = car.latest.as_ref().map(|f| &f.sample);
    let best = car.best_lap().map(|l| l.lap_time);
    let reference = store.references.get(&props.driver_id);
    let laps: Html = car
        .laps
        .iter()
        .rev()
        .take(50)
        .map(|l| {
            let d = best.filter(|_| l.valid).map(|b| l.lap_time - b);
            let sectors: Html = (0..3)
                .map(|i| html! { <td class="mono">{ l.sector_times.get(i).map_or("–".into(), |t| format!("{t:.3}")) }</td> })
                .collect();
            let is_best = car.best_lap().is_some_and(|x| x.id == l.id);
            html! {
                <tr class={classes!("lap-row", (!l.valid).then_some("invalid"), is_best.then_some("best"))} data-lap={l.id.clone()}>
                    <td>{ format::lap_label(l) }</td>
                    <td class="mono">{ format::lap_time(Some(l.lap_time)) }</td>
                    { sectors }
                    <td class={classes!("mono", format::delta_class(d))}>{ format::delta(d) }</td>
                    <td>{ l.fuel_used.map_or("–".into(), |f| format!("{f:.2} L")) }</td>
                    <td class="validity">{ format::lap_validity(l) }</td>
                </tr>
            }
        })
        .collect();
    let options = |selected: &Option<String>| -> Html {
        car.laps
            .iter()
            .rev()
            .map(|l| {
                let sel = selected.as_deref() == Some(l.id.as_str());
                html! { <option value={l.id.clone()} selected={sel}>{ format!("lap {} · {}", l.lap_number, format::lap_time(Some(l.lap_time))) }</option> }
            })
            .collect()
    };
    let on_a = {
        let pick_a = pick_a.clone();
        Callback::from(move |e: Event| pick_a.set(Some(value_of(&e))))
    };
    let on_b = {
        let pick_b = pick_b.clone();
        Callback::from(move |e: Event| pick_b.set(Some(value_of(&e))))
    };
    let delta = car.delta.filter(|_| reference.is_some());
    html! {
        <div class="driver">
            <section class="panel live">
                <h2>{ car.name() }
                    <span class="sub">{ car.profile.as_ref().map_or(String::new(), |p| format!(" #{} · {}", p.number, p.role)) }</span>
                </h2>
                <div class="gauges">
                    <div class="gauge"><span class="big" id="drv-speed">{ s.map_or("–".into(), |s| format!("{:.0}", s.speed)) }</span><span class="unit">{ "km/h" }</span></div>
                    <div class="gauge"><span class="big" id="drv-gear">{ s.map_or("–".into(), |s| format::gear(s.gear)) }</span><span class="unit">{ "gear" }</span></div>
                    <div class="gauge"><span class="big" id="drv-rpm">{ s.map_or("–".into(), |s| format!("{:.0}", s.rpm)) }</span><span class="unit">{ "rpm" }</span></div>
                    <div class="gauge"><span id="drv-delta" class={classes!("big", format::delta_class(delta))}>{ format::delta(delta) }</span>
                        <span class="unit">{ match reference { Some(r) => format!("to lap {} ({})", r.lap_number, format::lap_time(Some(r.lap_time))), None => "no reference lap yet".into() } }</span></div>
                    <div class="gauge"><span class="big">{ s.map_or("–".into(), |s| s.lap.to_string()) }</span><span class="unit">{ "lap" }</span></div>
                    <div class="gauge"><span class="big">{ s.map_or("–".into(), |s| format::position(s.position)) }</span><span class="unit">{ "position" }</span></div>
                </div>
                <div class="inputs">
                    { bar("drv-throttle", "Throttle", s.map_or(0.0, |s| s.throttle), "throttle") }
                    { bar("drv-brake", "Brake", s.map_or(0.0, |s| s.brake), "brake") }
                    { bar("drv-clutch", "Clutch", s.map_or(0.0, |s| s.clutch), "clutch") }
                    <div class="bar-row"><span class="bar-label">{ "Steering" }</span><span class="bar-value">{ s.map_or("–".into(), |s| format!("{:+.0}°", s.steering_angle)) }</span></div>
                </div>
                <div class="fuel">
                    <span>{ "Fuel " }<b id="drv-fuel">{ s.map_or("–".into(), |s| format::litres(s.fuel_level)) }</b></span>
                    <span>{ " · laps left " }<b>{ format::laps_left(car.fuel_laps()) }</b></span>
                    <span>{ " · last " }<b>{ format::lap_time(car.last_lap_time()) }</b></span>
                    <span>{ " · best " }<b>{ format::lap_time(car.best_lap_time()) }</b></span>
                    if s.is_some_and(|s| s.on_pit_road) { <span class="pit in">{ " PIT" }</span> }
                </div>
                <div class="tyre-row">
                    { tyres("Tyre temps", s.and_then(|s| s.tire_temps.as_ref()), "°") }
                    { tyres("Tread", s.and_then(|s| s.tire_wear.as_ref()), "%") }
                </div>
            </section>
            <super::video::VideoPanel driver_id={props.driver_id.clone()} />
            <section class="panel"><h2>{ "Traces (20 s)" }</h2><TraceChart driver_id={props.driver_id.clone()} /></section>
            <section class="panel map"><h2>{ "Track" }</h2><TrackMap focus={Some(props.driver_id.clone())} /></section>
            <section class="panel">
                <h2>{ "Laps" }</h2>
                <table class="laps" id="laps">
                    <thead><tr><th>{ "Lap" }</th><th>{ "Time" }</th><th>{ "S1" }</th><th>{ "S2" }</th><th>{ "S3" }</th><th>{ "Δ best" }</th><th>{ "Fuel" }</th><th>{ "Valid" }</th></tr></thead>
                    <tbody>{ laps }</tbody>
                </table>
            </section>
            <section class="panel coaching">
                <h2>{ "AI coaching" }</h2>
                <CoachingFeed driver_id={Some(props.driver_id.clone())} />
            </section>
            <section class="panel voice-panel">
                <h2>{ "Radio" }</h2>
                <super::voice::VoicePanel driver_id={props.driver_id.clone()} />
            </section>
            <section class="panel">
                <h2>{ "Corners (lap B against the reference)" }</h2>
                <CornerTable lap_id={b.clone()} />
            </section>
            <section class="panel">
                <h2>{ "Compare laps" }</h2>
                <div class="pickers">
                    <label>{ "A " }<select id="cmp-a" onchange={on_a}>{ options(&a) }</select></label>
                    <label>{ "B " }<select id="cmp-b" onchange={on_b}>{ options(&b) }</select></label>
                </div>
                <CompareChart a={a.clone()} b={b.clone()} />
            </section>
        </div>
    }
}
