//! The System page's data: the instances of `CONSOLE_INSTANCES` polled
//! ([`monitor`]), their `/metrics` read ([`prometheus`]).

pub mod monitor;
pub mod prometheus;
