//! Capabilities: the only code that holds host handles (the mounts' directories, open files,
//! sockets). Every operation that touches the host takes a [`Permit`](crate::broker::Permit)
//! from the broker's check first; a capability never decides. A new capability (HTTP, say)
//! goes here, beside `fs` and `net`, and may touch only the handles it holds itself.

pub(crate) mod fs;
pub(crate) mod net;
