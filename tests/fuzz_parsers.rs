//! Every parser on its own, fed grammar-aware random input: the filter pattern language (parse
//! and match), SigV4 (`Authorization` header and presigned query), ARNs, pagination tokens,
//! policy documents, rest-json routing and query decoding, and model validation.
//!
//! Inputs are built from each language's own tokens mixed with arbitrary characters, so that
//! most of them get deep into the parser instead of failing on the first byte. The properties:
//! no panic, an answer for every input (a watchdog fails a run that stops making progress,
//! naming the input), outputs bounded by the input, and round trips where a format has them.
//!
//! Runs are seeded and the seed is printed: `SLUICE_FUZZ_SEED=<seed>` replays one,
//! `SLUICE_FUZZ_CASES=<n>` sets the number of cases per parser (the default keeps the suite
//! short in a debug build). A long run:
//!
//! ```text
//! SLUICE_FUZZ_CASES=2000000 cargo test --release --test fuzz_parsers -- --nocapture
//! ```

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use sluice::arn::{self, Arn};
use sluice::policy::{Decision, PolicyDocument, Request};
use sluice::protocol::model::{Protocol, ServiceModel};
use sluice::protocol::rest_json::{self, Router};
use sluice::protocol::sigv4::{self, RequestParts};
use sluice::protocol::{aws_json, IncomingRequest};
use sluice::services::logs::pattern::{FilterPattern, MAX_PATTERN_CHARS};
use sluice::token::{TokenError, TokenSigner, TOKEN_LIFETIME_MILLIS};

// ---------------------------------------------------------------------------------------------
// The runner: cases and seed from the environment, a watchdog for inputs that never finish.

/// How long one input may go without an answer before the run is failed. Generous: a debug
/// build answers in microseconds; only a loop that never ends comes near it.
const STALL_LIMIT: Duration = Duration::from_secs(60);

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    match text.trim().parse() {
        Ok(number) => Some(number),
        Err(_) => panic!("{name} must be a number, got {text:?}"),
    }
}

/// The seed of this run: `SLUICE_FUZZ_SEED`, else a fresh one, so that every run (CI's too)
/// explores new inputs and any failure can be replayed from the printed seed.
fn run_seed() -> u64 {
    env_number("SLUICE_FUZZ_SEED").unwrap_or_else(rand::random)
}

/// Fails the process if the current input takes longer than [`STALL_LIMIT`], printing it: a
/// hang otherwise shows up only as a test that never ends.
struct Watchdog {
    done: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
    current: Arc<Mutex<String>>,
}

impl Watchdog {
    fn start(name: &'static str, seed: u64) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicU64::new(0));
        let current = Arc::new(Mutex::new(String::new()));
        let (thread_done, thread_progress, thread_current) =
            (done.clone(), progress.clone(), current.clone());
        std::thread::spawn(move || {
            let (mut seen, mut since) = (0, Instant::now());
            while !thread_done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = thread_progress.load(Ordering::Relaxed);
                if now != seen {
                    (seen, since) = (now, Instant::now());
                } else if since.elapsed() > STALL_LIMIT {
                    let input = thread_current
                        .lock()
                        .map(|text| text.clone())
                        .unwrap_or_default();
                    eprintln!(
                        "fuzz {name}: no answer within {STALL_LIMIT:?} (seed {seed}) for input {input}"
                    );
                    std::process::exit(101);
                }
            }
        });
        Self {
            done,
            progress,
            current,
        }
    }

    fn feed(&self, input: &impl Debug) {
        if let Ok(mut current) = self.current.lock() {
            current.clear();
            std::fmt::Write::write_fmt(&mut *current, format_args!("{input:?}")).ok();
        }
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Runs `property` on `SLUICE_FUZZ_CASES` (else `default_cases`) inputs from `strategy`, with a
/// printed seed; a failure is shrunk by proptest and reported with the seed to replay it.
fn fuzz<S>(
    name: &'static str,
    default_cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let seed = run_seed();
    let cases = env_number("SLUICE_FUZZ_CASES")
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(default_cases);
    eprintln!("fuzz {name}: {cases} cases, seed {seed} (replay: SLUICE_FUZZ_SEED={seed})");
    let mut key = [0u8; 32];
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let watchdog = Watchdog::start(name, seed);
    let started = Instant::now();
    let result = runner.run(&strategy, |input| {
        watchdog.feed(&input);
        property(input)
    });
    drop(watchdog);
    if let Err(err) = result {
        panic!("fuzz {name} failed (replay: SLUICE_FUZZ_SEED={seed}): {err}");
    }
    eprintln!(
        "fuzz {name}: {cases} cases passed in {:.1?}",
        started.elapsed()
    );
}

/// Counts how many inputs a parser accepted, to check that the generator gets past the first
/// byte often enough to exercise everything behind it.
#[derive(Default)]
struct Accepted {
    seen: std::cell::Cell<u64>,
    accepted: std::cell::Cell<u64>,
}

impl Accepted {
    fn count(&self, accepted: bool) {
        self.seen.set(self.seen.get() + 1);
        self.accepted.set(self.accepted.get() + u64::from(accepted));
    }

    /// Asserts that at least `percent` of the inputs were accepted (and that some were not).
    fn assert_at_least(&self, name: &str, percent: u64) {
        let (seen, accepted) = (self.seen.get(), self.accepted.get());
        eprintln!("fuzz {name}: {accepted} of {seen} inputs accepted");
        if seen >= 200 {
            assert!(
                accepted * 100 >= seen * percent && accepted < seen,
                "fuzz {name}: {accepted} of {seen} accepted; the generator no longer gets deep"
            );
        }
    }
}

/// Text made of a language's `tokens` and of arbitrary characters, `0..max` pieces long.
fn soup(tokens: &'static [&'static str], max: usize) -> impl Strategy<Value = String> + Clone {
    let piece = prop_oneof![
        6 => prop::sample::select(tokens).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
        1 => prop::sample::select(&[" ", "  ", "\t", "\n"][..]).prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..max).prop_map(|pieces| pieces.concat())
}

// ---------------------------------------------------------------------------------------------
// The filter pattern language.

const PATTERN_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "$.",
    "$",
    ".",
    "=",
    "!=",
    "!",
    "&",
    "&&",
    "|",
    "||",
    "<",
    "<=",
    ">",
    ">=",
    "\"",
    "%",
    "?",
    "-",
    "...",
    ",",
    "*",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "NOT",
    "EXISTS",
    "a",
    "b",
    "level",
    "ERROR",
    "WARN",
    "1",
    "0",
    "-1.5",
    "1e308",
    "NaN",
    "[0]",
    "[1]",
    "[18446744073709551616]",
    "\\",
    "^",
    "$",
    "{2,3}",
    "{1000}",
    "\\d",
    "\\w",
    "+",
    "é",
    "\u{1F600}",
    "#",
    ":",
    "@",
    "/",
    ";",
    "_",
];

/// A pattern that is often valid: a JSON condition tree, a space-delimited list, terms or a
/// regex, with the soup around it to break it in every place.
fn near_valid_pattern() -> impl Strategy<Value = String> {
    let selector = prop::sample::select(&["$.a", "$.level", "$.b[0]", "$.a.b", "$[1]"][..]);
    let value = prop::sample::select(
        &[
            "1",
            "\"ERROR\"",
            "ERR*",
            "%^E[a-z]+%",
            "-2.5",
            "\"a b\"",
            "*",
        ][..],
    );
    let op = prop::sample::select(&["=", "!=", "<", "<=", ">", ">="][..]);
    let test = prop_oneof![
        (selector.clone(), op, value).prop_map(|(s, o, v)| format!("{s} {o} {v}")),
        selector.clone().prop_map(|s| format!("{s} IS NULL")),
        selector.prop_map(|s| format!("{s} NOT EXISTS")),
    ];
    let expression = test.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("({e})")),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|es| es.join(" && ")),
            prop::collection::vec(inner, 2..4).prop_map(|es| es.join(" || ")),
        ]
    });
    let field = prop::sample::select(
        &[
            "...",
            "ip",
            "status = 4*",
            "bytes > 1000",
            "a = 1 || a = 2",
            "s = %^5[0-9]{2}$%",
            "x != \"y\"",
        ][..],
    );
    prop_oneof![
        expression.prop_map(|e| format!("{{ {e} }}")),
        prop::collection::vec(field, 1..12).prop_map(|fs| format!("[{}]", fs.join(", "))),
        soup(&["ERROR", "?WARN", "-DEBUG", "\"a phrase\"", "x:y", "*"], 6),
        soup(
            &["a", "[a-z]", "^", "$", "\\d", "{1,3}", "|", "+", "*", "."],
            10
        )
        .prop_map(|r| format!("%{r}%")),
    ]
}

fn pattern_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => soup(PATTERN_TOKENS, 48),
        3 => near_valid_pattern(),
        2 => (near_valid_pattern(), soup(PATTERN_TOKENS, 3), any::<prop::sample::Index>())
            .prop_map(|(pattern, noise, at)| {
                let cut = pattern
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(at.index(pattern.chars().count().max(1)))
                    .unwrap_or(pattern.len());
                format!("{}{noise}{}", &pattern[..cut], &pattern[cut..])
            }),
        1 => prop::collection::vec(prop::sample::select(&["(", "[", "{", "...,", "&&"][..]), 0..600)
            .prop_map(|pieces| format!("{{ {} }}", pieces.concat())),
    ]
}

const MESSAGE_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"level\"",
    "\"a\"",
    "\"b\"",
    ":",
    ",",
    "\"ERROR\"",
    "1",
    "-2.5",
    "null",
    "true",
    "false",
    "ERROR",
    "WARN",
    "x",
    "404",
    "503",
    "\"",
    "é",
];

fn message() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => soup(MESSAGE_TOKENS, 32),
        1 => Just(r#"{"level":"ERROR","a":1,"b":[1,{"c":null}]}"#.to_owned()),
        1 => (1..2000usize).prop_map(|n| "x ".repeat(n)),
    ]
}

#[test]
fn filter_patterns_parse_and_match_within_bounds() {
    let accepted = Accepted::default();
    fuzz(
        "filter pattern",
        3000,
        (pattern_text(), prop::collection::vec(message(), 0..4)),
        |(text, messages)| {
            let parsed = FilterPattern::parse(&text);
            prop_assert_eq!(&parsed, &FilterPattern::parse(&text), "not deterministic");
            accepted.count(parsed.is_ok());
            match parsed {
                Ok(pattern) => {
                    prop_assert!(text.chars().count() <= MAX_PATTERN_CHARS);
                    // The parsed form is proportional to the text: nothing is expanded.
                    let size = format!("{pattern:?}").len();
                    prop_assert!(size <= 64 * text.len() + 64, "{size} for {text:?}");
                    for message in &messages {
                        let _ = pattern.matches(message);
                    }
                }
                Err(err) => {
                    let message = err.to_string();
                    prop_assert!(!message.is_empty());
                    prop_assert!(message.len() <= text.len() + 100);
                }
            }
            Ok(())
        },
    );
    accepted.assert_at_least("filter pattern", 15);
}

// ---------------------------------------------------------------------------------------------
// SigV4.

const AUTHORIZATION_TOKENS: &[&str] = &[
    "AWS4-HMAC-SHA256",
    "AWS4-HMAC-SHA1",
    " ",
    ", ",
    ",",
    "=",
    "/",
    ";",
    "Credential=",
    "SignedHeaders=",
    "Signature=",
    "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
    "AKIDEXAMPLE",
    "20150830",
    "us-east-1",
    "aws4_request",
    "host",
    "host;x-amz-date",
    "x-amz-date",
    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    "0123456789abcdef",
];

const QUERY_TOKENS: &[&str] = &[
    "X-Amz-Algorithm=",
    "AWS4-HMAC-SHA256",
    "&",
    "=",
    "X-Amz-Credential=",
    "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request",
    "X-Amz-Date=",
    "20150830T123600Z",
    "99991231T235959Z",
    "X-Amz-Expires=",
    "604800",
    "18446744073709551616",
    "X-Amz-SignedHeaders=",
    "host",
    "host%3Bx-amz-date",
    "X-Amz-Signature=",
    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    "X-Amz-Security-Token=",
    "X-Amz-Content-Sha256=UNSIGNED-PAYLOAD",
    "%",
    "%ZZ",
    "%2",
    "+",
    "a",
];

const DATE_VALUES: &[&str] = &[
    "20150830T123600Z",
    "99991231T235959Z",
    "00000101T000000Z",
    "20150830T123600",
    "2015-08-30T12:36:00Z",
    "Sun, 30 Aug 2015 12:36:00 GMT",
    "Sun, 31 Dec 9999 23:59:59 GMT",
    "",
];

const PATH_TOKENS: &[&str] = &[
    "/", "//", ".", "..", "a", "%2F", "%", "%ZZ", "é", "~", "+", "%20",
];

#[derive(Debug, Clone)]
struct WireRequest {
    method: String,
    raw_path: String,
    raw_query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl WireRequest {
    fn parts<'a>(&'a self, headers: &'a [(&'a str, &'a str)]) -> RequestParts<'a> {
        RequestParts {
            method: &self.method,
            raw_path: &self.raw_path,
            raw_query: &self.raw_query,
            headers,
            body: &self.body,
        }
    }

    fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }
}

/// A request signed (or nearly) in either form, each part valid or broken, so that parsing
/// gets to every check.
fn signed_looking_request() -> impl Strategy<Value = WireRequest> {
    let credential = (
        part(&["AKIDEXAMPLE", ""], AUTHORIZATION_TOKENS),
        part(&["20150830", "20150831", "2015083"], AUTHORIZATION_TOKENS),
        part(&["us-east-1", ""], AUTHORIZATION_TOKENS),
        part(&["service", "logs", ""], AUTHORIZATION_TOKENS),
        part(&["aws4_request", "aws5_request"], AUTHORIZATION_TOKENS),
        how_many(5),
    )
        .prop_map(|(key, date, region, service, terminator, n)| {
            [key, date, region, service, terminator][..n].join("/")
        });
    let fields = (
        any::<bool>(),
        part(
            &["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"],
            AUTHORIZATION_TOKENS,
        ),
        credential,
        part(
            &[
                "host;x-amz-date",
                "host",
                "x-amz-date",
                "host;x-missing",
                "HOST",
            ],
            AUTHORIZATION_TOKENS,
        ),
        part(
            &[
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                "5FA00FA31553B73EBF1942676E86291E8372FF2A2260956D9B8AAE1D763FBF31",
                "5fa00fa3",
                "",
            ],
            AUTHORIZATION_TOKENS,
        ),
        part(&["20150830T123600Z"], DATE_VALUES),
        prop::option::of(part(&["300", "604800", "604801", "-1"], QUERY_TOKENS)),
        prop::collection::vec(prop::bool::weighted(0.9), 6),
        soup(PATH_TOKENS, 6),
    );
    fields.prop_map(
        |(presigned, algorithm, credential, signed, signature, date, expires, keep, path)| {
            let mut headers = vec![("Host".to_owned(), "example.amazonaws.com".to_owned())];
            let mut query = Vec::new();
            if presigned {
                let encode = |text: &str| utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
                let pairs = [
                    ("X-Amz-Algorithm", algorithm),
                    ("X-Amz-Credential", encode(&credential)),
                    ("X-Amz-Date", date),
                    ("X-Amz-SignedHeaders", encode(&signed)),
                    ("X-Amz-Signature", signature),
                ];
                for (index, (name, value)) in pairs.into_iter().enumerate() {
                    if index == 0 || keep[index] {
                        query.push(format!("{name}={value}"));
                    }
                }
                if let Some(expires) = expires {
                    query.push(format!("X-Amz-Expires={expires}"));
                }
            } else {
                let mut components = Vec::new();
                for (index, component) in [
                    format!("Credential={credential}"),
                    format!("SignedHeaders={signed}"),
                    format!("Signature={signature}"),
                ]
                .into_iter()
                .enumerate()
                {
                    if keep[index] {
                        components.push(component);
                    }
                }
                headers.push((
                    "Authorization".to_owned(),
                    format!("{algorithm} {}", components.join(", ")),
                ));
                if keep[3] {
                    headers.push(("X-Amz-Date".to_owned(), date));
                }
            }
            if keep[4] {
                headers.push((
                    "X-Amz-Content-Sha256".to_owned(),
                    "UNSIGNED-PAYLOAD".to_owned(),
                ));
            }
            WireRequest {
                method: "POST".to_owned(),
                raw_path: format!("/{path}"),
                raw_query: query.join("&"),
                headers,
                body: Vec::new(),
            }
        },
    )
}

fn wire_request() -> impl Strategy<Value = WireRequest> {
    prop_oneof![1 => soup_request(), 3 => signed_looking_request()]
}

fn soup_request() -> impl Strategy<Value = WireRequest> {
    let header = prop_oneof![
        soup(AUTHORIZATION_TOKENS, 24).prop_map(|v| ("Authorization".to_owned(), v)),
        prop::sample::select(DATE_VALUES).prop_map(|v| ("X-Amz-Date".to_owned(), v.to_owned())),
        prop::sample::select(DATE_VALUES).prop_map(|v| ("Date".to_owned(), v.to_owned())),
        soup(&["example.amazonaws.com", ":", "443", " "], 3).prop_map(|v| ("Host".to_owned(), v)),
        soup(&["UNSIGNED-PAYLOAD", "e3b0c442", "98fc1c14"], 3)
            .prop_map(|v| ("X-Amz-Content-Sha256".to_owned(), v)),
        (
            prop::sample::select(
                &[
                    "x-amz-target",
                    "X-Amz-Security-Token",
                    "x-a",
                    "content-type"
                ][..]
            ),
            soup(&["a", " ", "Logs.PutLogEvents"], 4)
        )
            .prop_map(|(n, v)| (n.to_owned(), v)),
    ];
    (
        prop::sample::select(&["GET", "POST", "PUT", "DELETE", ""][..]),
        soup(PATH_TOKENS, 12),
        soup(QUERY_TOKENS, 24),
        prop::collection::vec(header, 0..6),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(method, path, query, headers, body)| WireRequest {
            method: method.to_owned(),
            raw_path: path,
            raw_query: query,
            headers,
            body,
        })
}

fn instant(seconds: i64) -> time::OffsetDateTime {
    // Every instant the `time` crate can hold without its `large-dates` feature.
    let clamped = seconds.clamp(-377_705_116_800, 253_402_300_799);
    time::OffsetDateTime::from_unix_timestamp(clamped).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[test]
fn sigv4_parses_any_request() {
    let accepted = Accepted::default();
    fuzz(
        "sigv4 parse",
        3000,
        (wire_request(), any::<i64>()),
        |(request, now)| {
            let headers = request.header_refs();
            let parts = request.parts(&headers);
            let parsed = sigv4::parse(&parts);
            accepted.count(parsed.is_ok());
            match parsed {
                Ok(parsed) => {
                    prop_assert!(parsed.signed_headers.iter().any(|name| name == "host"));
                    prop_assert_eq!(parsed.signature.len(), 64);
                    let canonical = sigv4::canonical_request(&parts, &parsed);
                    let _ = sigv4::string_to_sign(&canonical, &parsed);
                    if let Err(err) = sigv4::verify(&parts, &parsed, "secret", instant(now)) {
                        let (code, status, _) = err.aws_error();
                        prop_assert!(!code.is_empty() && (400..500).contains(&status));
                    }
                }
                Err(err) => {
                    let (code, status, message) = err.aws_error();
                    prop_assert!(!code.is_empty() && (400..500).contains(&status));
                    prop_assert!(!message.is_empty());
                }
            }
            Ok(())
        },
    );
    accepted.assert_at_least("sigv4 parse", 2);
}

/// A request signed as a client signs it verifies, in either form; changing any signed part
/// afterwards makes it fail.
#[test]
fn sigv4_signed_requests_verify_and_tampering_is_refused() {
    let value = soup(
        &["a", "B", " ", "  ", "é", "%", "/", "=", "&", ",", "\t"],
        8,
    );
    fuzz(
        "sigv4 sign-verify",
        1500,
        (
            any::<bool>(),
            soup(PATH_TOKENS, 6),
            prop::collection::vec((soup(&["k", "K", "-", "%2F", "é"], 3), value.clone()), 0..4),
            value,
            prop::collection::vec(any::<u8>(), 0..32),
            0i64..2_000_000_000,
        ),
        |(presigned, path, pairs, extra_header, body, seconds)| {
            let now = instant(seconds);
            let date = format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            );
            let scope = format!("AKID/{}/us-east-1/logs/aws4_request", &date[..8]);
            let encode = |text: &str| utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
            let mut query: Vec<String> = pairs
                .iter()
                .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
                .collect();
            let mut headers = vec![
                ("Host".to_owned(), "example.amazonaws.com".to_owned()),
                ("X-Extra".to_owned(), extra_header),
            ];
            if presigned {
                query.extend([
                    "X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned(),
                    format!("X-Amz-Credential={}", encode(&scope)),
                    format!("X-Amz-Date={date}"),
                    "X-Amz-Expires=300".to_owned(),
                    "X-Amz-SignedHeaders=host%3Bx-extra".to_owned(),
                ]);
            } else {
                headers.push(("X-Amz-Date".to_owned(), date.clone()));
            }
            let path = format!("/{path}");
            let build = |signature: &str, headers: &[(String, String)], query: &[String]| {
                let mut headers = headers.to_vec();
                let mut query = query.to_vec();
                if presigned {
                    query.push(format!("X-Amz-Signature={signature}"));
                } else {
                    headers.push((
                        "Authorization".to_owned(),
                        format!(
                            "AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host;x-amz-date;x-extra, Signature={signature}"
                        ),
                    ));
                }
                WireRequest {
                    method: "POST".to_owned(),
                    raw_path: path.clone(),
                    raw_query: query.join("&"),
                    headers,
                    body: body.clone(),
                }
            };
            let unsigned = build(&"0".repeat(64), &headers, &query);
            let refs = unsigned.header_refs();
            let parsed = sigv4::parse(&unsigned.parts(&refs))
                .map_err(|err| TestCaseError::fail(format!("own request refused: {err}")))?;
            let signature = sigv4::signature(&unsigned.parts(&refs), &parsed, "secret");
            let signed = build(&signature, &headers, &query);
            let refs = signed.header_refs();
            let parts = signed.parts(&refs);
            let parsed = sigv4::parse(&parts)
                .map_err(|err| TestCaseError::fail(format!("signed request refused: {err}")))?;
            prop_assert_eq!(sigv4::verify(&parts, &parsed, "secret", now), Ok(()));
            prop_assert!(sigv4::verify(&parts, &parsed, "other", now).is_err());

            let mut tampered_headers = headers.clone();
            tampered_headers[1].1.push('!');
            let tampered = build(&signature, &tampered_headers, &query);
            let refs = tampered.header_refs();
            let parts = tampered.parts(&refs);
            let parsed =
                sigv4::parse(&parts).map_err(|err| TestCaseError::fail(err.to_string()))?;
            prop_assert_eq!(
                sigv4::verify(&parts, &parsed, "secret", now),
                Err(sigv4::SigV4Error::Mismatch)
            );
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// ARNs.

const ARN_TOKENS: &[&str] = &[
    "arn",
    ":",
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "logs",
    "kinesis",
    "iam",
    "us-east-1",
    "cn-north-1",
    "123456789012",
    "/",
    "*",
    "stream/s",
    "destination:d",
    "role/r",
    "",
];

/// A valid or broken value for one part: mostly the first of `values` (meant to be valid, so
/// that whole inputs are often valid), else another of them, else noise.
fn part(values: &'static [&'static str], noise: &'static [&'static str]) -> BoxedStrategy<String> {
    let first = values.first().copied().unwrap_or_default().to_owned();
    prop_oneof![
        8 => Just(first),
        1 => prop::sample::select(values).prop_map(str::to_owned),
        1 => soup(noise, 3),
    ]
    .boxed()
}

/// Usually `all`, sometimes fewer.
fn how_many(all: usize) -> impl Strategy<Value = usize> {
    prop_oneof![6 => Just(all), 1 => 1..=all]
}

fn arn_text() -> impl Strategy<Value = String> {
    let parts = (
        part(&["arn", "ARN", ""], ARN_TOKENS),
        part(
            &["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "foo"],
            ARN_TOKENS,
        ),
        part(&["logs", "kinesis", "iam", ""], ARN_TOKENS),
        part(&["us-east-1", "cn-north-1", ""], ARN_TOKENS),
        part(&["123456789012", "", "*"], ARN_TOKENS),
        part(
            &["stream/s", "destination:d:e", "role/r", "", "*"],
            ARN_TOKENS,
        ),
        how_many(6),
    );
    prop_oneof![
        1 => soup(ARN_TOKENS, 16),
        3 => parts.prop_map(|(a, b, c, d, e, f, n)| [a, b, c, d, e, f][..n].join(":")),
    ]
}

#[test]
fn arns_split_and_join_back() {
    let accepted = Accepted::default();
    fuzz("arn", 3000, arn_text(), |text| {
        let parsed = Arn::parse(&text);
        accepted.count(parsed.is_some());
        if let Some(arn) = parsed {
            let joined = format!(
                "arn:{}:{}:{}:{}:{}",
                arn.partition, arn.service, arn.region, arn.account, arn.resource
            );
            prop_assert_eq!(&joined, &text);
            prop_assert!(!arn.service.is_empty() && !arn.resource.is_empty());
        }
        prop_assert_eq!(
            arn::is_account_id(&text),
            text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
        );
        prop_assert!(["aws", "aws-cn", "aws-us-gov"].contains(&arn::partition(&text)));
        Ok(())
    });
    accepted.assert_at_least("arn", 20);
}

// ---------------------------------------------------------------------------------------------
// Pagination tokens.

fn json_value() -> impl Strategy<Value = Value> {
    // Integers only: floats need not survive a JSON round trip bit for bit.
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        soup(&["a", "\"", "\\", "é", "\u{0}"], 6).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((soup(&["k", "after", "t", "s"], 2), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[test]
fn tokens_round_trip_and_refuse_everything_else() {
    let signer = TokenSigner::new(b"fuzz-key".to_vec());
    let token_text = soup(
        &[
            "eyJzIjp7fSwidCI6MX0",
            ".",
            "AAAA",
            "-",
            "_",
            "=",
            "+",
            "/",
            "a",
            "0",
        ],
        16,
    );
    fuzz(
        "token",
        3000,
        (
            json_value(),
            soup(&["acct", ":", "us-east-1", ":", "op"], 4),
            any::<i64>(),
            any::<i64>(),
            token_text,
            any::<prop::sample::Index>(),
        ),
        |(state, scope, issued, now, garbage, at)| {
            let token = signer.issue(&scope, state.clone(), issued);
            let opened = signer.open(&scope, &token, now);
            let age = i128::from(now) - i128::from(issued);
            if age > i128::from(TOKEN_LIFETIME_MILLIS) {
                prop_assert_eq!(opened, Err(TokenError::Expired));
            } else {
                prop_assert_eq!(opened, Ok(state));
            }
            prop_assert_eq!(signer.issued_at(&token), Some(issued));
            prop_assert_eq!(
                signer.open(&format!("{scope}x"), &token, issued),
                Err(TokenError::Invalid)
            );
            // Any one character changed, and any text not issued here, is refused.
            let mut chars: Vec<char> = token.chars().collect();
            let index = at.index(chars.len());
            chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
            let changed: String = chars.into_iter().collect();
            prop_assert_eq!(
                signer.open(&scope, &changed, issued),
                Err(TokenError::Invalid)
            );
            prop_assert!(signer.open(&scope, &garbage, now).is_err());
            let _ = signer.issued_at(&garbage);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Policy documents.

const POLICY_KEYS: &[&str] = &[
    "Version",
    "Id",
    "Statement",
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "AWS",
    "Service",
    "StringEquals",
    "StringLike",
    "StringNotEquals",
    "ForAnyValue:StringLike",
    "aws:PrincipalAccount",
    "aws:PrincipalOrgID",
    "Bogus",
];

const POLICY_STRINGS: &[&str] = &[
    "2012-10-17",
    "2008-10-17",
    "Allow",
    "Deny",
    "*",
    "111111111111",
    "222222222222",
    "arn:aws:iam::111111111111:root",
    "arn:aws:logs:us-east-1:222222222222:destination:d",
    "arn:aws:logs:*:*:destination:*",
    "logs:PutSubscriptionFilter",
    "logs:*",
    "LOGS:put*",
    "kinesis:PutRecord?",
    "*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?",
    "",
];

/// A JSON document made of the policy language's keys and values, often a valid policy.
fn policy_json() -> impl Strategy<Value = Value> {
    let text = prop::sample::select(POLICY_STRINGS).prop_map(|s| Value::String(s.to_owned()));
    let leaf = prop_oneof![
        4 => text.clone(),
        1 => prop::collection::vec(text, 0..3).prop_map(Value::Array),
        1 => Just(Value::Null),
        1 => any::<i64>().prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec((prop::sample::select(POLICY_KEYS), inner.clone()), 0..5)
                .prop_map(|pairs| {
                    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            prop::collection::vec(inner, 0..3).prop_map(Value::Array),
        ]
    });
    let strings = |values: &'static [&'static str]| {
        prop_oneof![
            prop::sample::select(values).prop_map(|s| json!(s)),
            prop::collection::vec(prop::sample::select(values), 1..3).prop_map(|v| json!(v)),
        ]
    };
    let principal = prop_oneof![
        4 => prop_oneof![
            Just(json!("*")),
            strings(&["*", "111111111111", "222222222222", "arn:aws:iam::111111111111:root"])
                .prop_map(|ids| json!({ "AWS": ids })),
            Just(json!({"Service": "logs.amazonaws.com"})),
        ],
        1 => value.clone(),
    ];
    let actions = prop_oneof![
        4 => strings(&["*", "logs:PutSubscriptionFilter", "logs:*", "LOGS:put*", "kinesis:PutRecord?", "a:*?*?*?*?*?*?*?*?*?*?*?*?"]),
        1 => value.clone(),
    ];
    let resources = prop_oneof![
        4 => strings(&["*", "arn:aws:logs:us-east-1:222222222222:destination:d", "arn:aws:logs:*:*:destination:*", "arn:aws:kinesis:?", ""]),
        1 => value.clone(),
    ];
    let condition = prop_oneof![
        4 => (
            prop::sample::select(&["StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "Bogus"][..]),
            prop::sample::select(&["aws:PrincipalAccount", "aws:PrincipalOrgID"][..]),
            strings(&["111111111111", "2222*", "o-1234567890", "*"]),
        )
            .prop_map(|(operator, key, values)| json!({ operator: { key: values } })),
        1 => value.clone(),
    ];
    let statement = (
        prop::sample::select(&["Allow", "Deny"][..]),
        prop::sample::select(&["Principal", "NotPrincipal"][..]),
        principal,
        prop::sample::select(&["Action", "NotAction"][..]),
        actions,
        prop::sample::select(&["Resource", "NotResource"][..]),
        resources,
        prop::option::of(condition),
    )
        .prop_map(
            |(effect, p, principal, a, action, r, resource, condition)| {
                let mut object = Map::new();
                object.insert("Effect".to_owned(), json!(effect));
                object.insert(p.to_owned(), principal);
                object.insert(a.to_owned(), action);
                object.insert(r.to_owned(), resource);
                if let Some(condition) = condition {
                    object.insert("Condition".to_owned(), condition);
                }
                Value::Object(object)
            },
        );
    prop_oneof![
        1 => value,
        3 => (prop::option::of(prop::sample::select(&["2012-10-17", "2008-10-17", "2012-10-17 "][..])), prop::collection::vec(statement, 0..4))
            .prop_map(|(version, statements)| {
                let mut object = Map::new();
                if let Some(version) = version {
                    object.insert("Version".to_owned(), json!(version));
                }
                object.insert("Statement".to_owned(), Value::Array(statements));
                Value::Object(object)
            }),
    ]
}

#[test]
fn policies_parse_and_evaluate_with_explicit_deny_winning() {
    let deny_all: Value =
        json!({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"});
    let accepted = Accepted::default();
    fuzz(
        "policy",
        2000,
        (
            policy_json(),
            soup(
                &["{", "}", "\"", ":", ",", "[", "]", "Statement", "Effect"],
                12,
            ),
            prop::sample::select(&["111111111111", "222222222222", "333333333333"][..]),
            prop::sample::select(&["logs:PutSubscriptionFilter", "kinesis:PutRecord", "x"][..]),
            prop::sample::select(
                &[
                    "arn:aws:logs:us-east-1:222222222222:destination:d",
                    "arn:aws:kinesis:x",
                    "",
                ][..],
            ),
        ),
        |(document, raw_text, account, action, resource)| {
            let _ = PolicyDocument::parse(&raw_text);
            // Half the requests come from a role of the account, half from the account alone.
            let role = format!("arn:aws:iam::{account}:role/writer");
            // A third carry an external ID, a condition key beyond the principal's.
            let external_id = [("cloudtrail:ExternalId", action)];
            let request = Request {
                principal_account: account,
                principal_arn: (resource.len() % 2 == 0).then_some(role.as_str()),
                action,
                resource,
                keys: if resource.len() % 3 == 0 {
                    &external_id[..]
                } else {
                    &[]
                },
            };
            let parsed = PolicyDocument::parse(&document.to_string());
            accepted.count(parsed.is_ok());
            let Ok(policy) = parsed else {
                return Ok(());
            };
            let decision = policy.evaluate(&request);
            prop_assert_eq!(decision, policy.evaluate(&request));
            if policy
                .statements
                .iter()
                .all(|s| s.effect != sluice::policy::Effect::Allow)
            {
                prop_assert_ne!(decision, Decision::Allow);
            }
            let stored =
                serde_json::to_string(&policy).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let restored: PolicyDocument =
                serde_json::from_str(&stored).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&restored, &policy);
            // An explicit Deny of everything wins over whatever the document allows.
            let mut with_deny = document.clone();
            if let Some(Value::Array(statements)) = with_deny.get_mut("Statement") {
                statements.push(deny_all.clone());
                let denied = PolicyDocument::parse(&with_deny.to_string())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(denied.evaluate(&request), Decision::ExplicitDeny);
            }
            Ok(())
        },
    );
    accepted.assert_at_least("policy", 5);
}

// ---------------------------------------------------------------------------------------------
// rest-json routing, query decoding, and model validation.

fn models() -> Vec<(&'static str, ServiceModel)> {
    [
        ("logs", include_str!("../models/logs.json")),
        ("kinesis", include_str!("../models/kinesis.json")),
        ("cloudtrail", include_str!("../models/cloudtrail.json")),
        ("appfabric", include_str!("../models/appfabric.json")),
        (
            "cloudtrail-data",
            include_str!("../models/cloudtrail-data.json"),
        ),
    ]
    .into_iter()
    .map(|(name, json)| {
        (
            name,
            ServiceModel::parse(json).expect("embedded model parses"),
        )
    })
    .collect()
}

/// Every member name of a model, so that random bodies name real members.
fn member_names(model: &ServiceModel) -> Vec<String> {
    let mut names: Vec<String> = model
        .shapes
        .iter()
        .flat_map(|(_, shape)| shape.members.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn body_value(names: Vec<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(i64::MAX),
            Just(i64::MIN),
            any::<i64>()
        ]
        .prop_map(Value::from),
        prop_oneof![Just(1.5e300f64), Just(-0.5), Just(1e-300)].prop_map(Value::from),
        soup(
            &[
                "a",
                "arn:aws:logs:us-east-1:1:x",
                "*",
                "é",
                "%",
                "\u{0}",
                "ENABLED"
            ],
            6
        )
        .prop_map(Value::String),
        (0..1100usize).prop_map(|n| Value::String("x".repeat(n))),
    ];
    let names = Arc::new(names);
    leaf.prop_recursive(5, 64, 6, move |inner| {
        let names = names.clone();
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((any::<prop::sample::Index>(), inner), 0..6).prop_map(
                move |pairs| {
                    Value::Object(
                        pairs
                            .into_iter()
                            .map(|(at, value)| (at.get(&names).clone(), value))
                            .collect(),
                    )
                }
            ),
        ]
    })
}

#[test]
fn json_requests_decode_and_validate() {
    let models = models();
    for (service, model) in models
        .iter()
        .filter(|(_, m)| m.metadata.protocol.as_str().starts_with("json"))
    {
        let operations: Vec<String> = model.operations.keys().cloned().collect();
        let prefix = model.metadata.target_prefix.clone().unwrap_or_default();
        let accepted = Accepted::default();
        fuzz(
            service,
            400,
            (
                prop::sample::select(operations),
                body_value(member_names(model)),
                prop::option::of(soup(&["{", "}", "\"", ":", "[", "1e999999", "-"], 8)),
            ),
            |(operation, body, raw_body)| {
                let body = raw_body.unwrap_or_else(|| body.to_string());
                let mut headers = HeaderMap::new();
                let target = HeaderValue::from_str(&format!("{prefix}.{operation}"))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                headers.insert(HeaderName::from_static("x-amz-target"), target);
                headers.insert(
                    HeaderName::from_static("content-type"),
                    HeaderValue::from_static("application/x-amz-json-1.1"),
                );
                let request = IncomingRequest {
                    method: Method::POST,
                    raw_path: "/".to_owned(),
                    raw_query: String::new(),
                    headers,
                    body: Bytes::from(body),
                };
                let decoded = aws_json::decode(model, &request);
                accepted.count(decoded.is_ok());
                if let Ok((found, mut input)) = decoded {
                    prop_assert_eq!(&found.name, &operation, "{}", service);
                    if let Some(shape) = &found.input {
                        let _ = model.validate_input(&shape.shape, &mut input, Protocol::AwsJson);
                    }
                }
                Ok(())
            },
        );
        accepted.assert_at_least(service, 20);
    }
}

const REST_PATH_TOKENS: &[&str] = &[
    "/",
    "appbundles",
    "ingestions",
    "ingestiondestinations",
    "appauthorizations",
    "tags",
    "PutAuditEvents",
    "b1",
    "arn%3Aaws%3Aappfabric%3Aus-east-1%3A1%3Aappbundle%2Fx",
    "%ZZ",
    "%",
    "connect",
    "user-access-tasks",
    "start",
    "stop",
    "..",
    "é",
    "%2F",
];

#[test]
fn rest_json_routes_decode_and_validate() {
    let models = models();
    for (service, model) in models
        .iter()
        .filter(|(_, m)| m.metadata.protocol.as_str() == "rest-json")
    {
        let router = Router::new(model);
        let mut operations: Vec<(String, String, String)> = model
            .operations
            .values()
            .map(|o| {
                (
                    o.name.clone(),
                    o.http.method.clone(),
                    o.http.request_uri.clone(),
                )
            })
            .collect();
        operations.sort();
        fuzz(
            service,
            400,
            (
                prop::sample::select(operations),
                prop::collection::vec(soup(PATH_TOKENS, 4), 0..4),
                soup(REST_PATH_TOKENS, 10),
                soup(
                    &[
                        "maxResults=",
                        "5",
                        "abc",
                        "&",
                        "nextToken=",
                        "=",
                        "%2",
                        "+",
                        "%20",
                    ],
                    8,
                ),
                body_value(member_names(model)),
            ),
            |((name, method, template), labels, raw_path, raw_query, body)| {
                // Arbitrary paths and queries route to an operation of this model, or to none.
                let query = rest_json::parse_query(&raw_query);
                if let Some((found, _)) = router.route(&method, &raw_path, &query) {
                    prop_assert!(model.operations.contains_key(found), "{}", service);
                }
                // A template filled with encoded labels routes back to its operation, and the
                // labels decode to what was encoded. A `~` first keeps a label from equalling
                // a literal segment of another template.
                let (path_template, _) = template.split_once('?').unwrap_or((&template, ""));
                let mut path = String::new();
                let mut expected = HashMap::new();
                let mut values = labels.iter().cycle();
                for segment in path_template.split('/').filter(|s| !s.is_empty()) {
                    path.push('/');
                    match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(label) => {
                            let value = format!("~{}", values.next().map_or("", String::as_str));
                            path.push_str(
                                &utf8_percent_encode(&value, NON_ALPHANUMERIC).to_string(),
                            );
                            expected.insert(label.trim_end_matches('+').to_owned(), value);
                        }
                        None => path.push_str(segment),
                    }
                }
                let fixed: Vec<(String, String)> = template
                    .split_once('?')
                    .map(|(_, q)| rest_json::parse_query(q))
                    .unwrap_or_default();
                let routed = router.route(&method, &path, &fixed);
                prop_assert_eq!(
                    routed
                        .as_ref()
                        .map(|(found, labels)| (*found, labels.clone())),
                    Some((name.as_str(), expected)),
                    "{} {} {}",
                    service,
                    method,
                    path
                );
                // The whole decode, then validation, on the filled template and a random body.
                let request = IncomingRequest {
                    method: Method::from_bytes(method.as_bytes())
                        .map_err(|e| TestCaseError::fail(e.to_string()))?,
                    raw_path: path,
                    raw_query,
                    headers: HeaderMap::new(),
                    body: Bytes::from(body.to_string()),
                };
                if let Ok((operation, mut input)) = router.decode(model, &request) {
                    if let Some(shape) = &operation.input {
                        let _ = model.validate_input(&shape.shape, &mut input, Protocol::RestJson);
                    }
                }
                Ok(())
            },
        );
    }
}

/// Query pairs encoded as a client encodes them decode back to themselves.
#[test]
fn rest_json_query_pairs_round_trip() {
    let text = soup(
        &["a", " ", "+", "%", "&", "=", "é", "\u{1F600}", "/", "?"],
        6,
    );
    fuzz(
        "rest-json query",
        2000,
        prop::collection::vec((text.clone(), text), 0..5),
        |pairs| {
            let raw = pairs
                .iter()
                .map(|(key, value)| {
                    format!(
                        "{}={}",
                        utf8_percent_encode(key, NON_ALPHANUMERIC),
                        utf8_percent_encode(value, NON_ALPHANUMERIC)
                    )
                })
                .collect::<Vec<_>>()
                .join("&");
            prop_assert_eq!(rest_json::parse_query(&raw), pairs);
            Ok(())
        },
    );
}
