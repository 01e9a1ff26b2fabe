//! The doctor's `voice` row without a speech model: a warning that names the missing model (voice
//! is optional), never an error or a panic. Its own binary: it sets `PITBOX_WHISPER_MODEL`.
//! Env: `PITBOX_WHISPER_MODEL` (set here).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pitbox_schema::wire::ValidationStatus;

#[test]
fn a_missing_model_is_a_warning_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("ggml-missing.bin");
    std::env::set_var("PITBOX_WHISPER_MODEL", &model);
    assert_eq!(pitbox_driver::voice::model_path(), model);
    let row = pitbox_driver::voice::doctor_row();
    assert_eq!(row.component_name, "voice");
    assert_eq!(row.status, ValidationStatus::Warning, "{row:?}");
    assert!(row.message.contains("ggml-missing.bin"), "{}", row.message);
    let details = row.details.unwrap();
    assert_eq!(details["modelPresent"], false, "{details}");
    assert!(details["transcribeMs"].is_null(), "{details}");
}
