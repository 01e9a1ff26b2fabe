//! Operating-system specific code, fenced into this one folder: positioned reads from a file
//! (`pread` on Unix, `ReadFile` with an offset on Windows) so telemetry files are read row by row
//! instead of being loaded whole, and on Windows (`windows/`) the live sim through iRacing's
//! shared memory. `unsafe` is allowed in `windows/` only (the workspace denies it everywhere
//! else). Later: screen capture on Windows. Reads no env vars.

use std::fs::File;
use std::io;

#[cfg(windows)]
pub(crate) mod windows;

/// Fills `buf` from `file` at `offset` without moving any shared cursor (so `&File` suffices).
/// Fails with [`io::ErrorKind::UnexpectedEof`] when the file ends first.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Fills `buf` from `file` at `offset`. Windows' `seek_read` may read less than asked, so loop.
#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file ended early")),
            Ok(n) => {
                buf = std::mem::take(&mut buf).get_mut(n..).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "the OS reported reading more than asked")
                })?;
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Other platforms have no positioned read in std; the driver node does not target them.
#[cfg(not(any(unix, windows)))]
pub(crate) fn read_exact_at(_file: &File, _buf: &mut [u8], _offset: u64) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "positioned file reads need Unix or Windows"))
}
