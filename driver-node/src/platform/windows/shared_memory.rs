//! [`SharedMemory`]: a read-only view of iRacing's named file mapping as a [`Source`], so the
//! rows are read by our own parser (bounds-checked, unaligned-safe, never torn) exactly as a dump
//! of the map is on other OSes. Reads no env vars.

use std::ffi::CStr;
use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::System::Memory::{
    MapViewOfFile, OpenFileMappingA, UnmapViewOfFile, VirtualQuery, FILE_MAP_READ, MEMORY_BASIC_INFORMATION,
    MEMORY_MAPPED_VIEW_ADDRESS,
};

use crate::ibt::Source;

/// The name iRacing gives its telemetry map.
pub(crate) const MAP_NAME: &CStr = c"Local\\IRSDKMemMapFileName";

/// A read-only view of a named file mapping, unmapped on drop.
pub(crate) struct SharedMemory {
    mapping: HANDLE,
    view: *const u8,
    len: usize,
}

// SAFETY: the view is read-only memory of this process that stays mapped until `drop`, and the
// handle is a kernel handle; both may be used from any thread, and reads only copy bytes out.
unsafe impl Send for SharedMemory {}
// SAFETY: as above; `&SharedMemory` only allows copying bytes out of the view.
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Opens and maps the named mapping (iRacing's when `name` is [`MAP_NAME`]).
    pub(crate) fn open(name: &CStr) -> io::Result<SharedMemory> {
        // SAFETY: a NUL-terminated name; the handle is checked before use.
        let mapping = unsafe { OpenFileMappingA(FILE_MAP_READ, 0, name.as_ptr().cast()) };
        if mapping.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a valid mapping handle; the view (the whole mapping) is checked before use.
        let view = unsafe { MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0) }.Value.cast::<u8>().cast_const();
        if view.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: our handle, closed once.
            unsafe { CloseHandle(mapping) };
            return Err(e);
        }
        let mut info = MEMORY_BASIC_INFORMATION::default();
        // SAFETY: `view` is the base of a view we mapped; `info` is a valid out-parameter.
        let got = unsafe { VirtualQuery(view.cast(), &mut info, std::mem::size_of_val(&info)) };
        let memory = SharedMemory { mapping, view, len: if got == 0 { 0 } else { info.RegionSize } };
        if memory.len == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(memory)
    }
}

impl Source for SharedMemory {
    fn len(&self) -> u64 {
        self.len as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start =
            usize::try_from(offset).ok().filter(|&s| s.checked_add(buf.len()).is_some_and(|e| e <= self.len));
        let Some(start) = start else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {offset} past the end of the map ({} bytes)",
                    buf.len(),
                    self.len
                ),
            ));
        };
        // SAFETY: `start..start + buf.len()` lies within the view (checked above), which stays
        // mapped while `self` lives. The sim may be writing those bytes: this copies whatever is
        // there (plain bytes, any value is valid); the parser re-checks the buffer's tick after the
        // copy and retries torn rows.
        unsafe { ptr::copy_nonoverlapping(self.view.add(start), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: the view and handle were created in `open` and are released once, here.
        unsafe {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: self.view.cast_mut().cast() });
            CloseHandle(self.mapping);
        }
    }
}
