//! The guard that keeps a language model from inventing numbers: the numbers and corner names of the
//! engine's findings, and the check that a rephrasing kept every one of them unchanged and added
//! none. Reads no env vars.
//!
//! A *number* is a run of digits with an optional fraction (`14`, `0.21`), with its minus sign when
//! one stands right before it (`-0.21`; the typographic `−` counts as `-`, and a leading `+` is
//! dropped because it never changes the value). A digit run glued to a preceding letter is part of a
//! *name* (`T3`, `S2`) instead: corner and sector names must survive the rewrite too, and a model that
//! turns `T3` into `T4` has moved the advice to another corner. A *count* is two numbers joined by
//! `of` (`4 of the last 6`, `4 out of 6`): both numbers in the same order, so that "6 of the last 4"
//! does not pass for "4 of the last 6".

use std::collections::BTreeSet;

/// The numbers and digit-bearing names of a text, each as written (signs normalised).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub numbers: BTreeSet<String>,
    pub names: BTreeSet<String>,
    /// `4 of the last 6` as `4 of 6`.
    pub counts: BTreeSet<String>,
}

/// The words between two numbers that make them a count: `of`, `out of`, then at most three words
/// (`the last`, `your last`, `the past`).
fn joins_a_count(between: &str) -> bool {
    let words: Vec<&str> = between.split_whitespace().collect();
    let rest = match words.as_slice() {
        ["of", rest @ ..] => rest,
        ["out", "of", rest @ ..] => rest,
        _ => return false,
    };
    rest.len() <= 3 && rest.iter().all(|w| w.chars().all(char::is_alphabetic))
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
    // The previous number and where it ended, to find counts.
    let mut previous: Option<(String, usize)> = None;
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
            let number = if signed { format!("-{digits}") } else { digits };
            if let Some((first, end)) = &previous {
                let between: String = chars[*end..start].iter().collect::<String>().to_lowercase();
                if joins_a_count(&between) {
                    out.counts.insert(format!("{first} of {number}"));
                }
            }
            previous = Some((number.clone(), i));
            out.numbers.insert(number);
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
/// has no number or name of its own. A corner name may be spoken out (`T3` → "Turn 3", which reads
/// better over the radio), and so the digit inside an engine name may stand alone in the reply.
pub fn check(engine: &str, reply: &str) -> Result<(), NumberMismatch> {
    let want = tokens(engine);
    let got = tokens(reply);
    let spoken = spoken_turns(reply);
    let missing: Vec<String> = want
        .numbers
        .iter()
        .filter(|n| !got.numbers.contains(*n))
        .chain(want.names.iter().filter(|n| !got.names.contains(*n) && !spoken.contains(*n)))
        .chain(want.counts.iter().filter(|c| !got.counts.contains(*c)))
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

/// The corners a text names as `Turn N` (any case), as `TN`.
fn spoken_turns(text: &str) -> BTreeSet<String> {
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    words
        .windows(2)
        .filter(|w| w[0].eq_ignore_ascii_case("turn") && w[1].chars().all(|c| c.is_ascii_digit()))
        .map(|w| format!("T{}", w[1]))
        .collect()
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
        assert_eq!(t.counts, set(&["4 of 6"]));
        assert_eq!(
            tokens("in 4 out of 6 laps, 3 of your last 5, 2 of them at T3").counts,
            set(&["4 of 6", "3 of 5"])
        );
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
        let reply = "Turn 3: you lost \u{2212}0.21 s braking 14 m early, 4 of the last 6 laps.";
        assert_eq!(check(engine, reply), Ok(()), "T3 spoken out as Turn 3");
        let err =
            check(engine, "Turn 5: you lost -0.21 s braking 14 m early, 4 of the last 6 laps.").unwrap_err();
        assert_eq!((err.missing, err.invented), (vec!["T3".to_owned()], vec!["5".to_owned()]));
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
        let engine = "T3: braked 14 m early (4 of the last 6 laps)";
        assert_eq!(check(engine, "T3: 14 m early braking, 4 out of your last 6 laps"), Ok(()));
        let err = check(engine, "T3: braked 14 m early (6 of the last 4 laps)").unwrap_err();
        assert_eq!(err.missing, vec!["4 of 6"], "a count keeps its order");
    }
}
