//! A small HTTP/1.1 client over a tokio TcpStream, enough to talk to the simulator in tests.
#![allow(dead_code)] // each test binary uses a different part of it

use serde_json::Value;
use std::io;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `http://host:port/path?q` → ("host:port", "/path?q").
pub fn split_url(url: &str) -> (&str, &str) {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("not an http URL: {url}"));
    match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    }
}

/// One keep-alive connection.
pub struct Connection {
    host: String,
    stream: BufReader<TcpStream>,
}

impl Connection {
    pub async fn open(url: &str) -> io::Result<Connection> {
        let (host, _) = split_url(url);
        let stream = TcpStream::connect(host).await?;
        Ok(Connection { host: host.to_string(), stream: BufReader::new(stream) })
    }

    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<HttpResponse> {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nOData-Version: 4.0\r\n", self.host);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let stream = self.stream.get_mut();
        stream.write_all(request.as_bytes()).await?;
        stream.write_all(body).await?;
        self.read_response().await
    }

    async fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    async fn read_response(&mut self) -> io::Result<HttpResponse> {
        let status_line = self.line().await?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad status line '{status_line}'")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let header = |name: &str| headers.iter().find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let size =
                    usize::from_str_radix(self.line().await?.trim(), 16).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk).await?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = header("content-length") {
            let length: usize = length.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            body.resize(length, 0);
            self.stream.read_exact(&mut body).await?;
        }
        Ok(HttpResponse { status, headers, body })
    }
}

/// One request on a new connection.
pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<HttpResponse> {
    let mut connection = Connection::open(url).await?;
    connection.send(method, split_url(url).1, headers, body).await
}

pub async fn get(url: &str) -> HttpResponse {
    request("GET", url, &[], b"").await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub async fn post(url: &str) -> HttpResponse {
    request("POST", url, &[("Content-Type", "application/json")], b"{}").await.unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// Follows `@odata.nextLink` from `url` and returns every item and the number of pages.
pub async fn get_all(url: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next = Some(url.to_string());
    while let Some(url) = next {
        let response = get(&url).await;
        assert_eq!(response.status, 200, "{url}: {}", response.text());
        let page = response.json();
        items.extend(page["value"].as_array().expect("value array").iter().cloned());
        next = page.get("@odata.nextLink").and_then(Value::as_str).map(str::to_string);
        pages += 1;
    }
    (items, pages)
}
