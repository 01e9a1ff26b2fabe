//! The one error type of the telemetry reader. Every way an input can be wrong has its own
//! variant, so callers (and tests) can tell a truncated file from a foreign one. Reads no env vars.

use std::io;

/// Why telemetry could not be read. Produced up front by [`Ibt::parse`](super::Ibt::parse) for
/// anything wrong with the layout; later reads only fail on I/O or bad row indices.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IbtError {
    /// Zero bytes (an `.ibt` whose recording never started).
    #[error("the input is empty (0 bytes)")]
    Empty,
    /// Shorter than a fixed-size structure that must be there.
    #[error("the input is {len} bytes, too short for the {what} ({needed} bytes)")]
    TooShort { what: &'static str, needed: u64, len: u64 },
    /// The first field is not version 2: not iRacing telemetry, or a format we do not know.
    #[error("header version is {0}, expected 2: not iRacing telemetry (or an unknown version)")]
    UnsupportedVersion(i32),
    /// A header field holds a value no real file has (negative, zero, absurdly large).
    #[error("header field {field} is {value}: {problem}")]
    InvalidField { field: &'static str, value: i64, problem: &'static str },
    /// A region the header points at ends past the end of the input.
    #[error("the {region} ({start}..{end}) lies past the end of the input ({len} bytes)")]
    OutOfBounds { region: String, start: u64, end: u64, len: u64 },
    /// The rows that the disk header announces do not fit in the file.
    #[error(
        "the file is truncated: {records} rows of {row_len} bytes from offset {offset} need {needed} bytes, \
         the file has {len}"
    )]
    Truncated { records: u64, row_len: u64, offset: u64, needed: u64, len: u64 },
    /// Two regions (headers, variable table, session info, rows) share bytes.
    #[error("the {first} overlaps the {second}")]
    Overlap { first: String, second: String },
    /// A variable header is malformed (unknown type, bad name, reaches past the row).
    #[error("variable header #{index} ({name}): {problem}")]
    InvalidVariable { index: usize, name: String, problem: String },
    /// A row index past the last row.
    #[error("row {index} does not exist (there are {count} rows)")]
    RowOutOfRange { index: usize, count: usize },
    /// The live map's header changed shape after it was parsed (the sim restarted): parse again.
    #[error("the live telemetry layout changed while it was read; parse the header again")]
    LayoutChanged,
    /// The sim kept overwriting the newest live buffer while it was being copied.
    #[error("the live telemetry buffer kept changing while it was read ({attempts} attempts)")]
    Unstable { attempts: usize },
    /// The session-info YAML could not be parsed even after pyirsdk's repairs.
    #[error("session info is not valid YAML even after the usual iRacing repairs: {0}")]
    SessionInfo(String),
    /// Reading the underlying file failed (or it shrank after it was opened).
    #[error(transparent)]
    Io(#[from] io::Error),
}
