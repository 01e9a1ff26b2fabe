//! Voice over the uplink, end to end on the node: a WAV of a spoken command (made by espeak-ng at
//! test time) goes in as the microphone (`--mic-file`, paced in real time), through WebRTC voice
//! activity detection to the transcriber, the recogniser and the uplink; a stand-in for the
//! runtime's wire (an in-test WebSocket server speaking the voice contract: `voice_command` in,
//! `voice_say` + one PCM16 media frame out) answers with a spoken clip, and the node's playback
//! must write exactly that clip into its `--speaker-file`, after the acknowledgement tone.
//!
//! The transcriber is whisper when the node is built with it and `PITBOX_WHISPER_MODEL` names a
//! model; otherwise a stand-in that returns the text espeak-ng spoke and records what audio it was
//! given (so detection is still checked on real speech). Needs `espeak-ng` (tools/setup.sh): the
//! test fails without it, unless `PITBOX_SKIP_DEVICE_TESTS=1` and `CI` is not `true`.
//! A third test runs the whole node (`node::run`: synthetic telemetry, no microphone) against
//! the stand-in, which acknowledges telemetry and speaks an alert as soon as the node logs in.
//! Env: `PITBOX_WHISPER_MODEL`, `PITBOX_SKIP_DEVICE_TESTS`, `CI`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use pitbox_schema::wire::media::{Codec, MediaHeader};
use pitbox_schema::wire::{
    AuthenticationResult, Envelope, Message as Wire, MessagePriority, SayAudio, SayKind, VoiceCommand,
    VoiceIntent, VoiceSay, VOICE_STREAM,
};

use pitbox_driver::voice::{self, MicSpec, PttMode, SpeakerSpec, Transcribe};

const SPOKEN: &str = "box this lap";
const ANSWER: &str = "copy, box this lap";

fn espeak(text: &str, out: &Path) -> bool {
    match std::process::Command::new("espeak-ng").args(["-w"]).arg(out).arg(text).status() {
        Ok(s) if s.success() => true,
        other => {
            let skip = std::env::var("PITBOX_SKIP_DEVICE_TESTS").is_ok_and(|v| v == "1")
                && !std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(skip, "espeak-ng is needed ({other:?}): apt-get install espeak-ng (tools/setup.sh)");
            eprintln!("voice_uplink: skipped, no espeak-ng");
            false
        }
    }
}

fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let r = hound::WavReader::open(path).unwrap();
    let rate = r.spec().sample_rate;
    (rate, r.into_samples::<i16>().map(Result::unwrap).collect())
}

/// Returns the given transcript; keeps the length of each utterance it was given.
struct Injected(Arc<Mutex<Vec<usize>>>, &'static str);

impl Transcribe for Injected {
    fn transcribe(&mut self, pcm: &[f32]) -> Result<String, String> {
        self.0.lock().unwrap().push(pcm.len());
        Ok(self.1.into())
    }
}

#[derive(Clone)]
struct StandIn {
    commands: Arc<Mutex<Vec<VoiceCommand>>>,
    clip: Arc<(u32, Vec<i16>)>,
    /// Speak an urgent alert as soon as a node logs in.
    alert_on_login: bool,
}

/// The runtime's side of the node socket, as far as voice goes.
async fn ws(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<StandIn>,
) -> actix_web::Result<HttpResponse> {
    let (res, mut session, mut stream) = actix_ws::handle(&req, body)?;
    let state = state.get_ref().clone();
    actix_rt::spawn(async move {
        let mut sequence = 0u32;
        while let Some(Ok(msg)) = stream.next().await {
            let actix_ws::Message::Text(text) = msg else { continue };
            let Ok(env) = serde_json::from_str::<Envelope>(&text) else { continue };
            match env.message {
                Wire::Authenticate(_) => {
                    let ok = Envelope::new(Wire::AuthenticationResult(AuthenticationResult {
                        success: true,
                        user_id: Some("u1".into()),
                        role: None,
                        error: None,
                    }));
                    session.text(serde_json::to_string(&ok).unwrap()).await.unwrap();
                    if state.alert_on_login {
                        sequence += 1;
                        let (rate, pcm) = &*state.clip;
                        let say = Envelope::new(Wire::VoiceSay(VoiceSay {
                            id: "alert".into(),
                            kind: SayKind::Alert,
                            text: ANSWER.into(),
                            priority: MessagePriority::Urgent,
                            reply_to: None,
                            expires_at: None,
                            audio: Some(SayAudio {
                                sequence,
                                sample_rate: *rate,
                                duration_ms: (pcm.len() as u64 * 1000 / u64::from(*rate)) as u32,
                                engine: "espeak-ng".into(),
                            }),
                        }));
                        session.text(serde_json::to_string(&say).unwrap()).await.unwrap();
                        let header = MediaHeader {
                            codec: Codec::Pcm16,
                            keyframe: false,
                            stream: VOICE_STREAM,
                            sequence,
                            capture_us: 0,
                            width: 0,
                            height: 0,
                        };
                        let payload: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
                        session.binary(header.frame(&payload)).await.unwrap();
                    }
                }
                Wire::TelemetryBatch(b) => {
                    if let Some(seq) = b.frames.last().and_then(|f| f.seq) {
                        let ack = Envelope::new(Wire::Ack(pitbox_schema::wire::Ack {
                            driver_id: b.driver_id,
                            stream_id: b.stream_id,
                            seq,
                        }));
                        session.text(serde_json::to_string(&ack).unwrap()).await.unwrap();
                    }
                }
                Wire::VoiceCommand(c) => {
                    sequence += 1;
                    let (rate, pcm) = &*state.clip;
                    let say = Envelope::new(Wire::VoiceSay(VoiceSay {
                        id: format!("say-{sequence}"),
                        kind: SayKind::Answer,
                        text: ANSWER.into(),
                        priority: MessagePriority::Normal,
                        reply_to: Some(c.id.clone()),
                        expires_at: Some(chrono::Utc::now() + chrono::Duration::seconds(30)),
                        audio: Some(SayAudio {
                            sequence,
                            sample_rate: *rate,
                            duration_ms: (pcm.len() as u64 * 1000 / u64::from(*rate)) as u32,
                            engine: "espeak-ng".into(),
                        }),
                    }));
                    state.commands.lock().unwrap().push(c);
                    // A frame the node cannot read first: it is logged and nothing else is lost.
                    session.binary(vec![9u8; 30]).await.unwrap();
                    session.text(serde_json::to_string(&say).unwrap()).await.unwrap();
                    let header = MediaHeader {
                        codec: Codec::Pcm16,
                        keyframe: false,
                        stream: VOICE_STREAM,
                        sequence,
                        capture_us: 0,
                        width: 0,
                        height: 0,
                    };
                    let payload: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
                    session.binary(header.frame(&payload)).await.unwrap();
                }
                _ => {}
            }
        }
    });
    Ok(res)
}

struct Harness {
    _dir: tempfile::TempDir,
    mic: std::path::PathBuf,
    answer_pcm: Vec<i16>,
    speaker: std::path::PathBuf,
    state: StandIn,
    started: Instant,
    heard: Arc<Mutex<Vec<usize>>>,
    real: bool,
    status: Arc<pitbox_driver::status::Status>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    uplink: actix_rt::task::JoinHandle<()>,
    threads: voice::VoiceThreads,
}

impl Harness {
    /// The stand-in runtime, a login to it, and the node's voice and uplink with the microphone
    /// saying `spoken`; the transcriber (without a model) returns `transcript`.
    async fn start(spoken: &str, transcript: &'static str) -> Option<Harness> {
        let dir = tempfile::tempdir().unwrap();
        let (mic, answer) = (dir.path().join("mic.wav"), dir.path().join("answer.wav"));
        if !espeak(spoken, &mic) || !espeak(ANSWER, &answer) {
            return None;
        }
        let (answer_rate, answer_pcm) = read_wav(&answer);
        assert_eq!(answer_rate, voice::playback::FILE_RATE, "espeak-ng speaks at 22 050 Hz");
        let state = StandIn {
            commands: Arc::default(),
            clip: Arc::new((answer_rate, answer_pcm.clone())),
            alert_on_login: false,
        };
        let data = web::Data::new(state.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).route("/ws", web::get().to(ws)))
                .workers(1)
                .bind(("127.0.0.1", 0))
                .unwrap();
        let port = server.addrs()[0].port();
        actix_rt::spawn(server.run());

        let home = logged_in_home(dir.path(), port);

        let settings = voice::stt::SttSettings { model: voice::model_path(), threads: 1, audio_ctx: None };
        let heard = Arc::new(Mutex::new(vec![]));
        let real = settings.model.is_file() && voice::stt::Transcriber::new(&settings).is_ok();
        let transcriber: voice::TranscriberFactory = if real {
            eprintln!("voice_uplink: whisper with {}", settings.model.display());
            voice::whisper(settings.clone())
        } else {
            eprintln!("voice_uplink: no speech model; the transcript is injected");
            let h = heard.clone();
            Box::new(move || Ok(Box::new(Injected(h, transcript)) as Box<dyn Transcribe>))
        };
        let speaker = dir.path().join("speaker.wav");
        let started = Instant::now();
        let (link, threads) = voice::start(
            voice::VoiceOptions {
                mic: MicSpec::File(mic.clone()),
                ptt: PttMode::Vad,
                ptt_button: None,
                speaker: SpeakerSpec::File(speaker.clone()),
                volume: 100,
                stt: settings,
            },
            Box::new(|| None),
            transcriber,
        )
        .unwrap();
        let spool = Arc::new(pitbox_driver::spool::Spool::open(&dir.path().join("spool"), 1000).unwrap());
        let status = Arc::new(pitbox_driver::status::Status::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let tls = pitbox_driver::tls::NodeTls::new(None).unwrap();
        let uplink = actix_rt::spawn(pitbox_driver::uplink::run(
            pitbox_driver::uplink::UplinkOptions::new(home, tls),
            spool,
            status.clone(),
            stop_rx,
            None,
            Some(link),
        ));
        Some(Harness {
            _dir: dir,
            mic,
            answer_pcm,
            speaker,
            state,
            started,
            heard,
            real,
            status,
            stop_tx,
            uplink,
            threads,
        })
    }

    async fn stop(self) {
        self.stop_tx.send(true).unwrap();
        let _ = self.uplink.await;
        self.threads.stop();
    }
}

/// Waits (deadline `secs`) until the speaker file satisfies `found`, which returns a position.
async fn in_speaker_file(
    path: &Path,
    secs: u64,
    what: &str,
    found: impl Fn(&[i16]) -> Option<usize>,
) -> (usize, Vec<i16>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(r) = hound::WavReader::open(path) {
            let file: Vec<i16> = r.into_samples::<i16>().filter_map(Result::ok).collect();
            if let Some(at) = found(&file) {
                return (at, file);
            }
        }
        assert!(Instant::now() < deadline, "{what} never reached the speaker file");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn a_spoken_command_goes_up_and_the_spoken_answer_plays() {
    let Some(h) = Harness::start(SPOKEN, SPOKEN).await else { return };
    // The command arrives once the utterance has been spoken and its hangover passed.
    // About 8 s alone; whisper on a loaded 2-core machine (other test binaries, builds) takes
    // several times that, so the deadline is generous: it only bounds a hang.
    let deadline = Instant::now() + Duration::from_secs(120);
    let command = loop {
        if let Some(c) = h.state.commands.lock().unwrap().first().cloned() {
            break c;
        }
        assert!(Instant::now() < deadline, "no voice_command within 120 s");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    let command_after = h.started.elapsed();
    assert_eq!(command.command, VoiceIntent::BoxThisLap, "{command:?}");
    assert!(command.transcript.to_lowercase().contains("box"), "{command:?}");
    let (mic_rate, mic_pcm) = read_wav(&h.mic);
    let spoken = Duration::from_secs_f64(mic_pcm.len() as f64 / f64::from(mic_rate));
    if !h.real {
        let heard = h.heard.lock().unwrap().clone();
        assert_eq!(heard.len(), 1, "one utterance: {heard:?}");
        let ms = heard[0] as f64 / 16.0;
        // The whole command, no more than the preroll and tail around it.
        assert!(
            ms > spoken.as_secs_f64() * 1000.0 * 0.6 && ms < spoken.as_secs_f64() * 1000.0 + 500.0,
            "{ms} ms"
        );
    }
    eprintln!("spoken {spoken:?}; voice_command after {command_after:?} from the start of the file");

    // The answer plays after the tone: the speaker file holds the clip sample for sample.
    let trimmed: Vec<i16> = {
        let first = h.answer_pcm.iter().position(|&s| s != 0).unwrap();
        h.answer_pcm[first..].to_vec()
    };
    let (at, file) = in_speaker_file(&h.speaker, 15, "the answer", |file| {
        (0..file.len().saturating_sub(trimmed.len()))
            .find(|&i| file[i] == trimmed[0] && file[i..i + trimmed.len()] == trimmed[..])
    })
    .await;
    let rate = f64::from(voice::playback::FILE_RATE);
    // The acknowledgement tone (1 kHz, 120 ms) sounds before it.
    let tone_start = file.iter().position(|&s| s != 0).unwrap();
    assert!(tone_start < at, "the tone plays first");
    let tone_len = file[tone_start..at].iter().rposition(|&s| s != 0).unwrap_or(0) + 1;
    let tone_ms = tone_len as f64 / rate * 1000.0;
    assert!((100.0..=160.0).contains(&tone_ms), "tone of {tone_ms} ms");
    // Real time: the answer sits in the file where the command was recognised (give or take the
    // tone and the transcriber).
    let answer_at = at as f64 / rate;
    assert!(
        (answer_at - command_after.as_secs_f64()).abs() < 1.0,
        "answer at {answer_at:.2} s, command at {command_after:?}"
    );
    eprintln!("tone {tone_ms:.0} ms at {:.2} s, answer at {answer_at:.2} s", tone_start as f64 / rate);
    assert!(h.status.snapshot().pushes.iter().any(|p| p.contains(ANSWER)), "the text is in the status");
    h.stop().await;
}

/// Speech that is no command: the say-again tone (two beeps, 340 ms) and nothing sent.
#[actix_rt::test]
async fn speech_that_is_no_command_gets_say_again_and_sends_nothing() {
    let Some(h) = Harness::start("what a lovely day", "what a lovely day").await else { return };
    if h.real {
        eprintln!("(whisper decides what it heard; the recogniser must not find a command in it)");
    }
    let (start, _) =
        in_speaker_file(&h.speaker, 120, "the say-again tone", |file| file.iter().position(|&s| s != 0))
            .await;
    // The whole tone, then: nothing was sent, and nothing else played.
    let rate = voice::playback::FILE_RATE as usize;
    let (_, file) =
        in_speaker_file(&h.speaker, 10, "a second after the tone", |f| (f.len() > start + rate).then_some(0))
            .await;
    let sounding = file[start..].iter().rposition(|&s| s != 0).unwrap() + 1;
    let ms = sounding * 1000 / rate;
    // 120 ms, 60 ms apart, 160 ms.
    assert!((320..=360).contains(&ms), "say-again tone of {ms} ms");
    assert!(h.state.commands.lock().unwrap().is_empty(), "no voice_command for speech that is no command");
    h.stop().await;
}

/// The whole node: `node::run` with synthetic telemetry, voice on, no microphone (its WAV is
/// missing: logged, the rest runs) and a speaker file; the alert the stand-in speaks at login
/// plays whole, and the node stops cleanly once its frames are stored.
#[test]
fn the_node_plays_what_the_runtime_says() {
    let dir = tempfile::tempdir().unwrap();
    let answer = dir.path().join("answer.wav");
    if !espeak(ANSWER, &answer) {
        return;
    }
    let (rate, pcm) = read_wav(&answer);
    let state =
        StandIn { commands: Arc::default(), clip: Arc::new((rate, pcm.clone())), alert_on_login: true };
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let data = web::Data::new(state);
            let server =
                HttpServer::new(move || App::new().app_data(data.clone()).route("/ws", web::get().to(ws)))
                    .workers(1)
                    .bind(("127.0.0.1", 0))
                    .unwrap();
            port_tx.send(server.addrs()[0].port()).unwrap();
            server.run().await.unwrap();
        });
    });
    let port = port_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let home = logged_in_home(dir.path(), port);
    let speaker = dir.path().join("speaker.wav");
    let frames = 240; // 4 s at 60 Hz: the alert (about 1.3 s) plays within it
    let n = pitbox_driver::node::run(
        Box::new(pitbox_driver::synthetic::Synthetic::new(1)),
        pitbox_driver::node::NodeOptions {
            home,
            speed: Some(1.0),
            progress_key: None,
            limit: Some(frames),
            exit_when_done: true,
            local_api: None,
            spool_max_frames: 10_000,
            voice: Some(voice::VoiceOptions {
                mic: MicSpec::File(dir.path().join("no-such-mic.wav")),
                ptt: PttMode::Vad,
                ptt_button: None,
                speaker: SpeakerSpec::File(speaker.clone()),
                volume: 100,
                stt: voice::stt::SttSettings {
                    model: dir.path().join("no-model.bin"),
                    threads: 1,
                    audio_ctx: None,
                },
            }),
            progress_total: Some(frames),
            ca_file: None,
            video: None,
        },
    )
    .unwrap();
    assert_eq!(n, frames);
    // The node has stopped: the speaker file is complete.
    let (_, file) = read_wav(&speaker);
    let trimmed = &pcm[pcm.iter().position(|&s| s != 0).unwrap()..];
    let at = (0..file.len().saturating_sub(trimmed.len()))
        .find(|&i| file[i] == trimmed[0] && file[i..i + trimmed.len()] == trimmed[..])
        .expect("the alert is in the speaker file, whole");
    eprintln!(
        "alert at {:.2} s of a {:.2} s speaker file",
        at as f64 / f64::from(rate),
        file.len() as f64 / f64::from(rate)
    );
}

/// A node home under `dir` logged in (as driver d1) to the stand-in runtime on `port`.
fn logged_in_home(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    pitbox_driver::credentials::Credentials {
        server: format!("http://127.0.0.1:{port}"),
        token: "t".into(),
        refresh_token: "r".into(),
        expires_at: chrono::Utc::now().timestamp() + 3600,
        user_id: "u1".into(),
        username: "driver".into(),
        driver_id: Some("d1".into()),
        ca_file: None,
    }
    .save(&home)
    .unwrap();
    home
}
