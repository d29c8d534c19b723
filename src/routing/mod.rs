//! Routing: what key an item has and which backend owns it.

pub mod key;
pub mod ring;

pub use key::RouteKey;
pub use ring::Ring;

#[cfg(test)]
mod key_golden;
#[cfg(test)]
mod key_tests;
#[cfg(test)]
pub mod oracle;
