//! A server-sent-events reader that works on bytes as they arrive from the network, for streamed
//! chat completions. Reads no env vars.
//!
//! It follows the WHATWG event-stream rules that matter for a client: lines end in `\n`, `\r\n` or
//! `\r` (a `\r` at the end of a read waits for the next one, since a `\n` may follow); a blank line
//! ends an event; several `data:` lines are joined with `\n`; one space after the colon is dropped;
//! lines starting with `:` are comments (keep-alives); `event`, `id` and `retry` are ignored, since
//! chat completions do not use them; an event never ended by a blank line is dropped. Bytes are kept
//! until a line is whole, so an event or a UTF-8 character split across reads is read once whole.
//! Hand-written because it is this small, and every case above has a test below.

/// Collects the `data` of events from byte chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds one network read; returns the data of every event it completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut pos = 0;
        while let Some(offset) = self.buf[pos..].iter().position(|&b| b == b'\n' || b == b'\r') {
            let end = pos + offset;
            let next = if self.buf[end] == b'\r' {
                match self.buf.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    // `\r` last in this read: `\r\n` may be split across reads, so wait.
                    None => break,
                }
            } else {
                end + 1
            };
            let line = String::from_utf8_lossy(&self.buf[pos..end]).into_owned();
            self.line(&line, &mut events);
            pos = next;
        }
        self.buf.drain(..pos);
        events
    }

    /// Bytes received but not yet part of a whole line, plus a started event: true when the stream
    /// ended in the middle of an event.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.has_data
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            if self.has_data {
                events.push(std::mem::take(&mut self.data));
                self.has_data = false;
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        // A byte-order mark may open the stream; it is not part of the first field's name.
        if field.trim_start_matches('\u{feff}') == "data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str =
        ": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: message\nid: 7\ndata: first\ndata:second\n\n\
                          data: caf\u{e9} \u{2212}0.21\r\rdata: [DONE]\n\n";

    fn expected() -> Vec<String> {
        vec!["{\"a\":1}".into(), "first\nsecond".into(), "caf\u{e9} \u{2212}0.21".into(), "[DONE]".into()]
    }

    #[test]
    fn one_read() {
        let mut p = SseParser::new();
        assert_eq!(p.push(STREAM.as_bytes()), expected());
        assert!(!p.has_partial());
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let mut p = SseParser::new();
            let mut events = p.push(&bytes[..cut]);
            events.extend(p.push(&bytes[cut..]));
            assert_eq!(events, expected(), "split at byte {cut}");
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut p = SseParser::new();
        let events: Vec<String> =
            STREAM.as_bytes().iter().flat_map(|b| p.push(std::slice::from_ref(b))).collect();
        assert_eq!(events, expected());
    }

    #[test]
    fn an_unfinished_event_is_not_delivered() {
        let mut p = SseParser::new();
        assert_eq!(p.push(b"data: {\"a\":1}\n\ndata: {\"choices\""), vec!["{\"a\":1}"]);
        assert!(p.has_partial());
        let mut p = SseParser::new();
        assert!(p.push(b"data: whole line, no blank line\n").is_empty());
        assert!(p.has_partial());
    }

    #[test]
    fn field_without_colon_and_empty_data() {
        let mut p = SseParser::new();
        assert_eq!(p.push(b"data\n\ndata:\ndata:\n\nretry: 10\n\n"), vec!["".to_owned(), "\n".to_owned()]);
    }
}
