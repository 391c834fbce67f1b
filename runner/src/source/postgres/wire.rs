//! The PostgreSQL frontend/backend protocol, as much of it as the source needs: TCP (+ TLS),
//! startup with or without `replication=database`, password authentication (SCRAM-SHA-256,
//! MD5, cleartext), simple queries, and buffered message framing that lets callers decode
//! straight out of the receive buffer (COPY rows and replication messages are never copied).
//!
//! Every session sets the output formats the text parsers rely on: `DateStyle=ISO`,
//! `IntervalStyle=iso_8601`, `TimeZone=UTC`, `extra_float_digits=3`, `bytea_output=hex`,
//! `client_encoding=UTF8`.

use std::fmt;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::config::{PostgresSourceConfig, SslMode, sslmode_name};
use super::tls;
use crate::source::{ErrorKind, SourceError};

/// How long connecting (TCP, TLS and authentication together) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes asked of the socket per read: large reads, few system calls.
const READ_CHUNK: usize = 256 * 1024;

/// Receive-buffer capacity beyond which an emptied buffer is replaced by a fresh one.
const SHRINK_ABOVE: usize = 16 * READ_CHUNK;

/// Largest message accepted (PostgreSQL's own limit for a field is 1 GB).
const MAX_MESSAGE: usize = 1 << 30;

/// The read half of a connection (plain TCP or TLS).
pub(crate) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection (plain TCP or TLS).
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// An error the server reported (`ErrorResponse`), with its SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// `ERROR`, `FATAL` or `PANIC` (non-localized).
    pub severity: String,
    /// The SQLSTATE code, e.g. `28P01`.
    pub code: String,
    /// The primary message.
    pub message: String,
    /// The optional detail.
    pub detail: Option<String>,
    /// The optional hint.
    pub hint: Option<String>,
}

impl fmt::Display for ServerError {
    /// `SEVERITY: message (SQLSTATE code)` plus detail and hint when present.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "; {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

impl ServerError {
    /// Parses the fields of an `ErrorResponse` (or `NoticeResponse`) body.
    pub(crate) fn parse(body: &[u8]) -> Self {
        let mut error = ServerError {
            severity: String::new(),
            code: String::new(),
            message: String::new(),
            detail: None,
            hint: None,
        };
        let mut rest = body;
        while let Some((&field, tail)) = rest.split_first() {
            if field == 0 {
                break;
            }
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            let value = String::from_utf8_lossy(&tail[..end]).into_owned();
            rest = tail.get(end + 1..).unwrap_or_default();
            match field {
                b'V' => error.severity = value,
                b'S' if error.severity.is_empty() => error.severity = value,
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = Some(value),
                b'H' => error.hint = Some(value),
                _ => {}
            }
        }
        error
    }

    /// The error kind its SQLSTATE implies.
    pub(crate) fn kind(&self) -> ErrorKind {
        let class = self.code.get(..2).unwrap_or_default();
        match self.code.as_str() {
            "28P01" | "28000" => ErrorKind::Auth,
            "3D000" | "42P01" | "42704" | "3F000" => ErrorKind::MissingObject,
            "42501" => ErrorKind::Permission,
            "57P01" | "57P02" => ErrorKind::Disconnected,
            "57P03" | "55006" | "40001" | "40P01" => ErrorKind::Busy,
            "55000" | "0A000" => ErrorKind::Config,
            _ if class == "08" => ErrorKind::Disconnected,
            _ if class == "53" => ErrorKind::Busy,
            _ => ErrorKind::Server,
        }
    }
}

/// A failure on a connection, before the caller adds what it was doing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// A socket or TLS error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The server sent something out of protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server reported an error.
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl WireError {
    /// The source error for this failure while doing `what` (`"could not create slot s"` …),
    /// classified and with the cause kept.
    pub(crate) fn context(self, what: impl fmt::Display) -> SourceError {
        match self {
            WireError::Closed => SourceError::new(
                ErrorKind::Disconnected,
                format!("{what}: the server closed the connection"),
            ),
            WireError::Io(error) => {
                let message = format!("{what}: {error}");
                SourceError::with_source(ErrorKind::Disconnected, message, error)
            }
            WireError::Protocol(detail) => SourceError::new(
                ErrorKind::Protocol,
                format!("{what}: protocol violation: {detail}"),
            ),
            WireError::Server(error) => {
                let message = format!("{what}: {}", error.message);
                SourceError::with_source(error.kind(), message, error)
            }
        }
    }

    /// The server error, if that is what this is.
    pub(crate) fn server(&self) -> Option<&ServerError> {
        match self {
            WireError::Server(error) => Some(error),
            _ => None,
        }
    }
}

/// One complete backend message, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    /// The message type byte.
    pub(crate) tag: u8,
    /// The message body (after the length).
    pub(crate) body: &'a [u8],
    /// Bytes the whole message occupies in the buffer (pass to [`FrameReader::consume`]).
    pub(crate) len: usize,
}

/// Buffered reading of backend messages: large reads into one buffer, messages handed out as
/// borrowed slices.
pub(crate) struct FrameReader {
    /// The socket (or TLS stream) read half.
    io: BoxRead,
    /// Received bytes not consumed yet.
    buf: BytesMut,
}

impl FrameReader {
    /// The next complete message if it is already buffered.
    pub(crate) fn peek(&self) -> Result<Option<Frame<'_>>, WireError> {
        let Some(header) = self.buf.get(..5) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if !(4..=MAX_MESSAGE).contains(&len) {
            return Err(WireError::Protocol(format!(
                "message {:?} with length {len}",
                char::from(header[0])
            )));
        }
        let total = len + 1;
        Ok(self.buf.get(5..total).map(|body| Frame {
            tag: header[0],
            body,
            len: total,
        }))
    }

    /// Drops a message returned by [`FrameReader::peek`] from the buffer. A buffer that grew
    /// for one huge message (a large TOASTed value) is given back once it is empty.
    pub(crate) fn consume(&mut self, len: usize) {
        self.buf.advance(len);
        if self.buf.is_empty() && self.buf.capacity() > SHRINK_ABOVE {
            self.buf = BytesMut::with_capacity(READ_CHUNK);
        }
    }

    /// Reads more bytes (at least one), making room for the whole pending message first.
    /// Cancel-safe: nothing read is lost if the future is dropped.
    pub(crate) async fn fill(&mut self) -> Result<(), WireError> {
        let needed = match self.buf.get(..5) {
            Some(header) => {
                u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize + 1
            }
            None => 5,
        };
        let missing = needed.saturating_sub(self.buf.len());
        if self.buf.capacity() - self.buf.len() < missing.max(READ_CHUNK / 4) {
            self.buf.reserve(missing.max(READ_CHUNK));
        }
        match self.io.read_buf(&mut self.buf).await? {
            0 => Err(WireError::Closed),
            _ => Ok(()),
        }
    }

    /// The next message, waiting for it; for the paths that are not hot. Returns the tag and a
    /// copy-free handle on the body.
    pub(crate) async fn recv(&mut self) -> Result<(u8, bytes::Bytes), WireError> {
        loop {
            if let Some(frame) = self.peek()? {
                let (tag, len) = (frame.tag, frame.len);
                let mut message = self.buf.split_to(len);
                message.advance(5);
                return Ok((tag, message.freeze()));
            }
            self.fill().await?;
        }
    }
}

/// The write half with its output buffer.
pub(crate) struct Writer {
    /// The socket (or TLS stream) write half.
    io: BoxWrite,
    /// Messages built but not sent yet.
    pub(crate) buf: BytesMut,
}

impl Writer {
    /// Sends everything in the buffer.
    pub(crate) async fn send(&mut self) -> Result<(), WireError> {
        self.io.write_all(&self.buf).await?;
        self.buf.clear();
        self.io.flush().await?;
        Ok(())
    }
}

/// Which kind of session to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Session {
    /// An ordinary session (catalog queries, backfill, heartbeats).
    Ordinary,
    /// A logical replication session (`replication=database`): replication commands and
    /// simple SQL.
    Replication,
}

/// One authenticated session.
pub(crate) struct Conn {
    /// Incoming messages.
    pub(crate) reader: FrameReader,
    /// Outgoing messages.
    pub(crate) writer: Writer,
    /// `server_version_num`-style number (`150008` for 15.8).
    pub(crate) server_version: u32,
    /// `host:port`, for messages.
    pub(crate) endpoint: String,
}

/// Rows of a simple query's last result set, as text (`None` for NULL).
pub(crate) type Rows = Vec<Vec<Option<String>>>;

impl Conn {
    /// Connects, negotiates TLS per `sslmode`, starts the session and authenticates.
    pub(crate) async fn connect(
        config: &PostgresSourceConfig,
        session: Session,
    ) -> Result<Conn, SourceError> {
        let endpoint = config.endpoint();
        match tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_inner(config, session)).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::new(
                ErrorKind::Connect,
                format!(
                    "could not connect to {endpoint}: no session within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// [`Conn::connect`] without the overall timeout.
    async fn connect_inner(
        config: &PostgresSourceConfig,
        session: Session,
    ) -> Result<Conn, SourceError> {
        let endpoint = config.endpoint();
        let mut tcp = TcpStream::connect((config.host.as_str(), config.port))
            .await
            .map_err(|e| {
                SourceError::with_source(
                    ErrorKind::Connect,
                    format!("could not connect to {endpoint}: {e}"),
                    e,
                )
            })?;
        tcp.set_nodelay(true).map_err(|e| {
            SourceError::with_source(
                ErrorKind::Connect,
                format!("could not connect to {endpoint}: {e}"),
                e,
            )
        })?;

        let (read, write): (BoxRead, BoxWrite) = if config.sslmode == SslMode::Disable {
            let (read, write) = tcp.into_split();
            (Box::new(read), Box::new(write))
        } else if request_tls(&mut tcp, &endpoint).await? {
            let stream = tls::handshake(config, tcp).await?;
            let (read, write) = tokio::io::split(stream);
            (Box::new(read), Box::new(write))
        } else if config.sslmode == SslMode::Prefer {
            let (read, write) = tcp.into_split();
            (Box::new(read), Box::new(write))
        } else {
            return Err(SourceError::new(
                ErrorKind::Config,
                format!(
                    "server at {endpoint} does not accept TLS connections but sslmode is {}",
                    sslmode_name(config.sslmode)
                ),
            ));
        };

        let mut conn = Conn {
            reader: FrameReader {
                io: read,
                buf: BytesMut::with_capacity(READ_CHUNK),
            },
            writer: Writer {
                io: write,
                buf: BytesMut::with_capacity(1024),
            },
            server_version: 0,
            endpoint,
        };
        conn.startup(config, session).await?;
        Ok(conn)
    }

    /// Sends the startup message and runs authentication until `ReadyForQuery`.
    async fn startup(
        &mut self,
        config: &PostgresSourceConfig,
        session: Session,
    ) -> Result<(), SourceError> {
        let mut params = vec![
            ("user", config.user.as_str()),
            ("database", config.database.as_str()),
            ("application_name", config.application_name.as_str()),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "iso_8601"),
            ("TimeZone", "UTC"),
            ("extra_float_digits", "3"),
            ("bytea_output", "hex"),
        ];
        if session == Session::Replication {
            params.push(("replication", "database"));
        }
        let what = || format!("could not start a session on {}", self.endpoint);
        frontend::startup_message(params.iter().copied(), &mut self.writer.buf)
            .map_err(|e| WireError::Io(e).context(what()))?;
        self.writer.send().await.map_err(|e| e.context(what()))?;

        let mut scram: Option<ScramSha256> = None;
        loop {
            let (tag, body) = self.reader.recv().await.map_err(|e| e.context(what()))?;
            match tag {
                b'R' => {
                    let code = read_i32(&body, 0).map_err(|e| e.context(what()))?;
                    match code {
                        0 => {}
                        3 => {
                            let password = self.password(config)?;
                            frontend::password_message(password.as_bytes(), &mut self.writer.buf)
                                .map_err(|e| WireError::Io(e).context(what()))?;
                            self.writer.send().await.map_err(|e| e.context(what()))?;
                        }
                        5 => {
                            let password = self.password(config)?;
                            let salt = body
                                .get(4..8)
                                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                                .ok_or_else(|| {
                                    WireError::Protocol("short MD5 request".into()).context(what())
                                })?;
                            let hash = md5_hash(config.user.as_bytes(), password.as_bytes(), salt);
                            frontend::password_message(hash.as_bytes(), &mut self.writer.buf)
                                .map_err(|e| WireError::Io(e).context(what()))?;
                            self.writer.send().await.map_err(|e| e.context(what()))?;
                        }
                        10 => {
                            let mechanisms: Vec<&[u8]> = body[4..]
                                .split(|&b| b == 0)
                                .filter(|m| !m.is_empty())
                                .collect();
                            if !mechanisms.contains(&SCRAM_SHA_256.as_bytes()) {
                                return Err(SourceError::new(
                                    ErrorKind::Auth,
                                    format!(
                                        "server at {} offers no supported SASL mechanism ({})",
                                        self.endpoint,
                                        mechanisms
                                            .iter()
                                            .map(|m| String::from_utf8_lossy(m))
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    ),
                                ));
                            }
                            let password = self.password(config)?;
                            // Channel binding is not used ("n"): PostgreSQL accepts that over
                            // TLS too, and TLS itself is verified per sslmode.
                            let client = ScramSha256::new(
                                password.as_bytes(),
                                ChannelBinding::unsupported(),
                            );
                            frontend::sasl_initial_response(
                                SCRAM_SHA_256,
                                client.message(),
                                &mut self.writer.buf,
                            )
                            .map_err(|e| WireError::Io(e).context(what()))?;
                            self.writer.send().await.map_err(|e| e.context(what()))?;
                            scram = Some(client);
                        }
                        11 => {
                            let client = scram.as_mut().ok_or_else(|| {
                                WireError::Protocol("SASL continue without SASL start".into())
                                    .context(what())
                            })?;
                            client.update(&body[4..]).map_err(|e| self.sasl_error(e))?;
                            frontend::sasl_response(client.message(), &mut self.writer.buf)
                                .map_err(|e| WireError::Io(e).context(what()))?;
                            self.writer.send().await.map_err(|e| e.context(what()))?;
                        }
                        12 => {
                            let client = scram.as_mut().ok_or_else(|| {
                                WireError::Protocol("SASL final without SASL start".into())
                                    .context(what())
                            })?;
                            client.finish(&body[4..]).map_err(|e| self.sasl_error(e))?;
                        }
                        other => {
                            return Err(SourceError::new(
                                ErrorKind::Auth,
                                format!(
                                    "server at {} asks for an unsupported authentication method (code {other})",
                                    self.endpoint
                                ),
                            ));
                        }
                    }
                }
                b'S' => {
                    let mut parts = body.split(|&b| b == 0);
                    if parts.next() == Some(b"server_version") {
                        self.server_version = parse_version(parts.next().unwrap_or_default());
                    }
                }
                b'K' | b'N' => {}
                b'E' => return Err(self.startup_error(ServerError::parse(&body), config, session)),
                b'Z' => return Ok(()),
                other => {
                    return Err(WireError::Protocol(format!(
                        "unexpected message {:?} during startup",
                        char::from(other)
                    ))
                    .context(what()));
                }
            }
        }
    }

    /// The configured password, or an authentication error saying none is configured.
    fn password<'c>(&self, config: &'c PostgresSourceConfig) -> Result<&'c str, SourceError> {
        config.password.as_deref().ok_or_else(|| {
            SourceError::new(
                ErrorKind::Auth,
                format!(
                    "server at {} requires a password for user \"{}\" and none is configured",
                    self.endpoint, config.user
                ),
            )
        })
    }

    /// A SCRAM exchange failure: the server's proof did not verify (or was malformed).
    fn sasl_error(&self, error: std::io::Error) -> SourceError {
        let message = format!(
            "SCRAM authentication with {} failed: {error}",
            self.endpoint
        );
        SourceError::with_source(ErrorKind::Auth, message, error)
    }

    /// A one-line error for an `ErrorResponse` received during startup.
    fn startup_error(
        &self,
        error: ServerError,
        config: &PostgresSourceConfig,
        session: Session,
    ) -> SourceError {
        let kind = error.kind();
        let message = match (kind, session) {
            (ErrorKind::Auth, _) => format!("{} at {}", error.message, self.endpoint),
            (ErrorKind::Permission, Session::Replication) => format!(
                "role \"{}\" may not open a replication connection to {}: {}",
                config.user, self.endpoint, error.message
            ),
            _ => format!("could not connect to {}: {}", self.endpoint, error.message),
        };
        SourceError::with_source(kind, message, error)
    }

    /// Runs one simple query (possibly several statements) and returns the rows of the last
    /// result set. Any `ErrorResponse` fails it (after the session is ready again).
    pub(crate) async fn query(&mut self, sql: &str) -> Result<Rows, WireError> {
        frontend::query(sql, &mut self.writer.buf)?;
        self.writer.send().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let (tag, body) = self.reader.recv().await?;
            match tag {
                b'T' => rows.clear(),
                b'D' => rows.push(parse_data_row(&body)?),
                b'C' | b'I' | b'N' | b'S' => {}
                b'E' => error = Some(ServerError::parse(&body)),
                b'Z' => {
                    return match error {
                        Some(error) => Err(WireError::Server(error)),
                        None => Ok(rows),
                    };
                }
                b'H' | b'W' | b'G' => {
                    return Err(WireError::Protocol(format!(
                        "query {sql:?} started a COPY; use the copy paths"
                    )));
                }
                other => {
                    return Err(WireError::Protocol(format!(
                        "unexpected message {:?} in a query response",
                        char::from(other)
                    )));
                }
            }
        }
    }

    /// Sends a query that starts a COPY (out or both) and waits for the server to switch into
    /// COPY mode. After that the caller reads `CopyData` frames from [`Conn::reader`].
    pub(crate) async fn start_copy(&mut self, sql: &str) -> Result<(), WireError> {
        frontend::query(sql, &mut self.writer.buf)?;
        self.writer.send().await?;
        let mut error = None;
        loop {
            let (tag, body) = self.reader.recv().await?;
            match tag {
                b'H' | b'W' if error.is_none() => return Ok(()),
                b'E' => error = Some(ServerError::parse(&body)),
                b'Z' => {
                    return Err(match error {
                        Some(error) => WireError::Server(error),
                        None => WireError::Protocol(format!("{sql:?} did not start a COPY")),
                    });
                }
                b'N' | b'S' | b'T' | b'D' | b'C' => {}
                other => {
                    return Err(WireError::Protocol(format!(
                        "unexpected message {:?} while starting a COPY",
                        char::from(other)
                    )));
                }
            }
        }
    }

    /// Ends the session politely (`Terminate`); errors are irrelevant at that point.
    pub(crate) async fn close(mut self) {
        frontend::terminate(&mut self.writer.buf);
        let _ = self.writer.send().await;
    }
}

/// Parses a `DataRow` body into text fields.
fn parse_data_row(body: &[u8]) -> Result<Vec<Option<String>>, WireError> {
    let count = read_i16(body, 0)?;
    let mut fields = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut at = 2;
    for _ in 0..count {
        let len = read_i32(body, at)?;
        at += 4;
        if len < 0 {
            fields.push(None);
            continue;
        }
        let end = at + len as usize;
        let value = body
            .get(at..end)
            .ok_or_else(|| WireError::Protocol("short DataRow".into()))?;
        fields.push(Some(String::from_utf8(value.to_vec()).map_err(|_| {
            WireError::Protocol("DataRow field is not UTF-8".into())
        })?));
        at = end;
    }
    Ok(fields)
}

/// A big-endian `i32` at `at`.
pub(crate) fn read_i32(body: &[u8], at: usize) -> Result<i32, WireError> {
    body.get(at..at + 4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| WireError::Protocol("message too short".into()))
}

/// A big-endian `i16` at `at`.
fn read_i16(body: &[u8], at: usize) -> Result<i16, WireError> {
    body.get(at..at + 2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| WireError::Protocol("message too short".into()))
}

/// `15.8 (Debian …)` → `150008`; `9.6.24` → `90624`.
fn parse_version(text: &[u8]) -> u32 {
    let text = String::from_utf8_lossy(text);
    let mut numbers = text
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    if major >= 10 {
        major * 10_000 + minor
    } else {
        major * 10_000 + minor * 100 + numbers.next().unwrap_or(0)
    }
}

/// Sends `SSLRequest`; `true` when the server agrees to TLS.
async fn request_tls(tcp: &mut TcpStream, endpoint: &str) -> Result<bool, SourceError> {
    let fail = |e: std::io::Error| {
        SourceError::with_source(
            ErrorKind::Connect,
            format!("could not negotiate TLS with {endpoint}: {e}"),
            e,
        )
    };
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    tcp.write_all(&buf).await.map_err(fail)?;
    let answer = tcp.read_u8().await.map_err(fail)?;
    match answer {
        b'S' => Ok(true),
        b'N' => Ok(false),
        other => Err(SourceError::new(
            ErrorKind::Protocol,
            format!(
                "could not negotiate TLS with {endpoint}: unexpected answer {:?}",
                char::from(other)
            ),
        )),
    }
}

/// Quotes an SQL identifier (`"a""b"`).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal (`'it''s'`), standard-conforming.
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_old_and_new_styles() {
        assert_eq!(parse_version(b"15.8 (Debian 15.8-0+deb12u1)"), 150008);
        assert_eq!(parse_version(b"14.0"), 140000);
        assert_eq!(parse_version(b"9.6.24"), 90624);
        assert_eq!(parse_version(b"17beta1"), 170000);
    }

    #[test]
    fn server_errors_parse_and_classify() {
        let body = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"cdc\"\0\0";
        let error = ServerError::parse(body);
        assert_eq!(error.code, "28P01");
        assert_eq!(error.severity, "FATAL");
        assert_eq!(error.kind(), ErrorKind::Auth);
        for (code, kind) in [
            ("42501", ErrorKind::Permission),
            ("42P01", ErrorKind::MissingObject),
            ("57P01", ErrorKind::Disconnected),
            ("08006", ErrorKind::Disconnected),
            ("53300", ErrorKind::Busy),
            ("55006", ErrorKind::Busy),
            ("55000", ErrorKind::Config),
            ("XX000", ErrorKind::Server),
        ] {
            let error = ServerError {
                code: code.into(),
                ..error.clone()
            };
            assert_eq!(error.kind(), kind, "{code}");
        }
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("My \"T\""), "\"My \"\"T\"\"\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
