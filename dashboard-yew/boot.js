// Starts the app. A file of its own, not an inline <script>, so the runtime's
// Content-Security-Policy can allow scripts from 'self' only (plus 'wasm-unsafe-eval').
import init from "./pitbox_dashboard.js?v=__VERSION__";
window.__pitboxLoadStart = performance.now();
init({ module_or_path: "./pitbox_dashboard_bg.wasm?v=__VERSION__" }).catch((e) => {
  document.body.textContent = "PitBox failed to start: " + e;
});
