//! Free ports on 127.0.0.1 for the processes a test starts, handed out once
//! per test process, so that tests running at the same time never get the
//! same one.

use std::{net::TcpListener, sync::Mutex};

/// A free port on 127.0.0.1 for a service to bind next. It is drawn at
/// random below the kernel's ephemeral range (32768 and up), so that the
/// outgoing connections of parallel tests cannot take it in the meantime.
///
/// A port is handed out once per process: two tests running at the same
/// time never get the same one (each stack takes five or more, and a second
/// bind of one port fails at start).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    for _ in 0..1000 {
        let port = 20_000 + random_below(12_000);
        let Ok(mut handed_out) = HANDED_OUT.lock() else {
            break;
        };
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between 20000 and 32000")
}

/// The first of `count` consecutive free ports on 127.0.0.1, for a command
/// that takes base ports and counts up from them (`scripts/dev/run.sh`: instance
/// i of a service on its base port + 2*i). The block is drawn at random from
/// 12000-17999: below the ports [`free_port`] hands out (20000 and up), so
/// that tests running at the same time cannot take one of them in the
/// meantime, and below the fixed ports of `make bench` (18100-18190) and
/// scripts/ci/schemathesis.sh (18300-18380). Blocks handed out in this process
/// never overlap.
pub fn free_port_block(count: u16) -> u16 {
    static TAKEN: Mutex<Vec<(u16, u16)>> = Mutex::new(Vec::new());
    for _ in 0..1000 {
        let base = 12_000 + random_below(6_000);
        let end = base + count;
        if end > 18_000 {
            continue;
        }
        let Ok(mut taken) = TAKEN.lock() else { break };
        if taken.iter().any(|&(b, e)| base < e && b < end) {
            continue;
        }
        if (base..end).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            taken.push((base, end));
            return base;
        }
    }
    panic!("no {count} consecutive free ports on 127.0.0.1 between 12000 and 18000")
}

fn random_below(bound: u16) -> u16 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(bound)) as u16
}
