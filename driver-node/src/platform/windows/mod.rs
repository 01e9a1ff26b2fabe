//! Windows-only code: screen capture with DXGI desktop duplication (`dxgi`) and GDI (`capture`,
//! the fallback), and the live iRacing sim through its shared memory, found and awaited with the
//! `iracing-telem` crate (a port of iRacing's C++ SDK whose API is `unsafe`) and read through our
//! own read-only view of the map; the push-to-talk key ([`key_down`], `GetAsyncKeyState`). This
//! folder is the only place in the workspace where `unsafe` is allowed; every use says why it
//! holds. Reads no env vars.
#![allow(unsafe_code)]

pub(crate) mod capture;
pub(crate) mod dxgi;
mod iracing;
mod shared_memory;

pub(crate) use iracing::IracingFeed;

#[cfg(test)]
mod tests;

/// Whether a key is down now, whichever window has the focus (push-to-talk on the keyboard while
/// the sim has it). `vk` is a virtual-key code.
pub(crate) fn key_down(vk: i32) -> bool {
    // SAFETY: GetAsyncKeyState takes any integer and only reads the keyboard state.
    let state = unsafe { windows_sys::Win32::UI::Input::KeyboardAndMouse::GetAsyncKeyState(vk) };
    state as u16 & 0x8000 != 0
}
