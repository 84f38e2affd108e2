//! The `host_abi` target's fast path: one fixed interpreter plugin per memory size, compiled
//! once per process, that reads a script lowered to fixed-size records from its input and
//! makes the host calls. Compiling a module per input held the target to about 20 inputs a
//! second; the interpreter leaves only the calls themselves.
//!
//! The input a call gets is `INPUT_TEXT` (what `input_read` reads at small offsets, as before),
//! then the record count and the records, then the bytes of the script's own pointers, which
//! the first records copy into place with `input_read`.

use crate::script::{Buf, Call, Handle, HostAbiScript, Port, Ptr, SCRATCH};

/// What the script's `input_read` calls read first.
pub const INPUT_TEXT: &[u8] = b"input bytes for input_read";
/// Where the program starts in the input: after the text, aligned.
const PROGRAM_AT: u32 = 32;
/// One record: an op word (op in bits 0..8, two mode bits per argument from bit 8) and seven
/// argument words.
const RECORD: u32 = 32;
/// The records are fetched into the first bytes of memory, below the strings.
const FETCH_AT: u32 = 0;

/// An argument taken as it is.
const LITERAL: u32 = 0;
/// An argument counted back from the end of memory: `memory.size * 64 KiB - value`.
const NEAR_END: u32 = 1;
/// The handle (or error) the last `net_connect` returned.
const LAST: u32 = 2;

/// The calls, numbered as the interpreter's `br_table` dispatches them.
const OPS: &[&str] = &[
    "input_len",
    "input_read",
    "output_write",
    "log",
    "fs_read",
    "fs_write",
    "fs_stat",
    "fs_list",
    "fs_delete",
    "net_connect",
    "net_send",
    "net_recv",
    "net_close",
    "memory_grow",
];

/// One lowered call.
struct Record {
    op: u32,
    args: Vec<(u32, u32)>,
}

impl Record {
    fn new(op: &str) -> Record {
        Record {
            op: OPS.iter().position(|o| *o == op).expect("a known op") as u32,
            args: Vec::new(),
        }
    }
    fn lit(mut self, value: u32) -> Record {
        self.args.push((LITERAL, value));
        self
    }
    fn arg(mut self, arg: (u32, u32)) -> Record {
        self.args.push(arg);
        self
    }
    fn encode(&self, out: &mut Vec<u8>) {
        let mut word = self.op;
        for (i, (mode, _)) in self.args.iter().enumerate() {
            word |= mode << (8 + 2 * i);
        }
        out.extend(word.to_le_bytes());
        for i in 0..7 {
            let value = self.args.get(i).map_or(0, |(_, v)| *v);
            out.extend(value.to_le_bytes());
        }
    }
}

/// Turns a script into the interpreter's input. `strings` are the addresses the interpreter
/// module placed the harness's strings at; `place` lays out a script's own bytes (as the
/// compiled path does) and returns their address and length.
pub fn lower(
    script: &HostAbiScript,
    strings: &[(u32, u32)],
    echo_port: u16,
    mut place: impl FnMut(&[u8]) -> (u32, u32),
) -> Vec<u8> {
    let mut records = Vec::new();
    let mut blobs: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut lowerer = Lowerer {
        strings,
        echo_port,
        place: &mut place,
        blobs: &mut blobs,
    };
    for call in &script.calls {
        match call {
            Call::Repeat(n, inner) => {
                for _ in 0..*n {
                    records.push(lowerer.call(inner));
                }
            }
            other => records.push(lowerer.call(other)),
        }
    }
    let blob_bytes: usize = blobs.iter().map(|(_, b)| b.len()).sum();
    let blobs_at = PROGRAM_AT as usize + 4 + (records.len() + blobs.len()) * RECORD as usize;
    let mut input = INPUT_TEXT.to_vec();
    input.resize(PROGRAM_AT as usize, 0);
    input.extend(((records.len() + blobs.len()) as u32).to_le_bytes());
    // The script's bytes go into place first, each with one `input_read`.
    let mut offset = blobs_at;
    for (at, bytes) in &blobs {
        Record::new("input_read")
            .lit(*at)
            .lit(bytes.len() as u32)
            .lit(offset as u32)
            .encode(&mut input);
        offset += bytes.len();
    }
    for record in &records {
        record.encode(&mut input);
    }
    input.reserve(blob_bytes);
    for (_, bytes) in &blobs {
        input.extend(bytes);
    }
    input
}

struct Lowerer<'a, F: FnMut(&[u8]) -> (u32, u32)> {
    strings: &'a [(u32, u32)],
    echo_port: u16,
    place: &'a mut F,
    blobs: &'a mut Vec<(u32, Vec<u8>)>,
}

impl<F: FnMut(&[u8]) -> (u32, u32)> Lowerer<'_, F> {
    fn ptr(&mut self, p: &Ptr) -> [(u32, u32); 2] {
        match p {
            Ptr::Str(i) => {
                let (ptr, len) = self.strings[usize::from(*i) % self.strings.len()];
                [(LITERAL, ptr), (LITERAL, len)]
            }
            Ptr::Raw(ptr, len) => [(LITERAL, *ptr), (LITERAL, *len)],
            Ptr::Bytes(bytes) => {
                let (ptr, len) = (self.place)(bytes);
                if len > 0 {
                    self.blobs.push((ptr, bytes.clone()));
                }
                [(LITERAL, ptr), (LITERAL, len)]
            }
            Ptr::NearEnd(back, len) => [(NEAR_END, u32::from(*back)), (LITERAL, *len)],
        }
    }

    fn buf(b: &Buf) -> [(u32, u32); 2] {
        match b {
            Buf::Scratch(len) => [(LITERAL, SCRATCH), (LITERAL, u32::from(*len))],
            Buf::Raw(ptr, len) => [(LITERAL, *ptr), (LITERAL, *len)],
            Buf::NearEnd(back, len) => [(NEAR_END, u32::from(*back)), (LITERAL, *len)],
        }
    }

    fn handle(h: &Handle) -> (u32, u32) {
        match h {
            Handle::Last => (LAST, 0),
            Handle::Raw(v) => (LITERAL, *v as u32),
        }
    }

    fn call(&mut self, c: &Call) -> Record {
        let two = |r: Record, a: [(u32, u32); 2]| r.arg(a[0]).arg(a[1]);
        match c {
            Call::InputLen => Record::new("input_len"),
            Call::InputRead(b, offset) => two(Record::new("input_read"), Self::buf(b)).lit(*offset),
            Call::OutputWrite(p) => two(Record::new("output_write"), self.ptr(p)),
            Call::Log(p) => two(Record::new("log"), self.ptr(p)),
            Call::FsRead(p, offset, b) => {
                let r = two(Record::new("fs_read"), self.ptr(p))
                    .lit(*offset as u64 as u32)
                    .lit((*offset as u64 >> 32) as u32);
                two(r, Self::buf(b))
            }
            Call::FsWrite(p, data, flags) => {
                let r = two(Record::new("fs_write"), self.ptr(p));
                two(r, self.ptr(data)).lit(*flags as u32)
            }
            Call::FsStat(p, b) => two(Record::new("fs_stat"), self.ptr(p)).arg(Self::buf(b)[0]),
            Call::FsList(p, b) => two(two(Record::new("fs_list"), self.ptr(p)), Self::buf(b)),
            Call::FsDelete(p) => two(Record::new("fs_delete"), self.ptr(p)),
            Call::NetConnect(p, port) => {
                let port = match port {
                    Port::Echo => u32::from(self.echo_port),
                    Port::Raw(v) => *v as u32,
                };
                two(Record::new("net_connect"), self.ptr(p)).lit(port)
            }
            Call::NetSend(h, p) => two(Record::new("net_send").arg(Self::handle(h)), self.ptr(p)),
            Call::NetRecv(h, b, timeout) => {
                two(Record::new("net_recv").arg(Self::handle(h)), Self::buf(b)).lit(*timeout as u32)
            }
            Call::NetClose(h) => Record::new("net_close").arg(Self::handle(h)),
            Call::MemoryGrow(n) => Record::new("memory_grow").lit(u32::from(*n)),
            // Lowered by the caller; nested repeats decode as `input_len`.
            Call::Repeat(..) => Record::new("input_len"),
        }
    }
}

/// The interpreter: `imports` and `data` are the module's import and data lines (the same the
/// compiled path writes); `pages` its initial memory.
pub fn module(imports: &str, data: &str, pages: u32) -> String {
    let arg = |i: u32| format!("(call $arg (local.get $word) (i32.const {i}))");
    let a = |i: u32| arg(i);
    let handlers: Vec<String> = OPS
        .iter()
        .map(|op| match *op {
            "input_len" => "(drop (call $input_len))".to_owned(),
            "input_read" => format!("(drop (call $input_read {} {} {}))", a(0), a(1), a(2)),
            "output_write" | "log" | "fs_delete" => {
                format!("(drop (call ${op} {} {}))", a(0), a(1))
            }
            "fs_read" => format!(
                "(drop (call $fs_read {} {} (i64.or (i64.extend_i32_u {}) (i64.shl (i64.extend_i32_u {}) (i64.const 32))) {} {}))",
                a(0), a(1), a(2), a(3), a(4), a(5)
            ),
            "fs_write" => format!(
                "(drop (call $fs_write {} {} {} {} {}))",
                a(0), a(1), a(2), a(3), a(4)
            ),
            "fs_stat" => format!("(drop (call $fs_stat {} {} {}))", a(0), a(1), a(2)),
            "fs_list" => format!("(drop (call $fs_list {} {} {} {}))", a(0), a(1), a(2), a(3)),
            "net_connect" => {
                format!("(global.set $last (call $net_connect {} {} {}))", a(0), a(1), a(2))
            }
            "net_send" => format!("(drop (call $net_send {} {} {}))", a(0), a(1), a(2)),
            "net_recv" => format!("(drop (call $net_recv {} {} {} {}))", a(0), a(1), a(2), a(3)),
            "net_close" => format!("(drop (call $net_close {}))", a(0)),
            "memory_grow" => format!("(drop (memory.grow {}))", a(0)),
            other => unreachable!("no handler for {other}"),
        })
        .collect();
    // Nested blocks: `br_table` jumps out of block k to run handler k.
    let mut body = String::from("(block $done\n");
    for i in (0..OPS.len()).rev() {
        body.push_str(&format!("(block $op{i}\n"));
    }
    let targets: Vec<String> = (0..OPS.len()).map(|i| format!("$op{i}")).collect();
    body.push_str(&format!(
        "(br_table {} $done (i32.and (local.get $word) (i32.const 255))))\n",
        targets.join(" ")
    ));
    // Handler k follows the end of block k; the last one closes `$done` itself.
    for handler in &handlers {
        body.push_str(&format!("{handler} (br $done))\n"));
    }
    format!(
        r#"(module
{imports}  (memory (export "memory") {pages})
  (global $last (mut i32) (i32.const 0))
{data}  (func $arg (param $word i32) (param $i i32) (result i32) (local $mode i32) (local $v i32)
    (local.set $v (i32.load (i32.add (i32.const {arg_at}) (i32.mul (local.get $i) (i32.const 4)))))
    (local.set $mode (i32.and (i32.shr_u (local.get $word) (i32.add (i32.const 8) (i32.mul (local.get $i) (i32.const 2)))) (i32.const 3)))
    (if (result i32) (i32.eq (local.get $mode) (i32.const {NEAR_END}))
      (then (i32.sub (i32.mul (memory.size) (i32.const 65536)) (local.get $v)))
      (else (if (result i32) (i32.eq (local.get $mode) (i32.const {LAST}))
        (then (global.get $last))
        (else (local.get $v))))))
  (func (export "_start") (local $pc i32) (local $n i32) (local $word i32)
    (drop (call $input_read (i32.const {FETCH_AT}) (i32.const 4) (i32.const {PROGRAM_AT})))
    (local.set $n (i32.load (i32.const {FETCH_AT})))
    (block $end (loop $next
      (br_if $end (i32.ge_u (local.get $pc) (local.get $n)))
      (drop (call $input_read (i32.const {FETCH_AT}) (i32.const {RECORD})
        (i32.add (i32.const {first}) (i32.mul (local.get $pc) (i32.const {RECORD})))))
      (local.set $word (i32.load (i32.const {FETCH_AT})))
      {body}
      (local.set $pc (i32.add (local.get $pc) (i32.const 1)))
      (br $next))))
)
"#,
        arg_at = FETCH_AT + 4,
        first = PROGRAM_AT + 4,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_each_argument_and_its_mode() {
        let mut out = Vec::new();
        Record::new("fs_stat")
            .lit(7)
            .arg((NEAR_END, 9))
            .arg((LAST, 0))
            .encode(&mut out);
        assert_eq!(out.len(), RECORD as usize);
        let word = u32::from_le_bytes(out[0..4].try_into().unwrap());
        assert_eq!(word & 255, 6);
        assert_eq!((word >> 8) & 3, LITERAL);
        assert_eq!((word >> 10) & 3, NEAR_END);
        assert_eq!((word >> 12) & 3, LAST);
        assert_eq!(u32::from_le_bytes(out[8..12].try_into().unwrap()), 9);
    }
}
