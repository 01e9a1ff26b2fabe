//! A stable-Rust stand-in for the cargo-fuzz target (`../fuzz/fuzz_targets/ibt_parse.rs`): a few
//! thousand deterministic mutations of the real fixtures in `../shared/fixtures/ibt/` (bit flips,
//! truncations, header and variable-header fields overwritten with edge values, garbage YAML) go
//! through the same code path, [`pitbox_driver::ibt::verify`], which must answer `Ok` or `Err` and
//! never panic; an accepted input must convert every row to a valid sample. Reads no env vars.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use pitbox_driver::ibt::{verify, Ibt, SessionInfo};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ibt/");

fn bytes(name: &str) -> Vec<u8> {
    let path = PathBuf::from(FIXTURES).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("missing test fixture {}: {e}", path.display()))
}

/// xorshift64*: deterministic, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn i32_at(data: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn put(data: &mut [u8], at: usize, v: i32) {
    if let Some(slot) = data.get_mut(at..at + 4) {
        slot.copy_from_slice(&v.to_le_bytes());
    }
}

/// A valid recording cut down to `rows` rows (the disk header's count patched), so that the
/// thousands of full reads stay fast in a debug build.
fn shortened(name: &str, rows: i32) -> Vec<u8> {
    let mut data = bytes(name);
    let (offset, row_len) = (i32_at(&data, 52).unwrap(), i32_at(&data, 36).unwrap());
    data.truncate((offset + rows * row_len) as usize);
    put(&mut data, 112 + 28, rows);
    data
}

/// Mutates `data` in place and says how, for the failure message.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) -> String {
    let len = data.len();
    // where the interesting bytes are: headers, variable headers, session info
    let meta_end = [20, 28, 52]
        .iter()
        .filter_map(|&at| i32_at(data, at))
        .filter_map(|v| usize::try_from(v).ok())
        .filter(|&v| v < len)
        .max()
        .unwrap_or(len)
        .max(144);
    let len_i32 = i32::try_from(len).unwrap_or(i32::MAX);
    let edge = [
        0,
        1,
        -1,
        2,
        3,
        4,
        5,
        6,
        60,
        112,
        144,
        i32::MAX,
        i32::MIN,
        i32::MAX / 144,
        len_i32,
        len_i32 - 1,
        len_i32 + 1,
        1 << 20,
        (1 << 20) + 1,
    ];
    match rng.below(6) {
        0 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let at = if rng.below(4) == 0 { rng.below(len) } else { rng.below(meta_end.min(len)) };
                if let Some(b) = data.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            format!("{flips} bit flips")
        }
        1 => {
            let cut = rng.below(len);
            data.truncate(cut);
            format!("truncated to {cut}")
        }
        2 => {
            // main header or disk sub-header field
            let at = 4 * rng.below(36);
            let v = edge[rng.below(edge.len())];
            put(data, at, v);
            format!("field at {at} = {v}")
        }
        3 => {
            // a variable header's type, offset or count
            let vho = i32_at(data, 28).and_then(|v| usize::try_from(v).ok()).unwrap_or(144);
            let n = i32_at(data, 24).and_then(|v| usize::try_from(v).ok()).unwrap_or(1).clamp(1, 500);
            let at = vho + 144 * rng.below(n) + 4 * rng.below(3);
            let v = edge[rng.below(edge.len())];
            put(data, at, v);
            format!("variable header field at {at} = {v}")
        }
        4 => {
            // garbage in the session info
            let start = i32_at(data, 20).and_then(|v| usize::try_from(v).ok()).unwrap_or(0);
            let size = i32_at(data, 16).and_then(|v| usize::try_from(v).ok()).unwrap_or(0);
            let n = 1 + rng.below(64);
            for _ in 0..n {
                let at = start + rng.below(size);
                let garbage =
                    [b'[', b'{', b':', b'-', b'&', b'*', b'!', b'"', b'\'', b'\n', b' ', 0, 0x81, 0xFF];
                if let Some(b) = data.get_mut(at) {
                    *b = garbage[rng.below(garbage.len())];
                }
            }
            format!("{n} garbage bytes in the session info")
        }
        _ => {
            // variable header's name bytes
            let vho = i32_at(data, 28).and_then(|v| usize::try_from(v).ok()).unwrap_or(144);
            let at = vho + 16 + rng.below(4000);
            let v = [0u8, 0xC3, 0xFF, b'\n', b'_'][rng.below(5)];
            if let Some(b) = data.get_mut(at) {
                *b = v;
            }
            format!("name byte at {at} = {v:#x}")
        }
    }
}

/// The fuzz target's body: parse, and if that works read everything. `Ok(accepted)`.
fn check(data: &[u8]) -> Result<bool, String> {
    match verify(data) {
        Ok(v) if !v.invalid_samples.is_empty() => Err(format!("invalid samples: {:?}", v.invalid_samples)),
        Ok(_) => Ok(true),
        Err(e) if e.to_string().is_empty() => Err(format!("{e:?} has no message")),
        Err(_) => Ok(false),
    }
}

#[test]
fn thousands_of_mutations_never_panic() {
    let bases = [
        ("redbullring_w13_short.ibt", shortened("redbullring_w13_short.ibt", 40)),
        ("tsukuba_formulavee_3laps.ibt", shortened("tsukuba_formulavee_3laps.ibt", 40)),
        ("redbullring_amg-gt4.ibt", shortened("redbullring_amg-gt4.ibt", 40)),
        ("live-memmap-monza_w13.bin", bytes("live-memmap-monza_w13.bin")),
        ("invalid.ibt", bytes("invalid.ibt")),
    ];
    for (name, base) in &bases[..4] {
        assert!(Ibt::parse(&base[..]).is_ok(), "{name}: the unmutated base must parse");
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, mut refused) = (0u32, 0u32);
    for case in 0..3000 {
        let (name, base) = &bases[case % bases.len()];
        let mut data = base.clone();
        let what = mutate(&mut rng, &mut data);
        // a second mutation now and then
        let what =
            if rng.below(3) == 0 { format!("{what}, then {}", mutate(&mut rng, &mut data)) } else { what };
        match catch_unwind(AssertUnwindSafe(|| check(&data))) {
            Ok(Ok(true)) => accepted += 1,
            Ok(Ok(false)) => refused += 1,
            Ok(Err(problem)) => panic!("case {case} ({name}: {what}): {problem}"),
            Err(_) => panic!("case {case} ({name}: {what}) panicked"),
        }
    }
    eprintln!("3000 mutations: {accepted} accepted, {refused} refused");
    // both outcomes must be exercised, or the mutations are too weak or too strong
    assert!(accepted > 300 && refused > 300, "accepted {accepted}, refused {refused}");
}

#[test]
fn hostile_session_yaml_is_an_error_not_a_crash() {
    let deep = "[".repeat(100_000);
    assert!(SessionInfo::from_bytes(deep.as_bytes()).is_err());
    let deep_map = (0..5_000).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect::<String>();
    let _ = SessionInfo::from_bytes(deep_map.as_bytes());
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    assert!(SessionInfo::from_bytes(bomb.as_bytes()).is_err(), "alias expansion must be bounded");
    for garbage in
        [&b"\xff\xfe\x00"[..], b"---\n...\n---\n", b"\t\t:", b"!!binary x", b"? [a]\n: b\n", b"{a: 1, a: 2}"]
    {
        let _ = SessionInfo::from_bytes(garbage);
    }
}
