//! What one client, or many, can take from the server: connections, time and memory; and
//! how the HTTP front answers what it refuses. Raw TCP requests here are malformed or stalled
//! on purpose, which real SDKs never do; the strict-mode header check uses a real SDK client.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_cloudwatchlogs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cloudwatchlogs::error::{BoxError, ProvideErrorMetadata};
use common::{fake_authorization, logs_client_with, Server};

/// How long a test waits for something that should happen within a second or two.
const GENEROUS: Duration = Duration::from_secs(30);

/// Starts a server with this configuration file text. The directory comes first so that,
/// bound as `let (_dir, server)`, it outlives the server.
fn server_with(config: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, config).expect("config");
    let path = path.to_str().expect("utf-8").to_owned();
    let server = Server::start(&dir.path().join("data"), &["--config", &path]);
    (dir, server)
}

fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(("127.0.0.1", server.port)).expect("connect")
}

/// A parsed HTTP response.
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

    fn error_type(&self) -> String {
        let body: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", self.body));
        body["__type"].as_str().unwrap_or_default().to_owned()
    }

    /// Every answer of Sluice names its request and says what went wrong in the AWS form.
    fn assert_aws_error(&self, status: u16, error_type: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.error_type(), error_type, "{self:?}");
        assert!(self.header("x-amzn-RequestId").is_some(), "{self:?}");
    }
}

/// Reads one response (head and Content-Length body) from a connection that stays open.
fn read_answer(stream: &mut TcpStream) -> std::io::Result<Answer> {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("closed after {:?}", String::from_utf8_lossy(&data)),
            ));
        }
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Sends a request head (and whatever part of the body is given) and reads the answer
/// without sending the rest.
fn send_head(stream: &mut TcpStream, head: &str, body: &[u8]) -> Answer {
    stream
        .set_read_timeout(Some(GENEROUS))
        .expect("read timeout");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    read_answer(stream).expect("an answer")
}

/// The head of a DescribeLogGroups call, signed well enough for emulator mode.
fn api_head(port: u16, extra: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Amz-Target: Logs_20140328.DescribeLogGroups\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Date: 20260101T000000Z\r\nAuthorization: {}\r\n{extra}\r\n",
        fake_authorization("111111111111", "logs")
    )
}

fn health_request(port: u16) -> String {
    format!("GET /_sluice/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
}

/// Waits until the server closes `stream` (reads end or fail); returns whether it closed
/// within the bound.
fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let start = Instant::now();
    let mut byte = [0u8; 64];
    while start.elapsed() < bound {
        match stream.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn a_request_head_sent_byte_by_byte_is_cut_off() {
    let (_dir, server) = server_with("[limits]\nheader_read_timeout_seconds = 1\n");
    let mut slowloris = connect(&server);
    let head = health_request(server.port);
    slowloris.write_all(b"G").expect("first byte");
    // One byte every 200 ms would take longer than the bound to finish a long head.
    let endless = format!("{}X-Padding: {}", &head[1..head.len() - 2], "p".repeat(500));
    let mut bytes = endless.bytes();
    stream_closed_while_dripping(&mut slowloris, &mut bytes);
    // The server still answers others.
    let mut other = connect(&server);
    assert_eq!(send_head(&mut other, &head, b"").status, 200);
}

fn stream_closed_while_dripping(stream: &mut TcpStream, bytes: &mut impl Iterator<Item = u8>) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let start = Instant::now();
    let mut buffer = [0u8; 64];
    while start.elapsed() < GENEROUS {
        let Some(byte) = bytes.next() else {
            panic!("the whole head was sent without the server closing the connection");
        };
        if stream.write_all(&[byte]).is_err() {
            return;
        }
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => panic!(
                "answered a head still being sent: {:?}",
                String::from_utf8_lossy(&buffer[..n])
            ),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
    panic!("a slow request head kept its connection open for {GENEROUS:?}");
}

#[test]
fn idle_connections_are_closed() {
    let (_dir, server) = server_with("[limits]\nidle_timeout_seconds = 1\n");
    // Kept alive after a request, then silent.
    let mut kept = connect(&server);
    assert_eq!(
        send_head(&mut kept, &health_request(server.port), b"").status,
        200
    );
    // Never a byte.
    let mut silent = connect(&server);
    assert!(
        closed_within(&mut kept, GENEROUS),
        "an idle kept-alive connection stays open"
    );
    assert!(
        closed_within(&mut silent, GENEROUS),
        "a silent connection stays open"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let (_dir, server) = server_with("[limits]\nmax_connections = 8\n");
    let health = health_request(server.port);
    let mut open: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = connect(&server);
            assert_eq!(send_head(&mut stream, &health, b"").status, 200);
            stream
        })
        .collect();
    let mut ninth = connect(&server);
    ninth.write_all(health.as_bytes()).expect("write");
    ninth
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("read timeout");
    let mut byte = [0u8; 1];
    match ninth.read(&mut byte) {
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a ninth connection was served beside eight open ones: {other:?}"),
    }
    // One of the eight leaves: the ninth is served.
    drop(open.pop());
    ninth
        .set_read_timeout(Some(GENEROUS))
        .expect("read timeout");
    assert_eq!(read_answer(&mut ninth).expect("answer").status, 200);
    drop(ninth);
    drop(open);
    // And an SDK client is served afterwards.
    let client = logs_client_with(&server.endpoint, "111111111111", "s");
    client
        .describe_log_groups()
        .send()
        .await
        .expect("served after the crowd left");
}

#[test]
fn an_oversized_content_length_is_refused_before_the_body_is_sent() {
    let (_dir, server) = server_with("");
    let mut stream = connect(&server);
    let head = api_head(server.port, "Content-Length: 100000000\r\n");
    let answer = send_head(&mut stream, &head, b"");
    answer.assert_aws_error(413, "SerializationException");
    assert!(answer.body.contains("8388608"), "{answer:?}");
}

#[test]
fn unauthenticated_requests_are_refused_before_their_body_is_read() {
    let (_dir, server) = server_with("");
    let mut stream = connect(&server);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Amz-Target: Logs_20140328.DescribeLogGroups\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 8388608\r\n\r\n",
        server.port
    );
    // The client holds its 8 MiB body; the answer comes anyway.
    let answer = send_head(&mut stream, &head, b"{");
    answer.assert_aws_error(403, "MissingAuthenticationTokenException");

    // A client that sends its whole body anyway still reads the answer (the body is discarded,
    // not left unread under a reset), and the connection serves its next request.
    let mut stream = connect(&server);
    let head = head.replace("8388608", "1048576");
    let body = vec![b' '; 1_048_576];
    let answer = send_head(&mut stream, &head, &body);
    answer.assert_aws_error(403, "MissingAuthenticationTokenException");
    let next = send_head(&mut stream, &health_request(server.port), b"");
    assert_eq!(next.status, 200);
}

#[test]
fn unknown_keys_in_strict_mode_are_refused_before_the_body_is_read() {
    let (_dir, server) = server_with(STRICT);
    let mut stream = connect(&server);
    let head = api_head(server.port, "Content-Length: 8388608\r\n");
    let answer = send_head(&mut stream, &head, b"{");
    answer.assert_aws_error(400, "UnrecognizedClientException");
}

#[test]
fn a_body_that_does_not_arrive_in_time_is_refused() {
    let (_dir, server) = server_with("[limits]\nbody_read_timeout_seconds = 1\n");
    let mut stream = connect(&server);
    let head = api_head(server.port, "Content-Length: 100\r\n");
    let answer = send_head(&mut stream, &head, b"{\"limit\":");
    answer.assert_aws_error(408, "RequestTimeoutException");
}

#[test]
fn bodies_wait_for_the_in_flight_budget() {
    let (_dir, server) = server_with(
        "[limits]\nmax_body_bytes = 1024\nmax_in_flight_body_bytes = 2048\nbody_read_timeout_seconds = 5\n",
    );
    let head = api_head(server.port, "Content-Length: 2\r\n");
    let holding = api_head(server.port, "Content-Length: 1024\r\n");
    // Two bodies take the whole budget and stall.
    let mut holders: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect(&server);
            stream.write_all(holding.as_bytes()).expect("head");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // A third, small and complete, waits for them.
    let mut third = connect(&server);
    third.write_all(head.as_bytes()).expect("head");
    third.write_all(b"{}").expect("body");
    third
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("read timeout");
    let mut byte = [0u8; 1];
    match third.read(&mut byte) {
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a body was read beyond the in-flight budget: {other:?}"),
    }
    for holder in &mut holders {
        holder.set_read_timeout(Some(GENEROUS)).expect("timeout");
        read_answer(holder)
            .expect("answer")
            .assert_aws_error(408, "RequestTimeoutException");
    }
    third.set_read_timeout(Some(GENEROUS)).expect("timeout");
    assert_eq!(read_answer(&mut third).expect("answer").status, 200);
}

#[test]
fn a_malformed_chunk_is_reported_as_malformed() {
    let (_dir, server) = server_with("");
    let mut stream = connect(&server);
    let head = api_head(server.port, "Transfer-Encoding: chunked\r\n");
    let answer = send_head(&mut stream, &head, b"zz\r\n{}\r\n0\r\n\r\n");
    answer.assert_aws_error(400, "SerializationException");
    assert!(answer.body.contains("malformed"), "{answer:?}");
    assert!(!answer.body.contains("larger than"), "{answer:?}");
}

#[test]
fn a_long_url_is_refused_with_an_aws_error() {
    let (_dir, server) = server_with("");
    let mut stream = connect(&server);
    let path = format!("/{}", "a".repeat(20 * 1024));
    let head = api_head(server.port, "Content-Length: 2\r\n").replacen(
        "POST / ",
        &format!("POST {path} "),
        1,
    );
    let answer = send_head(&mut stream, &head, b"{}");
    answer.assert_aws_error(414, "UriTooLong");
}

#[test]
fn guard_refusals_are_aws_errors() {
    let (_dir, server) = server_with("");
    let mut rebinding = connect(&server);
    let head = api_head(server.port, "Content-Length: 2\r\n").replace(
        &format!("Host: 127.0.0.1:{}", server.port),
        "Host: evil.example",
    );
    send_head(&mut rebinding, &head, b"{}").assert_aws_error(403, "AccessDeniedException");
    let mut origin = connect(&server);
    let head = api_head(
        server.port,
        "Content-Length: 2\r\nOrigin: http://evil.example\r\n",
    );
    send_head(&mut origin, &head, b"{}").assert_aws_error(403, "AccessDeniedException");
    let mut unknown = connect(&server);
    let head = format!(
        "GET /_sluice/nothing HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        server.port
    );
    send_head(&mut unknown, &head, b"").assert_aws_error(404, "UnknownOperationException");
}

const STRICT: &str = r#"
[auth]
mode = "strict"

[[auth.credentials]]
access_key_id = "AKIDLIMITS"
secret_access_key = "limits-secret"
account_id = "123456789012"
"#;

/// A man in the middle: takes `X-Amz-Target` out before the SDK signs, and puts another one
/// in after, so that the operation travels unsigned.
#[derive(Debug)]
struct RetargetAfterSigning(&'static str);

impl Intercept for RetargetAfterSigning {
    fn name(&self) -> &'static str {
        "RetargetAfterSigning"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context.request_mut().headers_mut().remove("x-amz-target");
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-amz-target", self.0);
        Ok(())
    }
}

#[tokio::test]
async fn strict_mode_refuses_unsigned_amz_headers() {
    let (_dir, server) = server_with(STRICT);
    let client = logs_client_with(&server.endpoint, "AKIDLIMITS", "limits-secret");
    client
        .create_log_group()
        .log_group_name("victim")
        .send()
        .await
        .expect("a correctly signed request is served");

    let tampered_config = client
        .config()
        .to_builder()
        .interceptor(RetargetAfterSigning("Logs_20140328.DeleteLogGroup"))
        .build();
    let tampered = aws_sdk_cloudwatchlogs::Client::from_conf(tampered_config);
    let err = tampered
        .create_log_group()
        .log_group_name("victim")
        .send()
        .await
        .expect_err("an unsigned X-Amz-Target is refused");
    assert_eq!(err.code(), Some("IncompleteSignatureException"), "{err:?}");
    assert!(
        err.message()
            .is_some_and(|m| m.contains("not signed") && m.contains("x-amz-target")),
        "{err:?}"
    );
    let groups = client.describe_log_groups().send().await.expect("describe");
    assert!(
        groups
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some("victim")),
        "the log group was not deleted"
    );
}

/// A browser page's STS call from an origin Sluice does not allow is refused in STS's own
/// protocol (XML), so the SDK reads the code, as it reads every other refusal.
#[tokio::test]
async fn guard_refusals_answer_query_clients_in_their_protocol() {
    use aws_sdk_sts::error::ProvideErrorMetadata as _;
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(&common::shared().endpoint)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            common::fresh_account(),
            "x",
            None,
            None,
            "tests",
        ))
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    let refused = sts
        .get_caller_identity()
        .customize()
        .mutate_request(|request| {
            request
                .headers_mut()
                .insert("origin", "http://evil.example");
        })
        .send()
        .await
        .expect_err("an origin the configuration does not name is refused");
    assert_eq!(refused.code(), Some("AccessDeniedException"), "{refused:?}");
    assert_eq!(
        refused
            .raw_response()
            .map(|response| response.status().as_u16()),
        Some(403)
    );
    sts.get_caller_identity()
        .send()
        .await
        .expect("without the Origin header the call is served");
}
