//! Build script of the driver node: makes the Windows `.exe` self-contained. OpenH264 and
//! whisper.cpp are C++, and on `*-windows-gnu` their build scripts ask rustc to link MinGW's C++
//! runtime as a DLL (`-Bdynamic -lstdc++`), which a driver's PC does not have. So for that target
//! this puts a copy of the static `libstdc++.a`, named as the import library `libstdc++.dll.a`,
//! first on the link search path (the linker takes what it finds under that name, and an archive
//! of objects links them in), and adds what the C++ runtime needs itself (winpthreads: the MinGW
//! toolchain with POSIX threads is used, as whisper.cpp needs `std::mutex`; libgcc's helpers,
//! MinGW's printf, msvcrt, kernel32) as one static group after everything else, because rustc
//! links with `-nodefaultlibs`. `.cargo/config.toml` links the C runtime statically;
//! `tools/windows-check.sh` checks the `.exe` imports no MinGW DLL.
//! Reads `TARGET`, `OUT_DIR` (set by cargo) and `CXX_x86_64_pc_windows_gnu` (the MinGW C++
//! compiler, default `x86_64-w64-mingw32-g++-posix`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CXX_x86_64_pc_windows_gnu");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.ends_with("-windows-gnu") {
        return;
    }
    let cxx =
        std::env::var("CXX_x86_64_pc_windows_gnu").unwrap_or_else(|_| "x86_64-w64-mingw32-g++-posix".into());
    let found = Command::new(&cxx)
        .arg("-print-file-name=libstdc++.a")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_absolute() && p.is_file());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("static-cxx");
    match found {
        Some(lib)
            if std::fs::create_dir_all(&out).is_ok()
                && std::fs::copy(&lib, out.join("libstdc++.dll.a")).is_ok() =>
        {
            println!("cargo:rustc-link-search=native={}", out.display());
        }
        _ => println!("cargo:warning=no static libstdc++.a from {cxx}: the .exe will need libstdc++-6.dll"),
    }
    // `-Bstatic` again: rustc switched to `-Bdynamic` for the system DLLs before this point.
    for arg in [
        "-Wl,-Bstatic",
        "-Wl,--start-group",
        "-lstdc++",
        "-lwinpthread",
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
