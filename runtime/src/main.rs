//! `pitbox-runtime`: the PitBox cloud runtime. See `pitbox-runtime --help` and [`runtime::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = runtime::cli::Cli::parse();
    match runtime::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pitbox-runtime: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
