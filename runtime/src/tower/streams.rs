//! Which request of an HTTP/2 connection arrived when: the frame headers of
//! what the client sends (a new stream's `HEADERS`, a reset) and of what the
//! server writes (an answer's `HEADERS`, a reset), read as the bytes pass
//! through the connection, payloads skipped.
//!
//! An HTTP/2 connection carries many requests at once, and one read may hold
//! several of them, or none (a window update). Under load, a request's
//! handler starts well after later requests were read, so "the latest read"
//! is not its arrival. Each new stream is queued here with the arrival of
//! the read that carried its `HEADERS`; handlers claim them in the order
//! their calls reach the server's service, which is the order the streams
//! were opened. A stream that never reaches a handler (a route outside the
//! handler layer, a stream the client reset) leaves the queue when its
//! answer or its reset passes: one claim at most takes its arrival, and the
//! queue is in step again after it.

use std::collections::VecDeque;

/// What a client sends first on an HTTP/2 connection (with prior knowledge,
/// as gRPC does).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame types that matter here.
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
/// The most streams waiting for a claim a connection keeps: beyond it the
/// oldest go (a peer opening streams that nothing answers or claims).
const MOST_WAITING: usize = 4_096;

/// A frame's header: its type and its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Frame {
    kind: u8,
    stream: u32,
}

/// Frame headers out of a stream of bytes that arrives in pieces.
#[derive(Debug, Default)]
pub(super) struct Frames {
    header: [u8; 9],
    filled: usize,
    /// The payload bytes of the current frame still to pass.
    skip: usize,
}

impl Frames {
    /// Takes the next `bytes`, calling `f` with each frame whose header
    /// ends in them.
    pub(super) fn feed(&mut self, mut bytes: &[u8], mut f: impl FnMut(Frame)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (self.header.len() - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == self.header.len() {
                self.filled = 0;
                let h = self.header;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                f(Frame { kind: h[3], stream });
            }
        }
    }
}

/// What the client's side of a connection turned out to be.
#[derive(Debug)]
enum Kind {
    /// So far the bytes are HTTP/2's preface: this many of them.
    Preface(usize),
    /// HTTP/2: its frames.
    Http2(Frames),
    /// Anything else (HTTP/1, TLS): one request at a time, nothing to track.
    Other,
}

/// The client's side of a connection: what it sends.
#[derive(Debug)]
pub(super) struct ClientSide {
    kind: Kind,
}

impl Default for ClientSide {
    fn default() -> Self {
        Self {
            kind: Kind::Preface(0),
        }
    }
}

impl ClientSide {
    /// How much the next read should take at most: on HTTP/2, the rest of
    /// the current frame and the next frame's header, so that each read
    /// ends with one frame's header and carries that frame's arrival. (A
    /// read's receive timestamp is its last packet's: one read of many
    /// requests would stamp them all with the last one's arrival.)
    pub(super) fn read_limit(&self) -> Option<usize> {
        match &self.kind {
            Kind::Preface(matched) => Some(PREFACE.len() - matched + 9),
            Kind::Http2(frames) => Some(frames.skip + frames.header.len() - frames.filled),
            Kind::Other => None,
        }
    }

    /// Whether the connection is HTTP/2.
    pub(super) fn is_http2(&self) -> bool {
        matches!(self.kind, Kind::Http2(_))
    }

    /// Takes the next bytes the client sent, which arrived at `at`.
    pub(super) fn read(&mut self, mut bytes: &[u8], at: u64, streams: &mut Streams) {
        if let Kind::Preface(matched) = &mut self.kind {
            let n = (PREFACE.len() - *matched).min(bytes.len());
            if bytes[..n] != PREFACE[*matched..*matched + n] {
                self.kind = Kind::Other;
                return;
            }
            *matched += n;
            bytes = &bytes[n..];
            if *matched == PREFACE.len() {
                self.kind = Kind::Http2(Frames::default());
                streams.http2 = true;
            }
        }
        if let Kind::Http2(frames) = &mut self.kind {
            frames.feed(bytes, |frame| streams.sent(frame, at));
        }
    }
}

/// The server's side of an HTTP/2 connection: what it writes.
#[derive(Debug, Default)]
pub(super) struct ServerSide {
    frames: Frames,
}

impl ServerSide {
    /// Takes the next bytes the server wrote, calling `f` with each stream
    /// it answered or reset.
    pub(super) fn wrote(&mut self, bytes: &[u8], mut f: impl FnMut(u32)) {
        self.frames.feed(bytes, |frame| {
            if matches!(frame.kind, HEADERS | RST_STREAM) {
                f(frame.stream);
            }
        });
    }
}

/// An HTTP/2 connection's streams that have arrived and are not yet
/// claimed by a handler, oldest first.
#[derive(Debug, Default)]
pub(super) struct Streams {
    /// Whether the connection is HTTP/2.
    pub(super) http2: bool,
    waiting: VecDeque<(u32, u64)>,
    /// The highest stream the client opened: a `HEADERS` on a stream at or
    /// below it is a trailer, not a request.
    highest: u32,
}

impl Streams {
    fn sent(&mut self, frame: Frame, at: u64) {
        match frame.kind {
            HEADERS if frame.stream > self.highest => {
                self.highest = frame.stream;
                if self.waiting.len() == MOST_WAITING {
                    self.waiting.pop_front();
                }
                self.waiting.push_back((frame.stream, at));
            }
            RST_STREAM => self.done(frame.stream),
            _ => {}
        }
    }

    /// `stream` was answered or reset: a handler claims it no more.
    pub(super) fn done(&mut self, stream: u32) {
        if let Some(i) = self.waiting.iter().position(|&(s, _)| s == stream) {
            self.waiting.remove(i);
        }
    }

    /// The arrival of the oldest stream not yet claimed, claimed.
    pub(super) fn claim(&mut self) -> Option<u64> {
        self.waiting.pop_front().map(|(_, at)| at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: usize) -> Vec<u8> {
        let len = u32::try_from(payload).unwrap().to_be_bytes();
        let mut bytes = vec![len[1], len[2], len[3], kind, 0];
        bytes.extend_from_slice(&stream.to_be_bytes());
        bytes.resize(9 + payload, 0xab);
        bytes
    }

    const SETTINGS: u8 = 0x4;
    const DATA: u8 = 0x0;
    const WINDOW_UPDATE: u8 = 0x8;

    #[test]
    fn frames_split_anywhere_read_the_same() {
        let mut bytes = frame(SETTINGS, 0, 6);
        bytes.extend(frame(HEADERS, 1, 40));
        bytes.extend(frame(DATA, 1, 70_000));
        bytes.extend(frame(RST_STREAM, 3, 4));
        let whole = {
            let mut seen = Vec::new();
            Frames::default().feed(&bytes, |f| seen.push(f));
            seen
        };
        assert_eq!(
            whole.iter().map(|f| (f.kind, f.stream)).collect::<Vec<_>>(),
            [(SETTINGS, 0), (HEADERS, 1), (DATA, 1), (RST_STREAM, 3)]
        );
        for piece in [1, 2, 5, 9, 10, 1_000] {
            let mut frames = Frames::default();
            let mut seen = Vec::new();
            for chunk in bytes.chunks(piece) {
                frames.feed(chunk, |f| seen.push(f));
            }
            assert_eq!(seen, whole, "in pieces of {piece}");
        }
    }

    fn client_sends(side: &mut ClientSide, streams: &mut Streams, bytes: &[u8], at: u64) {
        side.read(bytes, at, streams);
    }

    #[test]
    fn each_stream_is_claimed_with_the_arrival_of_its_own_headers() {
        let (mut side, mut streams) = (ClientSide::default(), Streams::default());
        let mut first = PREFACE.to_vec();
        first.extend(frame(SETTINGS, 0, 0));
        first.extend(frame(HEADERS, 1, 30));
        // The preface split across reads.
        client_sends(&mut side, &mut streams, &first[..10], 100);
        client_sends(&mut side, &mut streams, &first[10..], 110);
        assert!(streams.http2);
        // Two requests in one read, then a window update and a trailer.
        let mut second = frame(HEADERS, 3, 30);
        second.extend(frame(HEADERS, 5, 30));
        client_sends(&mut side, &mut streams, &second, 200);
        client_sends(&mut side, &mut streams, &frame(WINDOW_UPDATE, 0, 4), 300);
        client_sends(&mut side, &mut streams, &frame(HEADERS, 1, 8), 310);
        client_sends(&mut side, &mut streams, &frame(HEADERS, 7, 30), 400);
        let claims: Vec<_> = std::iter::from_fn(|| streams.claim()).collect();
        assert_eq!(claims, [110, 200, 200, 400]);
    }

    #[test]
    fn a_stream_no_handler_claims_leaves_with_its_answer_or_reset() {
        let (mut side, mut streams) = (ClientSide::default(), Streams::default());
        client_sends(&mut side, &mut streams, PREFACE, 0);
        for (stream, at) in [(1, 10), (3, 20), (5, 30), (7, 40)] {
            client_sends(&mut side, &mut streams, &frame(HEADERS, stream, 10), at);
        }
        // Stream 1 is a route outside the handler layer: answered unclaimed.
        let mut server = ServerSide::default();
        let mut answer = frame(SETTINGS, 0, 0);
        answer.extend(frame(HEADERS, 1, 12));
        answer.extend(frame(DATA, 1, 5));
        server.wrote(&answer[..7], |s| streams.done(s));
        server.wrote(&answer[7..], |s| streams.done(s));
        // The client gave up on stream 5.
        client_sends(&mut side, &mut streams, &frame(RST_STREAM, 5, 4), 50);
        assert_eq!(streams.claim(), Some(20));
        assert_eq!(streams.claim(), Some(40));
        assert_eq!(streams.claim(), None);
    }

    #[test]
    fn reads_end_with_a_frame_header() {
        let (mut side, mut streams) = (ClientSide::default(), Streams::default());
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(SETTINGS, 0, 6));
        bytes.extend(frame(HEADERS, 1, 30));
        bytes.extend(frame(DATA, 1, 5));
        bytes.extend(frame(HEADERS, 3, 30));
        let mut reads = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let n = side.read_limit().unwrap().min(bytes.len() - at);
            client_sends(&mut side, &mut streams, &bytes[at..at + n], at as u64);
            reads.push(n);
            at += n;
        }
        // The preface and SETTINGS' header; its payload and HEADERS' header;
        // and so on: one new frame header at the end of each read, then the
        // last payload.
        assert_eq!(reads, [24 + 9, 6 + 9, 30 + 9, 5 + 9, 30]);
        let claims: Vec<_> = std::iter::from_fn(|| streams.claim()).collect();
        assert_eq!(claims, [33, 87]);
    }

    #[test]
    fn http1_is_not_tracked() {
        for request in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\n\r\n",
            b"P",
        ] {
            let (mut side, mut streams) = (ClientSide::default(), Streams::default());
            client_sends(&mut side, &mut streams, request, 1);
            client_sends(&mut side, &mut streams, &frame(HEADERS, 1, 3), 2);
            assert!(!streams.http2, "{request:?}");
            assert_eq!(streams.claim(), None);
        }
    }

    #[test]
    fn the_queue_is_bounded() {
        let (mut side, mut streams) = (ClientSide::default(), Streams::default());
        client_sends(&mut side, &mut streams, PREFACE, 0);
        for n in 0..u32::try_from(MOST_WAITING).unwrap() + 10 {
            client_sends(
                &mut side,
                &mut streams,
                &frame(HEADERS, 2 * n + 1, 0),
                u64::from(n),
            );
        }
        assert_eq!(streams.waiting.len(), MOST_WAITING);
        assert_eq!(streams.claim(), Some(10));
    }
}
