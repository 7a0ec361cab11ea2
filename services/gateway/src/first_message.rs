//! Reading the first gRPC message of a request without consuming it: the
//! gateway routes a multiplexed call by one string field of that message
//! (`SubscribeRequest.source`), then forwards the body byte for byte.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use crm_server::grpc::error_status;
use http_body::{Body, Frame, SizeHint};
use tonic::{Code, Status, codegen::StdError};

use crate::ERROR_DOMAIN;

/// The gRPC length prefix: a compression flag and a big-endian length.
const PREFIX: usize = 5;

/// What the start of a request body held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FirstMessage {
    /// The body ended before one whole message.
    Absent,
    /// Compressed: the gateway does not decompress, so it cannot be read.
    Compressed,
    /// The encoded protobuf message, prefix removed.
    Plain(Bytes),
}

/// Reads frames from `body` until the first message is whole (or the body
/// ends), buffering at most that message's prefix and `max` bytes of it
/// plus the rest of the frame it ends in. Returns the message and a body
/// that replays every frame read, then continues with the rest.
pub(crate) async fn read<B>(body: B, max: usize) -> Result<(FirstMessage, Replay<B>), Status>
where
    B: Body<Data = Bytes>,
    B::Error: Into<StdError>,
{
    let mut inner = Box::pin(body);
    let mut frames = VecDeque::new();
    let mut message = BytesMut::new();
    let mut wanted = PREFIX;
    let first = loop {
        if message.len() >= wanted {
            break complete(&mut message, wanted);
        }
        let Some(frame) = std::future::poll_fn(|cx| inner.as_mut().poll_frame(cx)).await else {
            break FirstMessage::Absent;
        };
        let frame = frame.map_err(|e| Status::from_error(e.into()))?;
        let Some(data) = frame.data_ref() else {
            // Trailers end the request stream.
            frames.push_back(frame);
            break FirstMessage::Absent;
        };
        let take = data.len().min(wanted - message.len());
        message.extend_from_slice(&data[..take]);
        frames.push_back(frame);
        if wanted == PREFIX && message.len() == PREFIX {
            let len = u32::from_be_bytes([message[1], message[2], message[3], message[4]]);
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > max {
                return Err(error_status(
                    Code::ResourceExhausted,
                    format!(
                        "request message of {len} bytes is larger than the limit of {max} bytes"
                    ),
                    "MESSAGE_TOO_LARGE",
                    ERROR_DOMAIN,
                ));
            }
            wanted = PREFIX + len;
            // The rest of this frame may already hold (part of) the message.
            if let Some(data) = frames.back().and_then(Frame::data_ref) {
                let more = (data.len() - take).min(len);
                message.extend_from_slice(&data[take..take + more]);
            }
        }
    };
    Ok((first, Replay { frames, inner }))
}

/// The message in `buffer`, which holds `wanted` bytes: prefix and payload.
fn complete(buffer: &mut BytesMut, wanted: usize) -> FirstMessage {
    if buffer[0] != 0 {
        return FirstMessage::Compressed;
    }
    let mut payload = buffer.split_to(wanted).freeze();
    FirstMessage::Plain(payload.split_off(PREFIX))
}

/// A request body that first replays the frames read while peeking.
pub(crate) struct Replay<B> {
    frames: VecDeque<Frame<Bytes>>,
    inner: Pin<Box<B>>,
}

impl<B> Replay<B> {
    /// A body nothing was read from.
    pub(crate) fn untouched(body: B) -> Self {
        Self {
            frames: VecDeque::new(),
            inner: Box::pin(body),
        }
    }
}

impl<B> Body for Replay<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        // `Replay` is Unpin: the inner body is boxed.
        let this = self.get_mut();
        if let Some(frame) = this.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        this.inner.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self
            .frames
            .iter()
            .filter_map(Frame::data_ref)
            .map(|d| d.len() as u64)
            .sum();
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(buffered));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(buffered));
        }
        hint
    }
}

/// Why an encoded message could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// The value of the `string` field `number` at the top level of an encoded
/// protobuf message (the last one, as protobuf merges a repeated singular
/// field); `None` when the message does not carry it. Every other field is
/// skipped unread.
pub(crate) fn string_field(mut message: &[u8], number: u32) -> Result<Option<&str>, Malformed> {
    let mut found = None;
    while !message.is_empty() {
        let key = varint(&mut message)?;
        let field = u32::try_from(key >> 3).map_err(|_| Malformed)?;
        if field == 0 {
            return Err(Malformed);
        }
        match key & 7 {
            0 => {
                varint(&mut message)?;
            }
            1 => message = message.get(8..).ok_or(Malformed)?,
            2 => {
                let len = usize::try_from(varint(&mut message)?).map_err(|_| Malformed)?;
                if len > message.len() {
                    return Err(Malformed);
                }
                let (value, rest) = message.split_at(len);
                if field == number {
                    found = Some(std::str::from_utf8(value).map_err(|_| Malformed)?);
                }
                message = rest;
            }
            5 => message = message.get(4..).ok_or(Malformed)?,
            // Groups (3, 4) are not in proto3; anything else is not protobuf.
            _ => return Err(Malformed),
        }
    }
    Ok(found)
}

/// Reads one base-128 varint of at most 10 bytes.
fn varint(bytes: &mut &[u8]) -> Result<u64, Malformed> {
    let mut value = 0_u64;
    for (i, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Ok(value);
        }
    }
    Err(Malformed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// `after_sequence = 1` (varint 7), `types = 2` ("a", "b"), `source = 3`.
    fn subscribe_request(source: &str) -> Vec<u8> {
        let mut m = vec![0x08, 0x07, 0x12, 1, b'a', 0x12, 1, b'b'];
        m.extend([0x1a, u8::try_from(source.len()).unwrap()]);
        m.extend(source.as_bytes());
        m
    }

    fn framed(message: &[u8], compressed: bool) -> Vec<u8> {
        let mut out = vec![u8::from(compressed)];
        out.extend(u32::try_from(message.len()).unwrap().to_be_bytes());
        out.extend(message);
        out
    }

    /// A body delivering `bytes` in chunks of `size`.
    struct Chunks(VecDeque<Bytes>);

    impl Chunks {
        fn new(bytes: &[u8], size: usize) -> Self {
            Self(bytes.chunks(size).map(Bytes::copy_from_slice).collect())
        }
    }

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    async fn drain<B: Body<Data = Bytes>>(body: B) -> Vec<u8> {
        let mut body = Box::pin(body);
        let mut out = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            if let Ok(data) = frame.map(|f| f.into_data()) {
                out.extend(data.unwrap());
            }
        }
        out
    }

    #[test]
    fn finds_the_field_among_others() {
        let m = subscribe_request("leads");
        assert_eq!(string_field(&m, 3), Ok(Some("leads")));
        assert_eq!(string_field(&m, 4), Ok(None));
        assert_eq!(string_field(&[], 3), Ok(None));
        // The last occurrence wins, as in protobuf.
        let mut twice = m.clone();
        twice.extend([0x1a, 3, b'o', b'p', b'p']);
        assert_eq!(string_field(&twice, 3), Ok(Some("opp")));
        // Fixed-width fields are skipped.
        let mut fixed = vec![0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2d, 1, 2, 3, 4];
        fixed.extend([0x1a, 1, b'x']);
        assert_eq!(string_field(&fixed, 3), Ok(Some("x")));
    }

    #[test]
    fn refuses_what_is_not_protobuf() {
        assert_eq!(string_field(&[0x1a, 9, b'x'], 3), Err(Malformed));
        assert_eq!(string_field(&[0x1a, 2, 0xff, 0xfe], 3), Err(Malformed));
        assert_eq!(string_field(&[0x0b], 3), Err(Malformed), "a group");
        assert_eq!(
            string_field(&[0x80; 11], 3),
            Err(Malformed),
            "endless varint"
        );
        assert_eq!(string_field(&[0x02, 0], 3), Err(Malformed), "field 0");
    }

    #[tokio::test]
    async fn reads_the_first_message_across_frames_and_replays_the_body() {
        let message = subscribe_request("opportunities");
        let mut stream = framed(&message, false);
        stream.extend(framed(b"second", false));
        for size in [1, 2, 5, 6, 7, stream.len()] {
            let (first, body) = read(Chunks::new(&stream, size), 1024).await.unwrap();
            assert_eq!(
                first,
                FirstMessage::Plain(Bytes::from(message.clone())),
                "{size}"
            );
            assert_eq!(drain(body).await, stream, "chunks of {size}");
        }
    }

    #[tokio::test]
    async fn an_empty_short_or_compressed_body_has_no_readable_message() {
        let (first, body) = read(Chunks::new(&[], 1), 1024).await.unwrap();
        assert_eq!(first, FirstMessage::Absent);
        assert!(drain(body).await.is_empty());

        let cut = framed(&subscribe_request("leads"), false)[..9].to_vec();
        let (first, body) = read(Chunks::new(&cut, 4), 1024).await.unwrap();
        assert_eq!(first, FirstMessage::Absent);
        assert_eq!(drain(body).await, cut);

        let compressed = framed(b"zzz", true);
        let (first, _) = read(Chunks::new(&compressed, 3), 1024).await.unwrap();
        assert_eq!(first, FirstMessage::Compressed);
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_not_buffered() {
        let stream = framed(&[0; 100], false);
        let err = read(Chunks::new(&stream, 7), 99).await.err().unwrap();
        assert_eq!(err.code(), Code::ResourceExhausted);
        let (first, _) = read(Chunks::new(&stream, 7), 100).await.unwrap();
        assert_eq!(first, FirstMessage::Plain(Bytes::from(vec![0; 100])));
    }
}
