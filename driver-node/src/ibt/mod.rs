//! Our own reader of iRacing telemetry: `.ibt` recordings and the live shared-memory map, which
//! share one layout (a 112-byte header, variable headers, the session-info YAML and rows of
//! `bufLen` bytes). Files have a 32-byte disk sub-header and their rows one after the other; the
//! live map has up to four rotating row buffers, the newest being the one with the highest
//! `tickCount`.
//!
//! [`Ibt::parse`] checks everything up front (every offset, length and variable against the input
//! and each other), so that later reads cannot go out of bounds; hostile input gives an
//! [`IbtError`], never a panic. Bytes come from a [`Source`]: a file read row by row
//! ([`Ibt::open`]), or any byte buffer. Reads no env vars.
//!
//! ```no_run
//! # fn main() -> Result<(), pitbox_driver::ibt::IbtError> {
//! use pitbox_driver::ibt::Ibt;
//! let ibt = Ibt::open("lap.ibt")?;
//! let speed = ibt.var("Speed").map(|v| v.unit.clone());
//! for row in ibt.rows() {
//!     let row = row?;
//!     println!("{:?} {:?}", row.f64("SessionTime"), row.f32("Speed"));
//! }
//! let track = ibt.session_info()?.track().map(str::to_owned);
//! # Ok(()) }
//! ```

mod error;
mod header;
pub mod laps;
mod row;
pub mod sample;
pub mod session;
mod source;
mod var;

use std::path::Path;

pub use error::IbtError;
pub use header::{
    DiskSubHeader, Header, VarBuf, DISK_SUB_HEADER_LEN, HEADER_LEN, MAX_BUFS, MAX_ROW_LEN,
    MAX_SESSION_INFO_LEN, MAX_VARS, SUPPORTED_VERSION,
};
pub use laps::{laps, LapTime};
pub use row::{Row, Rows};
pub use sample::SampleConverter;
pub use session::{SessionInfo, SessionValue};
pub use source::{FileSource, Source};
pub use var::{Value, VarHeader, VarType, Vars, VAR_HEADER_LEN};

/// How many times [`Ibt::latest_row`] re-reads a live buffer the sim is overwriting.
const LIVE_READ_ATTEMPTS: usize = 8;

/// Which of the two layouts an input has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// An `.ibt` recording: disk sub-header, then `sessionRecordCount` rows back to back.
    Disk,
    /// The live shared-memory map (or a dump of it): no disk sub-header, 1–4 rotating buffers.
    Live,
}

impl Layout {
    /// Files have one buffer and leave bytes 112..144 to the disk sub-header; the live map puts
    /// the YAML or variable headers right after the header and rotates 3 buffers.
    pub fn detect(header: &Header) -> Layout {
        let disk_end = HEADER_LEN + DISK_SUB_HEADER_LEN;
        let clear = |offset: u32| u64::from(offset) >= disk_end;
        let room_for_disk_header = clear(header.var_header_offset)
            && (header.session_info_len == 0 || clear(header.session_info_offset))
            && header.var_bufs.iter().all(|b| clear(b.buf_offset));
        if header.num_buf == 1 && room_for_disk_header {
            Layout::Disk
        } else {
            Layout::Live
        }
    }
}

/// A region of the input, for the bounds and overlap checks.
struct Region {
    name: String,
    start: u64,
    end: u64,
}

/// Parsed, validated telemetry over a [`Source`].
#[derive(Debug)]
pub struct Ibt<S> {
    source: S,
    len: u64,
    layout: Layout,
    header: Header,
    disk: Option<DiskSubHeader>,
    vars: Vars,
    record_count: usize,
    records_inferred: bool,
    /// Live layout: buffer indices from oldest to newest tick.
    live_order: Vec<usize>,
}

impl Ibt<FileSource> {
    /// Opens a file (`.ibt`, or a dump of the live map) and checks its layout; rows are read
    /// later, on demand.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, IbtError> {
        Ibt::parse(FileSource::open(path)?)
    }
}

impl<S: Source> Ibt<S> {
    /// Parses `source`, telling the layout from the header (see [`Layout::detect`]).
    pub fn parse(source: S) -> Result<Self, IbtError> {
        let header = read_header(&source)?;
        let layout = Layout::detect(&header);
        Self::build(source, header, layout)
    }

    /// Parses `source` as the given layout.
    pub fn parse_as(source: S, layout: Layout) -> Result<Self, IbtError> {
        let header = read_header(&source)?;
        Self::build(source, header, layout)
    }

    fn build(source: S, header: Header, layout: Layout) -> Result<Self, IbtError> {
        let len = source.len();
        let disk = match layout {
            Layout::Disk => {
                let needed = HEADER_LEN + DISK_SUB_HEADER_LEN;
                if len < needed {
                    return Err(IbtError::TooShort { what: "disk sub-header", needed, len });
                }
                let mut bytes = [0u8; DISK_SUB_HEADER_LEN as usize];
                source.read_exact_at(HEADER_LEN, &mut bytes)?;
                Some(DiskSubHeader::parse(&bytes)?)
            }
            Layout::Live => None,
        };
        let row_len = u64::from(header.buf_len);
        let var_table_len = u64::from(header.num_vars) * VAR_HEADER_LEN;
        let mut regions = vec![Region { name: "header".into(), start: 0, end: HEADER_LEN }];
        if disk.is_some() {
            regions.push(Region {
                name: "disk sub-header".into(),
                start: HEADER_LEN,
                end: HEADER_LEN + DISK_SUB_HEADER_LEN,
            });
        }
        let vho = u64::from(header.var_header_offset);
        regions.push(Region { name: "variable headers".into(), start: vho, end: vho + var_table_len });
        if header.session_info_len > 0 {
            let start = u64::from(header.session_info_offset);
            regions.push(Region {
                name: "session info".into(),
                start,
                end: start + u64::from(header.session_info_len),
            });
        }
        let (record_count, records_inferred) = match (&disk, header.var_bufs.first()) {
            (Some(disk), Some(first)) => {
                let offset = u64::from(first.buf_offset);
                if offset > len {
                    return Err(IbtError::OutOfBounds {
                        region: "row data".into(),
                        start: offset,
                        end: offset,
                        len,
                    });
                }
                let stated = u64::from(disk.session_record_count);
                // A recording the sim never closed (crash) says 0 rows but holds them: count them.
                let (records, inferred) =
                    if stated == 0 { ((len - offset) / row_len, true) } else { (stated, false) };
                let needed = records.checked_mul(row_len).and_then(|n| n.checked_add(offset));
                match needed {
                    Some(needed) if needed <= len => {
                        if records > 0 {
                            regions.push(Region { name: "row data".into(), start: offset, end: needed });
                        }
                    }
                    _ => {
                        return Err(IbtError::Truncated {
                            records,
                            row_len,
                            offset,
                            needed: needed.unwrap_or(u64::MAX),
                            len,
                        })
                    }
                }
                let count = usize::try_from(records).map_err(|_| IbtError::InvalidField {
                    field: "sessionRecordCount",
                    value: records.try_into().unwrap_or(i64::MAX),
                    problem: "too many rows for this platform",
                })?;
                (count, inferred && records > 0)
            }
            _ => {
                for (i, buf) in header.var_bufs.iter().enumerate() {
                    let start = u64::from(buf.buf_offset);
                    regions.push(Region { name: format!("row buffer {i}"), start, end: start + row_len });
                }
                (header.var_bufs.len(), false)
            }
        };
        check_regions(&mut regions, len)?;

        let table_len = usize::try_from(var_table_len).map_err(|_| IbtError::InvalidField {
            field: "numVars",
            value: i64::from(header.num_vars),
            problem: "variable table too large for this platform",
        })?;
        let mut table = vec![0u8; table_len];
        source.read_exact_at(vho, &mut table)?;
        let list = table
            .chunks_exact(VAR_HEADER_LEN as usize)
            .enumerate()
            .map(|(i, bytes)| VarHeader::parse(i, bytes, header.buf_len as usize))
            .collect::<Result<Vec<_>, _>>()?;

        let mut live_order: Vec<usize> = (0..header.var_bufs.len()).collect();
        live_order.sort_by_key(|&i| header.var_bufs.get(i).map(|b| b.tick_count));
        Ok(Ibt {
            source,
            len,
            layout,
            header,
            disk,
            vars: Vars::new(list),
            record_count,
            records_inferred,
            live_order,
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The disk sub-header (`.ibt` files only).
    pub fn disk_header(&self) -> Option<&DiskSubHeader> {
        self.disk.as_ref()
    }

    /// All channels.
    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    /// The channel called `name`.
    pub fn var(&self, name: &str) -> Option<&VarHeader> {
        self.vars.get(name)
    }

    /// Length of the input in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true for a parsed input (an empty one is an error); here for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes per row.
    pub fn row_len(&self) -> usize {
        self.header.buf_len as usize
    }

    /// Rows available: the recorded rows of a file, or the buffers of the live map.
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// The file said 0 rows (the sim did not close it) and the count was taken from its length.
    pub fn records_inferred(&self) -> bool {
        self.records_inferred
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn into_source(self) -> S {
        self.source
    }

    fn rows_are_contiguous(&self) -> bool {
        self.layout == Layout::Disk
    }

    /// Live layout: which header buffer holds row `index` (rows are ordered by tick).
    fn live_buffer(&self, index: usize) -> Option<(usize, &VarBuf)> {
        let buf = *self.live_order.get(index)?;
        Some((buf, self.header.var_bufs.get(buf)?))
    }

    fn row_offset(&self, index: usize) -> Result<u64, IbtError> {
        let out_of_range = IbtError::RowOutOfRange { index, count: self.record_count };
        if index >= self.record_count {
            return Err(out_of_range);
        }
        match self.layout {
            Layout::Disk => {
                let first = self.header.var_bufs.first().ok_or(out_of_range)?;
                Ok(u64::from(first.buf_offset) + index as u64 * u64::from(self.header.buf_len))
            }
            Layout::Live => Ok(u64::from(self.live_buffer(index).ok_or(out_of_range)?.1.buf_offset)),
        }
    }

    /// Row `index` (0-based). In the live layout the rows are the buffers, oldest tick first, as
    /// they were when the input was parsed; poll a changing map with [`Ibt::latest_row`].
    pub fn row(&self, index: usize) -> Result<Row<'_>, IbtError> {
        let offset = self.row_offset(index)?;
        let mut bytes = vec![0u8; self.row_len()];
        self.source.read_exact_at(offset, &mut bytes)?;
        let tick = match self.layout {
            Layout::Disk => None,
            Layout::Live => self.live_buffer(index).map(|(_, b)| b.tick_count),
        };
        Ok(Row::new(&self.vars, index, tick, bytes))
    }

    /// Every row, oldest first.
    pub fn rows(&self) -> Rows<'_, S> {
        Rows::new(self)
    }

    /// The newest row: a file's last record, or the live buffer with the highest `tickCount`.
    /// For the live map the header is read again and the copy is retried while the sim is
    /// writing that buffer, so the row is never torn.
    pub fn latest_row(&self) -> Result<Row<'_>, IbtError> {
        if self.layout == Layout::Disk {
            return self.row(
                self.record_count.checked_sub(1).ok_or(IbtError::RowOutOfRange { index: 0, count: 0 })?,
            );
        }
        for _ in 0..LIVE_READ_ATTEMPTS {
            let now = read_header(&self.source)?;
            if !same_layout(&self.header, &now) {
                return Err(IbtError::LayoutChanged);
            }
            let Some((buf, newest)) = now.var_bufs.iter().enumerate().max_by_key(|(_, b)| b.tick_count)
            else {
                return Err(IbtError::RowOutOfRange { index: 0, count: 0 });
            };
            let mut bytes = vec![0u8; self.row_len()];
            self.source.read_exact_at(u64::from(newest.buf_offset), &mut bytes)?;
            let mut tick = [0u8; 4];
            self.source.read_exact_at(48 + 16 * buf as u64, &mut tick)?;
            if i32::from_le_bytes(tick) == newest.tick_count {
                let index = self.live_order.iter().position(|&b| b == buf).unwrap_or(buf);
                return Ok(Row::new(&self.vars, index, Some(newest.tick_count), bytes));
            }
        }
        Err(IbtError::Unstable { attempts: LIVE_READ_ATTEMPTS })
    }

    /// The session-info bytes as stored (cp1252 or UTF-8), up to the first NUL.
    pub fn session_info_raw(&self) -> Result<Vec<u8>, IbtError> {
        let mut bytes = vec![0u8; self.header.session_info_len as usize];
        self.source.read_exact_at(u64::from(self.header.session_info_offset), &mut bytes)?;
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            bytes.truncate(nul);
        }
        Ok(bytes)
    }

    /// The session-info YAML decoded to UTF-8 and repaired the way pyirsdk does.
    pub fn session_info_text(&self) -> Result<String, IbtError> {
        Ok(session::repair(&self.session_info_raw()?))
    }

    /// The session info parsed into a loose tree with helpers (track, car, drivers, sessions).
    pub fn session_info(&self) -> Result<SessionInfo, IbtError> {
        SessionInfo::from_bytes(&self.session_info_raw()?)
    }
}

fn read_header<S: Source>(source: &S) -> Result<Header, IbtError> {
    let len = source.len();
    if len == 0 {
        return Err(IbtError::Empty);
    }
    if len < HEADER_LEN {
        return Err(IbtError::TooShort { what: "header", needed: HEADER_LEN, len });
    }
    let mut bytes = [0u8; HEADER_LEN as usize];
    source.read_exact_at(0, &mut bytes)?;
    Header::parse(&bytes)
}

/// Everything but the tick counts and the YAML's update counter.
fn same_layout(a: &Header, b: &Header) -> bool {
    let offsets = |h: &Header| h.var_bufs.iter().map(|v| v.buf_offset).collect::<Vec<_>>();
    a.version == b.version
        && a.num_vars == b.num_vars
        && a.var_header_offset == b.var_header_offset
        && a.num_buf == b.num_buf
        && a.buf_len == b.buf_len
        && a.session_info_offset == b.session_info_offset
        && a.session_info_len == b.session_info_len
        && offsets(a) == offsets(b)
}

/// Every region within the input, no two sharing a byte.
fn check_regions(regions: &mut [Region], len: u64) -> Result<(), IbtError> {
    if let Some(r) = regions.iter().find(|r| r.end > len) {
        return Err(IbtError::OutOfBounds { region: r.name.clone(), start: r.start, end: r.end, len });
    }
    regions.sort_by_key(|r| (r.start, r.end));
    let mut furthest: Option<&Region> = None;
    for r in regions.iter().filter(|r| r.end > r.start) {
        if let Some(prev) = furthest {
            if r.start < prev.end {
                return Err(IbtError::Overlap { first: prev.name.clone(), second: r.name.clone() });
            }
        }
        if furthest.is_none_or(|f| r.end > f.end) {
            furthest = Some(r);
        }
    }
    Ok(())
}

/// What [`verify`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub layout: Layout,
    pub records: usize,
    /// Elements read (every element of every channel of every row).
    pub values: u64,
    /// Rows whose converted sample failed `TelemetrySample::validate` (should always be 0).
    pub invalid_samples: Vec<(usize, String)>,
    /// `Err` with the message when the session-info YAML could not be parsed.
    pub session_info: Result<(), String>,
    pub laps: usize,
}

/// Reads everything an input holds, as a consumer would: every element of every channel of
/// every row, each row converted to a [`pitbox_schema::wire::TelemetrySample`] and validated, the
/// session info, and the lap table. The fuzz target and the robustness tests run this.
pub fn verify<S: Source>(source: S) -> Result<Verification, IbtError> {
    let ibt = Ibt::parse(source)?;
    let converter = SampleConverter::new(&ibt);
    let mut values = 0u64;
    let mut invalid_samples = Vec::new();
    for row in ibt.rows() {
        let row = row?;
        for var in ibt.vars() {
            values += row.values(var).len() as u64;
        }
        if let Err(e) = converter.sample(&row).validate() {
            invalid_samples.push((row.index(), e.to_string()));
        }
    }
    if ibt.layout() == Layout::Live {
        ibt.latest_row()?;
    }
    let session_info = ibt.session_info().map(|info| {
        let _ = (info.track(), info.car(), info.drivers(), info.sessions(), info.sector_starts());
    });
    Ok(Verification {
        layout: ibt.layout(),
        records: ibt.record_count(),
        values,
        invalid_samples,
        session_info: session_info.map_err(|e| e.to_string()),
        laps: laps(&ibt)?.len(),
    })
}
