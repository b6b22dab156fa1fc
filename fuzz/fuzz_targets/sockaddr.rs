//! The address parsers: a sockaddr copied out of a child (any bytes, any
//! length) and the host specs a user writes (`--net-allow-host`). Neither
//! may panic; whatever parses must mean the same thing when written back.
#![no_main]

use core::net::{IpAddr, SocketAddr};
use libfuzzer_sys::fuzz_target;
use sandlock_notify::SockAddrBuf;
use sandlock_policy::NetHost;

fuzz_target!(|data: &[u8]| {
    if let Some(buf) = SockAddrBuf::from_bytes(data) {
        let _ = buf.family();
        if let Some(sa) = buf.socket_addr() {
            // Re-encoding gives the canonical bytes of the same address.
            let back = SockAddrBuf::from_socket_addr(sa);
            assert_eq!(back.socket_addr(), Some(sa));
            let (ip, port) = buf.host_port().expect("an IP sockaddr has a host and port");
            assert_eq!(port, sa.port());
            if let (IpAddr::V4(v4), SocketAddr::V6(v6)) = (ip, sa) {
                assert_eq!(v6.ip().to_ipv4_mapped(), Some(v4));
            }
        }
    }
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(host) = text.parse::<NetHost>() {
            let shown = host.to_string();
            let again: NetHost = shown.parse().expect("a displayed host must parse");
            assert_eq!(again, host);
        }
    }
});
