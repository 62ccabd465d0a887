//! Which address of an instance is usable, with Eucalyptus EDGE networking in mind: until the
//! public address is assigned, DescribeInstances reports `0.0.0.0` or the private address as the
//! public one.

use std::net::IpAddr;

/// The address to reach the instance at, or `None` while EDGE has not assigned it yet.
pub fn usable_address(
    public: Option<&str>,
    private: Option<&str>,
    use_private: bool,
) -> Option<IpAddr> {
    let parse = |s: Option<&str>| {
        s.and_then(|s| s.trim().parse::<IpAddr>().ok())
            .filter(|ip| !ip.is_unspecified())
    };
    let private = parse(private);
    if use_private {
        return private;
    }
    match parse(public) {
        Some(public) if Some(public) != private => Some(public),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_placeholders_are_not_addresses() {
        assert_eq!(
            usable_address(Some("0.0.0.0"), Some("10.1.0.5"), false),
            None
        );
        assert_eq!(
            usable_address(Some("10.1.0.5"), Some("10.1.0.5"), false),
            None
        );
        assert_eq!(usable_address(None, Some("10.1.0.5"), false), None);
        assert_eq!(usable_address(Some(""), Some("10.1.0.5"), false), None);
        assert_eq!(
            usable_address(Some("10.2.0.9"), Some("10.1.0.5"), false),
            Some("10.2.0.9".parse().unwrap())
        );
    }

    #[test]
    fn private_address_when_asked() {
        assert_eq!(
            usable_address(None, Some("10.1.0.5"), true),
            Some("10.1.0.5".parse().unwrap())
        );
        assert_eq!(
            usable_address(Some("10.2.0.9"), Some("0.0.0.0"), true),
            None
        );
    }
}
