//! Consistent-hash ring (placeholder; being written).
pub struct Ring;
