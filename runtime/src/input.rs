//! The one home of the rule "no NUL character enters PitBox": PostgreSQL's text type cannot hold
//! U+0000 (it answers an error, which used to become a 500), and SQLite would store it silently,
//! so the two backends disagreed. Every request is checked here before any handler sees it:
//! the path and query (`%00`) and JSON bodies (`\u0000`, or a raw 0x00 byte), by
//! [`reject_nul`], a middleware; the socket checks each text frame with [`json_has_nul`]. Either
//! way the answer is `400 {code: "invalid_field", message}` (an `error` frame on the socket).
//! The middleware also refuses JSON bodies that are not objects (every body of the API is one).
//! Reads no env vars (the body limit comes from the config).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{self, BytesMut};
use actix_web::HttpMessage;
use futures_util::StreamExt;
use pitbox_schema::wire::ErrorCode;

use crate::config::Config;
use crate::error::ApiError;

/// What a client is told when it sends a NUL.
pub const NUL_MESSAGE: &str = "text must not contain NUL (U+0000) characters";

/// The answer to a NUL in `place` (`path`, `query`, `body`, or a field name).
pub fn nul_error(place: &str) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidField, format!("{place}: {NUL_MESSAGE}"))
}

/// Whether a raw (still percent-encoded) path or query decodes to a NUL. A URI cannot carry a
/// raw 0x00 byte, and percent-decoding yields 0x00 exactly from `%00` (`%2500` is the text
/// `%00`, which is fine).
pub fn uri_part_has_nul(raw: &str) -> bool {
    raw.contains("%00")
}

/// Whether JSON text holds a NUL: a raw 0x00 byte anywhere, or a `\u0000` escape inside a string
/// (an escaped backslash followed by `u0000`, i.e. the text `\u0000`, is not one).
pub fn json_has_nul(json: &[u8]) -> bool {
    let mut in_string = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            0 => return true,
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000".as_slice()) {
                    return true;
                }
                // Skip the escaped character (an escaped quote must not end the string).
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

fn is_json(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"))
}

/// Middleware: refuses a request whose path, query or JSON body carries a NUL. The body is read
/// (up to the configured limit), checked, and handed on unchanged; a declared length over the
/// limit is left to the JSON extractor's `413`.
pub async fn reject_nul(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if uri_part_has_nul(req.uri().path()) {
        return Err(nul_error("path").into());
    }
    if uri_part_has_nul(req.query_string()) {
        return Err(nul_error("query").into());
    }
    if is_json(&req) {
        let limit = req.app_data::<web::Data<Config>>().map_or(256 * 1024, |c| c.max_body_bytes);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_none_or(|n| n <= limit) {
            let mut payload = req.take_payload();
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorCode::PayloadTooLarge,
                        format!("request body is larger than {limit} bytes"),
                    )
                    .into());
                }
                body.extend_from_slice(&chunk);
            }
            if json_has_nul(&body) {
                return Err(nul_error("body").into());
            }
            // Every request body of the API is an object; serde would also read a struct from a
            // JSON array (`[null, null]` as an update that changes nothing), so say no here.
            if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidJson,
                    "request body must be a JSON object",
                )
                .into());
            }
            req.set_payload(actix_web::dev::Payload::from(body.freeze()));
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_json() {
        assert!(json_has_nul(br#"{"username":"a\u0000b"}"#));
        assert!(json_has_nul(b"{\"a\":\"x\0\"}"));
        assert!(json_has_nul(br#"{"k\u0000":1}"#));
        assert!(json_has_nul(br#"["\\\u0000"]"#), "escaped backslash, then a real NUL escape");
        assert!(!json_has_nul(br#"{"a":"\\u0000"}"#), "the text backslash-u0000 is not a NUL");
        assert!(!json_has_nul(br#"{"a":"\"\\u0000"}"#));
        assert!(!json_has_nul(br#"{"a":"plain", "b": 0}"#));
        assert!(!json_has_nul(br#"{"a":"\u1000"}"#));
    }

    #[test]
    fn finds_nul_in_uris() {
        assert!(uri_part_has_nul("/api/teams/x%00y"));
        assert!(uri_part_has_nul("driverId=%00"));
        assert!(!uri_part_has_nul("/api/teams/x%2500"));
        assert!(!uri_part_has_nul("/api/teams/x"));
    }
}
