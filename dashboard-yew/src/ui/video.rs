//! The onboard video panel of one driver: asks the team socket for the driver's video
//! (`watch_video`, `unwatch_video` when the panel goes), decodes the H.264 frames with WebCodecs'
//! `VideoDecoder` (Annex B, no description; `optimizeForLatency`) and draws each picture into a
//! canvas, showing the frame rate and the latency (capture on the driver's PC → picture decoded
//! here, by the two clocks). Where the browser has no WebCodecs, or no H.264 in it, the panel says
//! so. Frames arriving while the decoder is behind are skipped up to the next keyframe.
//!
//! The few WebCodecs bindings are declared here (`extern` blocks), because web-sys only has them
//! behind `--cfg=web_sys_unstable_apis`. Reads no env vars.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Object, Reflect};
use pitbox_schema::wire::media::{Codec, MediaHeader};
use pitbox_schema::wire::WatchVideo;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::Ctx;
use crate::net::media;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = VideoDecoder)]
    type JsVideoDecoder;
    #[wasm_bindgen(constructor, js_class = "VideoDecoder", catch)]
    fn new(init: &Object) -> Result<JsVideoDecoder, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn configure(this: &JsVideoDecoder, config: &Object) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn decode(this: &JsVideoDecoder, chunk: &JsEncodedVideoChunk) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn close(this: &JsVideoDecoder) -> Result<(), JsValue>;
    #[wasm_bindgen(method, getter, js_name = decodeQueueSize)]
    fn decode_queue_size(this: &JsVideoDecoder) -> u32;
    #[wasm_bindgen(static_method_of = JsVideoDecoder, js_class = "VideoDecoder", js_name = isConfigSupported, catch)]
    fn is_config_supported(config: &Object) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(js_name = EncodedVideoChunk)]
    type JsEncodedVideoChunk;
    #[wasm_bindgen(constructor, js_class = "EncodedVideoChunk", catch)]
    fn new(init: &Object) -> Result<JsEncodedVideoChunk, JsValue>;

    #[wasm_bindgen(js_name = VideoFrame)]
    type JsVideoFrame;
    #[wasm_bindgen(method, getter, js_name = displayWidth)]
    fn display_width(this: &JsVideoFrame) -> u32;
    #[wasm_bindgen(method, getter, js_name = displayHeight)]
    fn display_height(this: &JsVideoFrame) -> u32;
    #[wasm_bindgen(method, getter)]
    fn timestamp(this: &JsVideoFrame) -> f64;
    #[wasm_bindgen(method, js_name = close)]
    fn close_frame(this: &JsVideoFrame);
}

/// The codec asked about before watching (constrained baseline, level 3.1: what OpenH264 writes
/// for 720p); the stream's own SPS configures the decoder.
const PROBE_CODEC: &str = "avc1.42E01F";
/// Pictures waiting in the decoder beyond which frames are skipped to the next keyframe.
const MAX_QUEUE: u32 = 8;

fn obj(pairs: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o
}

fn has_webcodecs() -> bool {
    web_sys::window().is_some_and(|w| {
        ["VideoDecoder", "EncodedVideoChunk"]
            .iter()
            .all(|n| Reflect::has(&w, &JsValue::from_str(n)).unwrap_or(false))
    })
}

fn js_error(e: &JsValue) -> String {
    Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}

/// Pictures whose latency goes into the panel's p50/p99 (10 s at 30 fps).
const LATENCY_WINDOW: usize = 300;

#[derive(Default)]
struct Player {
    canvas: NodeRef,
    status: NodeRef,
    decoder: Option<JsVideoDecoder>,
    waiting_key: bool,
    frames: u64,
    skipped: u64,
    recent: VecDeque<f64>,
    latency_ms: f64,
    /// The last [`LATENCY_WINDOW`] latencies, for the p50/p99 the panel reports.
    latencies: VecDeque<f64>,
    size: (u32, u32),
    last_status: f64,
    message: Option<String>,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Player {
    fn set_status(&self, text: &str) {
        if let Some(el) = self.status.cast::<web_sys::HtmlElement>() {
            el.set_inner_text(text);
        }
    }

    fn show_counts(&mut self, now: f64) {
        if now - self.last_status < 500.0 && self.frames > 1 {
            return;
        }
        self.last_status = now;
        let fps = match (self.recent.front(), self.recent.back()) {
            (Some(a), Some(b)) if b > a => (self.recent.len() - 1) as f64 * 1000.0 / (b - a),
            _ => 0.0,
        };
        self.set_status(&format!(
            "{fps:.0} fps · {:.0} ms latency · {}×{}",
            self.latency_ms, self.size.0, self.size.1
        ));
        if let Some(c) = self.canvas.cast::<web_sys::Element>() {
            let _ = c.set_attribute("data-frames", &self.frames.to_string());
            let _ = c.set_attribute("data-latency-ms", &format!("{:.1}", self.latency_ms));
            let _ = c.set_attribute("data-fps", &format!("{fps:.1}"));
            let mut sorted: Vec<f64> = self.latencies.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            let at = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied();
            if let (Some(p50), Some(p99)) = (at(0.5), at(0.99)) {
                let _ = c.set_attribute("data-latency-p50-ms", &format!("{p50:.1}"));
                let _ = c.set_attribute("data-latency-p99-ms", &format!("{p99:.1}"));
            }
        }
    }
}

/// A decoded picture: drawn, counted, closed.
fn on_picture(player: &Rc<RefCell<Player>>, frame: JsVideoFrame) {
    let mut p = player.borrow_mut();
    let (w, h) = (frame.display_width(), frame.display_height());
    if let Some(canvas) = p.canvas.cast::<web_sys::HtmlCanvasElement>() {
        if canvas.width() != w || canvas.height() != h {
            canvas.set_width(w);
            canvas.set_height(h);
        }
        // drawImage(VideoFrame, 0, 0): web-sys' typed overloads do not take a VideoFrame.
        if let Ok(Some(ctx)) = canvas.get_context("2d") {
            if let Ok(draw) = Reflect::get(&ctx, &JsValue::from_str("drawImage")) {
                if let Ok(draw) = draw.dyn_into::<js_sys::Function>() {
                    let _ = draw.call3(&ctx, &frame, &JsValue::from(0), &JsValue::from(0));
                }
            }
        }
    }
    // The chunk's timestamp is the capture time (µs since the epoch, the driver PC's clock).
    let now_us = js_sys::Date::now() * 1000.0;
    p.latency_ms = (now_us - frame.timestamp()) / 1000.0;
    let latency = p.latency_ms;
    p.latencies.push_back(latency);
    while p.latencies.len() > LATENCY_WINDOW {
        p.latencies.pop_front();
    }
    frame.close_frame();
    p.frames += 1;
    p.size = (w, h);
    let now = crate::net::now_ms();
    p.recent.push_back(now);
    while p.recent.len() > 30 {
        p.recent.pop_front();
    }
    p.show_counts(now);
}

/// A decoder for `codec`, drawing into the player's canvas.
fn make_decoder(player: &Rc<RefCell<Player>>, codec: &str) -> Result<JsVideoDecoder, String> {
    let weak = Rc::downgrade(player);
    let output = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| match weak.upgrade() {
        Some(p) => on_picture(&p, v.unchecked_into()),
        None => v.unchecked_into::<JsVideoFrame>().close_frame(),
    });
    let weak = Rc::downgrade(player);
    let error = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        if let Some(p) = weak.upgrade() {
            let mut p = p.borrow_mut();
            // A failed decoder is closed; the next keyframe makes a new one.
            p.decoder = None;
            p.waiting_key = true;
            p.set_status(&format!("decoder error: {}; waiting for the next keyframe", js_error(&e)));
        }
    });
    let init = obj(&[("output", output.as_ref().clone()), ("error", error.as_ref().clone())]);
    let decoder = JsVideoDecoder::new(&init).map_err(|e| js_error(&e))?;
    let config = obj(&[("codec", JsValue::from_str(codec)), ("optimizeForLatency", JsValue::TRUE)]);
    decoder.configure(&config).map_err(|e| js_error(&e))?;
    let mut p = player.borrow_mut();
    p.handlers = vec![output, error];
    Ok(decoder)
}

/// One frame from the socket.
fn on_frame(player: &Rc<RefCell<Player>>, bytes: &[u8]) {
    let Ok((h, at)) = MediaHeader::decode(bytes) else { return };
    if h.codec != Codec::H264 {
        return;
    }
    let payload = &bytes[at..];
    let needs_decoder = player.borrow().decoder.is_none();
    if needs_decoder {
        if !h.keyframe {
            return;
        }
        let codec = media::avc_codec(payload).unwrap_or_else(|| PROBE_CODEC.to_owned());
        match make_decoder(player, &codec) {
            Ok(d) => {
                let mut p = player.borrow_mut();
                p.decoder = Some(d);
                p.waiting_key = false;
            }
            Err(e) => {
                player.borrow().set_status(&format!("cannot decode {codec}: {e}"));
                return;
            }
        }
    }
    let mut p = player.borrow_mut();
    if p.waiting_key && !h.keyframe {
        p.skipped += 1;
        return;
    }
    let Some(queue) = p.decoder.as_ref().map(|d| d.decode_queue_size()) else { return };
    if queue > MAX_QUEUE && !h.keyframe {
        // This device decodes slower than the stream comes: skip to the next keyframe.
        p.waiting_key = true;
        p.skipped += 1;
        return;
    }
    let data = js_sys::Uint8Array::from(payload);
    let chunk = JsEncodedVideoChunk::new(&obj(&[
        ("type", JsValue::from_str(if h.keyframe { "key" } else { "delta" })),
        ("timestamp", JsValue::from_f64(h.capture_us as f64)),
        ("data", data.into()),
    ]));
    let result = chunk.and_then(|c| p.decoder.as_ref().map_or(Ok(()), |d| d.decode(&c)));
    p.waiting_key = false;
    if let Err(e) = result {
        p.waiting_key = true;
        let msg = format!("decode: {}", js_error(&e));
        p.set_status(&msg);
    }
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub driver_id: String,
}

#[function_component(VideoPanel)]
pub fn video_panel(props: &Props) -> Html {
    let ctx = use_context::<Ctx>();
    let player = use_mut_ref(Player::default);
    let (canvas, status) = {
        let p = player.borrow();
        (p.canvas.clone(), p.status.clone())
    };
    {
        let (player, ctx) = (player.clone(), ctx.clone());
        use_effect_with(props.driver_id.clone(), move |driver: &String| {
            let driver = driver.clone();
            let team = ctx.as_ref().map(|c| c.team_id.clone()).unwrap_or_default();
            let watch = WatchVideo { team_id: team, driver_id: driver.clone() };
            let socket = ctx.as_ref().map(|c| c.socket.clone());
            if !has_webcodecs() {
                player.borrow().set_status(
                    "This browser has no WebCodecs (VideoDecoder): onboard video needs a current Chrome, Edge or Safari.",
                );
            } else {
                player.borrow().set_status("checking H.264 support…");
                let (player, socket, watch) = (player.clone(), socket.clone(), watch.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let probe = obj(&[
                        ("codec", JsValue::from_str(PROBE_CODEC)),
                        ("optimizeForLatency", JsValue::TRUE),
                    ]);
                    let supported = match JsVideoDecoder::is_config_supported(&probe) {
                        Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await.ok().and_then(|r| {
                            Reflect::get(&r, &JsValue::from_str("supported")).ok().and_then(|s| s.as_bool())
                        }),
                        Err(_) => None,
                    };
                    if supported != Some(true) {
                        let why = "This browser's WebCodecs cannot decode H.264 (VideoDecoder.isConfigSupported said no): onboard video needs a browser with H.264.";
                        player.borrow_mut().message = Some(why.into());
                        player.borrow().set_status(why);
                        return;
                    }
                    player.borrow().set_status("waiting for the driver's video…");
                    let sink_player = player.clone();
                    media::register(
                        &watch.driver_id,
                        Rc::new(move |bytes: &[u8]| on_frame(&sink_player, bytes)),
                    );
                    if let Some(s) = socket.as_ref() {
                        if let Some(s) = s.borrow().as_ref() {
                            s.watch_video(watch.clone());
                        }
                    }
                });
            }
            let player = player.clone();
            move || {
                media::unregister(&watch.driver_id);
                if let Some(s) = socket.as_ref() {
                    if let Some(s) = s.borrow().as_ref() {
                        s.unwatch_video(watch);
                    }
                }
                let mut p = player.borrow_mut();
                if let Some(d) = p.decoder.take() {
                    let _ = d.close();
                }
                p.handlers.clear();
            }
        });
    }
    html! {
        <section class="panel video">
            <h2>{ "Onboard" }</h2>
            <canvas id="onboard-video" ref={canvas} width="640" height="360" style="width:100%;background:#000"></canvas>
            <p id="onboard-status" class="mono" ref={status}></p>
        </section>
    }
}
