//! Entry point of the WASM app: mounts the Yew root into `<body>`. Built by
//! `tools/build-dashboard.sh`; a native build only exists so the workspace's tests and lints cover
//! the crate. Reads no env vars.

fn main() {
    pitbox_dashboard::ui::start();
}
