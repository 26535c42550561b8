//! Randomised requests against every operation of every served service: whatever arrives, the
//! answer is a well-formed AWS response (success or a 4xx error with `__type`), never a 500,
//! a panic or a hang. The inputs follow each operation's input shape from the embedded models,
//! with random perturbations (wrong types, missing members, extreme lengths, odd characters).
//!
//! Each run draws a fresh seed, so that every run (CI's included) tries new requests, and prints
//! it (`--nocapture` shows it; a failure message repeats it). `SLUICE_FUZZ_SEED=<seed>` replays
//! a run exactly.

mod common;

use common::{fake_authorization, raw_request, shared};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use std::sync::OnceLock;

const ROUNDS_PER_OPERATION: usize = 12;

/// The seed of this run: `SLUICE_FUZZ_SEED`, else a random one; the same for every test of the
/// binary, each test deriving its generator from it and its own number.
fn run_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("SLUICE_FUZZ_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("SLUICE_FUZZ_SEED must be a number, got {text:?}")),
        Err(_) => rand::random(),
    })
}

/// The generator of one test, after printing how to replay it.
fn test_rng(test: &str, number: u64) -> (StdRng, String) {
    let seed = run_seed();
    let replay = format!("replay: SLUICE_FUZZ_SEED={seed}");
    eprintln!("fuzz_wire {test}: seed {seed} ({replay})");
    (StdRng::seed_from_u64(seed.wrapping_add(number)), replay)
}

fn random_string(rng: &mut StdRng) -> String {
    let alphabet = [
        'a',
        'Z',
        '0',
        ':',
        '*',
        '/',
        ' ',
        'é',
        '\u{1F600}',
        '"',
        '\\',
        '-',
        '_',
        '%',
        '{',
        '$',
        '.',
        // The operators of the filter pattern language, alone or doubled by chance.
        '!',
        '&',
        '|',
        '[',
        '=',
    ];
    let length = [0, 1, 3, 12, 130, 600][rng.gen_range(0..6)];
    (0..length)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
        .collect()
}

fn random_scalar(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..7) {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => Value::from(rng.gen::<i64>()),
        3 => Value::from(-1.5e300),
        4 => serde_json::json!([1, "x", null]),
        5 => serde_json::json!({"k": {"n": []}}),
        _ => Value::String(random_string(rng)),
    }
}

fn shaped(shapes: &Map<String, Value>, name: &str, rng: &mut StdRng, depth: usize) -> Value {
    if depth > 5 || rng.gen_ratio(1, 10) {
        return random_scalar(rng);
    }
    let Some(shape) = shapes.get(name) else {
        return Value::Null;
    };
    let member_shape = |key: &str| shape[key]["shape"].as_str().unwrap_or_default().to_owned();
    match shape["type"].as_str().unwrap_or_default() {
        "structure" => {
            let mut object = Map::new();
            for (member, reference) in shape["members"].as_object().into_iter().flatten() {
                if rng.gen_ratio(4, 5) {
                    let value = shaped(
                        shapes,
                        reference["shape"].as_str().unwrap_or_default(),
                        rng,
                        depth + 1,
                    );
                    object.insert(member.clone(), value);
                }
            }
            Value::Object(object)
        }
        "list" => {
            let member = member_shape("member");
            Value::Array(
                (0..rng.gen_range(0..3))
                    .map(|_| shaped(shapes, &member, rng, depth + 1))
                    .collect(),
            )
        }
        "map" => {
            let value = member_shape("value");
            Value::Object(
                (0..rng.gen_range(0..3))
                    .map(|_| (random_string(rng), shaped(shapes, &value, rng, depth + 1)))
                    .collect(),
            )
        }
        "string" => match shape["enum"].as_array() {
            Some(values) if rng.gen() => values[rng.gen_range(0..values.len())].clone(),
            _ => Value::String(random_string(rng)),
        },
        "integer" | "long" => Value::from(rng.gen_range(-5i64..20_000)),
        "boolean" => Value::Bool(rng.gen()),
        "timestamp" => Value::from(rng.gen_range(0i64..4_000_000_000)),
        "blob" => {
            Value::String(["", "AAAA", "not base64!", "aGVsbG8="][rng.gen_range(0..4)].to_owned())
        }
        _ => random_scalar(rng),
    }
}

fn assert_well_formed(status: u16, body: &str, context: &str) {
    assert!(
        status < 500 || status == 501,
        "{context}: status {status}: {body}"
    );
    if status >= 400 {
        let parsed: Value = serde_json::from_str(body)
            .unwrap_or_else(|_| panic!("{context}: error body is not JSON: {body}"));
        assert!(parsed["__type"].is_string(), "{context}: no __type: {body}");
    }
}

fn fuzz_json_service(model_json: &str, number: u64) {
    let model: Value = serde_json::from_str(model_json).expect("model");
    let prefix = model["metadata"]["targetPrefix"]
        .as_str()
        .expect("target prefix")
        .to_owned();
    let signing = model["metadata"]["signingName"]
        .as_str()
        .or(model["metadata"]["endpointPrefix"].as_str())
        .expect("signing name")
        .to_owned();
    let shapes = model["shapes"].as_object().expect("shapes").clone();
    let port = shared().port;
    let (mut rng, replay) = test_rng(&signing, number);
    let authorization = fake_authorization("999900001111", &signing);
    for (name, operation) in model["operations"].as_object().expect("operations") {
        let target = format!("{prefix}.{name}");
        for round in 0..ROUNDS_PER_OPERATION {
            let body = match (round, operation["input"]["shape"].as_str()) {
                (0, _) => "{".to_owned(),
                (1, _) => "[]".to_owned(),
                (_, Some(input)) => shaped(&shapes, input, &mut rng, 0).to_string(),
                (_, None) => "{}".to_owned(),
            };
            let response = raw_request(
                port,
                "POST",
                "/",
                &[
                    ("X-Amz-Target", &target),
                    ("Content-Type", "application/x-amz-json-1.1"),
                    ("X-Amz-Date", "20260101T000000Z"),
                    ("Authorization", &authorization),
                ],
                body.as_bytes(),
            );
            assert_well_formed(
                response.status,
                &response.body,
                &format!("{target} with {body} ({replay})"),
            );
        }
    }
}

#[test]
fn logs_answers_every_random_request() {
    fuzz_json_service(include_str!("../models/logs.json"), 1);
}

#[test]
fn kinesis_answers_every_random_request() {
    fuzz_json_service(include_str!("../models/kinesis.json"), 2);
}

#[test]
fn firehose_answers_every_random_request() {
    fuzz_json_service(include_str!("../models/firehose.json"), 6);
}

#[test]
fn cloudtrail_answers_every_random_request() {
    fuzz_json_service(include_str!("../models/cloudtrail.json"), 3);
}

#[test]
fn appfabric_answers_every_random_request() {
    fuzz_rest_service(include_str!("../models/appfabric.json"), "appfabric", 4);
}

#[test]
fn cloudtrail_data_answers_every_random_request() {
    fuzz_rest_service(
        include_str!("../models/cloudtrail-data.json"),
        "cloudtrail-data",
        5,
    );
}

fn fuzz_rest_service(model_json: &str, signing: &str, number: u64) {
    let model: Value = serde_json::from_str(model_json).expect("model");
    let shapes = model["shapes"].as_object().expect("shapes").clone();
    let port = shared().port;
    let (mut rng, replay) = test_rng(signing, number);
    let authorization = fake_authorization("999900002222", signing);
    let labels = [
        "b1",
        "00000000-0000-0000-0000-000000000000",
        "arn%3Aaws%3Aappfabric%3Aus-east-1%3A1%3Aappbundle%2Fx",
        "%ZZ",
        "",
    ];
    for (name, operation) in model["operations"].as_object().expect("operations") {
        let method = operation["http"]["method"].as_str().expect("method");
        let template = operation["http"]["requestUri"].as_str().expect("uri");
        for round in 0..ROUNDS_PER_OPERATION {
            let mut path = String::new();
            for segment in template.split('/').filter(|s| !s.is_empty()) {
                path.push('/');
                if segment.starts_with('{') {
                    path.push_str(labels[rng.gen_range(0..labels.len())]);
                } else {
                    path.push_str(segment);
                }
            }
            let query = [
                "",
                "?maxResults=0",
                "?maxResults=abc&nextToken=zz",
                "?maxResults=5",
            ][rng.gen_range(0..4)];
            let body = match (round, operation["input"]["shape"].as_str()) {
                (0, _) => "{".to_owned(),
                (_, Some(input)) => shaped(&shapes, input, &mut rng, 0).to_string(),
                (_, None) => String::new(),
            };
            let full_path = format!("{path}{query}");
            let response = raw_request(
                port,
                method,
                &full_path,
                &[
                    ("Content-Type", "application/json"),
                    ("X-Amz-Date", "20260101T000000Z"),
                    ("Authorization", &authorization),
                ],
                body.as_bytes(),
            );
            assert_well_formed(
                response.status,
                &response.body,
                &format!("{name} {method} {full_path} with {body} ({replay})"),
            );
        }
    }
}
