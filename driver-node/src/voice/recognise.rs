//! Spoken-command recognition: what a driver said (a speech-to-text transcript) → one of the
//! [`VoiceIntent`]s, with how sure we are.
//!
//! Transcripts are normalised (lowercase, no punctuation, apostrophes dropped so `what's` is
//! `whats`, number words as digits, `tires`→`tyres`, `temperatures`→`temps`) and compared with
//! several phrasings per command, the way drivers talk on the radio ("how's my fuel", "gap to the
//! car ahead", "boxing this lap"). The comparison is character-level (normalised Levenshtein from
//! `strsim`) on the best-matching run of words, so a word speech-to-text misheard ("fool" for
//! "fuel") costs a little rather than everything, and words around the command ("uh", "mate",
//! "please") cost a little each. `tell the team …` is a prefix: the rest is the message.
//!
//! This module does not depend on the `stt` feature: it works on text from any recogniser.
//! Reads no env vars.

use pitbox_schema::wire::VoiceIntent;

/// At or above this confidence the node acts on a command; below it, it asks the driver to say it
/// again. Chosen from the measured spread: misheard commands still score ≥ 0.8, unrelated radio
/// chatter stays under 0.6 (see the unit tests and `tests/voice_stt.rs`).
pub const CONFIDENT: f32 = 0.72;

/// Below this nothing is returned at all: the words are not close to any command.
const FLOOR: f32 = 0.5;

/// Each word around the command costs something (at most [`MAX_EXTRA_PENALTY`] in all): a filler
/// ([`FILLERS`]) a little, so "uh how's my fuel mate" is still fuel; any other word more, so "what's
/// my fuel consumption" is fuel per lap rather than fuel with a word left over, and a long sentence
/// that happens to contain "box" is not a box call.
const FILLER_PENALTY: f32 = 0.02;
const EXTRA_WORD_PENALTY: f32 = 0.1;
const MAX_EXTRA_PENALTY: f32 = 0.4;

/// Words that carry no command: politeness, hesitation, radio habits, question words.
const FILLERS: &[&str] = &[
    "uh", "um", "er", "erm", "ah", "oh", "so", "ok", "right", "hey", "yeah", "please", "mate", "buddy",
    "guys", "can", "could", "you", "tell", "me", "give", "whats", "what", "is", "the", "a", "my", "i", "im",
    "now", "again", "quick", "just", "check", "copy", "and", "to", "of", "do", "got", "have", "on",
];

/// When the two best commands score within this of each other the confidence is lowered, so the
/// node asks again instead of guessing between, say, fuel per lap and laps of fuel.
const AMBIGUITY_MARGIN: f32 = 0.06;

/// A recognised command.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    pub intent: VoiceIntent,
    /// 0–1; act on it at or above [`CONFIDENT`].
    pub confidence: f32,
    /// The message of `tell_team` (the words after "tell the team"), as spoken.
    pub text: Option<String>,
    /// A number said with the command ("fuel for 12 laps"), if any.
    pub number: Option<f64>,
}

/// The phrasings per command, already in normalised form (see [`normalise`]). The first one of
/// each is the command's name in [`vocabulary_prompt`].
const PHRASES: &[(VoiceIntent, &[&str])] = &[
    (
        VoiceIntent::FuelLeft,
        &[
            "fuel",
            "fuel left",
            "hows my fuel",
            "how much fuel have i got",
            "how much fuel left",
            "how much fuel do i have",
            "fuel check",
            "whats my fuel",
            "fuel level",
            "fuel in the tank",
        ],
    ),
    (
        VoiceIntent::FuelPerLap,
        &[
            "fuel per lap",
            "fuel usage",
            "how much fuel per lap",
            "whats my fuel per lap",
            "fuel consumption",
            "how much am i using per lap",
            "fuel burn",
        ],
    ),
    (
        VoiceIntent::LapsOfFuel,
        &[
            "laps of fuel",
            "how many laps of fuel",
            "how many laps of fuel do i have",
            "how many laps can i do",
            "how many laps will the fuel last",
            "laps left in the tank",
            "how long will my fuel last",
        ],
    ),
    (
        VoiceIntent::FuelToEnd,
        &[
            "fuel to the end",
            "fuel to end",
            "fuel to finish",
            "fuel to the finish",
            "how much fuel to the end",
            "how much fuel do i need",
            "fuel needed",
            "do i have enough fuel",
            "can i make it to the end",
        ],
    ),
    (
        VoiceIntent::GapAhead,
        &[
            "gap ahead",
            "gap",
            "whats the gap",
            "whats the gap ahead",
            "gap to the car ahead",
            "gap in front",
            "gap to the car in front",
            "how far ahead is the next car",
            "whats the gap to the leader",
        ],
    ),
    (
        VoiceIntent::GapBehind,
        &[
            "gap behind",
            "whats the gap behind",
            "gap to the car behind",
            "whos behind me",
            "how far back is the car behind",
            "hows the gap behind",
        ],
    ),
    (
        VoiceIntent::Position,
        &[
            "position",
            "what position am i",
            "what position am i in",
            "whats my position",
            "where am i",
            "what place am i",
            "where am i running",
        ],
    ),
    (
        VoiceIntent::LastLap,
        &[
            "last lap",
            "last lap time",
            "whats my last lap",
            "what was my last lap",
            "what was that lap",
            "lap time",
            "how was that lap",
        ],
    ),
    (
        VoiceIntent::BestLap,
        &[
            "best lap",
            "best lap time",
            "whats my best lap",
            "what was my best lap",
            "fastest lap",
            "whats my fastest lap",
        ],
    ),
    (
        VoiceIntent::Delta,
        &[
            "delta",
            "whats my delta",
            "delta to best",
            "am i faster",
            "am i up or down",
            "how am i doing on the best",
        ],
    ),
    (
        VoiceIntent::TyreTemps,
        &[
            "tyre temps",
            "tyre temps please",
            "hows my tyre temps",
            "how are my tyre temps",
            "whats my tyre temps",
            "how hot are my tyres",
            "are the tyres warm",
        ],
    ),
    (
        VoiceIntent::TyreWear,
        &[
            "tyre wear",
            "hows my tyre wear",
            "how are my tyres",
            "whats the tyre wear",
            "how worn are my tyres",
            "tyres worn",
        ],
    ),
    (
        VoiceIntent::Remaining,
        &[
            "laps remaining",
            "how long to go",
            "how many laps to go",
            "how many laps left",
            "how long left",
            "time remaining",
            "how much time left",
            "laps to go",
        ],
    ),
    (
        VoiceIntent::BoxThisLap,
        &[
            "box this lap",
            "box",
            "boxing this lap",
            "im boxing this lap",
            "pitting this lap",
            "im pitting this lap",
            "box now",
            "in this lap",
        ],
    ),
    (
        VoiceIntent::RepeatThat,
        &[
            "say again",
            "repeat that",
            "repeat",
            "say that again",
            "can you repeat that",
            "come again",
            "what did you say",
            "pardon",
        ],
    ),
    (
        VoiceIntent::Quiet,
        &[
            "quiet",
            "quiet please",
            "shut up",
            "be quiet",
            "stop talking",
            "no more tips",
            "leave me alone",
            "silence",
        ],
    ),
    (
        VoiceIntent::Resume,
        &[
            "resume",
            "talk to me",
            "you can talk again",
            "keep talking",
            "tips on",
            "start talking",
            "coach on",
        ],
    ),
];

/// The lead-ins of `tell_team`; what follows is the message.
const TELL_TEAM: &[&str] = &[
    "tell the team",
    "tell team",
    "message the team",
    "tell the pit wall",
    "tell the pits",
    "tell the engineer",
    "radio the team",
    "message to the team",
];

/// Best command for `transcript`, or `None` when nothing is close (see [`CONFIDENT`] for when to
/// act on it).
pub fn recognise(transcript: &str) -> Option<Recognition> {
    let collapsed = collapse_repeats(transcript);
    let transcript = collapsed.as_str();
    let words = normalise(transcript);
    if words.is_empty() {
        return None;
    }
    if let Some(r) = tell_team(transcript, &words) {
        return Some(r);
    }
    // best score per intent, then the winner and the runner-up of another intent
    let mut scores: Vec<(VoiceIntent, f32)> = PHRASES
        .iter()
        .map(|(intent, phrases)| {
            let best = phrases.iter().map(|p| phrase_score(&words, p)).fold(0.0_f32, f32::max);
            (*intent, best)
        })
        .collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (intent, best) = scores[0];
    let second = scores.get(1).map_or(0.0, |s| s.1);
    if best < FLOOR {
        return None;
    }
    let margin = best - second;
    let confidence = if margin < AMBIGUITY_MARGIN { best - (AMBIGUITY_MARGIN - margin) } else { best };
    Some(Recognition {
        intent,
        confidence: confidence.clamp(0.0, 1.0),
        text: None,
        number: words.iter().find_map(|w| w.text.parse::<f64>().ok()),
    })
}

/// Whisper with a short audio context often loops: "How's my fuel? How's my fuel? How's my". When
/// the words are one phrase said over and over (the last time possibly cut off), only the first
/// time is kept; anything else is returned as it is.
pub fn collapse_repeats(text: &str) -> String {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let keys: Vec<String> = tokens
        .iter()
        .map(|t| t.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect())
        .collect();
    let n = keys.len();
    // the loop may be cut off inside a word ("What" of "What's"), and its first time may be heard
    // a little differently from the rest ("Gup to the car ahead, gap to the car ahead, gap to")
    let same = |i: usize, p: usize| {
        keys[i] == keys[i - p] || (i == n - 1 && keys[i - p].starts_with(keys[i].as_str()))
    };
    let cut = |from: usize, p: usize| {
        tokens[from..from + p].join(" ").trim_end_matches([',', ';', ' ']).to_string()
    };
    for period in 1..=n / 2 {
        if (period..n).all(|i| same(i, period)) {
            return cut(0, period);
        }
    }
    for period in 1..=n / 3 {
        if (2 * period..n).all(|i| same(i, period)) {
            return cut(period, period);
        }
    }
    text.trim().to_string()
}

/// The initial prompt for speech-to-text: the command words, so that it prefers "tyre temps" over
/// "tire tamps" and "box" over "books".
pub fn vocabulary_prompt() -> String {
    let mut names: Vec<&str> = PHRASES.iter().filter_map(|(_, phrases)| phrases.first().copied()).collect();
    names.push(TELL_TEAM[0]);
    // spelled the way whisper should write them (normalised forms drop apostrophes)
    format!("Race radio. How's my fuel? What's the gap behind? Box this lap. Commands: {}.", names.join(", "))
}

/// One normalised word and where it came from in the transcript (its index among the transcript's
/// whitespace-separated words), so the `tell_team` message can be cut from the original text.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    text: String,
    orig: usize,
}

/// Lowercase, no punctuation, apostrophes dropped, number words as digits, spelling variants
/// folded to one form.
fn normalise(transcript: &str) -> Vec<Word> {
    let mut raw: Vec<Word> = Vec::new();
    for (orig, chunk) in transcript.split_whitespace().enumerate() {
        let lowered: String = chunk
            .chars()
            .filter(|c| *c != '\'' && *c != '’')
            .map(|c| if c.is_alphanumeric() || c == '.' { c.to_ascii_lowercase() } else { ' ' })
            .collect();
        for part in lowered.split_whitespace() {
            // a '.' is kept only inside a number ("2.5"); elsewhere it is punctuation
            let part = part.trim_matches('.');
            let part = if part.parse::<f64>().is_ok() { part.to_string() } else { part.replace('.', "") };
            if !part.is_empty() {
                raw.push(Word { text: fold_spelling(&part).to_string(), orig });
            }
        }
    }
    numbers_as_digits(raw)
}

fn fold_spelling(word: &str) -> &str {
    match word {
        "tires" => "tyres",
        "tire" => "tyre",
        "temperatures" | "temperature" | "temp" => "temps",
        "okay" => "ok",
        other => other,
    }
}

fn small_number(word: &str) -> Option<u32> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    if let Some(i) = UNITS.iter().position(|u| *u == word) {
        return u32::try_from(i).ok();
    }
    TENS.iter().position(|t| *t == word).and_then(|i| u32::try_from(i).ok()).map(|i| (i + 2) * 10)
}

/// "twenty five" → "25", "a hundred" stays words (drivers say small numbers: laps, litres).
fn numbers_as_digits(words: Vec<Word>) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        // "one" is also a pronoun ("the one ahead"), but as a word it matches no phrase either way
        if let Some(n) = small_number(&words[i].text) {
            let mut value = n;
            let mut used = 1;
            if n >= 20 && n % 10 == 0 {
                if let Some(units) = words.get(i + 1).and_then(|w| small_number(&w.text)) {
                    if units < 10 {
                        value += units;
                        used = 2;
                    }
                }
            }
            out.push(Word { text: value.to_string(), orig: words[i].orig });
            i += used;
        } else {
            out.push(words[i].clone());
            i += 1;
        }
    }
    out
}

/// How well the best run of `words` matches `phrase` (normalised), less a little for each word
/// around it.
fn phrase_score(words: &[Word], phrase: &str) -> f32 {
    let n = phrase.split(' ').count();
    let mut best = f32::MIN;
    for len in n.saturating_sub(1).max(1)..=n + 1 {
        if len > words.len() {
            break;
        }
        for start in 0..=words.len() - len {
            let window = join(&words[start..start + len]);
            #[allow(clippy::cast_possible_truncation)]
            let s = strsim::normalized_levenshtein(&window, phrase) as f32;
            let extra: f32 = words[..start]
                .iter()
                .chain(&words[start + len..])
                .map(|w| if FILLERS.contains(&w.text.as_str()) { FILLER_PENALTY } else { EXTRA_WORD_PENALTY })
                .sum();
            best = best.max(s - extra.min(MAX_EXTRA_PENALTY));
        }
    }
    if best == f32::MIN {
        // fewer words than the phrase needs: compare it all
        #[allow(clippy::cast_possible_truncation)]
        let s = strsim::normalized_levenshtein(&join(words), phrase) as f32;
        return s;
    }
    best
}

fn join(words: &[Word]) -> String {
    let mut s = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&w.text);
    }
    s
}

/// `tell the team <message>`: the lead-in must open the transcript (after a filler word or two)
/// and match closely; the message is the rest of the original words.
fn tell_team(transcript: &str, words: &[Word]) -> Option<Recognition> {
    let mut best: Option<(f32, usize)> = None; // (score, index of the first message word)
    for lead in TELL_TEAM {
        let n = lead.split(' ').count();
        for skip in 0..=2 {
            for len in n.saturating_sub(1).max(1)..=n + 1 {
                if skip + len > words.len() {
                    continue;
                }
                let window = join(&words[skip..skip + len]);
                #[allow(clippy::cast_possible_truncation)]
                let s = strsim::normalized_levenshtein(&window, lead) as f32
                    - 0.05 * f32::from(u8::try_from(skip).unwrap_or(u8::MAX));
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, skip + len));
                }
            }
        }
    }
    let (score, rest) = best?;
    if score < 0.8 {
        return None;
    }
    let message = words.get(rest).map(|first| {
        let original: Vec<&str> = transcript.split_whitespace().collect();
        let mut from = first.orig;
        // "tell the team that I'm boxing": the message is "I'm boxing"
        if words[rest].text == "that" && words.len() > rest + 1 {
            from = words[rest + 1].orig;
        }
        original[from.min(original.len())..].join(" ").trim_end_matches(['.', '!', '?', ',']).to_string()
    });
    let message = message.filter(|m| !m.is_empty());
    // "tell the team" and nothing else: ask again rather than send an empty message
    let confidence = if message.is_some() { score.min(1.0) } else { score.min(CONFIDENT - 0.1) };
    Some(Recognition { intent: VoiceIntent::TellTeam, confidence, text: message, number: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(s: &str) -> Option<VoiceIntent> {
        recognise(s).filter(|r| r.confidence >= CONFIDENT).map(|r| r.intent)
    }

    #[test]
    fn phrases_are_normalised_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (_, phrases) in PHRASES {
            for p in *phrases {
                assert_eq!(join(&normalise(p)), *p, "phrase {p:?} is not in normal form");
                assert!(seen.insert(*p), "phrase {p:?} listed twice");
            }
        }
        // every intent has phrasings (tell_team through its lead-ins)
        for i in VoiceIntent::ALL {
            assert!(
                i == VoiceIntent::TellTeam || PHRASES.iter().any(|(p, _)| *p == i),
                "{i:?} has no phrases"
            );
        }
    }

    #[test]
    fn normalises_punctuation_numbers_and_spelling() {
        let w = normalise("What's the GAP, to car twenty-five? Tires: 2.5!");
        assert_eq!(join(&w), "whats the gap to car 25 tyres 2.5");
        assert_eq!(join(&normalise("How’s my fuel?")), "hows my fuel");
    }

    #[test]
    fn the_way_drivers_talk() {
        use VoiceIntent::*;
        let cases: &[(&str, VoiceIntent)] = &[
            ("How's my fuel?", FuelLeft),
            ("How much fuel have I got?", FuelLeft),
            ("uh, fuel check please", FuelLeft),
            ("Fuel per lap.", FuelPerLap),
            ("What's my fuel consumption?", FuelPerLap),
            ("How many laps of fuel?", LapsOfFuel),
            ("How many laps of fuel do I have left?", LapsOfFuel),
            ("How much fuel do I need to the end?", FuelToEnd),
            ("Fuel to the finish?", FuelToEnd),
            ("What's the gap behind?", GapBehind),
            ("Gap to the car behind.", GapBehind),
            ("Gap to the car ahead?", GapAhead),
            ("What's the gap in front?", GapAhead),
            ("What position am I?", Position),
            ("What position am I in, mate?", Position),
            ("Last lap time?", LastLap),
            ("What was my last lap?", LastLap),
            ("What was my best lap?", BestLap),
            ("Best lap time.", BestLap),
            ("What's my delta?", Delta),
            ("Tyre temps please.", TyreTemps),
            ("How are my tire temperatures?", TyreTemps),
            ("Tire wear?", TyreWear),
            ("How worn are my tires?", TyreWear),
            ("How long to go?", Remaining),
            ("Laps remaining.", Remaining),
            ("How many laps left?", Remaining),
            ("Box this lap.", BoxThisLap),
            ("Boxing this lap!", BoxThisLap),
            ("Box, box, box.", BoxThisLap),
            ("I'm pitting this lap", BoxThisLap),
            ("Say again?", RepeatThat),
            ("Repeat that.", RepeatThat),
            ("Can you repeat that please?", RepeatThat),
            ("Quiet please.", Quiet),
            ("Shut up.", Quiet),
            ("Be quiet.", Quiet),
            ("Talk to me.", Resume),
            ("Resume.", Resume),
            // speech-to-text mishearings
            ("How's my fool?", FuelLeft),
            ("What's the gap be hind?", GapBehind),
            ("Books this lap.", BoxThisLap),
            ("Tire temp's please", TyreTemps),
            ("What position M I?", Position),
        ];
        let mut wrong = Vec::new();
        for (said, want) in cases {
            let got = recognise(said);
            if got.as_ref().map(|r| r.intent) != Some(*want)
                || got.as_ref().is_none_or(|r| r.confidence < CONFIDENT)
            {
                wrong.push(format!("{said:?}: want {want:?}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "misrecognised:\n{}", wrong.join("\n"));
    }

    #[test]
    fn chatter_is_not_a_command() {
        let chatter = [
            "That was close.",
            "Oh man, he just turned in on me.",
            "I think the car is understeering a lot in turn three.",
            "Nice.",
            "Okay.",
            "Thank you.",
            "Yeah yeah yeah.",
            "Whatever.",
            "This guy is driving like an idiot",
            "The brakes feel really soft today",
            "Lovely weather out here",
            "",
            "   ...  ",
        ];
        for said in chatter {
            let got = recognise(said);
            assert!(
                got.as_ref().is_none_or(|r| r.confidence < CONFIDENT),
                "{said:?} was taken as a command: {got:?}"
            );
        }
    }

    #[test]
    fn tell_the_team_keeps_the_message() {
        let r = recognise("Tell the team I'm boxing in two laps.").unwrap();
        assert_eq!(r.intent, VoiceIntent::TellTeam);
        assert!(r.confidence >= CONFIDENT);
        assert_eq!(r.text.as_deref(), Some("I'm boxing in two laps"));

        let r = recognise("uh, tell the team that the rear left is going off").unwrap();
        assert_eq!(r.intent, VoiceIntent::TellTeam);
        assert_eq!(r.text.as_deref(), Some("the rear left is going off"));

        let r = recognise("Tell the teen, I need a new visor").unwrap();
        assert_eq!(r.intent, VoiceIntent::TellTeam);
        assert_eq!(r.text.as_deref(), Some("I need a new visor"));

        // no message: not confident, so the node asks again
        let r = recognise("Tell the team.").unwrap();
        assert_eq!(r.intent, VoiceIntent::TellTeam);
        assert!(r.confidence < CONFIDENT);
        assert_eq!(r.text, None);

        // "team" in the middle of chatter is not a lead-in
        assert_ne!(intent("I think the other team is faster"), Some(VoiceIntent::TellTeam));
    }

    #[test]
    fn numbers_fill_the_slot() {
        let r = recognise("Fuel to the end, twenty five laps").unwrap();
        assert_eq!(r.intent, VoiceIntent::FuelToEnd);
        assert_eq!(r.number, Some(25.0));
        assert_eq!(recognise("How's my fuel").unwrap().number, None);
    }

    #[test]
    fn whisper_loops_are_collapsed() {
        assert_eq!(
            collapse_repeats("How's my fuel? How's my fuel? How's my fuel? How's my"),
            "How's my fuel?"
        );
        assert_eq!(collapse_repeats("Talk to me, talk to me, talk to me, talk"), "Talk to me");
        assert_eq!(collapse_repeats("box box box"), "box");
        assert_eq!(collapse_repeats("box this lap"), "box this lap");
        assert_eq!(
            collapse_repeats("Gup, to the car ahead, gap, to the car ahead, gap, to the car ahead, gap, to"),
            "gap, to the car ahead"
        );
        assert_eq!(
            collapse_repeats("What's the gap behind? What's the gap behind? What"),
            "What's the gap behind?"
        );
        let r = recognise("What's the gap behind? What's the gap behind? What's the").unwrap();
        assert_eq!(r.intent, VoiceIntent::GapBehind);
        assert!(r.confidence >= CONFIDENT);
    }

    #[test]
    fn a_bare_gap_is_the_gap_ahead() {
        assert_eq!(intent("What's the gap?"), Some(VoiceIntent::GapAhead));
        assert_eq!(intent("gap"), Some(VoiceIntent::GapAhead));
    }

    #[test]
    fn prompt_names_the_commands() {
        let p = vocabulary_prompt();
        for word in ["fuel", "gap", "box", "tyre", "position", "delta", "tell the team"] {
            assert!(p.contains(word), "prompt lacks {word:?}: {p}");
        }
    }
}
