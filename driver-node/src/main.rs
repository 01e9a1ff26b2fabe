//! `pitbox-driver`: the PitBox driver node binary. See `pitbox-driver --help` and
//! [`pitbox_driver::cli`]. Reads `RUST_LOG` (log filter for the stderr log, default `warn`).

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = pitbox_driver::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(io::stderr)
        .init();
    let mut out = BufWriter::new(io::stdout().lock());
    let result = pitbox_driver::cli::run(cli, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `pitbox-driver inspect x.ibt --csv Speed | head` is not a failure
        Err(e) if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pitbox-driver: {e:#}");
            ExitCode::FAILURE
        }
    }
}
