//! `pitbox-runtime`: the PitBox cloud runtime. See `pitbox-runtime --help` and [`pitbox_runtime::cli`].

use pitbox_runtime::config::ConfigError;

fn main() -> std::process::ExitCode {
    let cli = match pitbox_runtime::cli::Cli::load(std::env::args_os()) {
        Ok(cli) => cli,
        // Usage errors, `--help` and `--version`, printed by clap with its exit code.
        Err(ConfigError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("pitbox-runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match pitbox_runtime::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pitbox-runtime: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
