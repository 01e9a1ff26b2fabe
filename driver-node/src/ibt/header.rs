//! The fixed-size headers at the start of iRacing telemetry: the main header (112 bytes, shared by
//! the live shared-memory map and `.ibt` files) and the disk sub-header (`.ibt` only, 32 bytes at
//! offset 112). Parsing checks every field against what a real file can hold. Reads no env vars.

use chrono::{DateTime, Utc};

use super::error::IbtError;

/// Length of the main header.
pub const HEADER_LEN: u64 = 112;
/// Length of the disk sub-header that follows it in `.ibt` files.
pub const DISK_SUB_HEADER_LEN: u64 = 32;
/// The only header version iRacing has shipped.
pub const SUPPORTED_VERSION: i32 = 2;
/// The header has room for four row buffers.
pub const MAX_BUFS: usize = 4;
/// Real files have 250–350 variables; anything past this is hostile.
pub const MAX_VARS: u32 = 4096;
/// Real rows are 1–10 KiB.
pub const MAX_ROW_LEN: u32 = 1 << 20;
/// The live map reserves 512 KiB for the YAML; files hold 10–30 KiB.
pub const MAX_SESSION_INFO_LEN: u32 = 16 << 20;

/// Little-endian reads from a byte slice that answer `None` instead of panicking.
pub(crate) fn le_bytes<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub(crate) fn le_i32(bytes: &[u8], at: usize) -> Option<i32> {
    le_bytes(bytes, at).map(i32::from_le_bytes)
}

fn le_i64(bytes: &[u8], at: usize) -> Option<i64> {
    le_bytes(bytes, at).map(i64::from_le_bytes)
}

fn le_f64(bytes: &[u8], at: usize) -> Option<f64> {
    le_bytes(bytes, at).map(f64::from_le_bytes)
}

/// One row buffer of the header (`varBuf[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarBuf {
    /// The sim tick the buffer was last written at (live map); not a record count in files.
    pub tick_count: i32,
    /// Where the buffer (the first row, in a file) starts.
    pub buf_offset: u32,
}

/// The main header, validated: lengths and offsets are known to be non-negative and sane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: i32,
    /// Bit 0: the sim is connected (live map).
    pub status: i32,
    /// Rows per second (60).
    pub tick_rate: i32,
    /// Incremented whenever the session-info YAML changes.
    pub session_info_update: i32,
    pub session_info_len: u32,
    pub session_info_offset: u32,
    pub num_vars: u32,
    pub var_header_offset: u32,
    pub num_buf: u32,
    /// Bytes per row.
    pub buf_len: u32,
    /// The first `num_buf` row buffers.
    pub var_bufs: Vec<VarBuf>,
}

fn non_negative(field: &'static str, value: i32) -> Result<u32, IbtError> {
    u32::try_from(value).map_err(|_| IbtError::InvalidField {
        field,
        value: i64::from(value),
        problem: "must not be negative",
    })
}

fn at_most(
    field: &'static str,
    value: u32,
    min: u32,
    max: u32,
    problem: &'static str,
) -> Result<u32, IbtError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(IbtError::InvalidField { field, value: i64::from(value), problem })
    }
}

impl Header {
    /// Parses and checks the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, IbtError> {
        let too_short = || IbtError::TooShort { what: "header", needed: HEADER_LEN, len: bytes.len() as u64 };
        let field = |at: usize| le_i32(bytes, at).ok_or_else(too_short);
        if bytes.is_empty() {
            return Err(IbtError::Empty);
        }
        if (bytes.len() as u64) < HEADER_LEN {
            return Err(too_short());
        }
        let version = field(0)?;
        if version != SUPPORTED_VERSION {
            return Err(IbtError::UnsupportedVersion(version));
        }
        let session_info_len = non_negative("sessionInfoLen", field(16)?)?;
        let session_info_len = at_most(
            "sessionInfoLen",
            session_info_len,
            0,
            MAX_SESSION_INFO_LEN,
            "session info larger than 16 MiB",
        )?;
        let num_vars = non_negative("numVars", field(24)?)?;
        let num_vars = at_most("numVars", num_vars, 1, MAX_VARS, "must be 1 to 4096")?;
        let num_buf = non_negative("numBuf", field(32)?)?;
        let num_buf = at_most("numBuf", num_buf, 1, MAX_BUFS as u32, "must be 1 to 4")?;
        let buf_len = non_negative("bufLen", field(36)?)?;
        let buf_len = at_most("bufLen", buf_len, 1, MAX_ROW_LEN, "must be 1 byte to 1 MiB")?;
        let mut var_bufs = Vec::with_capacity(num_buf as usize);
        for i in 0..num_buf as usize {
            let at = 48 + 16 * i;
            var_bufs.push(VarBuf {
                tick_count: field(at)?,
                buf_offset: non_negative("varBuf.bufOffset", field(at + 4)?)?,
            });
        }
        Ok(Header {
            version,
            status: field(4)?,
            tick_rate: field(8)?,
            session_info_update: field(12)?,
            session_info_len,
            session_info_offset: non_negative("sessionInfoOffset", field(20)?)?,
            num_vars,
            var_header_offset: non_negative("varHeaderOffset", field(28)?)?,
            num_buf,
            buf_len,
            var_bufs,
        })
    }

    /// Whether the sim reports itself connected (status bit 0).
    pub fn is_connected(&self) -> bool {
        self.status & 1 != 0
    }
}

/// The `.ibt` disk sub-header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskSubHeader {
    /// Wall-clock start of the recording, unix seconds.
    pub session_start_date: i64,
    /// `SessionTime` of the first row, seconds.
    pub session_start_time: f64,
    /// `SessionTime` of the last row, seconds.
    pub session_end_time: f64,
    pub session_lap_count: i32,
    /// Number of rows in the file.
    pub session_record_count: u32,
}

impl DiskSubHeader {
    /// Parses the 32 bytes at `bytes[0..32]`.
    pub fn parse(bytes: &[u8]) -> Result<Self, IbtError> {
        let too_short = || IbtError::TooShort {
            what: "disk sub-header",
            needed: HEADER_LEN + DISK_SUB_HEADER_LEN,
            len: HEADER_LEN + bytes.len() as u64,
        };
        Ok(DiskSubHeader {
            session_start_date: le_i64(bytes, 0).ok_or_else(too_short)?,
            session_start_time: le_f64(bytes, 8).ok_or_else(too_short)?,
            session_end_time: le_f64(bytes, 16).ok_or_else(too_short)?,
            session_lap_count: le_i32(bytes, 24).ok_or_else(too_short)?,
            session_record_count: non_negative(
                "sessionRecordCount",
                le_i32(bytes, 28).ok_or_else(too_short)?,
            )?,
        })
    }

    /// The recording's wall-clock start, when the stored date is representable.
    pub fn start_date_time(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.session_start_date, 0)
    }
}
