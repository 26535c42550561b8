//! S3 key prefixes: `!{timestamp:...}`, `!{firehose:random-string}` and
//! `!{firehose:error-output-type}` expressions, checked with AWS's rules when a stream is
//! created or updated, and evaluated for each delivered object.
//!
//! AWS's rules ("Custom prefixes for Amazon S3 objects"): `!{` appears only in expressions; a
//! Prefix with expressions needs an ErrorOutputPrefix; an ErrorOutputPrefix with expressions
//! holds `!{firehose:error-output-type}`; the Prefix never does; a Prefix without a timestamp
//! expression gets `yyyy/MM/dd/HH/` appended. Timestamps are Java `DateTimeFormatter`
//! patterns, evaluated in UTC at the arrival time of the object's oldest record.

use time::OffsetDateTime;

/// One piece of a parsed prefix.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Timestamp(Vec<Field>),
    RandomString,
    ErrorOutputType,
}

/// One element of a Java `DateTimeFormatter` pattern.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Literal(String),
    /// A pattern letter and how many times it is repeated.
    Letter(char, usize),
}

/// A prefix checked and ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    fn has_expressions(&self) -> bool {
        self.segments
            .iter()
            .any(|segment| !matches!(segment, Segment::Literal(_)))
    }

    fn has(&self, wanted: fn(&Segment) -> bool) -> bool {
        self.segments.iter().any(wanted)
    }
}

/// The checked Prefix and ErrorOutputPrefix of a destination.
#[derive(Debug, Clone)]
pub struct Prefixes {
    prefix: Template,
}

/// Checks a destination's Prefix and ErrorOutputPrefix with AWS's rules.
pub fn check(prefix: Option<&str>, error_prefix: Option<&str>) -> Result<Prefixes, String> {
    let prefix = parse(prefix.unwrap_or_default(), "Prefix")?;
    let error_prefix = parse(error_prefix.unwrap_or_default(), "ErrorOutputPrefix")?;
    if prefix.has(|segment| matches!(segment, Segment::ErrorOutputType)) {
        return Err(
            "The expression !{firehose:error-output-type} is only allowed in ErrorOutputPrefix, not in Prefix.".to_owned(),
        );
    }
    if prefix.has_expressions() && error_prefix.segments.is_empty() {
        return Err(
            "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions."
                .to_owned(),
        );
    }
    if error_prefix.has_expressions()
        && !error_prefix.has(|segment| matches!(segment, Segment::ErrorOutputType))
    {
        return Err("ErrorOutputPrefix must contain the expression !{firehose:error-output-type} when it contains expressions.".to_owned());
    }
    Ok(Prefixes { prefix })
}

impl Prefixes {
    /// The evaluated key prefix of an object whose oldest record arrived at `at`; `seed`
    /// makes `!{firehose:random-string}` the same for the same object.
    pub fn evaluate(&self, at: OffsetDateTime, seed: &[u8]) -> String {
        let mut out = String::new();
        let mut timestamp_seen = false;
        for segment in &self.prefix.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Timestamp(fields) => {
                    timestamp_seen = true;
                    format_time(fields, at, &mut out);
                }
                Segment::RandomString => out.push_str(&random_string(seed)),
                // Rejected in Prefix by `check`.
                Segment::ErrorOutputType => out.push_str("processing-failed"),
            }
        }
        if !timestamp_seen {
            let default = pattern("yyyy/MM/dd/HH/").unwrap_or_default();
            format_time(&default, at, &mut out);
        }
        out
    }
}

/// Eleven lowercase letters and digits derived from `seed`.
fn random_string(seed: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    Sha256::digest(seed)
        .iter()
        .take(11)
        .map(|byte| ALPHABET[usize::from(*byte) % ALPHABET.len()] as char)
        .collect()
}

fn parse(text: &str, member: &str) -> Result<Template, String> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("!{") {
        if start > 0 {
            segments.push(Segment::Literal(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "{member} contains an unterminated expression: the sequence !{{ may only start a !{{namespace:value}} expression."
            ));
        };
        let expression = &after[..end];
        let (namespace, value) = expression.split_once(':').ok_or_else(|| {
            format!("{member} contains an invalid expression !{{{expression}}}: expressions have the form !{{namespace:value}}.")
        })?;
        let segment = match (namespace, value) {
            ("timestamp", pattern_text) => Segment::Timestamp(pattern(pattern_text).map_err(|why| {
                format!("{member} contains an invalid timestamp expression !{{{expression}}}: {why}")
            })?),
            ("firehose", "random-string") => Segment::RandomString,
            ("firehose", "error-output-type") => Segment::ErrorOutputType,
            ("firehose", other) => {
                return Err(format!(
                    "{member} contains an invalid expression !{{{expression}}}: the firehose namespace has the values random-string and error-output-type, not {other}."
                ))
            }
            ("partitionKeyFromQuery" | "partitionKeyFromLambda", _) => {
                return Err(format!(
                    "{member} contains !{{{expression}}}: dynamic partitioning is not supported by Sluice."
                ))
            }
            (other, _) => {
                return Err(format!(
                    "{member} contains an expression of the unknown namespace {other}: the namespaces are timestamp and firehose."
                ))
            }
        };
        segments.push(segment);
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Literal(rest.to_owned()));
    }
    Ok(Template { segments })
}

/// Parses a Java `DateTimeFormatter` pattern, keeping the letters Sluice can evaluate.
fn pattern(text: &str) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if c == '\'' {
            // Quoted text; '' is a single quote.
            let mut literal = String::new();
            index += 1;
            loop {
                match chars.get(index) {
                    None => return Err("unterminated quoted text".to_owned()),
                    Some('\'') if chars.get(index + 1) == Some(&'\'') => {
                        literal.push('\'');
                        index += 2;
                    }
                    Some('\'') => {
                        index += 1;
                        break;
                    }
                    Some(other) => {
                        literal.push(*other);
                        index += 1;
                    }
                }
            }
            if literal.is_empty() {
                literal.push('\'');
            }
            fields.push(Field::Literal(literal));
        } else if c.is_ascii_alphabetic() {
            let mut count = 1;
            while chars.get(index + count) == Some(&c) {
                count += 1;
            }
            let allowed = match c {
                'y' | 'u' => count <= 9,
                'M' | 'L' | 'E' => count <= 5,
                'd' | 'H' | 'h' | 'm' | 's' | 'a' => count <= 2 && (c != 'a' || count == 1),
                'D' => count <= 3,
                'S' => count <= 9,
                _ => {
                    return Err(format!(
                        "the pattern letter {c} is not supported by Sluice (supported: y u M L d D H h m s S a E)"
                    ))
                }
            };
            if !allowed {
                return Err(format!("too many pattern letters: {c}"));
            }
            fields.push(Field::Letter(c, count));
            index += count;
        } else if matches!(c, '[' | ']' | '{' | '}' | '#') {
            return Err(format!("the pattern character {c} is reserved"));
        } else {
            fields.push(Field::Literal(c.to_string()));
            index += 1;
        }
    }
    Ok(fields)
}

fn format_time(fields: &[Field], at: OffsetDateTime, out: &mut String) {
    use std::fmt::Write as _;
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    for field in fields {
        let (letter, count) = match field {
            Field::Literal(text) => {
                out.push_str(text);
                continue;
            }
            Field::Letter(letter, count) => (*letter, *count),
        };
        let number = |out: &mut String, value: i64, width: usize| {
            let _ = write!(out, "{value:0width$}");
        };
        match letter {
            'y' | 'u' if count == 2 => number(out, i64::from(at.year()).rem_euclid(100), 2),
            'y' | 'u' => number(out, i64::from(at.year()), count),
            'M' | 'L' => {
                let month = u8::from(at.month());
                let name = MONTHS[usize::from(month) - 1];
                match count {
                    1 | 2 => number(out, i64::from(month), count),
                    3 => out.push_str(&name[..3]),
                    4 => out.push_str(name),
                    _ => out.push_str(&name[..1]),
                }
            }
            'E' => {
                let name = DAYS[usize::from(at.weekday().number_days_from_monday())];
                match count {
                    4 => out.push_str(name),
                    5 => out.push_str(&name[..1]),
                    _ => out.push_str(&name[..3]),
                }
            }
            'd' => number(out, i64::from(at.day()), count),
            'D' => number(out, i64::from(at.ordinal()), count),
            'H' => number(out, i64::from(at.hour()), count),
            'h' => {
                let hour = at.hour() % 12;
                number(out, i64::from(if hour == 0 { 12 } else { hour }), count)
            }
            'm' => number(out, i64::from(at.minute()), count),
            's' => number(out, i64::from(at.second()), count),
            'S' => {
                let nanos = format!("{:09}", at.nanosecond());
                out.push_str(&nanos[..count.min(9)]);
            }
            'a' => out.push_str(if at.hour() < 12 { "AM" } else { "PM" }),
            _ => {}
        }
    }
}

/// `YYYY-MM-DD-HH-MM-SS` of a time, as in AWS's object names.
pub fn key_time(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn evaluate(prefix: &str, error: Option<&str>) -> Result<String, String> {
        let at = datetime!(2018-03-07 05:04:09.123 UTC);
        check(Some(prefix), error).map(|p| p.evaluate(at, b"seed"))
    }

    #[test]
    fn timestamps_follow_java_patterns_in_utc() {
        assert_eq!(
            evaluate(
                "logs/!{timestamp:yyyy}/!{timestamp:MM}/",
                Some("e/!{firehose:error-output-type}")
            ),
            Ok("logs/2018/03/".to_owned())
        );
        assert_eq!(
            evaluate(
                "dt=!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/",
                Some("err/!{firehose:error-output-type}/")
            ),
            Ok("dt=2018-03-07/h=05/".to_owned())
        );
        assert_eq!(
            evaluate(
                "!{timestamp:yy-M-d D H:m:s.SSS a EEE MMM}",
                Some("!{firehose:error-output-type}")
            ),
            Ok("18-3-7 66 5:4:9.123 AM Wed Mar".to_owned())
        );
    }

    #[test]
    fn a_prefix_without_timestamp_gets_the_default_hour_folders() {
        assert_eq!(evaluate("", None), Ok("2018/03/07/05/".to_owned()));
        assert_eq!(
            evaluate("plain/", None),
            Ok("plain/2018/03/07/05/".to_owned())
        );
        let random = evaluate(
            "!{firehose:random-string}/",
            Some("!{firehose:error-output-type}"),
        )
        .unwrap();
        assert_eq!(random.len(), "xxxxxxxxxxx/2018/03/07/05/".len());
        assert_eq!(
            random,
            evaluate(
                "!{firehose:random-string}/",
                Some("!{firehose:error-output-type}")
            )
            .unwrap()
        );
    }

    #[test]
    fn aws_rules_are_enforced() {
        assert!(evaluate("!{timestamp:yyyy}/", None)
            .unwrap_err()
            .contains("ErrorOutputPrefix cannot be null"));
        assert!(evaluate("!{firehose:error-output-type}/", Some("e/"))
            .unwrap_err()
            .contains("only allowed in ErrorOutputPrefix"));
        assert!(evaluate("a/", Some("e/!{timestamp:yyyy}/"))
            .unwrap_err()
            .contains("must contain"));
        assert!(evaluate("a/!{nope:x}", Some("!{firehose:error-output-type}")).is_err());
        assert!(evaluate("a/!{timestamp:yyyy", Some("!{firehose:error-output-type}")).is_err());
        assert!(evaluate("a/!{timestamp:qq}", Some("!{firehose:error-output-type}")).is_err());
        assert!(evaluate(
            "a/!{partitionKeyFromQuery:id}",
            Some("!{firehose:error-output-type}")
        )
        .is_err());
        assert!(evaluate("a/", Some("errors/")).is_ok());
    }

    /// Prefixes built from the expression grammar's own pieces, well-formed or not.
    fn prefix_soup() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let pieces = prop::sample::select(vec![
            "!{",
            "}",
            "timestamp:",
            "firehose:",
            "random-string",
            "error-output-type",
            "yyyy",
            "MM",
            "dd",
            "HH",
            "mm",
            "ss",
            "SSS",
            "'",
            "''",
            "/",
            "a",
            "-",
            "!",
            "{",
            ":",
            "é",
            "\u{0}",
            "${",
            "uuuu",
        ]);
        prop::collection::vec(pieces, 0..24).prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Any prefix pair is accepted or refused with a message, and an accepted one
        /// evaluates, without panicking.
        #[test]
        fn any_prefix_is_checked_and_evaluated_without_panic(
            prefix in prefix_soup(),
            error in proptest::option::of(prefix_soup()),
        ) {
            let at = datetime!(2018-03-07 05:04:09.123 UTC);
            if let Ok(checked) = check(Some(&prefix), error.as_deref()) {
                let _ = checked.evaluate(at, b"seed");
            }
        }
    }
}
