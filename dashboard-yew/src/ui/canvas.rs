//! Canvas drawings: the track map, the rolling speed/input traces and the lap comparison. Each is
//! a component that redraws after its render (at most once per animation frame, see `ui`), using
//! the geometry of `model::chart` / `model::track`. Reads no env vars.

use std::collections::VecDeque;

use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};
use yew::prelude::*;

use super::Ctx;
use crate::model::chart::{extent, nice_ticks, to_pixels, Scale};
use crate::model::laps::{delta_series, LapTrace};
use crate::model::store::TracePoint;
use crate::model::track::{fit, TrackOutline};

const GRID: &str = "#2a313c";
const TEXT: &str = "#8b96a8";
const SPEED: &str = "#4fc3f7";
const THROTTLE: &str = "#66bb6a";
const BRAKE: &str = "#ef5350";
const STEER: &str = "#ffca28";
const TEAM_COLOURS: [&str; 6] = ["#4fc3f7", "#ffca28", "#ab47bc", "#66bb6a", "#ff7043", "#26c6da"];

/// The 2D context, with the canvas' backing store sized to its CSS size × device pixel ratio.
fn context(node: &NodeRef) -> Option<(CanvasRenderingContext2d, f64, f64)> {
    let canvas = node.cast::<HtmlCanvasElement>()?;
    let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
    let (w, h) = (f64::from(canvas.client_width()), f64::from(canvas.client_height()));
    let (bw, bh) = ((w * dpr) as u32, (h * dpr) as u32);
    if canvas.width() != bw || canvas.height() != bh {
        canvas.set_width(bw);
        canvas.set_height(bh);
    }
    let ctx = canvas.get_context("2d").ok()??.dyn_into::<CanvasRenderingContext2d>().ok()?;
    let _ = ctx.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0);
    ctx.clear_rect(0.0, 0.0, w, h);
    Some((ctx, w, h))
}

fn polyline(ctx: &CanvasRenderingContext2d, pts: &[(f64, f64)], colour: &str, width: f64) {
    let Some(first) = pts.first() else { return };
    ctx.begin_path();
    ctx.set_stroke_style_str(colour);
    ctx.set_line_width(width);
    ctx.move_to(first.0, first.1);
    for p in &pts[1..] {
        ctx.line_to(p.0, p.1);
    }
    ctx.stroke();
}

/// Horizontal grid lines with labels for a y scale.
fn y_grid(ctx: &CanvasRenderingContext2d, y: &Scale, x0: f64, x1: f64, count: usize, unit: &str) {
    ctx.set_font("10px sans-serif");
    ctx.set_fill_style_str(TEXT);
    for t in nice_ticks(y.d0.min(y.d1), y.d0.max(y.d1), count) {
        let py = y.map(t).round() + 0.5;
        polyline(ctx, &[(x0, py), (x1, py)], GRID, 1.0);
        let _ = ctx.fill_text(&format!("{t}{unit}"), 2.0, py - 2.0);
    }
}

fn label(ctx: &CanvasRenderingContext2d, text: &str, x: f64, y: f64, colour: &str) {
    ctx.set_font("11px sans-serif");
    ctx.set_fill_style_str(colour);
    let _ = ctx.fill_text(text, x, y);
}

#[derive(Properties, PartialEq)]
pub struct MapProps {
    /// The driver drawn larger (driver view); `None` on the overview.
    pub focus: Option<String>,
}

/// The track outline with the team's cars (coloured, named) and the rest of the field (grey).
#[function_component(TrackMap)]
pub fn track_map(props: &MapProps) -> Html {
    let node = use_node_ref();
    let ctx = use_context::<Ctx>();
    {
        let (node, focus) = (node.clone(), props.focus.clone());
        use_effect(move || {
            if let (Some(ctx), Some((c, w, h))) = (ctx, context(&node)) {
                draw_map(&ctx, &c, w, h, focus.as_deref());
            }
        });
    }
    html! { <canvas id="track-map" class="track" ref={node}></canvas> }
}

fn draw_map(ctx: &Ctx, c: &CanvasRenderingContext2d, w: f64, h: f64, focus: Option<&str>) {
    let store = ctx.store.read();
    let fallback = TrackOutline::default();
    let (track_of, outline) = store.outline(focus).unwrap_or(("", &fallback));
    let to_px = fit(outline.bounds(), w, h, 18.0);
    let line: Vec<(f64, f64)> = if outline.usable() {
        let mut pts: Vec<(f64, f64)> = outline.points().into_iter().map(&to_px).collect();
        if let Some(first) = pts.first().copied() {
            pts.push(first);
        }
        pts
    } else {
        (0..=128).map(|i| to_px(outline.position(i as f32 / 128.0))).collect()
    };
    polyline(c, &line, "#3b4350", 9.0);
    polyline(c, &line, "#59636f", 1.0);
    // start/finish
    let (sx, sy) = to_px(outline.position(0.0));
    c.set_fill_style_str("#ffffff");
    c.fill_rect(sx - 1.5, sy - 6.0, 3.0, 12.0);
    if !outline.usable() {
        label(c, "track outline: learning from the racing line…", 8.0, h - 8.0, TEXT);
    }
    // The runtime's corners, coloured by the time the driver lost there on the last lap the
    // coach analysed (red: more than 0.1 s, amber: more than 0.03 s, green: gained).
    if let Some(map) = store.track_maps.get(track_of).filter(|_| outline.usable()) {
        let lost: std::collections::HashMap<&str, f64> = store
            .coaching_of(Some(track_of))
            .next()
            .map(|m| m.items.iter().filter_map(|i| Some((i.corner.as_deref()?, -i.time_gained_s?))).collect())
            .unwrap_or_default();
        for k in &map.corners {
            let mid =
                if k.end < k.start { (k.start + k.end + 1.0) / 2.0 % 1.0 } else { (k.start + k.end) / 2.0 };
            let colour = match lost.get(k.name.as_str()) {
                Some(l) if *l > 0.1 => "#f85149",
                Some(l) if *l > 0.03 => "#d29922",
                Some(l) if *l < 0.0 => "#3fb950",
                _ => TEXT,
            };
            let pts: Vec<(f64, f64)> = (0..=12)
                .map(|i| {
                    let span = (k.end - k.start).rem_euclid(1.0);
                    to_px(outline.position(((k.start + span * f64::from(i) / 12.0) % 1.0) as f32))
                })
                .collect();
            polyline(c, &pts, colour, 4.0);
            let (x, y) = to_px(outline.position(mid as f32));
            label(c, &k.name, x + 6.0, y + 12.0, colour);
        }
    }
    // The field from the per-car arrays of the car whose track this is (grey); team cars are
    // drawn on top, so a team car's own grey dot is hidden under it.
    let field = store.cars.get(track_of).and_then(|car| car.latest.as_ref()?.sample.cars.as_ref());
    if let Some(cars) = field {
        for pct in &cars.lap_dist_pct {
            if *pct < 0.0 {
                continue;
            }
            let (x, y) = to_px(outline.position(*pct));
            c.begin_path();
            c.set_fill_style_str("#6d7684");
            let _ = c.arc(x, y, 3.0, 0.0, std::f64::consts::TAU);
            c.fill();
        }
    }
    for (k, car) in store.cars.values().enumerate() {
        let Some(f) = &car.latest else { continue };
        let colour = TEAM_COLOURS[k % TEAM_COLOURS.len()];
        let (x, y) = to_px(outline.position(f.sample.track_position));
        let big = focus == Some(car.driver_id.as_str());
        c.begin_path();
        c.set_fill_style_str(colour);
        let _ = c.arc(x, y, if big { 8.0 } else { 6.0 }, 0.0, std::f64::consts::TAU);
        c.fill();
        c.set_stroke_style_str("#0d1117");
        c.set_line_width(2.0);
        c.stroke();
        label(c, &car.name(), x + 9.0, y - 7.0, colour);
    }
}

#[derive(Properties, PartialEq)]
pub struct TraceProps {
    pub driver_id: String,
    /// Seconds shown.
    #[prop_or(20.0)]
    pub window: f64,
}

/// Rolling traces of one car: speed on top, throttle and brake, then steering.
#[function_component(TraceChart)]
pub fn trace_chart(props: &TraceProps) -> Html {
    let node = use_node_ref();
    let ctx = use_context::<Ctx>();
    {
        let (node, driver, window) = (node.clone(), props.driver_id.clone(), props.window);
        use_effect(move || {
            if let (Some(ctx), Some((c, w, h))) = (ctx, context(&node)) {
                if let Some(car) = ctx.store.read().cars.get(&driver) {
                    draw_trace(&c, w, h, &car.trace, window);
                }
            }
        });
    }
    html! { <canvas id="trace" class="chart tall" ref={node}></canvas> }
}

fn draw_trace(c: &CanvasRenderingContext2d, w: f64, h: f64, trace: &VecDeque<TracePoint>, window: f64) {
    let Some(last) = trace.back() else {
        label(c, "waiting for telemetry…", 10.0, 20.0, TEXT);
        return;
    };
    let x = Scale::new((last.t - window, last.t), (36.0, w - 4.0));
    let pane = (h - 8.0) / 3.0;
    let panes: [(f64, f64); 3] = [(4.0, pane), (4.0 + pane, 2.0 * pane), (4.0 + 2.0 * pane, 3.0 * pane)];
    // speed
    let top = extent(trace.iter().map(|p| f64::from(p.speed)), 50.0).map_or(300.0, |e| e.1.max(50.0));
    let ys = Scale::new((0.0, top), (panes[0].1 - 4.0, panes[0].0 + 4.0));
    y_grid(c, &ys, 36.0, w, 3, "");
    polyline(c, &to_pixels(trace.iter().map(|p| (p.t, f64::from(p.speed))), &x, &ys), SPEED, 1.5);
    label(c, "speed km/h", w - 80.0, panes[0].0 + 12.0, SPEED);
    // pedals
    let yp = Scale::new((0.0, 100.0), (panes[1].1 - 4.0, panes[1].0 + 4.0));
    y_grid(c, &yp, 36.0, w, 2, "%");
    polyline(c, &to_pixels(trace.iter().map(|p| (p.t, f64::from(p.throttle))), &x, &yp), THROTTLE, 1.5);
    polyline(c, &to_pixels(trace.iter().map(|p| (p.t, f64::from(p.brake))), &x, &yp), BRAKE, 1.5);
    label(c, "throttle", w - 110.0, panes[1].0 + 12.0, THROTTLE);
    label(c, "brake", w - 50.0, panes[1].0 + 12.0, BRAKE);
    // steering, symmetric around 0
    let m = trace.iter().map(|p| f64::from(p.steering.abs())).fold(30.0, f64::max);
    let yst = Scale::new((-m, m), (panes[2].1 - 4.0, panes[2].0 + 4.0));
    y_grid(c, &yst, 36.0, w, 2, "°");
    polyline(c, &to_pixels(trace.iter().map(|p| (p.t, f64::from(p.steering))), &x, &yst), STEER, 1.5);
    label(c, "steering", w - 70.0, panes[2].0 + 12.0, STEER);
}

#[derive(Properties, PartialEq)]
pub struct CompareProps {
    pub a: Option<String>,
    pub b: Option<String>,
}

/// Two laps over lap distance: speed of both, and the delta of B to A below.
#[function_component(CompareChart)]
pub fn compare_chart(props: &CompareProps) -> Html {
    let node = use_node_ref();
    let ctx = use_context::<Ctx>();
    {
        let (node, a, b) = (node.clone(), props.a.clone(), props.b.clone());
        use_effect(move || {
            if let (Some(ctx), Some((c, w, h))) = (ctx, context(&node)) {
                let store = ctx.store.read();
                let get = |id: &Option<String>| id.as_ref().and_then(|id| store.lap_traces.get(id));
                draw_compare(&c, w, h, get(&a), get(&b));
            }
        });
    }
    html! { <canvas id="compare" class="chart tall" ref={node}></canvas> }
}

fn draw_compare(c: &CanvasRenderingContext2d, w: f64, h: f64, a: Option<&LapTrace>, b: Option<&LapTrace>) {
    let (Some(a), Some(b)) = (a, b) else {
        label(c, "choose two laps to compare", 10.0, 20.0, TEXT);
        return;
    };
    let x = Scale::new((0.0, 1.0), (36.0, w - 4.0));
    let split = h * 0.62;
    let top = extent(a.speed.iter().chain(&b.speed).map(|p| p.1), 50.0).map_or(300.0, |e| e.1);
    let ys = Scale::new((0.0, top), (split - 4.0, 6.0));
    y_grid(c, &ys, 36.0, w, 4, "");
    polyline(c, &to_pixels(a.speed.iter().copied(), &x, &ys), SPEED, 1.5);
    polyline(c, &to_pixels(b.speed.iter().copied(), &x, &ys), STEER, 1.5);
    label(c, &format!("lap {} (A)", a.lap_number), w - 150.0, 16.0, SPEED);
    label(c, &format!("lap {} (B)", b.lap_number), w - 75.0, 16.0, STEER);
    let delta = delta_series(a, b);
    let m = extent(delta.iter().map(|p| p.1.abs()), 0.2).map_or(1.0, |e| e.1.abs().max(0.1));
    let yd = Scale::new((-m, m), (h - 4.0, split + 6.0));
    y_grid(c, &yd, 36.0, w, 2, "s");
    polyline(c, &to_pixels(delta.iter().copied(), &x, &yd), "#e0e0e0", 1.5);
    label(c, "delta B − A (s)", w - 100.0, split + 18.0, "#e0e0e0");
}
