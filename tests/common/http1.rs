//! A blocking HTTP/1.1 client over one keep-alive connection, with httparse reading the
//! answers: tests write requests byte by byte (chunked bodies, garbage) and read each reply.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One HTTP/1.1 connection.
pub struct Http1 {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A response: status, headers (lowercase names) and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Http1 {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Http1 { stream, buf: Vec::new() }
    }

    /// The socket, for tests that read it to its end.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// A request with a Content-Length body; `headers` are `Name: value` lines.
    pub fn post(&mut self, path: &str, headers: &[&str], body: &[u8]) -> Reply {
        self.request("POST", path, headers, body)
    }

    pub fn request(&mut self, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Reply {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Length: {}\r\n", body.len());
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        self.send_raw(head.as_bytes());
        self.send_raw(body);
        self.read_reply()
    }

    /// The same request with the body sent in chunks of `chunk` bytes.
    pub fn post_chunked(&mut self, path: &str, headers: &[&str], body: &[u8], chunk: usize) -> Reply {
        let mut out = format!("POST {path} HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n").into_bytes();
        for h in headers {
            out.extend_from_slice(format!("{h}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        for c in body.chunks(chunk) {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        self.send_raw(&out);
        self.read_reply()
    }

    /// Reads one response (its body has a Content-Length, as the gateway always sends).
    pub fn read_reply(&mut self) -> Reply {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(n) = parsed.parse(&self.buf).expect("valid response") {
                let status = parsed.code.expect("status");
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                let len: usize =
                    headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
                self.fill(n + len);
                let body = self.buf[n..n + len].to_vec();
                self.buf.drain(..n + len);
                return Reply { status, headers, body };
            }
            self.read_more();
        }
    }

    /// Whether the server has closed the connection (EOF within the read timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        matches!(self.stream.read(&mut chunk), Ok(0))
    }

    fn fill(&mut self, want: usize) {
        while self.buf.len() < want {
            self.read_more();
        }
    }

    fn read_more(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed; have {:?}", String::from_utf8_lossy(&self.buf));
        self.buf.extend_from_slice(&chunk[..n]);
    }
}
