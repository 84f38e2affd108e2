//! Network capability: TCP connections the broker opens on the guest's behalf. The guest holds
//! only handles. A connect is decided on the name first (host and port rules, connection
//! quota), then the name is resolved once, the address is decided (blocked ranges), and the
//! socket connects to exactly that address, so no second lookup can rebind it.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sandbox_policy::{
    normalize_host, parse_ip_literal, NetAccess, NetRequest, OpenConnectionsRequest, Request,
    Verdict,
};

use crate::broker::events::Outcome;
use crate::broker::{Broker, HostError, Permit};

/// Longest host name accepted from a guest, in bytes.
pub const MAX_HOST_BYTES: usize = 1024;
/// Most connections a run may hold open at once, whatever the policy's quota.
pub const MAX_OPEN_CONNECTIONS: usize = 64;

/// Longest one blocking socket operation waits before the deadline is checked again.
const IO_SLICE: Duration = Duration::from_millis(20);

/// Name lookups in flight in this process, on threads of their own (the system resolver
/// cannot be interrupted); past the bound a lookup is refused rather than another thread made.
static LOOKUPS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
const MAX_LOOKUPS_IN_FLIGHT: usize = 8;

/// Records that a request audit mode relaxed was not carried out, and the error the guest
/// gets: the deny's own, as in enforce mode.
fn not_made(broker: &mut Broker, permit: &Permit, what: &str) -> HostError {
    let reason = permit.decision().reason;
    broker.set_outcome(
        permit,
        Outcome::Failed {
            error: format!(
                "not {what}: the policy denies it and this run connects nowhere it denies"
            ),
        },
    );
    HostError::Denied(reason)
}

/// True for the errors a socket timeout gives.
fn is_wait(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

struct Connection {
    stream: TcpStream,
    host: String,
    port: u16,
    address: IpAddr,
}

/// The run's open connections; a handle is an index into this table plus one.
#[derive(Default)]
pub(crate) struct Connections {
    slots: Vec<Option<Connection>>,
}

impl Connections {
    fn get(&self, handle: i32) -> Option<&Connection> {
        let index = usize::try_from(handle).ok()?.checked_sub(1)?;
        self.slots.get(index)?.as_ref()
    }

    fn insert(&mut self, connection: Connection) -> Option<i32> {
        let index = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.slots.len() < MAX_OPEN_CONNECTIONS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return None,
        };
        self.slots[index] = Some(connection);
        i32::try_from(index + 1).ok()
    }

    /// The socket of an open connection, for the transfer a permit allows.
    fn stream(&self, _permit: &Permit, handle: i32) -> Option<&TcpStream> {
        self.get(handle).map(|c| &c.stream)
    }

    fn remove(&mut self, _permit: &Permit, handle: i32) -> Option<Connection> {
        let index = usize::try_from(handle).ok()?.checked_sub(1)?;
        self.slots.get_mut(index)?.take()
    }
}

impl Connections {
    /// Resolves a name: the policy's `resolve` map first, then the system resolver, bounded
    /// by the run's remaining wall-clock budget. Returns the first address, IPv4 preferred.
    fn resolve_name(broker: &Broker, host: &str, port: u16) -> Option<IpAddr> {
        if let Some((_, ip)) = broker
            .policy()
            .network
            .resolve
            .iter()
            .find(|(name, _)| name == host)
        {
            return Some(*ip);
        }
        if LOOKUPS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst) >= MAX_LOOKUPS_IN_FLIGHT {
            LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let (send, receive) = std::sync::mpsc::channel();
        let name = host.to_owned();
        let spawned = std::thread::Builder::new()
            .name("sandbox-lookup".into())
            .spawn(move || {
                let found: Vec<SocketAddr> = (name.as_str(), port)
                    .to_socket_addrs()
                    .map(|a| a.collect())
                    .unwrap_or_default();
                LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
                let _ = send.send(found);
            });
        if spawned.is_err() {
            LOOKUPS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        // In slices, so a cancelled run stops waiting within one.
        let found = loop {
            let slice = broker.remaining().min(IO_SLICE);
            match receive.recv_timeout(slice) {
                Ok(found) => break found,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !slice.is_zero() => continue,
                Err(_) => return None,
            }
        };
        found
            .iter()
            .find(|a| a.is_ipv4())
            .or(found.first())
            .map(|a| sandbox_policy::canonical_ip(a.ip()))
    }

    /// Opens a TCP connection; returns the handle.
    pub(crate) fn net_connect(
        &mut self,
        broker: &mut Broker,
        raw_host: &[u8],
        port: u16,
    ) -> Result<i32, HostError> {
        if raw_host.len() > MAX_HOST_BYTES {
            return Err(HostError::Invalid);
        }
        let host_text = String::from_utf8_lossy(raw_host).into_owned();
        let host = normalize_host(&host_text);
        let request = |address: Option<IpAddr>| {
            Request::Net(NetRequest {
                op: NetAccess::Connect,
                host: host_text.clone(),
                port,
                address,
                bytes: 0,
            })
        };
        let known = parse_ip_literal(&host).or_else(|| broker.policy().pinned_address(&host));
        let address = match known {
            Some(address) => Some(address),
            None => {
                // A name goes to the resolver only when an allow rule's host pattern names it
                // and no deny rule does (a CIDR alone allows no lookup): decided first.
                let lookup = Request::Net(NetRequest {
                    op: NetAccess::Resolve,
                    host: host_text.clone(),
                    port,
                    address: None,
                    bytes: 0,
                });
                let permit = broker.check_limit(lookup)?;
                if broker.refuse_relaxed_network && permit.decision().verdict == Verdict::Deny {
                    return Err(not_made(broker, &permit, "looked up"));
                }
                Connections::resolve_name(broker, &host, port)
            }
        };
        let Some(address) = address else {
            let permit = broker.check(request(None))?;
            broker.set_outcome(
                &permit,
                Outcome::Failed {
                    error: format!("`{host}` did not resolve"),
                },
            );
            return Err(HostError::NotFound);
        };
        // One more open connection is decided before connecting, so none over a cap reaches
        // the peer.
        let open_now = self.slots.iter().filter(|s| s.is_some()).count() as u64;
        let _ = broker.check_limit(Request::NetOpen(OpenConnectionsRequest { open_now }))?;
        let permit = broker.check(request(Some(address)))?;
        if broker.refuse_relaxed_network && permit.decision().verdict == Verdict::Deny {
            return Err(not_made(broker, &permit, "connected"));
        }
        let usage = broker.usage_mut();
        usage.net_connections = usage.net_connections.saturating_add(1);
        let wait = broker.remaining().max(Duration::from_millis(1));
        let stream = match TcpStream::connect_timeout(&SocketAddr::new(address, port), wait) {
            Ok(s) => s,
            Err(e) => {
                broker.set_outcome(
                    &permit,
                    Outcome::Failed {
                        error: e.kind().to_string(),
                    },
                );
                return Err(if e.kind() == std::io::ErrorKind::TimedOut {
                    HostError::TimedOut
                } else {
                    HostError::Unreachable
                });
            }
        };
        let _ = stream.set_nodelay(true);
        match self.insert(Connection {
            stream,
            host: host_text,
            port,
            address,
        }) {
            Some(handle) => {
                broker.set_outcome(&permit, Outcome::Done { bytes: 0 });
                Ok(handle)
            }
            None => {
                broker.set_outcome(
                    &permit,
                    Outcome::Failed {
                        error: "too many open connections".into(),
                    },
                );
                Err(HostError::Invalid)
            }
        }
    }

    fn transfer_request(&self, op: NetAccess, handle: i32, bytes: u64) -> Option<Request> {
        let c = self.get(handle)?;
        Some(Request::Net(NetRequest {
            op,
            host: c.host.clone(),
            port: c.port,
            address: Some(c.address),
            bytes,
        }))
    }

    /// Sends all of `data`; a send that would cross the egress quota is refused whole. The
    /// send goes in slices against the run's deadline, and every byte the kernel accepted
    /// counts against the quota, also when the send fails halfway.
    pub(crate) fn net_send(
        &mut self,
        broker: &mut Broker,
        handle: i32,
        data: &[u8],
    ) -> Result<u64, HostError> {
        let Some(request) = self.transfer_request(NetAccess::Send, handle, data.len() as u64)
        else {
            return Err(broker.bad_handle("net.send", handle));
        };
        let permit = broker.check(request)?;
        let Some(mut stream) = self.stream(&permit, handle) else {
            return broker.finish(permit, Err(HostError::Unreachable));
        };
        let mut sent = 0;
        let result = loop {
            if sent == data.len() {
                break Ok(sent as u64);
            }
            let left = broker.remaining();
            if left.is_zero() {
                break Err(HostError::DeadlinePassed);
            }
            let _ = stream.set_write_timeout(Some(left.min(IO_SLICE)));
            match stream.write(&data[sent..]) {
                Ok(0) => break Err(HostError::Unreachable),
                Ok(n) => sent += n,
                Err(e) if is_wait(&e) || e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break Err(HostError::Unreachable),
            }
        };
        let usage = broker.usage_mut();
        usage.net_egress_bytes = usage.net_egress_bytes.saturating_add(sent as u64);
        match result {
            Ok(n) => broker.finish(permit, Ok(n)),
            Err(e) => {
                broker.set_outcome(
                    &permit,
                    Outcome::Failed {
                        error: format!("send failed after {sent} bytes"),
                    },
                );
                Err(e)
            }
        }
    }

    /// Receives up to `buf.len()` bytes (capped at the ingress quota left), waiting at most
    /// `timeout` and never past the run's wall-clock budget. `Ok(0)` means the peer closed.
    pub(crate) fn net_recv(
        &mut self,
        broker: &mut Broker,
        handle: i32,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<u64, HostError> {
        let Some(request) = self.transfer_request(NetAccess::Receive, handle, buf.len() as u64)
        else {
            return Err(broker.bad_handle("net.receive", handle));
        };
        let permit = broker.check(request)?;
        let decision = permit.decision();
        let room = match decision.quota {
            Some(q) if decision.enforced => q.left().min(buf.len() as u64) as usize,
            _ => buf.len(),
        };
        let wait = timeout
            .min(broker.remaining())
            .max(Duration::from_millis(1));
        let until = std::time::Instant::now() + wait;
        let result = self.stream(&permit, handle).map(|stream| {
            let mut stream = stream;
            // In slices, so a cancelled run stops waiting within one.
            loop {
                let left = until
                    .saturating_duration_since(std::time::Instant::now())
                    .min(broker.remaining());
                let slice = left.clamp(Duration::from_millis(1), IO_SLICE);
                let _ = stream.set_read_timeout(Some(slice));
                let read = stream.read(&mut buf[..room]);
                match &read {
                    Err(e) if is_timeout(e) && left > IO_SLICE => continue,
                    _ => break read,
                }
            }
        });
        match result {
            Some(Ok(n)) => {
                let usage = broker.usage_mut();
                usage.net_ingress_bytes = usage.net_ingress_bytes.saturating_add(n as u64);
                broker.set_outcome(&permit, Outcome::Done { bytes: n as u64 });
                Ok(n as u64)
            }
            Some(Err(e)) if is_timeout(&e) => {
                broker.set_outcome(
                    &permit,
                    Outcome::Failed {
                        error: "timed out".into(),
                    },
                );
                Err(HostError::TimedOut)
            }
            _ => {
                broker.set_outcome(
                    &permit,
                    Outcome::Failed {
                        error: "receive failed".into(),
                    },
                );
                Err(HostError::Unreachable)
            }
        }
    }

    /// Closes a connection. Closing an unknown or closed handle is an error (and an event).
    pub(crate) fn net_close(&mut self, broker: &mut Broker, handle: i32) -> Result<(), HostError> {
        // Closing touches the socket too: with a permit, as every host operation.
        let permit = broker.handle_permit();
        match self.remove(&permit, handle) {
            Some(_) => Ok(()),
            None => Err(broker.bad_handle("net.close", handle)),
        }
    }
}

/// Whether a socket read ended because its timeout passed.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
