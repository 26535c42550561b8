//! AWS answers for requests that hyper cannot parse.
//!
//! hyper answers a request it cannot parse (a NUL byte in a header, two different
//! `Content-Length`s, a target or head over its limits) by itself, before any service sees
//! it: `on_parse_error` in hyper's `proto/h1/conn.rs` writes a bare head (`400`, `414` or
//! `431`, `content-length: 0`, `connection: close`) and closes the connection. hyper 1.x has
//! no hook to shape that answer, and neither hyper-util nor hyper's builder options change it.
//! Every other answer of Sluice names its request (`x-amzn-RequestId`) and carries an AWS
//! error, so the connection's socket is wrapped in [`ParseErrorAnswers`], which recognises
//! hyper's own head on its way out and writes a complete AWS error in its place.
//!
//! How it is recognised: hyper writes a whole response head in one write (it is one buffer),
//! and starts a new response only once everything before it has been written and flushed. So
//! only the first write after a flush can start a response, and it is hyper's parse-error
//! answer when it is a complete head alone (no body) with status 400, 414 or 431,
//! `content-length: 0` and no `x-amzn-RequestId`: every response of Sluice's service has one.
//! Every other write passes through at once, in hyper's own buffers (the check reads the
//! first 13 bytes of a response, and parses a head only when it has no body).
//!
//! **Invariant:** a response produced by Sluice's service is never delayed nor changed here.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::protocol::{aws_json, error_body, ApiError};

/// Why hyper refused a request, as far as its status tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Unparsable {
    /// 400: a forbidden byte in a header (NUL, CR), a malformed or repeated Content-Length, a
    /// malformed method, target or version.
    #[error(
        "The request could not be parsed as HTTP/1.1: its request line or a header field is malformed"
    )]
    Malformed,
    /// 414: a request target over hyper's limit (65534 bytes).
    #[error("The request target is longer than 65534 bytes")]
    TargetTooLong,
    /// 431: the head did not fit the read buffer, or has too many header fields.
    #[error("The request head is larger than {0} bytes or has more than 100 header fields")]
    HeadTooLarge(usize),
}

impl Unparsable {
    /// What hyper's answer with this status line start means.
    fn from_status_line(start: &[u8], head_limit: usize) -> Option<Self> {
        match start {
            b"HTTP/1.1 400 " => Some(Unparsable::Malformed),
            b"HTTP/1.1 414 " => Some(Unparsable::TargetTooLong),
            b"HTTP/1.1 431 " => Some(Unparsable::HeadTooLarge(head_limit)),
            _ => None,
        }
    }

    /// The AWS error: `SerializationException` (as for a malformed body: the awsJson code for
    /// a request that cannot be read), and for the sizes the codes the handler's own size
    /// refusals would use, so one condition has one code whichever layer caught it.
    fn api_error(self) -> ApiError {
        let (code, status) = match self {
            Unparsable::Malformed => ("SerializationException", 400),
            Unparsable::TargetTooLong => ("UriTooLong", 414),
            Unparsable::HeadTooLarge(_) => ("RequestHeaderFieldsTooLarge", 431),
        };
        ApiError::with_status(code, status, self.to_string())
    }
}

/// The bytes of `"HTTP/1.1 400 "`: what identifies a status line.
const STATUS_LINE_START: usize = 13;

/// If `head` is hyper's own answer to a request it could not parse, the AWS answer to write
/// instead: same status line (and date), a fresh request id, the error as JSON, and
/// `connection: close`, as hyper closes the connection after it.
fn replacement(head: &[u8], head_limit: usize) -> Option<Vec<u8>> {
    let unparsable = Unparsable::from_status_line(head.get(..STATUS_LINE_START)?, head_limit)?;
    let mut fields = [httparse::EMPTY_HEADER; 8];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(head) {
        Ok(httparse::Status::Complete(length)) if length == head.len() => {}
        _ => return None,
    }
    let mut date = None;
    for field in response.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("x-amzn-requestid")
            || (name.eq_ignore_ascii_case("content-length") && field.value != b"0")
        {
            return None;
        }
        if name.eq_ignore_ascii_case("date") {
            date = Some(field.value);
        }
    }
    let status_line_end = head.windows(2).position(|pair| pair == b"\r\n")?;
    let error = unparsable.api_error();
    let body = error_body(&error);
    let request_id = uuid::Uuid::new_v4();
    tracing::debug!(
        %request_id,
        status = error.status,
        "Answering a request that could not be parsed as HTTP/1.1."
    );
    let mut answer = Vec::with_capacity(256 + body.len());
    answer.extend_from_slice(&head[..status_line_end]);
    answer.extend_from_slice(
        format!(
            "\r\ncontent-type: {}\r\nx-amzn-requestid: {request_id}\r\nx-amzn-errortype: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
            aws_json::CONTENT_TYPE,
            error.code,
            body.len()
        )
        .as_bytes(),
    );
    if let Some(date) = date {
        answer.extend_from_slice(b"date: ");
        answer.extend_from_slice(date);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(body.as_bytes());
    Some(answer)
}

/// A connection's socket that turns hyper's bare answers to unparsable requests into AWS
/// errors (see the module documentation). Reads pass through untouched.
pub struct ParseErrorAnswers<T> {
    inner: T,
    /// hyper's read buffer size, which bounds a head: said in the 431 message.
    head_limit: usize,
    /// Whether nothing was written since the last flush, so a write may start a response.
    at_boundary: bool,
    /// The replacement answer and how much of it is written: once set, it is the last thing
    /// written on the connection.
    answer: Option<(Vec<u8>, usize)>,
}

impl<T> ParseErrorAnswers<T> {
    /// Wraps a fresh connection's socket; `head_limit` is hyper's `max_buf_size`.
    pub fn new(inner: T, head_limit: usize) -> Self {
        Self {
            inner,
            head_limit,
            at_boundary: true,
            answer: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> ParseErrorAnswers<T> {
    /// Writes what is left of the replacement answer, if any.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.answer {
            if *written == answer.len() {
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes the write over if it is hyper's parse-error answer (or comes after it): returns
    /// the byte count to report, the answer being sent instead.
    fn take_over(&mut self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Option<usize> {
        let total = bufs.iter().map(|buf| buf.len()).sum();
        if self.answer.is_none() {
            if !self.at_boundary {
                return None;
            }
            // A head alone: one non-empty buffer.
            let mut non_empty = bufs.iter().filter(|buf| !buf.is_empty());
            let head = non_empty.next()?;
            if non_empty.next().is_some() {
                return None;
            }
            self.answer = Some((replacement(head, self.head_limit)?, 0));
        }
        // hyper writes nothing after its answer; anything else would be dropped with the
        // connection anyway. Start sending: flush and shutdown finish what is left.
        let _ = self.poll_answer(cx);
        Some(total)
    }

    /// Passes a write through, noting that a response has started.
    fn passed(&mut self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.at_boundary = false;
        }
        written
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ParseErrorAnswers<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ParseErrorAnswers<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(total) = self.take_over(cx, &[io::IoSlice::new(buf)]) {
            return Poll::Ready(Ok(total));
        }
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.passed(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(total) = self.take_over(cx, bufs) {
            return Poll::Ready(Ok(total));
        }
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.passed(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_answer(cx))?;
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.at_boundary = true;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_answer(cx))?;
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use tokio::io::AsyncWriteExt;

    use super::*;

    const HEAD_LIMIT: usize = 64 * 1024;
    const DATE: &str = "Tue, 01 Dec 2026 08:48:43 GMT";

    /// hyper's own answer to an unparsable request, as it writes it.
    fn bare(status_line: &str) -> Vec<u8> {
        format!("{status_line}\r\nconnection: close\r\ncontent-length: 0\r\ndate: {DATE}\r\n\r\n")
            .into_bytes()
    }

    /// A socket that takes at most `step` bytes a write, and is not ready every other call.
    #[derive(Default)]
    struct Trickle {
        written: Vec<u8>,
        step: usize,
        calls: usize,
        shut: bool,
    }

    impl Trickle {
        fn new(step: usize) -> Self {
            Self {
                step,
                ..Self::default()
            }
        }

        fn not_ready(&mut self, cx: &mut Context<'_>) -> bool {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                cx.waker().wake_by_ref();
                return true;
            }
            false
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            assert!(!self.shut, "write after shutdown");
            if self.not_ready(cx) {
                return Poll::Pending;
            }
            let n = buf.len().min(self.step);
            self.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            assert!(!self.shut, "write after shutdown");
            if self.not_ready(cx) {
                return Poll::Pending;
            }
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.step - n);
                self.written.extend_from_slice(&buf[..take]);
                n += take;
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.shut = true;
            Poll::Ready(Ok(()))
        }
    }

    /// Writes `parts` as hyper does: vectored, going on after partial writes.
    async fn send(socket: &mut ParseErrorAnswers<Trickle>, parts: &[&[u8]]) {
        let total: usize = parts.iter().map(|part| part.len()).sum();
        let mut done = 0;
        while done < total {
            let mut rest = done;
            let slices: Vec<IoSlice<'_>> = parts
                .iter()
                .filter_map(|part| {
                    let start = rest.min(part.len());
                    rest -= start;
                    (start < part.len()).then(|| IoSlice::new(&part[start..]))
                })
                .collect();
            done += socket.write_vectored(&slices).await.expect("write");
        }
    }

    /// The status line, headers (lower-cased names) and body of one answer.
    fn parse(answer: &[u8]) -> (String, Vec<(String, String)>, serde_json::Value) {
        let text = std::str::from_utf8(answer).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line").to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|line| line.split_once(": ").expect("a header"))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.parse().ok())
            .expect("content-length");
        assert_eq!(length, body.len(), "{text}");
        (
            status_line,
            headers,
            serde_json::from_str(body).expect("JSON body"),
        )
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    fn assert_aws_answer(answer: &[u8], status_line: &str, code: &str) {
        let (line, headers, body) = parse(answer);
        assert_eq!(line, status_line);
        let request_id = header(&headers, "x-amzn-requestid").expect("request id");
        assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
        assert_eq!(header(&headers, "x-amzn-errortype"), Some(code));
        assert_eq!(header(&headers, "connection"), Some("close"));
        assert_eq!(header(&headers, "date"), Some(DATE));
        assert_eq!(
            header(&headers, "content-type"),
            Some(aws_json::CONTENT_TYPE)
        );
        assert_eq!(body["__type"], code);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    #[tokio::test]
    async fn a_bare_answer_becomes_an_aws_error_through_a_trickling_socket() {
        let head = bare("HTTP/1.1 400 Bad Request");
        let mut socket = ParseErrorAnswers::new(Trickle::new(7), HEAD_LIMIT);
        // hyper hears that its whole head was written, in one call.
        assert_eq!(socket.write(&head).await.expect("write"), head.len());
        socket.shutdown().await.expect("shutdown");
        assert!(socket.inner.shut);
        assert_aws_answer(
            &socket.inner.written,
            "HTTP/1.1 400 Bad Request",
            "SerializationException",
        );
    }

    #[tokio::test]
    async fn vectored_bare_answers_become_aws_errors() {
        for (status_line, code) in [
            ("HTTP/1.1 400 Bad Request", "SerializationException"),
            ("HTTP/1.1 414 URI Too Long", "UriTooLong"),
            (
                "HTTP/1.1 431 Request Header Fields Too Large",
                "RequestHeaderFieldsTooLarge",
            ),
        ] {
            let head = bare(status_line);
            let mut socket = ParseErrorAnswers::new(Trickle::new(5), HEAD_LIMIT);
            let slices = [IoSlice::new(&head), IoSlice::new(&[])];
            let written = socket.write_vectored(&slices).await.expect("write");
            assert_eq!(written, head.len());
            socket.flush().await.expect("flush");
            assert_aws_answer(&socket.inner.written, status_line, code);
            socket.shutdown().await.expect("shutdown");
        }
    }

    #[tokio::test]
    async fn service_responses_pass_untouched_and_the_next_head_is_checked() {
        let first_head = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-requestid: 5d1b\r\ncontent-length: 2\r\n\r\n";
        let second_head =
            b"HTTP/1.1 400 Bad Request\r\nx-amzn-requestid: 77aa\r\ncontent-length: 0\r\n\r\n";
        let mut socket = ParseErrorAnswers::new(Trickle::new(9), HEAD_LIMIT);
        send(&mut socket, &[first_head, b"{}"]).await;
        socket.flush().await.expect("flush");
        // A head alone, as a flattened write, but with a request id: Sluice's own.
        send(&mut socket, &[second_head]).await;
        socket.flush().await.expect("flush");
        let expected = [&first_head[..], b"{}", &second_head[..]].concat();
        assert_eq!(socket.inner.written, expected);
        // hyper's answer after them, on a kept-alive connection, is still recognised.
        let head = bare("HTTP/1.1 400 Bad Request");
        send(&mut socket, &[&head]).await;
        socket.shutdown().await.expect("shutdown");
        assert_eq!(socket.inner.written[..expected.len()], expected[..]);
        assert_aws_answer(
            &socket.inner.written[expected.len()..],
            "HTTP/1.1 400 Bad Request",
            "SerializationException",
        );
    }

    #[tokio::test]
    async fn bytes_that_are_not_a_bare_answer_at_a_response_start_pass_untouched() {
        let service_head =
            b"HTTP/1.1 200 OK\r\nx-amzn-requestid: 5d1b\r\ncontent-length: 78\r\n\r\n";
        let lookalike = bare("HTTP/1.1 400 Bad Request");
        let mut socket = ParseErrorAnswers::new(Trickle::new(4), HEAD_LIMIT);
        // Inside a response (no flush since its head), the bytes of a bare head are body.
        send(&mut socket, &[service_head]).await;
        send(&mut socket, &[&lookalike]).await;
        socket.flush().await.expect("flush");
        let mut expected = [&service_head[..], &lookalike].concat();
        // At a response start, hyper's other heads pass: 100 Continue, a head with a body.
        for other in [
            &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            send(&mut socket, &[other]).await;
            socket.flush().await.expect("flush");
            expected.extend_from_slice(other);
        }
        assert_eq!(socket.inner.written, expected);
    }
}
