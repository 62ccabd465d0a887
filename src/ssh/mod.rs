//! SSH: key material, and (from the provisioning layer on) one session per host with a pinned
//! host key.

pub mod keys;
