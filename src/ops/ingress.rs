//! Who may reach a new machine: with no `--allow-cidr`, only this machine's own address (a
//! `/32`), never the world (docker-machine#2543).
//!
//! The address is the source of the route toward the endpoint, asked of the kernel (a UDP
//! socket "connected" to the endpoint sends nothing). Where that cannot stand for what the
//! instance sees (a loopback endpoint, or the instance's address routes from another local
//! address), the right `/32` is added as soon as the instance's address is known. Eucalyptus
//! EDGE may take up to ~2 minutes to apply a rule added late, so the before-launch rule is the
//! normal path.

use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The everything-CIDR: allowed only when asked for, with a warning.
pub const WORLD: &str = "0.0.0.0/0";

/// The local address the kernel would send from toward `dest` (no packet is sent).
pub fn source_toward(dest: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = match dest {
        IpAddr::V4(_) => "0.0.0.0:0".parse().ok()?,
        IpAddr::V6(_) => "[::]:0".parse().ok()?,
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(SocketAddr::new(dest, 9)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// The endpoint's host and port, from its URL (the default port of its scheme when it names
/// none; an IPv6 host without its brackets).
pub fn endpoint_host_port(endpoint: &str) -> Option<(String, u16)> {
    let (default_port, rest) = if let Some(r) = endpoint.strip_prefix("https://") {
        (443, r)
    } else {
        (80, endpoint.strip_prefix("http://")?)
    };
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit('@').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((host.to_string(), port.unwrap_or(default_port)));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), default_port)),
    }
}

/// This machine's address as seen toward the endpoint, as a `/32`; `None` when it would not
/// mean anything to the instance (a loopback endpoint, an IPv6 source: ingress rules here are
/// IPv4).
pub async fn toward_endpoint(endpoint: &str) -> Option<String> {
    let (host, port) = endpoint_host_port(endpoint)?;
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .ok()?
        .find(SocketAddr::is_ipv4)?;
    let source = tokio::task::spawn_blocking(move || source_toward(addr.ip()))
        .await
        .ok()??;
    host_cidr(source)
}

/// `ip/32` for an IPv4 address that another host could see us as.
pub fn host_cidr(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_unspecified() => Some(format!("{v4}/32")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hosts_and_ports() {
        let hp = |e| endpoint_host_port(e);
        assert_eq!(
            hp("http://10.0.0.1:8773/services/compute/"),
            Some(("10.0.0.1".into(), 8773))
        );
        assert_eq!(
            hp("https://ec2.cloud.example/"),
            Some(("ec2.cloud.example".into(), 443))
        );
        assert_eq!(hp("http://clc"), Some(("clc".into(), 80)));
        assert_eq!(hp("http://[fd00::1]:8773/"), Some(("fd00::1".into(), 8773)));
        assert_eq!(hp("ftp://x/"), None);
    }

    #[test]
    fn only_an_address_others_can_see_becomes_a_rule() {
        assert_eq!(
            host_cidr("10.214.0.1".parse().unwrap()).as_deref(),
            Some("10.214.0.1/32")
        );
        assert_eq!(host_cidr("127.0.0.1".parse().unwrap()), None);
        assert_eq!(host_cidr("0.0.0.0".parse().unwrap()), None);
        assert_eq!(host_cidr("::1".parse().unwrap()), None);
    }

    #[test]
    fn the_kernel_names_a_loopback_source_toward_loopback() {
        assert_eq!(
            source_toward("127.0.0.1".parse().unwrap()),
            Some("127.0.0.1".parse().unwrap())
        );
    }
}
