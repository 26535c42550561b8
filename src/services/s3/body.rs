//! Reading an upload's body as it streams: plain, or `aws-chunked` (the framing SDKs use by
//! default for PutObject: `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, or signed chunks
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`), checking the declared SHA-256, every chunk
//! signature (strict mode) and the `x-amz-checksum-*` value, without ever holding more than
//! one network frame plus a chunk header in memory.

use axum::body::{Body, Bytes};
use base64::Engine;
use bytes::BytesMut;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::error::{S3Error, S3ErrorCode};
use crate::protocol::auth::UnreadAuth;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// A chunk header or trailer line longer than this is not aws-chunked framing.
const MAX_LINE: usize = 8 * 1024;

static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
static CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
static CRC64NVME: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_NVME);

/// One of the `x-amz-checksum-*` algorithms, computed over the decoded body.
pub enum Checksum {
    /// `CRC32`.
    Crc32(crc::Digest<'static, u32>),
    /// `CRC32C`.
    Crc32c(crc::Digest<'static, u32>),
    /// `CRC64NVME`.
    Crc64Nvme(crc::Digest<'static, u64>),
    /// `SHA1`.
    Sha1(sha1::Sha1),
    /// `SHA256`.
    Sha256(Sha256),
}

impl Checksum {
    /// The algorithm named like the header suffix (`crc32`, `crc64nvme` ...), any case.
    pub fn for_name(name: &str) -> Option<Checksum> {
        Some(match name.to_ascii_lowercase().as_str() {
            "crc32" => Checksum::Crc32(CRC32.digest()),
            "crc32c" => Checksum::Crc32c(CRC32C.digest()),
            "crc64nvme" => Checksum::Crc64Nvme(CRC64NVME.digest()),
            "sha1" => Checksum::Sha1(sha1::Sha1::new()),
            "sha256" => Checksum::Sha256(Sha256::new()),
            _ => return None,
        })
    }

    /// The algorithm's name as S3 writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Checksum::Crc32(_) => "CRC32",
            Checksum::Crc32c(_) => "CRC32C",
            Checksum::Crc64Nvme(_) => "CRC64NVME",
            Checksum::Sha1(_) => "SHA1",
            Checksum::Sha256(_) => "SHA256",
        }
    }

    /// Folds in data.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Checksum::Crc32(digest) | Checksum::Crc32c(digest) => digest.update(data),
            Checksum::Crc64Nvme(digest) => digest.update(data),
            Checksum::Sha1(digest) => sha1::Digest::update(digest, data),
            Checksum::Sha256(digest) => digest.update(data),
        }
    }

    /// The value as sent in headers: base64 of the big-endian digest.
    pub fn finish(self) -> String {
        let bytes = match self {
            Checksum::Crc32(digest) | Checksum::Crc32c(digest) => {
                digest.finalize().to_be_bytes().to_vec()
            }
            Checksum::Crc64Nvme(digest) => digest.finalize().to_be_bytes().to_vec(),
            Checksum::Sha1(digest) => sha1::Digest::finalize(digest).to_vec(),
            Checksum::Sha256(digest) => digest.finalize().to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// How the payload was declared in `x-amz-content-sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `UNSIGNED-PAYLOAD` or nothing declared.
    Unsigned,
    /// The hex SHA-256 of the whole body.
    Sha256(String),
    /// `aws-chunked` framing; `signed` when each chunk carries a signature.
    Chunked {
        /// Chunks (and the trailer, if any) are signed.
        signed: bool,
    },
}

impl Payload {
    /// Reads `x-amz-content-sha256`.
    pub fn from_header(value: Option<&str>) -> Result<Payload, S3Error> {
        Ok(match value.map(str::trim) {
            None | Some("UNSIGNED-PAYLOAD") => Payload::Unsigned,
            Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER") => Payload::Chunked { signed: false },
            Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
            | Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") => {
                Payload::Chunked { signed: true }
            }
            Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Payload::Sha256(hash.to_ascii_lowercase())
            }
            Some(other) => {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    format!("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-... or a valid sha256 value, not '{other}'"),
                ))
            }
        })
    }
}

/// Checks signed chunks against the seed signature (strict mode only).
struct ChunkSigner {
    key: [u8; 32],
    amz_date: String,
    scope: String,
    previous: String,
}

impl ChunkSigner {
    fn sign(&mut self, kind: &str, hash: &str) -> String {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-{kind}\n{}\n{}\n{}\n{}{hash}",
            self.amz_date,
            self.scope,
            self.previous,
            if kind == "PAYLOAD" {
                format!("{EMPTY_SHA256}\n")
            } else {
                String::new()
            }
        );
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(to_sign.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks one signature and chains it.
    fn check(&mut self, kind: &str, hash: &str, given: &str) -> Result<(), S3Error> {
        let expected = self.sign(kind, hash);
        if expected.len() == given.len()
            && expected
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
        {
            self.previous = expected;
            Ok(())
        } else {
            Err(S3Error::new(
                S3ErrorCode::SignatureDoesNotMatch,
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ))
        }
    }
}

enum State {
    Header,
    Data { remaining: u64, signature: String },
    DataEnd { signature: String },
    Trailers,
    Done,
}

/// An upload body, decoded and checked as it is read.
pub struct BodyReader {
    body: Body,
    buffer: BytesMut,
    chunked: bool,
    state: State,
    signer: Option<ChunkSigner>,
    chunk_hash: Sha256,
    whole_hash: Option<(Sha256, String)>,
    eof: bool,
    /// Trailer fields (`x-amz-checksum-crc32: ...`) of an aws-chunked body, once read.
    pub trailers: Vec<(String, String)>,
}

fn incomplete(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::IncompleteBody, message)
}

impl BodyReader {
    /// Wraps a body declared as `payload`; `auth` brings the chunk signing key in strict mode.
    pub fn new(body: Body, payload: &Payload, auth: &UnreadAuth) -> Self {
        let signer = match (payload, auth.signing_key, &auth.parsed) {
            (Payload::Chunked { signed: true }, Some(key), Some(parsed)) => {
                let scope = &parsed.scope;
                let format =
                    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
                Some(ChunkSigner {
                    key,
                    amz_date: parsed.request_time.format(&format).unwrap_or_default(),
                    scope: format!(
                        "{}/{}/{}/aws4_request",
                        scope.date, scope.region, scope.service
                    ),
                    previous: parsed.signature.clone(),
                })
            }
            _ => None,
        };
        Self {
            body,
            buffer: BytesMut::new(),
            chunked: matches!(payload, Payload::Chunked { .. }),
            state: State::Header,
            signer,
            chunk_hash: Sha256::new(),
            whole_hash: match payload {
                Payload::Sha256(hash) => Some((Sha256::new(), hash.clone())),
                _ => None,
            },
            eof: false,
            trailers: Vec::new(),
        }
    }

    /// Pulls the next network frame into the buffer; false at the end of the body.
    async fn fill(&mut self) -> Result<bool, S3Error> {
        if self.eof {
            return Ok(false);
        }
        loop {
            match self.body.frame().await {
                None => {
                    self.eof = true;
                    return Ok(false);
                }
                Some(Err(_)) => return Err(incomplete("The request body terminated unexpectedly")),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            self.buffer.extend_from_slice(&data);
                            return Ok(true);
                        }
                    }
                }
            }
        }
    }

    async fn line(&mut self) -> Result<String, S3Error> {
        loop {
            if let Some(at) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = self.buffer.split_to(at + 2);
                return Ok(String::from_utf8_lossy(&line[..at]).into_owned());
            }
            if self.buffer.len() > MAX_LINE {
                return Err(incomplete("An aws-chunked header line is too long"));
            }
            if !self.fill().await? {
                return Err(incomplete(
                    "The aws-chunked body ended inside a chunk header",
                ));
            }
        }
    }

    /// The next piece of decoded body, `None` at its end (after every check passed).
    pub async fn next(&mut self) -> Result<Option<Bytes>, S3Error> {
        if !self.chunked {
            if self.buffer.is_empty() && !self.fill().await? {
                self.finish_plain()?;
                return Ok(None);
            }
            let data = self.buffer.split().freeze();
            if let Some((hash, _)) = &mut self.whole_hash {
                hash.update(&data);
            }
            return Ok(Some(data));
        }
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Header => {
                    let line = self.line().await?;
                    let (size, extensions) = line.split_once(';').unwrap_or((&line, ""));
                    let size = u64::from_str_radix(size.trim(), 16)
                        .map_err(|_| incomplete("An aws-chunked chunk size is not hexadecimal"))?;
                    let signature = extensions
                        .split(';')
                        .find_map(|ext| ext.trim().strip_prefix("chunk-signature="))
                        .unwrap_or_default()
                        .to_owned();
                    if self.signer.is_some() && signature.is_empty() {
                        return Err(incomplete("A signed aws-chunked chunk has no signature"));
                    }
                    self.chunk_hash = Sha256::new();
                    self.state = if size == 0 {
                        self.check_chunk(&signature)?;
                        State::Trailers
                    } else {
                        State::Data {
                            remaining: size,
                            signature,
                        }
                    };
                }
                State::Data {
                    remaining,
                    signature,
                } => {
                    if self.buffer.is_empty() && !self.fill().await? {
                        return Err(incomplete("The aws-chunked body ended inside a chunk"));
                    }
                    let take = remaining.min(self.buffer.len() as u64) as usize;
                    let data = self.buffer.split_to(take).freeze();
                    self.chunk_hash.update(&data);
                    let remaining = remaining - take as u64;
                    self.state = if remaining == 0 {
                        State::DataEnd { signature }
                    } else {
                        State::Data {
                            remaining,
                            signature,
                        }
                    };
                    return Ok(Some(data));
                }
                State::DataEnd { signature } => {
                    let line = self.line().await?;
                    if !line.is_empty() {
                        return Err(incomplete("An aws-chunked chunk is longer than its size"));
                    }
                    self.check_chunk(&signature)?;
                    self.state = State::Header;
                }
                State::Trailers => {
                    if self.buffer.is_empty() && !self.fill().await? {
                        // Some clients end right after the last chunk, with no trailer section.
                        self.state = State::Done;
                        return Ok(None);
                    }
                    let line = self.line().await?;
                    if line.is_empty() {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    let (name, value) = line.split_once(':').unwrap_or((&line, ""));
                    let name = name.trim().to_ascii_lowercase();
                    let value = value.trim().to_owned();
                    if name == "x-amz-trailer-signature" {
                        self.check_trailer(&value)?;
                    } else {
                        self.trailers.push((name, value));
                    }
                    self.state = State::Trailers;
                }
                State::Done => return Ok(None),
            }
        }
    }

    fn check_chunk(&mut self, signature: &str) -> Result<(), S3Error> {
        let hash = hex::encode(std::mem::take(&mut self.chunk_hash).finalize());
        match &mut self.signer {
            Some(signer) => signer.check("PAYLOAD", &hash, signature),
            None => Ok(()),
        }
    }

    fn check_trailer(&mut self, signature: &str) -> Result<(), S3Error> {
        let Some(signer) = &mut self.signer else {
            return Ok(());
        };
        let canonical: String = self
            .trailers
            .iter()
            .map(|(name, value)| format!("{name}:{value}\n"))
            .collect();
        let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
        signer.check("TRAILER", &hash, signature)
    }

    fn finish_plain(&mut self) -> Result<(), S3Error> {
        if let Some((hash, declared)) = self.whole_hash.take() {
            let computed = hex::encode(hash.finalize());
            if computed != declared {
                return Err(S3Error::new(
                    S3ErrorCode::XAmzContentSHA256Mismatch,
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )
                .with("ClientComputedContentSHA256", declared)
                .with("S3ComputedContentSHA256", computed));
            }
        }
        Ok(())
    }

    /// Leftover bytes of the buffer, for tests of the framing.
    #[cfg(test)]
    fn remaining(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::auth::Identity;
    use crate::protocol::sigv4::{CredentialScope, ParsedSignature, SignatureLocation};

    fn unread(signing_key: Option<[u8; 32]>, signature: &str) -> UnreadAuth {
        UnreadAuth {
            identity: Identity {
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                account_id: "000000000000".into(),
                region: "us-east-1".into(),
                service: "s3".into(),
            },
            parsed: Some(ParsedSignature {
                location: SignatureLocation::Header,
                scope: CredentialScope {
                    access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                    date: "20130524".into(),
                    region: "us-east-1".into(),
                    service: "s3".into(),
                },
                signed_headers: vec!["host".into()],
                signature: signature.into(),
                request_time: time::macros::datetime!(2013-05-24 00:00:00 UTC),
                expires_seconds: None,
                security_token: None,
            }),
            signing_key,
        }
    }

    async fn read_all(reader: &mut BodyReader) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        while let Some(data) = reader.next().await? {
            out.extend_from_slice(&data);
        }
        Ok(out)
    }

    /// AWS's worked example of a chunked upload (64 KiB + 1 KiB of `a`, the documented seed
    /// and chunk signatures), from the S3 SigV4 streaming documentation.
    #[tokio::test]
    async fn documented_signed_chunks_verify() {
        let key = crate::protocol::sigv4::signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
            "s3",
        );
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let chunks = [
            (
                65536usize,
                "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            ),
            (
                1024,
                "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            ),
            (
                0,
                "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
            ),
        ];
        let mut wire = Vec::new();
        for (size, signature) in chunks {
            wire.extend_from_slice(format!("{size:x};chunk-signature={signature}\r\n").as_bytes());
            wire.extend(std::iter::repeat_n(b'a', size));
            wire.extend_from_slice(b"\r\n");
        }
        let auth = unread(Some(key), seed);
        let payload = Payload::Chunked { signed: true };
        let mut reader = BodyReader::new(Body::from(wire.clone()), &payload, &auth);
        assert_eq!(read_all(&mut reader).await.expect("valid").len(), 66560);
        assert_eq!(reader.remaining(), 0);

        // One byte changed: the chunk signature no longer matches.
        let mut tampered = wire;
        let at = tampered.len() / 2;
        tampered[at] = b'b';
        let mut reader = BodyReader::new(Body::from(tampered), &payload, &auth);
        let error = read_all(&mut reader).await.expect_err("tampered");
        assert_eq!(error.code, S3ErrorCode::SignatureDoesNotMatch);
    }

    #[tokio::test]
    async fn unsigned_trailer_body_yields_data_and_trailers() {
        let wire = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        let payload = Payload::Chunked { signed: false };
        let mut reader = BodyReader::new(Body::from(&wire[..]), &payload, &unread(None, ""));
        assert_eq!(read_all(&mut reader).await.expect("valid"), b"hello world");
        assert_eq!(
            reader.trailers,
            vec![("x-amz-checksum-crc32".to_owned(), "DUoRhQ==".to_owned())]
        );
        let mut crc = Checksum::for_name("crc32").expect("crc32");
        crc.update(b"hello world");
        assert_eq!(crc.finish(), "DUoRhQ==");
    }
}
