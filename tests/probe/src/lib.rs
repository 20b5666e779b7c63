//! The probe component: each export tries one thing the sandbox must refuse and says what
//! happened. Natively (for `cargo test --workspace`) it only compiles.

// Natively nothing exports the probe, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

wit_bindgen::generate!({
    world: "d365meta:probe/probe",
    path: ["../../wit", "wit"],
    generate_all,
});

use d365meta::cache::http::{Method, Request};
use d365meta::cache::store;

struct Probe;

#[cfg(target_arch = "wasm32")]
export!(Probe);

fn outcome<T: std::fmt::Debug, E: std::fmt::Debug>(r: Result<T, E>) -> String {
    match r {
        Ok(v) => format!("allowed: {v:?}"),
        Err(e) => format!("refused: {e:?}"),
    }
}

impl Guest for Probe {
    fn open_file(path: String) -> String {
        outcome(std::fs::read_to_string(&path).map(|text| text.len()))
    }

    fn create_file(path: String) -> String {
        outcome(std::fs::write(&path, b"written by the probe"))
    }

    fn list_preopens() -> Vec<String> {
        sandbox::preopens()
    }

    fn connect(address: String) -> String {
        sandbox::connect(&address)
    }

    fn resolve(name: String) -> String {
        sandbox::resolve(&name)
    }

    fn environment_variables() -> Vec<(String, String)> {
        std::env::vars().collect()
    }

    fn program_arguments() -> Vec<String> {
        std::env::args().collect()
    }

    fn read_stdin() -> String {
        let mut text = String::new();
        outcome(std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|n| (n, text.clone())))
    }

    fn print(text: String) {
        println!("{text}");
        eprintln!("{text}");
    }

    fn send_paths(environment: &Environment, paths: Vec<String>) -> Vec<String> {
        paths
            .into_iter()
            .map(|path| {
                let request = Request { method: Method::Get, path, headers: vec![], body: None, idempotent: true };
                outcome(environment.send(&request).map(|r| r.status))
            })
            .collect()
    }

    fn execute(sql: String) -> String {
        outcome(store::execute(&sql, &[]).map(|rows| rows.changes))
    }
}

/// WASI sockets and filesystem calls, made directly as any component could.
#[cfg(target_arch = "wasm32")]
mod sandbox {
    use wasi::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};

    pub fn preopens() -> Vec<String> {
        wasi::filesystem::preopens::get_directories().into_iter().map(|(_, path)| path).collect()
    }

    pub fn connect(address: &str) -> String {
        let Some((ip, port)) = address.rsplit_once(':') else { return format!("not an address: {address}") };
        let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
        let (Ok(port), [a, b, c, d]) = (port.parse::<u16>(), octets.as_slice()) else { return format!("not an address: {address}") };
        let network = wasi::sockets::instance_network::instance_network();
        let socket = match wasi::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
            Ok(socket) => socket,
            Err(e) => return format!("refused: creating a socket: {e:?}"),
        };
        let target = IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address: (*a, *b, *c, *d) });
        if let Err(e) = socket.start_connect(&network, target) {
            return format!("refused: connecting: {e:?}");
        }
        socket.subscribe().block();
        super::outcome(socket.finish_connect().map(|_| "connected"))
    }

    pub fn resolve(name: &str) -> String {
        let network = wasi::sockets::instance_network::instance_network();
        match wasi::sockets::ip_name_lookup::resolve_addresses(&network, name) {
            Err(e) => format!("refused: {e:?}"),
            Ok(stream) => {
                stream.subscribe().block();
                super::outcome(stream.resolve_next_address())
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod sandbox {
    pub fn preopens() -> Vec<String> {
        unreachable!("the probe runs as a component")
    }
    pub fn connect(_: &str) -> String {
        unreachable!("the probe runs as a component")
    }
    pub fn resolve(_: &str) -> String {
        unreachable!("the probe runs as a component")
    }
}
