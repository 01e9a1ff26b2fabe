//! What a client sends, as the runtime reads it: one text message decoded into an [`Inbound`], or a
//! [`DecodeError`] saying what was wrong (and which `type` and request `id` it carried, so the
//! answer can name them).
//!
//! Besides the current protocol's [`Envelope`], this accepts the original protocol's client
//! messages: the seed had no `send_team_message`/`request_handoff`; its clients sent
//! `team_message {content, priority, attachment, id, senderId, senderName, sentAt, read}` and
//! `handoff_request {targetDriverId, reason, urgency, id, requesterId, …}` themselves, without a
//! team. Those become the same actions, with the team left for the server to find; what the server
//! owns (ids, sender, times, status) is ignored. Reads no env vars.

use serde::Deserialize;
use serde_json::Value;

use super::{Envelope, ErrorCode, Message, NewHandoff, NewTeamMessage};

/// A team action a client asks for. `team_id` is `None` when the client did not name a team (the
/// seed's shape); the server then picks the one it means.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Posted<T> {
    /// The envelope's request id, echoed in the answer.
    #[serde(skip)]
    pub id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(flatten)]
    pub body: T,
}

/// One decoded client message.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A team message to store and push (`send_team_message`, or `team_message` as the seed sent it).
    SendTeamMessage(Posted<NewTeamMessage>),
    /// A handoff to request (`request_handoff`, or `handoff_request` as the seed sent it).
    RequestHandoff(Posted<NewHandoff>),
    /// Anything else, as the envelope carried it.
    Message(Box<Envelope>),
}

/// Why a client message could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// `invalid_json`, `unknown_message_type` or `invalid_field`.
    pub code: ErrorCode,
    pub message: String,
    /// The message's `type`, when it had one.
    pub kind: Option<String>,
    /// The message's request `id`, when it had one.
    pub id: Option<String>,
}

/// Decodes one text message from a client. The envelope is tried first (the hot path: telemetry);
/// only a message that fails is looked at again, to accept the seed's shapes and to say precisely
/// what was wrong.
pub fn decode_client(text: &str) -> Result<Inbound, DecodeError> {
    let err = match serde_json::from_str::<Envelope>(text) {
        Ok(env) => return Ok(normalise(env)),
        Err(e) => e,
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            return Err(DecodeError {
                code: ErrorCode::InvalidJson,
                message: format!("malformed JSON: {err}"),
                kind: None,
                id: None,
            })
        }
    };
    let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
    let kind = value.get("type").and_then(Value::as_str).map(str::to_owned);
    let fail = |code, message| Err(DecodeError { code, message, kind: kind.clone(), id: id.clone() });
    let data = || value.get("data").cloned().unwrap_or(Value::Null);
    match kind.as_deref() {
        None => fail(ErrorCode::InvalidField, "missing field `type` (a string)".to_owned()),
        Some("team_message") => match serde_json::from_value::<Posted<NewTeamMessage>>(data()) {
            Ok(p) => Ok(Inbound::SendTeamMessage(Posted { id: id.clone(), ..p })),
            Err(e) => fail(ErrorCode::InvalidField, e.to_string()),
        },
        Some("handoff_request") => match serde_json::from_value::<Posted<NewHandoff>>(data()) {
            Ok(p) => Ok(Inbound::RequestHandoff(Posted { id: id.clone(), ..p })),
            Err(e) => fail(ErrorCode::InvalidField, e.to_string()),
        },
        Some(t) if !Message::TYPES.contains(&t) => {
            fail(ErrorCode::UnknownMessageType, format!("unknown message type {t:?}"))
        }
        Some(_) => fail(ErrorCode::InvalidField, err.to_string()),
    }
}

/// The team actions in one form, whichever way the client wrote them.
fn normalise(env: Envelope) -> Inbound {
    let id = env.id;
    match env.message {
        Message::SendTeamMessage(m) => {
            Inbound::SendTeamMessage(Posted { id, team_id: Some(m.team_id), body: m.message })
        }
        // A whole `team_message` (as a server pushes it) sent back by a client: its team and text.
        Message::TeamMessage(m) => Inbound::SendTeamMessage(Posted {
            id,
            team_id: Some(m.team_id),
            body: NewTeamMessage { content: m.content, priority: m.priority, attachment: m.attachment },
        }),
        Message::RequestHandoff(h) => {
            Inbound::RequestHandoff(Posted { id, team_id: Some(h.team_id), body: h.handoff })
        }
        Message::HandoffRequest(h) => Inbound::RequestHandoff(Posted {
            id,
            team_id: Some(h.team_id),
            body: NewHandoff {
                target_driver_id: h.target_driver_id,
                from_driver_id: h.from_driver_id,
                reason: h.reason,
                urgency: h.urgency,
            },
        }),
        message => Inbound::Message(Box::new(Envelope { message, id, ..env })),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::wire::{ClientType, HandoffUrgency, MessagePriority};

    #[test]
    fn seed_team_message_is_a_send() {
        let seed = r#"{"type":"team_message","id":"r7","data":{"id":"m-1","content":"Box this lap",
            "senderId":"u-9","senderName":"Anna","priority":"urgent","sentAt":"2026-11-21T12:00:00",
            "read":false,"attachment":null}}"#;
        let Ok(Inbound::SendTeamMessage(p)) = decode_client(seed) else { panic!("not a send") };
        assert_eq!(p.id.as_deref(), Some("r7"));
        assert_eq!(p.team_id, None);
        assert_eq!(p.body.content, "Box this lap");
        assert_eq!(p.body.priority, MessagePriority::Urgent);
    }

    #[test]
    fn seed_handoff_request_is_a_request() {
        let seed = r#"{"type":"handoff_request","data":{"id":"h-1","requesterId":"u-1","requesterName":"Max",
            "targetDriverId":"d-2","targetDriverName":"Lena","reason":"stint over","urgency":"urgent",
            "requestedAt":"2026-11-21T12:00:00Z","status":"pending","telemetrySnapshot":{"speed":1}}}"#;
        let Ok(Inbound::RequestHandoff(p)) = decode_client(seed) else { panic!("not a request") };
        assert_eq!(p.body.target_driver_id, "d-2");
        assert_eq!(p.body.urgency, HandoffUrgency::Urgent);
        assert_eq!(p.team_id, None);
    }

    #[test]
    fn current_shapes_are_unchanged() {
        let m = r#"{"type":"send_team_message","id":"m1","data":{"teamId":"t","content":"hi"}}"#;
        let Ok(Inbound::SendTeamMessage(p)) = decode_client(m) else { panic!() };
        assert_eq!((p.team_id.as_deref(), p.id.as_deref()), (Some("t"), Some("m1")));
        let a = r#"{"type":"authenticate","data":{"token":"x","clientType":"driver"}}"#;
        let Ok(Inbound::Message(env)) = decode_client(a) else { panic!() };
        let Message::Authenticate(a) = env.message else { panic!() };
        assert_eq!((a.client_type, a.version.as_str()), (ClientType::DriverNode, ""));
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = decode_client("{not json").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        let e = decode_client(r#"{"type":"warp","id":"w","data":{}}"#).unwrap_err();
        assert_eq!((e.code, e.id.as_deref()), (ErrorCode::UnknownMessageType, Some("w")));
        let e = decode_client(r#"{"type":"authenticate","data":{"clientType":"driver"}}"#).unwrap_err();
        assert_eq!((e.code, e.kind.as_deref()), (ErrorCode::InvalidField, Some("authenticate")));
        assert!(e.message.contains("token"), "{}", e.message);
        let e = decode_client(r#"{"type":"team_message","data":{"priority":"high"}}"#).unwrap_err();
        assert!(e.message.contains("content"), "{}", e.message);
        // Deeply nested input is refused by the JSON reader's depth limit, without a stack overflow.
        let deep = "[".repeat(100_000);
        assert_eq!(decode_client(&deep).unwrap_err().code, ErrorCode::InvalidJson);
        let deep = format!(r#"{{"type":"subscribe","data":{}}}"#, "[".repeat(100_000));
        assert_eq!(decode_client(&deep).unwrap_err().code, ErrorCode::InvalidJson);
    }
}
