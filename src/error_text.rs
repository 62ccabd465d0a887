//! An error and its sources as one line: the SDKs nest the useful part several sources deep
//! (a connect error under a dispatch failure; a credential_process exit under "failed to load").

/// `err`, then each source that says something new, joined with `: ` on one line.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sources_that_repeat_are_left_out() {
        let inner = std::io::Error::other("connection refused");
        let outer = std::io::Error::other(inner);
        // io::Error's Display already shows the wrapped error: said once.
        assert_eq!(super::chain(&outer), "connection refused");
        let e = anyhow::anyhow!("dispatch failure").context("DescribeImages");
        let dyn_err: &dyn std::error::Error = e.as_ref();
        assert_eq!(super::chain(dyn_err), "DescribeImages: dispatch failure");
    }
}
