//! The runtime crate's one integration-test binary.

mod alloc;
mod docs;
mod embed;
mod layers;
mod sinks;
mod wasi_p1;
