//! Build script of the driver node: makes the Windows `.exe` self-contained. OpenH264 is C++, and
//! on `*-windows-gnu` its build (through the cc crate) would link MinGW's C++ runtime as a DLL,
//! which a driver's PC does not have. `.cargo/config.toml` turns off that request (an empty
//! `CXXSTDLIB` for the target) and links statically (`-static`, `crt-static`); this adds the C++
//! runtime and what it needs itself (libgcc's thread and TLS helpers, MinGW's printf, msvcrt,
//! kernel32) as one group after everything else, because rustc links with `-nodefaultlibs`.
//! `tools/windows-check.sh` checks the `.exe` imports no MinGW DLL. Reads `TARGET` (set by cargo).
#![allow(clippy::print_stdout)]

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.ends_with("-windows-gnu") {
        for arg in [
            "-Wl,--start-group",
            "-lstdc++",
            "-lgcc",
            "-lgcc_eh",
            "-lmingwex",
            "-lmsvcrt",
            "-lkernel32",
            "-Wl,--end-group",
        ] {
            println!("cargo:rustc-link-arg={arg}");
        }
    }
}
