//! Memory of the laps in progress: N synthetic drivers (the load generator's own, with their
//! `CarIdx` arrays) drive 90 s of a lap at 60 Hz, frame by frame, into the runtime's lap assembler
//! (`pitbox_actors::LapAssembler`, which encodes each frame as it comes), and beside it into what
//! the assembler kept before (every frame whole, `Vec<TelemetryFrame>`). A counting global
//! allocator gives the heap bytes each holds every 10 s, per driver and per frame. A figure, not a
//! test: run it with
//!
//! ```text
//! cargo bench -p pitbox-loadgen --bench lap_memory [-- --drivers 50 --secs 90]
//! ```
//!
//! Reads no env vars.

use std::alloc::System;

use pitbox_actors::LapAssembler;
use pitbox_driver::synthetic::Synthetic;
use pitbox_schema::wire::TelemetryFrame;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes in use now.
fn heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
}

const HZ: usize = 60;
const MIB: f64 = 1024.0 * 1024.0;

/// What holds a driver's lap in progress.
trait Keeper {
    fn push(&mut self, f: &TelemetryFrame);
}

/// Before: every frame of the lap, whole (the former `LapBuild::frames`).
struct Whole(Vec<TelemetryFrame>);

impl Keeper for Whole {
    fn push(&mut self, f: &TelemetryFrame) {
        self.0.push(f.clone());
    }
}

/// Now: the assembler itself.
struct Assembler(LapAssembler);

impl Keeper for Assembler {
    fn push(&mut self, f: &TelemetryFrame) {
        // Laps it completes (none within one lap's time from the line) are dropped here, as the
        // store writer drops them once stored.
        drop(self.0.push(f));
    }
}

/// Drives `drivers` cars for `secs` into a keeper each; prints heap held every 10 s and returns
/// the bytes per frame held at the end.
fn run<K: Keeper>(name: &str, drivers: usize, secs: usize, make: impl Fn() -> K) -> f64 {
    let mut cars: Vec<Synthetic> = (0..drivers).map(|i| Synthetic::new(1000 + i as u64)).collect();
    // Frames are made first and fed from a buffer, so the generator's own memory is not counted.
    let mut keepers: Vec<K> = (0..drivers).map(|_| make()).collect();
    let base = heap();
    println!("{name}: {drivers} drivers, {secs} s at {HZ} Hz");
    let mut last = 0.0;
    for s in 1..=secs {
        let second: Vec<Vec<TelemetryFrame>> =
            cars.iter_mut().map(|c| (0..HZ).map(|_| c.next_frame()).collect()).collect();
        for i in 0..HZ {
            for (k, frames) in keepers.iter_mut().zip(&second) {
                if let Some(f) = frames.get(i) {
                    k.push(f);
                }
            }
        }
        // What the second's frames themselves hold is not the keepers'.
        drop(second);
        let held = (heap() - base).max(0) as f64;
        let frames = (s * HZ) as f64;
        last = held / drivers as f64 / frames;
        if s % 10 == 0 || s == secs {
            println!(
                "  t={s:>3}s  heap {:>8.1} MiB  per driver {:>7.3} MiB  {:>6.0} bytes/frame",
                held / MIB,
                held / drivers as f64 / MIB,
                last
            );
        }
    }
    last
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut drivers, mut secs) = (50usize, 90usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--drivers" => drivers = args.next().and_then(|v| v.parse().ok()).unwrap_or(drivers),
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).unwrap_or(secs),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    let whole = run("before: whole frames", drivers, secs, || Whole(Vec::new()));
    let encoded =
        run("now: LapAssembler (encoded as they come)", drivers, secs, || Assembler(LapAssembler::new()));
    println!(
        "bytes per frame held: {whole:.0} before, {encoded:.0} now ({:.1}x less); \
         per driver after {secs} s: {:.2} MiB before, {:.2} MiB now",
        whole / encoded.max(1.0),
        whole * (secs * HZ) as f64 / MIB,
        encoded * (secs * HZ) as f64 / MIB,
    );
}
