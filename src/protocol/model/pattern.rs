//! The models' patterns: Java regular expressions, translated for Rust's engines.

/// Compiles a model pattern. The models use Java's regex dialect and AWS matches the whole
/// value (Java's `matches`), so the pattern is anchored, and a `-` right after a class escape
/// inside brackets (`[\w-_]`), which Java reads as a literal, is escaped for Rust's engine.
pub fn compile_pattern(pattern: &str) -> Result<ModelPattern, fancy_regex::Error> {
    // Java writes characters beyond the BMP as UTF-16 surrogate pairs; the range of all of them,
    // `\uD800\uDC00-\uDBFF\uDFFF`, is U+10000..=U+10FFFF to a Rust regex.
    let pattern = pattern.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\x{10000}-\\x{10FFFF}");
    let mut rust = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut previous_was_class_escape = false;
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let escaped = chars.next().unwrap_or('\\');
            // Java's `\w`, `\d` and `\s` are ASCII classes; Rust's are Unicode (and `\w{1,255}`
            // in Unicode compiles past the size limit).
            let ascii = match escaped {
                'w' => Some("word"),
                'd' => Some("digit"),
                's' => Some("space"),
                _ => None,
            };
            let negated = match escaped {
                'W' => Some("word"),
                'D' => Some("digit"),
                'S' => Some("space"),
                _ => None,
            };
            match (ascii, negated, class_depth > 0) {
                (Some(class), _, true) => rust.push_str(&format!("[:{class}:]")),
                (Some(class), _, false) => rust.push_str(&format!("[[:{class}:]]")),
                (_, Some(class), true) => rust.push_str(&format!("[:^{class}:]")),
                (_, Some(class), false) => rust.push_str(&format!("[^[:{class}:]]")),
                _ => {
                    rust.push(c);
                    rust.push(escaped);
                }
            }
            previous_was_class_escape = ascii.is_some() || negated.is_some();
            continue;
        }
        match c {
            '[' => class_depth += 1,
            ']' if class_depth > 0 => class_depth -= 1,
            _ => {}
        }
        if c == '-' && previous_was_class_escape {
            rust.push_str("\\-");
        } else {
            rust.push(c);
        }
        previous_was_class_escape = false;
    }
    fancy_regex::Regex::new(&format!("^(?:{rust})$")).map(ModelPattern)
}

/// A model's `pattern`, with Java's meaning. Some models use look-around (`^(?!aws:)...`),
/// which the `regex` crate leaves out by design; `fancy-regex` adds it on top of `regex`
/// (patterns without it run on `regex` alone).
#[derive(Debug)]
pub struct ModelPattern(fancy_regex::Regex);

impl ModelPattern {
    /// Whether `text` matches the whole pattern. A match that gives up (fancy-regex bounds
    /// its backtracking) accepts the value: Sluice does not refuse what it cannot decide.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text).unwrap_or(true)
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::compile_pattern;

    #[test]
    fn java_patterns_compile_with_their_meaning() {
        let surrogates =
            compile_pattern(r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*")
                .expect("compiles");
        assert!(surrogates.is_match("plain text \u{1F600}"));
        assert!(!surrogates.is_match("bell \u{7}"));
        let dash = compile_pattern(r"[\w-_]*").expect("compiles");
        assert!(dash.is_match("a-b_c") && !dash.is_match("a b"));
        assert!(
            !compile_pattern("[^:*]*").expect("compiles").is_match("a:b"),
            "patterns match the whole value"
        );
        // Java's classes are ASCII, inside and outside brackets.
        let word = compile_pattern(r"\w+[\d\s]*").expect("compiles");
        assert!(word.is_match("abc_9 1") && !word.is_match("é"));
        let bucket = compile_pattern(r"arn:.*:s3:::[\w\.\-]{1,255}").expect("compiles");
        assert!(bucket.is_match("arn:aws:s3:::my.bucket-1") && !bucket.is_match("arn:aws:s3:::"));
        // Look-around, as the Firehose model writes it.
        let tag = compile_pattern(r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$").expect("compiles");
        assert!(tag.is_match("team") && !tag.is_match("aws:team"));
        let non_blank = compile_pattern(r"^(?!\s*$).+").expect("compiles");
        assert!(non_blank.is_match(" x") && !non_blank.is_match("   "));
    }

    #[test]
    fn every_pattern_of_every_embedded_model_compiles() {
        for model in [
            include_str!("../../../models/logs.json"),
            include_str!("../../../models/kinesis.json"),
            include_str!("../../../models/cloudtrail.json"),
            include_str!("../../../models/appfabric.json"),
            include_str!("../../../models/firehose.json"),
        ] {
            let model = crate::protocol::model::ServiceModel::parse(model).expect("model parses");
            for (name, shape) in model.shapes.iter() {
                if let Some(pattern) = &shape.pattern {
                    assert!(compile_pattern(pattern).is_ok(), "{name}: {pattern}");
                }
            }
        }
    }
}
