//! Requests that hyper itself cannot parse are answered like every other refusal of Sluice:
//! a request id and an AWS JSON error, with hyper's status. No SDK sends such requests, so
//! they are written by hand over raw TCP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a test waits for an answer that should come at once.
const GENEROUS: Duration = Duration::from_secs(30);

/// One answer, read until the server closed the connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The AWS form: status, request id, `x-amzn-ErrorType`, a JSON body with `__type` and a
    /// message, an exact Content-Length, and the connection closed.
    fn assert_aws_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let request_id = self.header("x-amzn-RequestId").unwrap_or_default();
        assert_eq!(request_id.len(), 36, "a uuid request id: {self:?}");
        assert_eq!(self.header("x-amzn-ErrorType"), Some(code), "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/x-amz-json-1.1"),
            "{self:?}"
        );
        assert_eq!(self.header("connection"), Some("close"), "{self:?}");
        assert_eq!(
            self.header("content-length"),
            Some(self.body.len().to_string().as_str()),
            "{self:?}"
        );
        let body: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {self:?}"));
        assert_eq!(body["__type"], code, "{self:?}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{self:?}"
        );
    }

    fn message(&self) -> String {
        let body: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_default();
        body["message"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends `request` on a new connection and reads everything the server sends until it closes.
/// Sending may fail part way when the server refuses a head before reading all of it; the
/// answer is read all the same.
fn answer_to(request: &[u8]) -> Answer {
    let server = common::shared();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(GENEROUS)).expect("timeout");
    let _ = stream.write_all(request);
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&data).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn host() -> String {
    format!("Host: 127.0.0.1:{}\r\n", common::shared().port)
}

#[test]
fn a_nul_byte_in_a_header_gets_an_aws_error() {
    let request = format!(
        "POST / HTTP/1.1\r\n{}X-Amz-Target: Logs_20140328.DescribeLogGroups\r\nX-Note: a\0b\r\nContent-Length: 2\r\n\r\n{{}}",
        host()
    );
    let answer = answer_to(request.as_bytes());
    answer.assert_aws_error(400, "SerializationException");
    assert!(answer.message().contains("HTTP/1.1"), "{answer:?}");
}

#[test]
fn two_different_content_lengths_get_an_aws_error() {
    let request = format!(
        "POST / HTTP/1.1\r\n{}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}",
        host()
    );
    answer_to(request.as_bytes()).assert_aws_error(400, "SerializationException");
}

#[test]
fn a_70_kib_url_gets_an_aws_error() {
    let request = format!("GET /{} HTTP/1.1\r\n{}\r\n", "a".repeat(70 * 1024), host());
    let answer = answer_to(request.as_bytes());
    // hyper says 414 when the whole head reached its buffer at once, 431 when the buffer
    // filled first: either way its status, in AWS form.
    match answer.status {
        414 => answer.assert_aws_error(414, "UriTooLong"),
        _ => answer.assert_aws_error(431, "RequestHeaderFieldsTooLarge"),
    }
}

#[test]
fn an_oversized_head_gets_an_aws_error() {
    let fields: String = (0..8)
        .map(|n| format!("X-Filler-{n}: {}\r\n", "v".repeat(128 * 1024)))
        .collect();
    let request = format!("GET /_sluice/health HTTP/1.1\r\n{}{fields}\r\n", host());
    let answer = answer_to(request.as_bytes());
    answer.assert_aws_error(431, "RequestHeaderFieldsTooLarge");
    assert!(answer.message().contains("65536 bytes"), "{answer:?}");
}

#[test]
fn a_kept_alive_connection_answers_its_requests_then_the_unparsable_one() {
    let request = format!(
        "GET /_sluice/health HTTP/1.1\r\n{host}\r\nGET /_sluice/health HTTP/1.1\r\n{host}X-Note: a\0b\r\n\r\n",
        host = host()
    );
    let answer = answer_to(request.as_bytes());
    // The first answer is the service's, untouched; the second is in the body read to EOF.
    assert_eq!(answer.status, 200, "{answer:?}");
    let length: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    let health: serde_json::Value =
        serde_json::from_str(&answer.body[..length]).expect("health JSON");
    assert_eq!(health["status"], "ready");
    let rest = &answer.body[length..];
    assert!(rest.starts_with("HTTP/1.1 400 "), "{rest:?}");
    assert!(rest.contains("x-amzn-requestid: "), "{rest:?}");
    assert!(
        rest.contains(r#"{"__type":"SerializationException","message":"#),
        "{rest:?}"
    );
}
