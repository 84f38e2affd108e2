//! The `host_abi` target's input: a script of `sandbox` host calls with raw pointers,
//! lengths, handles, ports and flags, as a small byte code ([`HostAbiScript::decode`]) with
//! an encoder, so the adversarial suite's cases can be committed as seeds. The runner
//! (`host_abi`) and the interpreter plugin (`interpreter`) both read it.

/// Where a host call's pointer argument points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ptr {
    /// One of [`STRINGS`], by index.
    Str(u8),
    /// A raw pointer and length, in or out of bounds.
    Raw(u32, u32),
    /// Bytes of the script's own, placed in the module's data.
    Bytes(Vec<u8>),
    /// `back` bytes before the end of memory, with a length.
    NearEnd(u16, u32),
}

/// Where a host call writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Buf {
    /// The scratch area at 32 KiB, with a length.
    Scratch(u16),
    Raw(u32, u32),
    NearEnd(u16, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handle {
    /// Whatever the last `net_connect` returned (a handle or an error code).
    Last,
    Raw(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Port {
    /// The port of the harness's echo server, which the policy allows.
    Echo,
    Raw(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    InputLen,
    InputRead(Buf, u32),
    OutputWrite(Ptr),
    Log(Ptr),
    FsRead(Ptr, i64, Buf),
    FsWrite(Ptr, Ptr, i32),
    FsStat(Ptr, Buf),
    FsList(Ptr, Buf),
    FsDelete(Ptr),
    NetConnect(Ptr, Port),
    NetSend(Handle, Ptr),
    NetRecv(Handle, Buf, i32),
    NetClose(Handle),
    MemoryGrow(u8),
    /// The call, `n` times in a Wasm loop.
    Repeat(u8, Box<Call>),
}

/// A plugin as a list of host calls, plus how it is run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostAbiScript {
    /// Initial memory: `1 + pages % 4` pages.
    pub pages: u8,
    /// Bit 0: do not export `memory`. Bit 1: `mode: audit`. Bit 2: `on_deny: trap`.
    pub flags: u8,
    pub calls: Vec<Call>,
}

/// All of these bits (one input in 64): the plugin exports no `memory`. Such a script is
/// compiled into a module of its own; every other runs on the interpreter, compiled once.
pub const NO_MEMORY_EXPORT: u8 = 0xF9;
pub const AUDIT: u8 = 2;
pub const TRAP_ON_DENY: u8 = 4;

/// Most calls decoded from one input, so one input stays one quick run.
const MAX_CALLS: usize = 256;
pub(crate) const SCRATCH: u32 = 32 * 1024;
/// Data (strings and script bytes) lives below the scratch area.
pub(crate) const DATA_START: u32 = 256;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    /// Past the end, every read is zero: any byte string decodes.
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8();
        }
        out
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.array())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }
    fn ptr(&mut self) -> Ptr {
        match self.u8() % 4 {
            0 => Ptr::Str(self.u8()),
            1 => Ptr::Raw(self.u32(), self.u32()),
            2 => {
                let len = usize::from(self.u8());
                Ptr::Bytes((0..len).map(|_| self.u8()).collect())
            }
            _ => Ptr::NearEnd(self.u16(), self.u32()),
        }
    }
    fn buf(&mut self) -> Buf {
        match self.u8() % 3 {
            0 => Buf::Scratch(self.u16()),
            1 => Buf::Raw(self.u32(), self.u32()),
            _ => Buf::NearEnd(self.u16(), self.u32()),
        }
    }
    fn handle(&mut self) -> Handle {
        match self.u8() % 2 {
            0 => Handle::Last,
            _ => Handle::Raw(self.i32()),
        }
    }
    fn port(&mut self) -> Port {
        match self.u8() % 2 {
            0 => Port::Echo,
            _ => Port::Raw(self.i32()),
        }
    }
    fn call(&mut self, nested: bool) -> Call {
        match self.u8() % 15 {
            0 => Call::InputLen,
            1 => Call::InputRead(self.buf(), self.u32()),
            2 => Call::OutputWrite(self.ptr()),
            3 => Call::Log(self.ptr()),
            4 => Call::FsRead(self.ptr(), self.i64(), self.buf()),
            5 => Call::FsWrite(self.ptr(), self.ptr(), self.i32()),
            6 => Call::FsStat(self.ptr(), self.buf()),
            7 => Call::FsList(self.ptr(), self.buf()),
            8 => Call::FsDelete(self.ptr()),
            9 => Call::NetConnect(self.ptr(), self.port()),
            10 => Call::NetSend(self.handle(), self.ptr()),
            11 => Call::NetRecv(self.handle(), self.buf(), self.i32()),
            12 => Call::NetClose(self.handle()),
            13 => Call::MemoryGrow(self.u8()),
            _ if nested => Call::InputLen,
            _ => Call::Repeat(self.u8(), Box::new(self.call(true))),
        }
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn ptr(&mut self, p: &Ptr) {
        match p {
            Ptr::Str(i) => self.0.extend([0, *i]),
            Ptr::Raw(ptr, len) => {
                self.0.push(1);
                self.0.extend(ptr.to_le_bytes());
                self.0.extend(len.to_le_bytes());
            }
            Ptr::Bytes(bytes) => {
                let bytes = &bytes[..bytes.len().min(255)];
                self.0.extend([2, bytes.len() as u8]);
                self.0.extend(bytes);
            }
            Ptr::NearEnd(back, len) => {
                self.0.push(3);
                self.0.extend(back.to_le_bytes());
                self.0.extend(len.to_le_bytes());
            }
        }
    }
    fn buf(&mut self, b: &Buf) {
        match b {
            Buf::Scratch(len) => {
                self.0.push(0);
                self.0.extend(len.to_le_bytes());
            }
            Buf::Raw(ptr, len) => {
                self.0.push(1);
                self.0.extend(ptr.to_le_bytes());
                self.0.extend(len.to_le_bytes());
            }
            Buf::NearEnd(back, len) => {
                self.0.push(2);
                self.0.extend(back.to_le_bytes());
                self.0.extend(len.to_le_bytes());
            }
        }
    }
    fn handle(&mut self, h: &Handle) {
        match h {
            Handle::Last => self.0.push(0),
            Handle::Raw(v) => {
                self.0.push(1);
                self.0.extend(v.to_le_bytes());
            }
        }
    }
    fn call(&mut self, c: &Call) {
        match c {
            Call::InputLen => self.0.push(0),
            Call::InputRead(b, offset) => {
                self.0.push(1);
                self.buf(b);
                self.0.extend(offset.to_le_bytes());
            }
            Call::OutputWrite(p) => {
                self.0.push(2);
                self.ptr(p);
            }
            Call::Log(p) => {
                self.0.push(3);
                self.ptr(p);
            }
            Call::FsRead(p, offset, b) => {
                self.0.push(4);
                self.ptr(p);
                self.0.extend(offset.to_le_bytes());
                self.buf(b);
            }
            Call::FsWrite(p, data, flags) => {
                self.0.push(5);
                self.ptr(p);
                self.ptr(data);
                self.0.extend(flags.to_le_bytes());
            }
            Call::FsStat(p, b) => {
                self.0.push(6);
                self.ptr(p);
                self.buf(b);
            }
            Call::FsList(p, b) => {
                self.0.push(7);
                self.ptr(p);
                self.buf(b);
            }
            Call::FsDelete(p) => {
                self.0.push(8);
                self.ptr(p);
            }
            Call::NetConnect(p, port) => {
                self.0.push(9);
                self.ptr(p);
                match port {
                    Port::Echo => self.0.push(0),
                    Port::Raw(v) => {
                        self.0.push(1);
                        self.0.extend(v.to_le_bytes());
                    }
                }
            }
            Call::NetSend(h, p) => {
                self.0.push(10);
                self.handle(h);
                self.ptr(p);
            }
            Call::NetRecv(h, b, timeout) => {
                self.0.push(11);
                self.handle(h);
                self.buf(b);
                self.0.extend(timeout.to_le_bytes());
            }
            Call::NetClose(h) => {
                self.0.push(12);
                self.handle(h);
            }
            Call::MemoryGrow(n) => self.0.extend([13, *n]),
            Call::Repeat(n, inner) => {
                self.0.extend([14, *n]);
                self.call(inner);
            }
        }
    }
}

impl HostAbiScript {
    /// Any bytes decode: a header of two bytes (pages, flags), then calls until the input ends.
    pub fn decode(data: &[u8]) -> HostAbiScript {
        let mut r = Reader { data, pos: 0 };
        let pages = r.u8();
        let flags = r.u8();
        let mut calls = Vec::new();
        while !r.done() && calls.len() < MAX_CALLS {
            calls.push(r.call(false));
        }
        HostAbiScript {
            pages,
            flags,
            calls,
        }
    }

    /// The bytes that [`HostAbiScript::decode`] turns back into this script.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(vec![self.pages, self.flags]);
        for call in &self.calls {
            w.call(call);
        }
        w.0
    }
}
