//! How a check is shown: a text line (`STATUS  CHECK  DETAIL`, the hint and any further detail
//! lines indented below it), or one JSON object per line
//! (`{"check":…,"status":…,"detail":…,"hint":…}`).

use super::Check;

/// Width of the status column (`warn`, `fail`, `skip`).
const STATUS_WIDTH: usize = 4;
/// Width of the check column (`security-group`).
const ID_WIDTH: usize = 14;

/// The text form: the check's line, then its further detail lines and its hint, indented to
/// the detail column. Grepping for `^fail` finds the failed checks.
pub fn text(check: &Check) -> String {
    let indent = " ".repeat(STATUS_WIDTH + 2 + ID_WIDTH + 2);
    let mut lines = check.detail.lines();
    let mut out = format!(
        "{:<sw$}  {:<iw$}  {}",
        check.status.as_str(),
        check.id,
        lines.next().unwrap_or_default(),
        sw = STATUS_WIDTH,
        iw = ID_WIDTH,
    );
    for line in lines {
        out.push('\n');
        out.push_str(&indent);
        out.push_str(line);
    }
    if let Some(hint) = &check.hint {
        out.push('\n');
        out.push_str(&indent);
        out.push_str("hint: ");
        out.push_str(hint);
    }
    // A detail that is exactly as wide as its column leaves no trailing spaces either way.
    out.trim_end().to_string()
}

/// The JSON form: one object on one line; `hint` is `null` when there is none.
pub fn json(check: &Check) -> String {
    serde_json::json!({
        "check": check.id,
        "status": check.status.as_str(),
        "detail": check.detail,
        "hint": check.hint,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_put_the_hint_under_the_detail() {
        let c = Check::fail(
            "port-2376",
            "10.214.0.7:2376 refused the connection: the docker daemon does not listen",
            "start it",
        );
        assert_eq!(
            text(&c),
            "fail  port-2376       10.214.0.7:2376 refused the connection: the docker daemon does \
             not listen\n                      hint: start it"
        );
        let ok = Check::ok("security-group", "sg-1 admits 10.214.0.1 on 22 and 2376");
        assert_eq!(
            text(&ok),
            "ok    security-group  sg-1 admits 10.214.0.1 on 22 and 2376"
        );
        let console = Check::ok("console", "the last 2 lines:\none\ntwo");
        assert_eq!(
            text(&console),
            "ok    console         the last 2 lines:\n                      one\n                      two"
        );
    }

    #[test]
    fn json_lines_have_the_four_fields_in_order() {
        let c = Check::skip("ssh", "the instance is stopped");
        assert_eq!(
            json(&c),
            r#"{"check":"ssh","status":"skip","detail":"the instance is stopped","hint":null}"#
        );
        let c = Check::warn("clock", "2 min off", "sync it");
        let v: serde_json::Value = serde_json::from_str(&json(&c)).unwrap();
        assert_eq!(v["hint"], "sync it");
        assert_eq!(v["status"], "warn");
    }
}
