//! `pitbox-driver inspect`: a human-readable summary of a telemetry file (header, recording,
//! track, car, drivers, sessions, laps, optionally the channel list), or chosen channels as CSV.
//! Writes to the writer it is given, so tests can capture it. Reads no env vars.

use std::io::Write;

use anyhow::{bail, Context};

use crate::cli::InspectArgs;
use crate::ibt::{laps, FileSource, Ibt, LapTime, Layout, VarHeader};

/// Runs the subcommand on `args.file`.
pub fn run(args: &InspectArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = &args.file;
    let ibt = Ibt::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Some(channels) = &args.csv {
        return write_csv(&ibt, channels, out);
    }
    summary(&ibt, &path.display().to_string(), out)?;
    if args.vars {
        variables(&ibt, out)?;
    }
    Ok(())
}

fn opt_secs(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

/// Everything but the channel list.
pub fn summary(ibt: &Ibt<FileSource>, name: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let h = ibt.header();
    writeln!(out, "file        {name} ({} bytes)", ibt.len())?;
    match ibt.layout() {
        Layout::Disk => writeln!(out, "layout      .ibt recording")?,
        Layout::Live => {
            let ticks: Vec<String> = h.var_bufs.iter().map(|b| b.tick_count.to_string()).collect();
            let newest = h.var_bufs.iter().enumerate().max_by_key(|(_, b)| b.tick_count);
            writeln!(
                out,
                "layout      live shared-memory map, {} buffers (ticks {}), newest: buffer {}",
                h.num_buf,
                ticks.join(", "),
                newest.map_or(0, |(i, _)| i)
            )?;
        }
    }
    writeln!(
        out,
        "header      version {}, status {} ({}), {} Hz, {} channels, rows of {} bytes, {} buffer(s)",
        h.version,
        h.status,
        if h.is_connected() { "connected" } else { "not connected" },
        h.tick_rate,
        h.num_vars,
        h.buf_len,
        h.num_buf
    )?;
    writeln!(
        out,
        "            session info {} bytes at offset {} (update {})",
        h.session_info_len, h.session_info_offset, h.session_info_update
    )?;
    if let Some(d) = ibt.disk_header() {
        let start = d.start_date_time().map_or_else(|| "unknown".to_owned(), |t| t.to_rfc3339());
        writeln!(
            out,
            "recording   started {start}; session time {:.3} → {:.3} s ({:.3} s)",
            d.session_start_time,
            d.session_end_time,
            d.session_end_time - d.session_start_time
        )?;
        let inferred = if ibt.records_inferred() {
            " (counted from the file size: the sim did not close it)"
        } else {
            ""
        };
        writeln!(out, "            {} records{inferred}, {} laps", ibt.record_count(), d.session_lap_count)?;
    }
    match ibt.session_info() {
        Ok(info) => {
            let track = match (info.track_display_name(), info.track_name()) {
                (Some(display), Some(name)) => format!("{display} ({name})"),
                (Some(one), None) | (None, Some(one)) => one.to_owned(),
                (None, None) => "unknown".to_owned(),
            };
            writeln!(out, "track       {track}")?;
            writeln!(out, "car         {}", info.car().unwrap_or_else(|| "unknown".to_owned()))?;
            let drivers: Vec<_> =
                info.drivers().into_iter().filter(|d| !d.is_pace_car && !d.is_spectator).collect();
            for (i, d) in drivers.iter().enumerate() {
                let label = if i == 0 { "drivers    " } else { "           " };
                writeln!(out, "{label} #{} {} — {}", d.car_number, d.user_name, d.car_screen_name)?;
            }
            for (i, s) in info.sessions().iter().enumerate() {
                let label = if i == 0 { "sessions   " } else { "           " };
                let number = s.number.map_or_else(|| "?".to_owned(), |n| n.to_string());
                writeln!(out, "{label} {number} {}: laps {}, time {}", s.kind, s.laps, s.time)?;
            }
        }
        Err(e) => writeln!(out, "session     unreadable: {e}")?,
    }
    let laps = laps(ibt)?;
    if !laps.is_empty() {
        writeln!(out, "\nlaps (times from the line crossings; 'rows' = without interpolation; 'iRacing' = LapLastLapTime)")?;
        writeln!(
            out,
            "  {:>4}  {:>13}  {:>10}  {:>9}  {:>9}  {:>9}",
            "lap", "rows", "start s", "time s", "rows s", "iRacing"
        )?;
        for lap in &laps {
            lap_line(lap, out)?;
        }
    }
    Ok(())
}

fn lap_line(lap: &LapTime, out: &mut dyn Write) -> anyhow::Result<()> {
    let rows = format!("{}–{}", lap.first_row, lap.last_row);
    let time = if lap.is_complete() { opt_secs(lap.time) } else { "partial".to_owned() };
    writeln!(
        out,
        "  {:>4}  {:>13}  {:>10}  {:>9}  {:>9}  {:>9}",
        lap.lap,
        rows,
        opt_secs(lap.start),
        time,
        opt_secs(lap.row_time),
        opt_secs(lap.reported.map(f64::from))
    )?;
    Ok(())
}

/// The channel table.
pub fn variables(ibt: &Ibt<FileSource>, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "\nchannels ({})", ibt.vars().len())?;
    writeln!(out, "  {:<32} {:<12} {:<10} description", "name", "type", "unit")?;
    for v in ibt.vars() {
        let ty = if v.is_array() { format!("{}[{}]", v.var_type, v.count) } else { v.var_type.to_string() };
        writeln!(out, "  {:<32} {:<12} {:<10} {}", v.name, ty, v.unit, v.desc)?;
    }
    Ok(())
}

/// `--csv`: the chosen channels, one line per record.
pub fn write_csv(ibt: &Ibt<FileSource>, channels: &[String], out: &mut dyn Write) -> anyhow::Result<()> {
    let mut columns: Vec<(&VarHeader, usize)> = Vec::new();
    let mut header: Vec<String> = Vec::new();
    for name in channels.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        let Some(var) = ibt.var(name) else {
            bail!("no channel named {name:?} in this file (`--vars` lists them)");
        };
        for i in 0..var.count {
            columns.push((var, i));
            header.push(if var.is_array() { format!("{}[{i}]", var.name) } else { var.name.clone() });
        }
    }
    if columns.is_empty() {
        bail!("--csv needs at least one channel name, e.g. --csv Speed,RPM,Lap");
    }
    writeln!(out, "{}", header.join(","))?;
    for row in ibt.rows() {
        let row = row?;
        for (k, (var, i)) in columns.iter().enumerate() {
            if k > 0 {
                out.write_all(b",")?;
            }
            if let Some(v) = row.value(var, *i) {
                write!(out, "{v}")?;
            }
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}
