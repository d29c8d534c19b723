//! Routing: what key an item has and which backend owns it.

pub mod ring;

pub use ring::Ring;
