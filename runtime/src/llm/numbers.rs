//! The guard that keeps a language model from inventing numbers: the numbers and corner names of the
//! engine's findings, and the check that a rephrasing kept every one of them unchanged and added
//! none. Reads no env vars.
//!
//! A *number* is a run of digits with an optional fraction (`14`, `0.21`), with its minus sign when
//! one stands right before it (`-0.21`; the typographic `−` counts as `-`, and a leading `+` is
//! dropped because it never changes the value). A digit run glued to a preceding letter is part of a
//! *name* (`T3`, `S2`) instead: corner and sector names must survive the rewrite too, and a model that
//! turns `T3` into `T4` has moved the advice to another corner.

use std::collections::BTreeSet;

/// The numbers and digit-bearing names of a text, each as written (signs normalised).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub numbers: BTreeSet<String>,
    pub names: BTreeSet<String>,
}

fn is_minus(c: char) -> bool {
    // ASCII hyphen-minus, the Unicode minus sign (the engine writes `−0.21 s`), and the en dash
    // models like to substitute for it.
    matches!(c, '-' | '\u{2212}' | '\u{2013}')
}

/// Splits `text` into its numbers and names.
pub fn tokens(text: &str) -> Tokens {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Tokens::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() {
            // A word: a name when it holds a digit (`T3`), otherwise nothing we track.
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            if chars[start..i].iter().any(char::is_ascii_digit) {
                out.names.insert(chars[start..i].iter().collect());
            }
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let digits: String = chars[start..i].iter().collect();
            // The sign belongs to the number only when it is not a hyphen inside a word or range
            // (`4-6` is two numbers, not 4 and −6).
            let signed = start >= 1
                && is_minus(chars[start - 1])
                && (start == 1 || !chars[start - 2].is_alphanumeric());
            out.numbers.insert(if signed { format!("-{digits}") } else { digits });
            continue;
        }
        i += 1;
    }
    out
}

/// Why a rephrasing was refused: the engine's numbers or names it lost or changed, and those it
/// made up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumberMismatch {
    pub missing: Vec<String>,
    pub invented: Vec<String>,
}

impl std::fmt::Display for NumberMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "missing [{}], invented [{}]", self.missing.join(", "), self.invented.join(", "))
    }
}

/// Checks that every number and name of `engine` appears unchanged in `reply`, and that `reply`
/// has no number or name of its own. A digit inside an engine name may stand alone in the reply
/// (`T3` → "turn 3"), since that is the same corner.
pub fn check(engine: &str, reply: &str) -> Result<(), NumberMismatch> {
    let want = tokens(engine);
    let got = tokens(reply);
    let missing: Vec<String> = want
        .numbers
        .iter()
        .filter(|n| !got.numbers.contains(*n))
        .chain(want.names.iter().filter(|n| !got.names.contains(*n)))
        .cloned()
        .collect();
    let digits_in_names: BTreeSet<String> =
        want.names.iter().flat_map(|n| tokens(&digit_runs(n)).numbers).collect();
    let invented: Vec<String> = got
        .numbers
        .iter()
        .filter(|n| !want.numbers.contains(*n) && !digits_in_names.contains(*n))
        .chain(got.names.iter().filter(|n| !want.names.contains(*n)))
        .cloned()
        .collect();
    if missing.is_empty() && invented.is_empty() {
        Ok(())
    } else {
        Err(NumberMismatch { missing, invented })
    }
}

/// `T12a` → `12`: the digit runs of a name, space-separated, so [`tokens`] reads them as numbers.
fn digit_runs(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_digit() { c } else { ' ' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn reads_the_engines_statement() {
        let t = tokens("T3: \u{2212}0.21 s, braked 14 m early (4 of the last 6 laps)");
        assert_eq!(t.numbers, set(&["-0.21", "14", "4", "6"]));
        assert_eq!(t.names, set(&["T3"]));
    }

    #[test]
    fn signs_ranges_units_and_sentence_ends() {
        let t = tokens("+0.3 s at T12; laps 4-6; 14m. Fuel 2.5L, lap 1:32.456.");
        assert_eq!(t.numbers, set(&["0.3", "4", "6", "14", "2.5", "1", "32.456"]));
        assert_eq!(t.names, set(&["T12"]));
    }

    #[test]
    fn a_faithful_rewrite_passes() {
        let engine = "T3: \u{2212}0.21 s, braked 14 m early (4 of the last 6 laps)";
        let reply = "In T3 you lost -0.21 s: you braked 14 m too early, in 4 of the last 6 laps.";
        assert_eq!(check(engine, reply), Ok(()));
        let reply = "Turn 3 (T3) cost you \u{2212}0.21 s; braking 14 m early in 4 of the last 6 laps.";
        assert_eq!(check(engine, reply), Ok(()), "the corner's own digit may stand alone");
    }

    #[test]
    fn a_changed_number_is_refused() {
        let engine = "T3: -0.21 s, braked 14 m early";
        let err = check(engine, "T3: -0.2 s, braked 14 m early").unwrap_err();
        assert_eq!(err.missing, vec!["-0.21"]);
        assert_eq!(err.invented, vec!["-0.2"]);
        let err = check(engine, "T3: 0.21 s, braked 14 m early").unwrap_err();
        assert_eq!(err.missing, vec!["-0.21"], "the sign is part of the number");
        let err = check(engine, "T4: -0.21 s, braked 14 m early").unwrap_err();
        assert_eq!((err.missing, err.invented), (vec!["T3".to_owned()], vec!["T4".to_owned()]));
        let err = check(engine, "T3: -0.21 s, braked 14 m early, about 140 km/h").unwrap_err();
        assert_eq!(err.invented, vec!["140"], "14 inside 140 is not 14, and 140 is new");
        let err = check(engine, "T3: -0.21 s, braked fourteen metres early").unwrap_err();
        assert_eq!(err.missing, vec!["14"]);
    }
}
