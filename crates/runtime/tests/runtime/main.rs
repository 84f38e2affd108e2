//! The runtime crate's one integration-test binary.

mod docs;
mod embed;
mod net;
