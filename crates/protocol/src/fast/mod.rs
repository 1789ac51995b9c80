//! The fast mode (2P-DNN): the client decrypts every layer's accumulators
//! and does the between-layer step itself. It learns them, and with a few
//! chosen queries the weights: a server that protects its model does not
//! offer this mode.

mod client;
mod server;

pub use client::FastClientSession;
pub use server::FastServerSession;
