//! The sim's sessions, end to end: a driver node's real recorder and uplink, on a source that goes
//! from practice to qualifying (a new session type, no gap), ends its session (the sim closed),
//! and comes back for the race, which ends with the source. The runtime's racing sessions follow
//! exactly: three sessions with the sim's names, each holding precisely its own frames, each
//! closed when the sim said so, although the node never reconnects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use diesel::prelude::*;
use pitbox_driver::recorder::{self, RecordOptions};
use pitbox_driver::source::{Next, SourceError, SourceInfo, TelemetrySource};
use pitbox_driver::spool::Spool;
use pitbox_driver::synthetic::Synthetic;
use pitbox_schema::db::schema::{racing_sessions as rs, telemetry_samples as ts};
use pitbox_schema::wire::TelemetryFrame;

/// Frames per session.
const PER: usize = 150;

/// Practice, then qualifying, then the sim closes, then the race; then the source ends.
struct Weekend {
    car: Synthetic,
    at: usize,
    ended_told: bool,
}

/// The session type of the frame numbered `i` (from 0).
fn kind_of(i: usize) -> &'static str {
    ["Practice", "Qualify", "Race"][(i / PER).min(2)]
}

impl TelemetrySource for Weekend {
    fn next_frame(&mut self) -> Result<Option<TelemetryFrame>, SourceError> {
        unreachable!("the recorder asks for next()")
    }

    fn next(&mut self) -> Result<Next, SourceError> {
        if self.at == 2 * PER && !self.ended_told {
            self.ended_told = true;
            return Ok(Next::SessionEnded);
        }
        if self.at == 3 * PER {
            return Ok(Next::End);
        }
        self.at += 1;
        let mut f = self.car.next_frame();
        f.seq = None;
        Ok(Next::Frame(Box::new(f)))
    }

    /// Changes with the session type of the frame just given.
    fn session_version(&self) -> u64 {
        ((self.at.saturating_sub(1)) / PER) as u64
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "weekend",
            track: Some("Circuit de Spa-Francorchamps".into()),
            car: Some("Porsche 911 GT3 R".into()),
            session_type: Some(kind_of(self.at.saturating_sub(1)).into()),
            frames: None,
        }
    }
}

#[actix_rt::test]
async fn racing_sessions_follow_the_sims_sessions_without_a_reconnect() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let team = srv.create_team("Weekend");
    let (_, driver) = srv.create_driver("ace", &team, 7);
    let dir = tempfile::tempdir().unwrap();
    let home = srv.node_home("ace", dir.path()).await;
    let spool = Arc::new(Spool::open(&dir.path().join("spool"), 10_000).unwrap());
    let status = Arc::new(pitbox_driver::status::Status::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let tls = pitbox_driver::tls::NodeTls::new(None).unwrap();
    let uplink = actix_rt::spawn(pitbox_driver::uplink::run(
        pitbox_driver::uplink::UplinkOptions::new(home, tls),
        spool.clone(),
        status.clone(),
        stop_rx,
        None,
        None,
    ));
    // Recorded while the uplink sends (paced a little, so marks meet a running connection too).
    let recording = {
        let (spool, status) = (spool.clone(), status.clone());
        std::thread::spawn(move || {
            let mut weekend = Weekend { car: Synthetic::new(3), at: 0, ended_told: false };
            let options = RecordOptions { speed: Some(20.0), progress_key: None, limit: None };
            recorder::record(&mut weekend, &spool, &status, &options, &AtomicBool::new(false)).unwrap()
        })
    };

    type Row = (String, String, String, Option<String>, bool, i64);
    type Session = (String, String, String, Option<String>, Option<chrono::NaiveDateTime>);
    let load = |d: String| {
        srv.state
            .db
            .run_blocking(move |c| {
                let sessions: Vec<Session> = rs::table
                    .filter(rs::driver_id.eq(&d))
                    .order(rs::started_at.asc())
                    .select((rs::id, rs::track, rs::car, rs::session_type, rs::ended_at))
                    .load(c)?;
                let mut rows: Vec<Row> = vec![];
                for (id, track, car, kind, ended) in sessions {
                    let n: i64 = ts::table.filter(ts::session_id.eq(&id)).count().get_result(c)?;
                    rows.push((id, track, car, kind, ended.is_some(), n));
                }
                let stored: i64 = ts::table.filter(ts::driver_id.eq(&d)).count().get_result(c)?;
                Ok((rows, stored))
            })
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (rows, stored) = loop {
        let (rows, stored) = load(driver.clone());
        let done = stored as usize >= 3 * PER && rows.len() >= 3 && rows.iter().all(|r| r.4);
        if done || Instant::now() > deadline {
            break (rows, stored);
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(recording.join().unwrap(), 3 * PER as u64);
    stop_tx.send(true).unwrap();
    uplink.await.unwrap();

    assert_eq!(stored as usize, 3 * PER, "every frame stored once");
    let got: Vec<_> = rows
        .iter()
        .map(|(_, t, c, k, ended, n)| (t.as_str(), c.as_str(), k.as_deref(), *ended, *n))
        .collect();
    let spa = "Circuit de Spa-Francorchamps";
    let gt3 = "Porsche 911 GT3 R";
    assert_eq!(
        got,
        vec![
            (spa, gt3, Some("Practice"), true, PER as i64),
            (spa, gt3, Some("Qualify"), true, PER as i64),
            (spa, gt3, Some("Race"), true, PER as i64),
        ],
        "one racing session per sim session, each with its own frames, each closed"
    );
    // Each session holds a contiguous run of the node's sequence numbers, in order.
    let first_seqs = srv
        .state
        .db
        .run_blocking(move |c| {
            let mut out = vec![];
            for (id, ..) in &rows {
                let (lo, hi): (Option<i64>, Option<i64>) = ts::table
                    .filter(ts::session_id.eq(id))
                    .select((diesel::dsl::min(ts::seq), diesel::dsl::max(ts::seq)))
                    .first(c)?;
                out.push((lo.unwrap(), hi.unwrap()));
            }
            Ok(out)
        })
        .unwrap();
    let per = PER as i64;
    assert_eq!(first_seqs, vec![(1, per), (per + 1, 2 * per), (2 * per + 1, 3 * per)]);
    srv.stop().await;
}
