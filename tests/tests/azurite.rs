//! The Azurite harness itself: the emulator starts, speaks HTTP, takes containers, goes down on
//! `kill`, and comes back with its data on `restart`.
//! Needs `npm ci --prefix tests/azurite` first.

use d365meta_tests::azurite::Azurite;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Sends a bare `GET` (no credentials) to an `http://host:port/path` URL and returns the
/// response's status line.
fn status_line(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority.parse().expect("an IP address and port");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to Azurite");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nx-ms-version: 2021-12-02\r\nConnection: close\r\n\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("read the status line");
    line.trim_end().to_owned()
}

fn refuses_connections(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Duration::from_secs(2)).is_err()
}

#[test]
fn azurite_starts_serves_blob_http_and_goes_down_on_kill() {
    let started = Instant::now();
    let mut azurite = Azurite::start();
    eprintln!("Azurite accepted connections on port {} after {:?}", azurite.port(), started.elapsed());

    let endpoint = azurite.blob_endpoint();
    assert_eq!(endpoint, format!("http://127.0.0.1:{}/devstoreaccount1", azurite.port()));
    assert!(azurite.connection_string().contains(&format!("BlobEndpoint={endpoint};")));

    azurite.create_container("probe");
    azurite.create_container("probe"); // Idempotent.

    let url = format!("{endpoint}/probe?restype=container");
    let status = status_line(&url);
    eprintln!("GET {url} -> {status}");
    assert!(status.starts_with("HTTP/1.1 "), "not an HTTP status line: {status:?}");
    let code: u16 = status[9..12].parse().unwrap_or_else(|_| panic!("no status code in {status:?}"));
    assert!((200..500).contains(&code), "unexpected status {status:?}");

    azurite.kill();
    assert!(!azurite.is_running());
    assert!(refuses_connections(azurite.port()), "port {} still accepts connections after kill", azurite.port());
    azurite.kill(); // Idempotent.

    let restarted = Instant::now();
    azurite.restart();
    eprintln!("Azurite restarted after {:?}", restarted.elapsed());
    assert!(status_line(&url).starts_with("HTTP/1.1 "));
    azurite.create_container("probe");

    let port = azurite.port();
    drop(azurite);
    assert!(refuses_connections(port), "port {port} still accepts connections after drop");
}

#[test]
fn two_emulators_run_side_by_side() {
    let a = Azurite::start();
    let b = Azurite::start();
    assert_ne!(a.port(), b.port());
    a.create_container("left");
    b.create_container("right");
}
