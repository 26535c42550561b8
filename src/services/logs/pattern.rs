//! The CloudWatch Logs filter and pattern syntax, shared by FilterLogEvents and subscription
//! filters (and TestMetricFilter):
//!
//! - term patterns: `ERROR`, `"quoted phrase"`, `?ERROR ?WARN` (any of), `-DEBUG` (none of);
//! - JSON patterns: `{ $.level = "ERROR" && ($.latency > 500 || $.user IS NULL) }`, with
//!   `= != < > <= >=`, `IS NULL`, `IS TRUE`, `IS FALSE`, `NOT EXISTS`, `*` wildcards in
//!   strings, and array indexes (`$.items[0].id`);
//! - space-delimited patterns: `[ip, user, ..., status = 4* || status = 5*, size > 1000]`;
//! - regular expressions between `%` signs, alone (`%[Ee]rror|[Ff]ail%`) or as the value of a
//!   JSON or space-delimited condition (`{ $.path = %^/api/v[0-9]+%}`), with AWS's restricted
//!   character set and at most two per JSON or space-delimited pattern.
//!
//! A pattern is parsed once ([`FilterPattern::parse`]) and matched against many messages.
//!
//! **Invariant:** parsing and matching are bounded for any input, because one request's pattern
//! runs inside the shared server: the tokenizer consumes at least one character per step, the
//! pattern is at most [`MAX_PATTERN_CHARS`] long, parentheses nest at most [`MAX_NESTING`]
//! deep (the only recursion), regular expressions have a compiled-size limit, and `...` fields
//! match like `*` in a glob, in time proportional to fields × values.

use serde_json::Value;

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterPattern {
    /// The empty pattern: every event matches.
    All,
    /// Terms: all `required`, at least one of `any` (if any), none of `excluded`.
    Terms {
        required: Vec<String>,
        any: Vec<String>,
        excluded: Vec<String>,
    },
    /// A JSON condition on the message parsed as JSON.
    Json(Expr),
    /// Space-delimited fields, each maybe with a condition.
    Fields(Vec<Field>),
    /// `%regex%`: the message contains a match.
    Regex(Matcher),
}

/// A compiled `%regex%`; equal when the source is.
#[derive(Debug, Clone)]
pub struct Matcher(regex::Regex);

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// The most regular expressions in one JSON or space-delimited pattern (AWS's quota).
const MAX_REGEX_PER_PATTERN: usize = 2;

/// The longest pattern, in characters: the `FilterPattern` maximum of the service model,
/// checked here as well so that the parser is bounded whoever calls it.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// How deep parentheses may nest in a JSON pattern. AWS documents no limit; real patterns use
/// two or three levels, and the limit bounds the recursion of the parser and the matcher.
pub const MAX_NESTING: usize = 32;

/// The compiled size one `%regex%` may reach (the regex crate's NFA size limit). Large enough
/// for AWS's documented examples many times over, small enough that a pattern such as
/// `%a{1000}{1000}%` is refused while it compiles rather than built.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// The lazy-DFA cache of one regex; matching stays linear when it is full.
const REGEX_DFA_SIZE_LIMIT: usize = 1024 * 1024;

impl Matcher {
    /// Compiles the body of `%...%`. AWS allows letters, digits, `:_#=@/;,-` and the operators
    /// `^ $ ? [ ] { } | \ * + .`; no groups and no multi-byte characters.
    fn compile(body: &str) -> Option<Self> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || ":_#=@/;,-^$?[]{}|\\*+.".contains(c);
        if body.is_empty() || !body.chars().all(allowed) {
            return None;
        }
        regex::RegexBuilder::new(body)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
            .nest_limit(MAX_NESTING as u32)
            .build()
            .ok()
            .map(Matcher)
    }
}

/// A boolean expression over JSON selectors.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All of them (`a && b && c`, kept flat so that a long chain is not a deep tree).
    And(Vec<Expr>),
    /// Any of them (`a || b || c`).
    Or(Vec<Expr>),
    /// A test of one selector.
    Test(Vec<PathStep>, Test),
}

/// One step of a `$.a.b[0]` selector.
#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    /// `.name`
    Key(String),
    /// `[n]`
    Index(usize),
}

/// What a selector's value must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `op value`
    Compare(Op, Literal),
    /// `IS NULL`
    IsNull,
    /// `IS TRUE` / `IS FALSE`
    IsBool(bool),
    /// `NOT EXISTS`
    NotExists,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A number.
    Number(f64),
    /// A string, possibly with `*` wildcards.
    Text(String),
    /// `%regex%`
    Regex(Matcher),
}

/// A field of a space-delimited pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// `...`: any number of fields.
    Ellipsis,
    /// A named field, with alternatives of conjunctions of conditions (`a = 1 && a != 2 || a = 3`).
    Named(Vec<Vec<(Op, Literal)>>),
}

/// Why a pattern is invalid; the message becomes an `InvalidParameterException`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatternError {
    /// Not a pattern of the language; holds the pattern as given.
    #[error("Invalid character(s) in term '{0}'")]
    Invalid(String),
    /// Longer than [`MAX_PATTERN_CHARS`].
    #[error("Invalid filter pattern: longer than {MAX_PATTERN_CHARS} characters")]
    TooLong,
    /// Parentheses nested deeper than [`MAX_NESTING`].
    #[error("Invalid filter pattern: parentheses nested more than {MAX_NESTING} deep")]
    TooDeep,
}

impl FilterPattern {
    /// Parses a pattern.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.chars().count() > MAX_PATTERN_CHARS {
            return Err(PatternError::TooLong);
        }
        let invalid = || PatternError::Invalid(text.to_owned());
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Ok(FilterPattern::All);
        }
        if trimmed.len() > 2 && trimmed.starts_with('%') && trimmed.ends_with('%') {
            return Matcher::compile(&trimmed[1..trimmed.len() - 1])
                .map(FilterPattern::Regex)
                .ok_or_else(invalid);
        }
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && trimmed.matches('%').count() > 2 * MAX_REGEX_PER_PATTERN
        {
            return Err(invalid());
        }
        if trimmed.starts_with('{') {
            let inner = trimmed
                .strip_prefix('{')
                .and_then(|t| t.strip_suffix('}'))
                .ok_or_else(invalid)?;
            let tokens = tokenize(inner).ok_or_else(invalid)?;
            let mut parser = Parser {
                tokens,
                position: 0,
                too_deep: false,
            };
            let Some(expr) = parser.or(0) else {
                return Err(if parser.too_deep {
                    PatternError::TooDeep
                } else {
                    invalid()
                });
            };
            if parser.position != parser.tokens.len() {
                return Err(invalid());
            }
            return Ok(FilterPattern::Json(expr));
        }
        if trimmed.starts_with('[') {
            let inner = trimmed
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .ok_or_else(invalid)?;
            return parse_fields(inner)
                .ok_or_else(invalid)
                .map(FilterPattern::Fields);
        }
        parse_terms(trimmed).ok_or_else(invalid)
    }

    /// Whether a message matches.
    pub fn matches(&self, message: &str) -> bool {
        match self {
            FilterPattern::All => true,
            FilterPattern::Terms {
                required,
                any,
                excluded,
            } => {
                required.iter().all(|t| message.contains(t.as_str()))
                    && (any.is_empty() || any.iter().any(|t| message.contains(t.as_str())))
                    && !excluded.iter().any(|t| message.contains(t.as_str()))
            }
            FilterPattern::Json(expr) => match serde_json::from_str::<Value>(message) {
                Ok(value) => eval(expr, &value),
                Err(_) => false,
            },
            FilterPattern::Fields(fields) => match split_fields(message) {
                Some(values) => match_fields(fields, &values),
                None => false,
            },
            FilterPattern::Regex(matcher) => matcher.0.is_match(message),
        }
    }
}

fn parse_terms(text: &str) -> Option<FilterPattern> {
    let (mut required, mut any, mut excluded) = (Vec::new(), Vec::new(), Vec::new());
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let bucket = match c {
            '?' => {
                chars.next();
                &mut any
            }
            '-' => {
                chars.next();
                &mut excluded
            }
            _ => &mut required,
        };
        let term = if chars.peek() == Some(&'"') {
            chars.next();
            let mut phrase = String::new();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => phrase.push(chars.next()?),
                    other => phrase.push(other),
                }
            }
            phrase
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                // Unquoted terms may hold letters, digits, underscores and a few safe symbols.
                if !(c.is_alphanumeric() || "_.:/@*'".contains(c) || (c == '-' && !word.is_empty()))
                {
                    return None;
                }
                word.push(c);
                chars.next();
            }
            word
        };
        if term.is_empty() {
            return None;
        }
        bucket.push(term);
    }
    Some(FilterPattern::Terms {
        required,
        any,
        excluded,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Selector(Vec<PathStep>),
    Op(Op),
    Word(String),
    Quoted(String),
    Regex(String),
    And,
    Or,
    Open,
    Close,
}

fn tokenize(text: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '&' if next == Some('&') => {
                tokens.push(Token::And);
                i += 2;
            }
            '|' if next == Some('|') => {
                tokens.push(Token::Or);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Op(Op::Eq));
                i += 1;
            }
            '!' if next == Some('=') => {
                tokens.push(Token::Op(Op::Ne));
                i += 2;
            }
            '<' | '>' => {
                let op = match (c, next) {
                    ('<', Some('=')) => Op::Le,
                    ('>', Some('=')) => Op::Ge,
                    ('<', _) => Op::Lt,
                    _ => Op::Gt,
                };
                i += if matches!(op, Op::Le | Op::Ge) { 2 } else { 1 };
                tokens.push(Token::Op(op));
            }
            '%' => {
                let start = i + 1;
                let end = start + chars[start..].iter().position(|&c| c == '%')?;
                let body: String = chars[start..end].iter().collect();
                tokens.push(Token::Regex(body));
                i = end + 1;
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i)? {
                        '"' => break,
                        '\\' => {
                            i += 1;
                            text.push(*chars.get(i)?);
                        }
                        other => text.push(*other),
                    }
                    i += 1;
                }
                i += 1;
                tokens.push(Token::Quoted(text));
            }
            '$' => {
                let start = i + 1;
                i += 1;
                while i < chars.len() && !chars[i].is_whitespace() && !"=!<>()&|".contains(chars[i])
                {
                    i += 1;
                }
                let path: String = chars[start..i].iter().collect();
                tokens.push(Token::Selector(parse_selector(&path)?));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !"=!<>()&|\"".contains(chars[i])
                {
                    i += 1;
                }
                // Every other arm consumes what it matched; a word that is empty here starts
                // with a lone `!`, `&` or `|`, which the language does not have. Refusing it
                // (rather than pushing an empty word and not moving) is what keeps this loop
                // finite.
                if i == start {
                    return None;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Some(tokens)
}

fn parse_selector(path: &str) -> Option<Vec<PathStep>> {
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return None;
            }
            steps.push(PathStep::Key(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            steps.push(PathStep::Index(after[..end].parse().ok()?));
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    (!steps.is_empty()).then_some(steps)
}

/// A recursive-descent parser over the tokens of a JSON pattern. Only parentheses recurse,
/// and at most [`MAX_NESTING`] deep; `&&` and `||` chains are loops.
struct Parser {
    tokens: Vec<Token>,
    position: usize,
    /// Set when parsing stopped at the nesting limit, to say so in the error.
    too_deep: bool,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn or(&mut self, depth: usize) -> Option<Expr> {
        let mut terms = vec![self.and(depth)?];
        while self.peek() == Some(&Token::Or) {
            self.position += 1;
            terms.push(self.and(depth)?);
        }
        flatten(terms, Expr::Or)
    }

    fn and(&mut self, depth: usize) -> Option<Expr> {
        let mut terms = vec![self.unary(depth)?];
        while self.peek() == Some(&Token::And) {
            self.position += 1;
            terms.push(self.unary(depth)?);
        }
        flatten(terms, Expr::And)
    }

    fn unary(&mut self, depth: usize) -> Option<Expr> {
        match self.next()? {
            Token::Open if depth >= MAX_NESTING => {
                self.too_deep = true;
                None
            }
            Token::Open => {
                let inner = self.or(depth + 1)?;
                (self.next()? == Token::Close).then_some(inner)
            }
            Token::Selector(path) => {
                let test = match self.next()? {
                    Token::Op(op) => Test::Compare(op, literal(self.next()?)?),
                    Token::Word(word) if word.eq_ignore_ascii_case("IS") => match self.next()? {
                        Token::Word(w) if w.eq_ignore_ascii_case("NULL") => Test::IsNull,
                        Token::Word(w) if w.eq_ignore_ascii_case("TRUE") => Test::IsBool(true),
                        Token::Word(w) if w.eq_ignore_ascii_case("FALSE") => Test::IsBool(false),
                        _ => return None,
                    },
                    Token::Word(word) if word.eq_ignore_ascii_case("NOT") => match self.next()? {
                        Token::Word(w) if w.eq_ignore_ascii_case("EXISTS") => Test::NotExists,
                        _ => return None,
                    },
                    _ => return None,
                };
                Some(Expr::Test(path, test))
            }
            _ => None,
        }
    }
}

/// One term stands for itself; several make an `And` or an `Or`.
fn flatten(mut terms: Vec<Expr>, combine: fn(Vec<Expr>) -> Expr) -> Option<Expr> {
    if terms.len() == 1 {
        terms.pop()
    } else {
        Some(combine(terms))
    }
}

fn literal(token: Token) -> Option<Literal> {
    match token {
        Token::Quoted(text) => Some(Literal::Text(text)),
        Token::Regex(body) => Matcher::compile(&body).map(Literal::Regex),
        // Only finite numbers are numbers: Rust also reads `NaN`, `inf` and `1e999`, which as
        // numbers would equal nothing (not even the same pattern parsed again).
        Token::Word(word) => Some(match word.parse::<f64>() {
            Ok(number) if number.is_finite() => Literal::Number(number),
            _ => Literal::Text(word),
        }),
        _ => None,
    }
}

fn resolve<'v>(value: &'v Value, path: &[PathStep]) -> Option<&'v Value> {
    path.iter().try_fold(value, |current, step| match step {
        PathStep::Key(key) => current.get(key.as_str()),
        PathStep::Index(index) => current.get(*index),
    })
}

fn eval(expr: &Expr, value: &Value) -> bool {
    match expr {
        Expr::And(terms) => terms.iter().all(|term| eval(term, value)),
        Expr::Or(terms) => terms.iter().any(|term| eval(term, value)),
        Expr::Test(path, test) => {
            let found = resolve(value, path);
            match test {
                Test::NotExists => found.is_none(),
                Test::IsNull => found.is_some_and(Value::is_null),
                Test::IsBool(expected) => found.and_then(Value::as_bool) == Some(*expected),
                Test::Compare(op, literal) => match found {
                    None | Some(Value::Null) | Some(Value::Object(_)) | Some(Value::Array(_)) => {
                        false
                    }
                    Some(Value::Number(n)) => compare_text_or_number(&n.to_string(), *op, literal),
                    Some(Value::String(s)) => compare_text_or_number(s, *op, literal),
                    Some(Value::Bool(b)) => compare_text_or_number(&b.to_string(), *op, literal),
                },
            }
        }
    }
}

/// Compares a field's text with a literal: numerically when both are numbers, else as text
/// (with `*` wildcards) for `=` and `!=` only.
fn compare_text_or_number(actual: &str, op: Op, literal: &Literal) -> bool {
    let number = match literal {
        Literal::Number(n) => Some(*n),
        Literal::Regex(matcher) => {
            return match op {
                Op::Eq => matcher.0.is_match(actual),
                Op::Ne => !matcher.0.is_match(actual),
                _ => false,
            }
        }
        Literal::Text(_) => None,
    };
    if let (Some(expected), Ok(actual)) = (number, actual.parse::<f64>()) {
        return match op {
            Op::Eq => actual == expected,
            Op::Ne => actual != expected,
            Op::Lt => actual < expected,
            Op::Le => actual <= expected,
            Op::Gt => actual > expected,
            Op::Ge => actual >= expected,
        };
    }
    let pattern = match literal {
        Literal::Text(text) => text.clone(),
        Literal::Number(n) => n.to_string(),
        Literal::Regex(_) => return false,
    };
    match op {
        Op::Eq => glob(&pattern, actual),
        Op::Ne => !glob(&pattern, actual),
        _ => false,
    }
}

/// `*` matches any run of characters; everything else is literal.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Splits on commas that are not inside a `%regex%` (whose `{m,n}` may hold one).
fn split_fields_pattern(inner: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_regex) = (0, false);
    for (at, c) in inner.char_indices() {
        match c {
            '%' => in_regex = !in_regex,
            ',' if !in_regex => {
                parts.push(&inner[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
}

fn parse_fields(inner: &str) -> Option<Vec<Field>> {
    split_fields_pattern(inner)
        .into_iter()
        .map(|field| {
            let field = field.trim();
            if field == "..." {
                return Some(Field::Ellipsis);
            }
            if field.is_empty() {
                return None;
            }
            let tokens = tokenize(field)?;
            let mut alternatives = vec![Vec::new()];
            let Some(Token::Word(_)) = tokens.first() else {
                return None;
            };
            let mut i = 1;
            while i < tokens.len() {
                match &tokens[i] {
                    Token::Op(op) => {
                        let value = literal(tokens.get(i + 1)?.clone())?;
                        alternatives.last_mut()?.push((*op, value));
                        i += 2;
                    }
                    Token::And => i += 1,
                    Token::Or => {
                        alternatives.push(Vec::new());
                        i += 1;
                    }
                    // A repeated field name (`status = 4* || status = 5*`).
                    Token::Word(_) => i += 1,
                    _ => return None,
                }
            }
            Some(Field::Named(alternatives))
        })
        .collect()
}

/// Splits a message into space-delimited fields; `"quoted"` and `[bracketed]` runs are one.
fn split_fields(message: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = message.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut field = String::new();
        match c {
            '"' | '[' => {
                let close = if c == '"' { '"' } else { ']' };
                chars.next();
                for c in chars.by_ref() {
                    if c == close {
                        break;
                    }
                    field.push(c);
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    field.push(c);
                    chars.next();
                }
            }
        }
        fields.push(field);
    }
    Some(fields)
}

fn field_matches(field: &Field, value: &str) -> bool {
    match field {
        Field::Ellipsis => true,
        Field::Named(alternatives) => {
            alternatives.iter().all(Vec::is_empty)
                || alternatives
                    .iter()
                    .filter(|conditions| !conditions.is_empty())
                    .any(|conditions| {
                        conditions
                            .iter()
                            .all(|(op, literal)| compare_text_or_number(value, *op, literal))
                    })
        }
    }
}

/// Matches the fields against the values as a glob matches text, `...` being `*` and every
/// other field taking exactly one value. On a mismatch only the last `...` takes one more value
/// (the earlier ones never need to), so this makes at most fields × values comparisons where
/// trying every split for every `...` would be exponential in their number.
fn match_fields(fields: &[Field], values: &[String]) -> bool {
    let (mut field, mut value) = (0, 0);
    // After the last `...` seen: the field that follows it, and the value it was tried from.
    let mut resume: Option<(usize, usize)> = None;
    while let Some(current) = values.get(value) {
        match fields.get(field) {
            Some(Field::Ellipsis) => {
                field += 1;
                resume = Some((field, value));
            }
            Some(named) if field_matches(named, current) => {
                field += 1;
                value += 1;
            }
            _ => {
                let Some((after, from)) = resume else {
                    return false;
                };
                resume = Some((after, from + 1));
                (field, value) = (after, from + 1);
            }
        }
    }
    fields
        .iter()
        .skip(field)
        .all(|rest| matches!(rest, Field::Ellipsis))
}

#[cfg(test)]
mod tests {
    use super::FilterPattern;

    /// (pattern, message, matches): cases from the CloudWatch Logs filter syntax documentation.
    const CASES: &[(&str, &str, bool)] = &[
        ("", "anything at all", true),
        ("ERROR", "[ERROR] Caught IllegalArgumentException", true),
        ("ERROR", "[INFO] all good", false),
        (
            "ERROR Exception",
            "[ERROR] Caught IllegalArgumentException",
            true,
        ),
        ("ERROR Exception", "[ERROR] Unexpected failure", false),
        (
            "\"Failed to process\"",
            "WARN Failed to process request 7",
            true,
        ),
        (
            "\"Failed to process\"",
            "WARN Failed to parse request 7",
            false,
        ),
        ("?ERROR ?WARN", "[WARN] Low disk", true),
        ("?ERROR ?WARN", "[INFO] ok", false),
        ("ERROR -Exception", "[ERROR] Unexpected failure", true),
        (
            "ERROR -Exception",
            "[ERROR] Caught IllegalArgumentException",
            false,
        ),
        (
            "{ $.eventType = \"UpdateTrail\" }",
            r#"{"eventType":"UpdateTrail"}"#,
            true,
        ),
        (
            "{ $.eventType = \"UpdateTrail\" }",
            r#"{"eventType":"CreateTrail"}"#,
            false,
        ),
        (
            "{ $.sourceIPAddress != 123.123.* }",
            r#"{"sourceIPAddress":"10.0.0.1"}"#,
            true,
        ),
        (
            "{ $.sourceIPAddress != 123.123.* }",
            r#"{"sourceIPAddress":"123.123.4.5"}"#,
            false,
        ),
        (
            "{ $.arrayKey[0] = \"value\" }",
            r#"{"arrayKey":["value","other"]}"#,
            true,
        ),
        (
            "{ $.objectList[1].id = 2 }",
            r#"{"objectList":[{"id":1},{"id":2}]}"#,
            true,
        ),
        ("{ $.bandwidth > 75 }", r#"{"bandwidth":80}"#, true),
        ("{ $.bandwidth > 75 }", r#"{"bandwidth":70}"#, false),
        ("{ $.latency <= 500 }", r#"{"latency":500}"#, true),
        (
            "{ $.eventType = \"*Trail\" }",
            r#"{"eventType":"DeleteTrail"}"#,
            true,
        ),
        (
            "{ ($.user.id = 1) && ($.users[0].email = \"John.Doe@example.com\") }",
            r#"{"user":{"id":1},"users":[{"email":"John.Doe@example.com"}]}"#,
            true,
        ),
        (
            "{ ($.user.id = 2 && $.users[0].email = \"nonmatch\") || $.actions[2] = \"GET\" }",
            r#"{"user":{"id":1},"users":[{"email":"x"}],"actions":["PUT","POST","GET"]}"#,
            true,
        ),
        (
            "{ $.user.email IS NULL }",
            r#"{"user":{"email":null}}"#,
            true,
        ),
        ("{ $.user.email IS NULL }", r#"{"user":{}}"#, false),
        ("{ $.user.name NOT EXISTS }", r#"{"user":{}}"#, true),
        (
            "{ $.user.name NOT EXISTS }",
            r#"{"user":{"name":"x"}}"#,
            false,
        ),
        ("{ $.success IS TRUE }", r#"{"success":true}"#, true),
        ("{ $.success IS FALSE }", r#"{"success":true}"#, false),
        ("{ $.level = \"ERROR\" }", "not json at all", false),
        (
            "[ip, user, username, timestamp, request, status_code, bytes]",
            r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#,
            true,
        ),
        (
            "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
            r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 404 1534"#,
            true,
        ),
        (
            "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
            r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#,
            false,
        ),
        (
            "[..., status_code = 4* || status_code = 5*, bytes > 1000]",
            r#"127.0.0.1 - frank [10/Oct] "GET /" 503 1534"#,
            true,
        ),
        (
            "[..., status_code = 4* || status_code = 5*, bytes > 1000]",
            r#"127.0.0.1 - frank [10/Oct] "GET /" 503 15"#,
            false,
        ),
        ("[ip = 127.0.0.1, ...]", "127.0.0.1 anything else", true),
        ("[a, b]", "one two three", false),
        ("%AUTHORIZED%", "[ERROR 401] UNAUTHORIZED REQUEST", true),
        ("%AUTHORIZED%", "[SUCCESS 200] AUTHORIZED REQUEST", true),
        ("%AUTHORIZED%", "[SUCCESS 200] OK", false),
        ("%[Ee]rror|[Ff]ail%", "disk fail", true),
        ("%^[hc]at%", "cat sat", true),
        ("%^[hc]at%", "the cat", false),
        (
            "%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%",
            "from 10.0.0.1 ok",
            true,
        ),
        (
            "{ $.path = %^/api/v[0-9]+% }",
            r#"{"path":"/api/v2/orders"}"#,
            true,
        ),
        ("{ $.path = %^/api/v[0-9]+% }", r#"{"path":"/web"}"#, false),
        ("{ $.path != %^/api% }", r#"{"path":"/web"}"#, true),
        (
            "[ip, status = %^5[0-9]{2}$%, bytes]",
            "10.0.0.1 503 12",
            true,
        ),
        (
            "[ip, status = %^5[0-9]{2}$%, bytes]",
            "10.0.0.1 200 12",
            false,
        ),
    ];

    #[test]
    fn documented_examples() {
        for (pattern, message, expected) in CASES {
            let parsed = FilterPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(
                parsed.matches(message),
                *expected,
                "pattern {pattern} on {message}"
            );
        }
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in [
            "%a(b)%",
            "%é%",
            "%%",
            "{ $.a = %a% && $.b = %b% && $.c = %c% }",
            "{ $.a = ",
            "{ $.a = 1",
            "{ a = 1 }",
            "[a,,b]",
            "\"unterminated",
            "{ $.a ~ 1 }",
            "{ ($.a = 1 }",
            "a{b",
        ] {
            assert!(FilterPattern::parse(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod bounds {
    use proptest::prelude::*;

    use super::{match_fields, Field, FilterPattern, Literal, Op, PatternError, MAX_NESTING};

    /// The patterns that once made `tokenize` push empty words forever: a lone `!`, `&` or
    /// `|` is not an operator of the language (AWS has `!=`, `&&` and `||`).
    const LONE_OPERATORS: [&str; 6] = [
        "{ ! }",
        "{ $.a = 1 & $.b = 2 }",
        "{ $.a = 1 | $.b = 2 }",
        "[a, b!, c]",
        "[a=1 | a=2]",
        "[a=1 & b=2]",
    ];

    #[test]
    fn lone_operators_are_refused() {
        for pattern in LONE_OPERATORS {
            assert_eq!(
                FilterPattern::parse(pattern),
                Err(PatternError::Invalid(pattern.to_owned())),
                "{pattern}"
            );
        }
        for pattern in [
            "{ $.a = 1 && !$.b }",
            "{ $.a ! = 1 }",
            "{ $.a = 1 &&& $.b = 2 }",
        ] {
            assert!(FilterPattern::parse(pattern).is_err(), "{pattern}");
        }
    }

    fn nested(depth: usize) -> String {
        format!("{{ {}$.a = 1{} }}", "(".repeat(depth), ")".repeat(depth))
    }

    #[test]
    fn nesting_is_limited_with_its_own_error() {
        let deepest = FilterPattern::parse(&nested(MAX_NESTING)).expect("at the limit");
        assert!(deepest.matches(r#"{"a":1}"#));
        assert_eq!(
            FilterPattern::parse(&nested(MAX_NESTING + 1)),
            Err(PatternError::TooDeep)
        );
        // As deep as the length limit allows: refused at the nesting limit, not recursed into.
        let text = format!("{{ {} }}", "(".repeat(1000));
        assert_eq!(FilterPattern::parse(&text), Err(PatternError::TooDeep));
    }

    #[test]
    fn long_chains_are_flat() {
        let chain = (0..60)
            .map(|i| format!("$.a != {i}"))
            .collect::<Vec<_>>()
            .join(" && ");
        let pattern = FilterPattern::parse(&format!("{{ {chain} }}")).expect("chain");
        let FilterPattern::Json(super::Expr::And(terms)) = &pattern else {
            panic!("not a flat And: {pattern:?}");
        };
        assert_eq!(terms.len(), 60);
        assert!(pattern.matches(r#"{"a":99}"#));
        assert!(!pattern.matches(r#"{"a":59}"#));
    }

    /// Found by tests/fuzz_parsers.rs: `NaN` was a number unequal to itself.
    #[test]
    fn words_that_are_not_finite_numbers_are_text() {
        for word in ["NaN", "inf", "Infinity", "1e999"] {
            let text = format!("{{ $.a = {word} }}");
            let pattern = FilterPattern::parse(&text).expect("parses");
            assert_eq!(Ok(&pattern), FilterPattern::parse(&text).as_ref(), "{text}");
            assert!(pattern.matches(&format!(r#"{{"a":"{word}"}}"#)), "{text}");
            let fields = format!("[a = {word}]");
            assert!(FilterPattern::parse(&fields).expect("parses").matches(word));
        }
    }

    #[test]
    fn over_long_patterns_are_refused() {
        assert_eq!(
            FilterPattern::parse(&"a".repeat(1025)),
            Err(PatternError::TooLong)
        );
        assert!(FilterPattern::parse(&"a".repeat(1024)).is_ok());
    }

    #[test]
    fn huge_regex_repetitions_are_refused() {
        for pattern in [
            "%a{1000}{1000}%",
            "{ $.a = %[a-z]{1000}{1000}% }",
            "[a = %\\w{1000}{100}%]",
        ] {
            assert!(FilterPattern::parse(pattern).is_err(), "{pattern}");
        }
        assert!(FilterPattern::parse("%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%").is_ok());
    }

    #[test]
    fn many_ellipses_match_without_trying_every_split() {
        let pattern = format!("[{}last = 7]", "..., ".repeat(60));
        let pattern = FilterPattern::parse(&pattern).expect("ellipses");
        let mut message = "x ".repeat(300);
        assert!(!pattern.matches(&message));
        message.push('7');
        assert!(pattern.matches(&message));
    }

    /// The obvious matcher, exponential in the number of `...`: the reference for small inputs.
    fn match_fields_by_every_split(fields: &[Field], values: &[String]) -> bool {
        match fields.split_first() {
            None => values.is_empty(),
            Some((Field::Ellipsis, rest)) => {
                (0..=values.len()).any(|skip| match_fields_by_every_split(rest, &values[skip..]))
            }
            Some((field, rest)) => {
                values
                    .first()
                    .is_some_and(|value| super::field_matches(field, value))
                    && match_fields_by_every_split(rest, &values[1..])
            }
        }
    }

    fn field() -> impl Strategy<Value = Field> {
        prop_oneof![
            Just(Field::Ellipsis),
            Just(Field::Named(vec![Vec::new()])),
            (0..3u8).prop_map(|n| Field::Named(vec![vec![(Op::Eq, Literal::Text(n.to_string()))]])),
        ]
    }

    proptest! {
        #[test]
        fn match_fields_agrees_with_trying_every_split(
            fields in prop::collection::vec(field(), 0..7),
            values in prop::collection::vec((0..4u8).prop_map(|n| n.to_string()), 0..8),
        ) {
            prop_assert_eq!(
                match_fields(&fields, &values),
                match_fields_by_every_split(&fields, &values)
            );
        }
    }
}
