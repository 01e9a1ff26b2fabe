//! Encode once, end to end: frames a driver node spools go up through its real uplink (sent as
//! spooled, never decoded and encoded again on the node) to a real runtime, and the `data` stored
//! for each is byte for byte what the previous path stored (node encode → uplink decode → batch
//! encode → runtime decode → sample encode). Rows left in the spool by the previous version of the
//! node are sent too. The dashboard's live push carries the same channels.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use diesel::prelude::*;
use diesel::sql_types::Text;
use pitbox_driver::spool::Spool;
use pitbox_driver::synthetic::Synthetic;
use pitbox_schema::db::schema::telemetry_samples as ts;
use pitbox_schema::wire::{Envelope, Message, TelemetryBatch, TelemetryFrame};

/// What the previous path stored for `frame` numbered `seq`: every encode and decode it made.
fn stored_by_previous_path(frame: &TelemetryFrame, seq: u64) -> String {
    let mut spooled: TelemetryFrame = serde_json::from_str(&serde_json::to_string(frame).unwrap()).unwrap();
    spooled.seq = Some(seq);
    let batch = serde_json::to_string(&Envelope::new(Message::TelemetryBatch(TelemetryBatch {
        driver_id: "d".into(),
        stream_id: Some("s".into()),
        frames: vec![spooled],
    })))
    .unwrap();
    let Message::TelemetryBatch(b) = serde_json::from_str::<Envelope>(&batch).unwrap().message else {
        unreachable!()
    };
    serde_json::to_string(&b.frames[0].sample).unwrap()
}

#[actix_rt::test]
async fn spooled_frames_reach_the_database_as_the_previous_path_stored_them() {
    let srv = TestServer::start(Backend::Sqlite, |_| {}).await.unwrap();
    let team = srv.create_team("Encode");
    let (_, driver) = srv.create_driver("ace", &team, 7);
    let dir = tempfile::tempdir().unwrap();
    let home = srv.node_home("ace", dir.path()).await;

    let mut car = Synthetic::new(11);
    let mut frames: Vec<TelemetryFrame> = (0..90).map(|_| car.next_frame()).collect();
    let spool_dir = dir.path().join("spool");
    let spool = Arc::new(Spool::open(&spool_dir, 10_000).unwrap());
    spool.append(&frames[..60], None).unwrap();
    // The rest as the previous version of the node left them in its spool, one with a stale
    // number of its own.
    frames[75].seq = Some(3);
    {
        let mut conn = SqliteConnection::establish(&spool_dir.join("spool.db").to_string_lossy()).unwrap();
        for f in &frames[60..] {
            diesel::sql_query("INSERT INTO spool (frame) VALUES (?)")
                .bind::<Text, _>(serde_json::to_string(f).unwrap())
                .execute(&mut conn)
                .unwrap();
        }
    }

    let watcher = srv.login("ace").await;
    let mut dash = WsClient::login(&srv, &watcher, "dashboard").await;
    dash.send(serde_json::json!({"type": "subscribe", "data": {"teamId": team, "driverId": driver}})).await;
    dash.recv_type("subscribed").await.unwrap();

    let status = Arc::new(pitbox_driver::status::Status::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let tls = pitbox_driver::tls::NodeTls::new(None).unwrap();
    let uplink = actix_rt::spawn(pitbox_driver::uplink::run(
        pitbox_driver::uplink::UplinkOptions::new(home, tls),
        spool.clone(),
        status,
        stop_rx,
        None,
        None,
    ));

    let load = |d: String| {
        srv.state
            .db
            .run_blocking(move |c| {
                Ok(ts::table
                    .filter(ts::driver_id.eq(d))
                    .order(ts::seq.asc())
                    .select((ts::seq, ts::data))
                    .load::<(Option<i64>, String)>(c)?)
            })
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = load(driver.clone());
        if rows.len() >= frames.len() || Instant::now() > deadline {
            break rows;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    stop_tx.send(true).unwrap();
    uplink.await.unwrap();

    assert_eq!(rows.len(), frames.len(), "every spooled frame is stored once");
    for (i, ((seq, data), f)) in rows.iter().zip(&frames).enumerate() {
        let seq = u64::try_from(seq.unwrap()).unwrap();
        assert_eq!(seq, i as u64 + 1);
        assert_eq!(data, &stored_by_previous_path(f, seq), "frame {seq}");
    }

    // The live push embeds the same channels, in the shape dashboards read.
    let update = dash.recv_type("telemetry_update").await.unwrap();
    let seq = update["data"]["seq"].as_u64().unwrap();
    let (_, data) = rows.iter().find(|(s, _)| *s == Some(seq as i64)).unwrap();
    let expect: serde_json::Value = serde_json::from_str(data).unwrap();
    let got = update["data"].as_object().unwrap();
    assert_eq!(got["driverId"], driver.as_str());
    assert!(got.contains_key("timestamp"));
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&got[k.as_str()], v, "{k}");
    }
    srv.stop().await;
}
