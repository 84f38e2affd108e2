//! The network capability against real TCP echo servers on 127.0.0.1 that each test starts
//! and stops itself. No test touches any address outside 127.0.0.0/8.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox_policy::{parse_policy, ReasonCode, Usage};

use super::Connections;
use crate::broker::events::EventLog;
use crate::broker::HostError;

/// The broker and the network capability of one call, as a front end holds them.
struct Broker {
    broker: crate::broker::Broker,
    net: Connections,
}

impl Broker {
    fn net_connect(&mut self, host: &[u8], port: u16) -> Result<i32, HostError> {
        self.net.net_connect(&mut self.broker, host, port)
    }

    fn net_send(&mut self, handle: i32, data: &[u8]) -> Result<u64, HostError> {
        self.net.net_send(&mut self.broker, handle, data)
    }

    fn net_recv(&mut self, handle: i32, buf: &mut [u8], wait: Duration) -> Result<u64, HostError> {
        self.net.net_recv(&mut self.broker, handle, buf, wait)
    }

    fn net_close(&mut self, handle: i32) -> Result<(), HostError> {
        self.net.net_close(&mut self.broker, handle)
    }

    fn usage(&self) -> &Usage {
        self.broker.usage()
    }

    fn log(&self) -> &EventLog {
        self.broker.log()
    }
}

/// An echo server on an ephemeral loopback port; stops when dropped.
struct EchoServer {
    port: u16,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&received), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut clients = Vec::new();
            // Bounded in time: the server stops itself after 20 s whatever happens.
            while !s.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(20) {
                if let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true).unwrap();
                    clients.push(stream);
                }
                for client in &mut clients {
                    let mut buf = [0u8; 4096];
                    if let Ok(n) = client.read(&mut buf) {
                        if n > 0 {
                            r.fetch_add(n as u64, Ordering::SeqCst);
                            let _ = client.write_all(&buf[..n]);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        EchoServer {
            port,
            received,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn broker(network_yaml: &str) -> Broker {
    let text = format!("version: 1\nnetwork:\n{network_yaml}");
    let policy = parse_policy(&text, Path::new(".")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Broker {
        broker: crate::broker::Broker::new(
            Arc::new(policy),
            Instant::now() + Duration::from_secs(10),
        ),
        net: Connections::default(),
    }
}

/// A broker whose policy allows 127.0.0.1 on `port` by CIDR, with optional extra YAML lines.
fn lan(port: u16, extra: &str) -> Broker {
    broker(&format!(
        "  rules: [{{ id: lan, effect: allow, cidrs: [\"127.0.0.1/32\"], ports: [{port}] }}]\n{extra}"
    ))
}

fn last_reason(b: &Broker) -> ReasonCode {
    b.log().events().last().unwrap().decision.reason
}

fn round_trip(b: &mut Broker, handle: i32, message: &[u8]) -> Vec<u8> {
    assert_eq!(b.net_send(handle, message), Ok(message.len() as u64));
    let mut got = Vec::new();
    while got.len() < message.len() {
        let mut buf = [0u8; 64];
        let n = b
            .net_recv(handle, &mut buf, Duration::from_secs(2))
            .unwrap() as usize;
        assert!(n > 0, "peer closed early");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn allowed_round_trip_counts_exact_bytes() {
    let server = EchoServer::start();
    let mut b = lan(server.port, "");
    let h = b.net_connect(b"127.0.0.1", server.port).unwrap();
    assert_eq!(round_trip(&mut b, h, b"hello, echo"), b"hello, echo");
    assert_eq!(b.net_close(h), Ok(()));
    let u = b.usage();
    assert_eq!(
        (u.net_connections, u.net_egress_bytes, u.net_ingress_bytes),
        (1, 11, 11)
    );
    assert_eq!(server.received.load(Ordering::SeqCst), 11);
    assert!(b
        .log()
        .events()
        .iter()
        .all(|e| e.decision.reason == ReasonCode::Allowed));
}

#[test]
fn denied_by_host_before_any_lookup() {
    let mut b = broker(
        "  rules: [{ id: api, effect: allow, hosts: [\"api.example.com\"], ports: [443] }]\n",
    );
    assert_eq!(
        b.net_connect(b"other.example.com", 443),
        Err(HostError::Denied(ReasonCode::NetHostNotAllowed))
    );
    assert_eq!(b.usage().net_connections, 0);
    let event = b.log().events().last().unwrap();
    assert!(
        matches!(b.log().request(event), Some(sandbox_policy::Request::Net(r)) if r.address.is_none())
    );
}

#[test]
fn denied_by_port() {
    let server = EchoServer::start();
    let mut b = lan(server.port, "");
    let other = if server.port == 65535 {
        65534
    } else {
        server.port + 1
    };
    assert_eq!(
        b.net_connect(b"127.0.0.1", other),
        Err(HostError::Denied(ReasonCode::NetPortNotAllowed))
    );
}

#[test]
fn denied_by_connection_quota() {
    let server = EchoServer::start();
    let mut b = lan(
        server.port,
        "  quotas: { connections: 1, egress_bytes: 1KiB }\n",
    );
    let h = b.net_connect(b"127.0.0.1", server.port).unwrap();
    b.net_close(h).unwrap();
    assert_eq!(
        b.net_connect(b"127.0.0.1", server.port),
        Err(HostError::Denied(ReasonCode::NetConnectionQuotaExceeded))
    );
}

#[test]
fn a_send_past_the_egress_quota_is_refused_whole() {
    let server = EchoServer::start();
    let mut b = lan(
        server.port,
        "  quotas: { connections: 4, egress_bytes: 8 }\n",
    );
    let h = b.net_connect(b"127.0.0.1", server.port).unwrap();
    assert_eq!(round_trip(&mut b, h, b"12345"), b"12345");
    assert_eq!(
        b.net_send(h, b"67890"),
        Err(HostError::Denied(ReasonCode::NetEgressQuotaExceeded))
    );
    let quota = b.log().events().last().unwrap().decision.quota.unwrap();
    assert_eq!((quota.asked, quota.left()), (5, 3));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        server.received.load(Ordering::SeqCst),
        5,
        "nothing of the refused send went out"
    );
    assert_eq!(b.usage().net_egress_bytes, 5);
    // One-byte drips stop exactly at the quota.
    for _ in 0..3 {
        assert_eq!(b.net_send(h, b"x"), Ok(1));
    }
    assert_eq!(
        b.net_send(h, b"x"),
        Err(HostError::Denied(ReasonCode::NetEgressQuotaExceeded))
    );
}

#[test]
fn receives_are_capped_at_the_ingress_quota() {
    let server = EchoServer::start();
    let mut b = lan(
        server.port,
        "  quotas: { connections: 1, egress_bytes: 1KiB, ingress_bytes: 3 }\n",
    );
    let h = b.net_connect(b"127.0.0.1", server.port).unwrap();
    b.net_send(h, b"abcdef").unwrap();
    let mut buf = [0u8; 16];
    let mut total = 0;
    while total < 3 {
        total += b.net_recv(h, &mut buf, Duration::from_secs(2)).unwrap();
    }
    assert_eq!(total, 3);
    assert_eq!(
        b.net_recv(h, &mut buf, Duration::from_secs(1)),
        Err(HostError::Denied(ReasonCode::NetIngressQuotaExceeded))
    );
}

#[test]
fn a_receive_with_nothing_to_read_times_out() {
    let server = EchoServer::start();
    let mut b = lan(server.port, "");
    let h = b.net_connect(b"127.0.0.1", server.port).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        b.net_recv(h, &mut buf, Duration::from_millis(50)),
        Err(HostError::TimedOut)
    );
}

#[test]
fn a_cancel_wakes_a_waiting_receive_within_a_slice() {
    let server = EchoServer::start();
    let mut b = lan(server.port, "");
    let h = b.net_connect(b"127.0.0.1", server.port).unwrap();
    let cancel = Arc::clone(b.broker.cancel_flag());
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        cancel.cancel("test");
    });
    let started = Instant::now();
    let mut buf = [0u8; 4];
    assert_eq!(
        b.net_recv(h, &mut buf, Duration::from_secs(20)),
        Err(HostError::TimedOut)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    canceller.join().unwrap();
}

#[test]
fn a_pinned_name_that_resolves_to_loopback_is_blocked_unless_named_explicitly() {
    let server = EchoServer::start();
    let pinned = |extra: &str| {
        format!(
            "  rules: [{{ id: echo, effect: allow, hosts: [\"echo.test\"], {extra}ports: [{}] }}]\n  resolve: {{ echo.test: 127.0.0.1 }}\n",
            server.port
        )
    };
    let mut b = broker(&pinned(""));
    assert_eq!(
        b.net_connect(b"echo.test", server.port),
        Err(HostError::Denied(ReasonCode::NetAddressBlocked))
    );
    let event = b.log().events().last().unwrap();
    assert_eq!(event.decision.address_kind, Some("loopback"));
    let mut b = broker(&pinned("cidrs: [\"127.0.0.0/8\"], "));
    let h = b.net_connect(b"ECHO.test.", server.port).unwrap();
    assert_eq!(round_trip(&mut b, h, b"pinned"), b"pinned");
}

#[test]
fn ip_literals_in_every_form_are_recognised_as_loopback() {
    let server = EchoServer::start();
    let forms: [&[u8]; 5] = [
        b"2130706433",
        b"0x7f.0.0.1",
        b"0177.0.0.1",
        b"127.1",
        b"::ffff:127.0.0.1",
    ];
    let mut open = broker(&format!(
        "  rules: [{{ id: any, effect: allow, hosts: [\"*\"], ports: [{}] }}]\n",
        server.port
    ));
    for form in forms {
        assert_eq!(
            open.net_connect(form, server.port),
            Err(HostError::Denied(ReasonCode::NetAddressBlocked)),
            "{}",
            String::from_utf8_lossy(form)
        );
    }
    let mut named = broker(&format!(
        "  rules: [{{ id: lan, effect: allow, cidrs: [\"127.0.0.0/8\"], ports: [{}] }}]\n",
        server.port
    ));
    for form in forms {
        let h = named
            .net_connect(form, server.port)
            .unwrap_or_else(|e| panic!("{}: {e:?}", String::from_utf8_lossy(form)));
        assert_eq!(round_trip(&mut named, h, b"ok"), b"ok");
        named.net_close(h).unwrap();
    }
}

#[test]
fn closed_and_forged_handles_are_refused() {
    let server = EchoServer::start();
    let mut b = lan(server.port, "");
    let h = b.net_connect(b"127.0.0.1", server.port).unwrap();
    b.net_close(h).unwrap();
    let invalid = Err(HostError::Denied(ReasonCode::HandleInvalid));
    assert_eq!(b.net_send(h, b"x"), invalid);
    assert_eq!(last_reason(&b), ReasonCode::HandleInvalid);
    assert_eq!(b.net_send(999, b"x"), invalid);
    assert_eq!(b.net_send(-1, b"x"), invalid);
    assert_eq!(
        b.net_close(h),
        Err(HostError::Denied(ReasonCode::HandleInvalid))
    );
    let mut buf = [0u8; 1];
    assert_eq!(b.net_recv(0, &mut buf, Duration::from_millis(1)), invalid);
}

#[test]
fn audit_mode_relaxes_quotas_but_never_blocked_addresses() {
    let server = EchoServer::start();
    let text = format!(
        "version: 1\nmode: audit\nnetwork:\n  rules: [{{ id: any, effect: allow, hosts: [\"*\"], ports: [{}] }}]\n  quotas: {{ connections: 0, egress_bytes: 0 }}\n",
        server.port
    );
    let policy = parse_policy(&text, Path::new(".")).unwrap();
    let mut b = Broker {
        broker: crate::broker::Broker::new(
            Arc::new(policy),
            Instant::now() + Duration::from_secs(5),
        ),
        net: Connections::default(),
    };
    assert_eq!(
        b.net_connect(b"127.0.0.1", server.port),
        Err(HostError::Denied(ReasonCode::NetAddressBlocked))
    );
    let event = b.log().events().last().unwrap();
    assert!(event.decision.enforced);
}
