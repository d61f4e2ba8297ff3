//! A minimal blocking HTTP/1.1 keep-alive client for the `load` and `soak` tasks: one
//! connection, `GET` requests with an optional raw `X-Request-ID` value, responses read
//! by `Content-Length` or chunked transfer coding. Loopback servers only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

/// One keep-alive connection to a server on this machine.
#[derive(Debug)]
pub(crate) struct Connection {
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
    line: Vec<u8>,
}

/// What a response carried that the tasks check.
#[derive(Debug, Default)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// Every `X-Request-ID` value, in order.
    pub(crate) request_ids: Vec<Vec<u8>>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl Connection {
    /// Connects to `addr`, which must be a loopback address.
    pub(crate) fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        if !addr.ip().is_loopback() {
            bail!("{addr} is not a loopback address: load is only ever sent to this machine");
        }
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            reader: BufReader::with_capacity(16 * 1024, stream),
            request: Vec::with_capacity(256),
            line: Vec::with_capacity(256),
        })
    }

    /// Sends `GET path` (with `x-request-id: <id>` when given, bytes sent as they are)
    /// and reads the whole response into `response`, reusing its buffers.
    pub(crate) fn get(
        &mut self,
        path: &str,
        id: Option<&[u8]>,
        response: &mut Response,
    ) -> anyhow::Result<()> {
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path.as_bytes());
        self.request
            .extend_from_slice(b" HTTP/1.1\r\nhost: 127.0.0.1\r\n");
        if let Some(id) = id {
            self.request.extend_from_slice(b"x-request-id: ");
            self.request.extend_from_slice(id);
            self.request.extend_from_slice(b"\r\n");
        }
        self.request.extend_from_slice(b"\r\n");
        self.reader.get_mut().write_all(&self.request)?;
        self.read_response(response)
            .with_context(|| format!("reading the response to GET {path}"))
    }

    fn read_response(&mut self, response: &mut Response) -> anyhow::Result<()> {
        response.request_ids.clear();
        response.body.clear();
        self.read_line()?;
        response.status = self
            .line
            .split(|b| *b == b' ')
            .nth(1)
            .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok())
            .context("no status line")?;
        let mut length = None;
        let mut chunked = false;
        loop {
            self.read_line()?;
            let line = trim(&self.line);
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                bail!("malformed header line {:?}", String::from_utf8_lossy(line));
            };
            let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"content-length") {
                length = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<usize>().ok())
                        .context("bad content-length")?,
                );
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value.eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case(b"x-request-id") {
                response.request_ids.push(value.to_vec());
            }
        }
        if chunked {
            self.read_chunked(&mut response.body)
        } else if let Some(length) = length {
            response.body.resize(length, 0);
            self.reader.read_exact(&mut response.body)?;
            Ok(())
        } else {
            bail!("a response without length on a keep-alive connection")
        }
    }

    fn read_chunked(&mut self, body: &mut Vec<u8>) -> anyhow::Result<()> {
        loop {
            self.read_line()?;
            let size = trim(&self.line);
            let size = size.split(|b| *b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| usize::from_str_radix(s, 16).ok())
                .context("bad chunk size")?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    self.read_line()?;
                    if trim(&self.line).is_empty() {
                        return Ok(());
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            self.read_line()?;
        }
    }

    fn read_line(&mut self) -> anyhow::Result<()> {
        self.line.clear();
        if self.reader.read_until(b'\n', &mut self.line)? == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}
