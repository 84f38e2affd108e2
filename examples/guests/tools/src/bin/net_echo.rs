//! `net_echo HOST PORT MESSAGE`: sends MESSAGE over TCP with `sandbox-guest` and prints the
//! reply. Exits 1 when the policy or the peer refuses.

use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, message] = args.as_slice() else {
        eprintln!("usage: net_echo HOST PORT MESSAGE");
        std::process::exit(64);
    };
    let port: u16 = port.parse().expect("port is a number");
    let mut stream = match sandbox_guest::TcpStream::connect(host, port) {
        Ok(stream) => stream,
        Err(e) => {
            println!("connect {host}:{port}: {e} ({e:?})");
            std::process::exit(1);
        }
    };
    stream.write_all(message.as_bytes()).unwrap();
    let mut reply = vec![0u8; message.len()];
    match stream.read_exact(&mut reply) {
        Ok(()) => println!("reply: {}", String::from_utf8_lossy(&reply)),
        Err(e) => {
            println!("read: {e}");
            std::process::exit(1);
        }
    }
}
