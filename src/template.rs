//! The docker CLI's `--format` placeholders, for the subset people use: `{{.Field}}`,
//! `{{.A.B}}`, `{{json .Field}}`, `{{json .}}`, and `\t`/`\n` escapes. Field names match
//! case-insensitively, with `_` ignored, so `{{.PublicIP}}` finds `public_ip`.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unterminated placeholder in {0:?}")]
    Unterminated(String),
    #[error(
        "{0:?} is not a placeholder this plugin understands (use {{{{.Field}}}} or {{{{json .Field}}}})"
    )]
    Unsupported(String),
    #[error("no field {field:?} (known: {known})")]
    NoField { field: String, known: String },
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn lookup<'a>(value: &'a Value, path: &str) -> Result<&'a Value, TemplateError> {
    let mut cur = value;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let obj = cur.as_object().ok_or_else(|| TemplateError::NoField {
            field: part.into(),
            known: String::new(),
        })?;
        cur = obj
            .iter()
            .find(|(k, _)| norm(k) == norm(part))
            .map(|(_, v)| v)
            .ok_or_else(|| TemplateError::NoField {
                field: part.into(),
                known: obj.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
    }
    Ok(cur)
}

fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks a template without data (for early errors).
pub fn validate(template: &str) -> Result<(), TemplateError> {
    render(template, &Value::Null)
        .map(|_| ())
        .or_else(|e| match e {
            TemplateError::NoField { .. } => Ok(()),
            other => Err(other),
        })
}

pub fn render(template: &str, value: &Value) -> Result<String, TemplateError> {
    let template = template.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unterminated(template.clone()))?;
        let inner = after[..end].trim();
        let (json, path) = match inner.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, inner),
        };
        let path = path
            .strip_prefix('.')
            .ok_or_else(|| TemplateError::Unsupported(inner.to_string()))?;
        if path.contains(char::is_whitespace) {
            return Err(TemplateError::Unsupported(inner.to_string()));
        }
        let v = lookup(value, path)?;
        out.push_str(&if json { v.to_string() } else { plain(v) });
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_nested_json_and_escapes() {
        let v = json!({"Name": "web1", "cloud": {"public_ip": "10.0.0.1", "tags": ["a"]}, "n": 3});
        assert_eq!(
            render("{{.Name}}\\t{{.cloud.PublicIP}}", &v).unwrap(),
            "web1\t10.0.0.1"
        );
        assert_eq!(
            render("{{json .cloud.tags}} {{.n}}", &v).unwrap(),
            "[\"a\"] 3"
        );
        assert_eq!(render("{{ .name }}", &v).unwrap(), "web1");
        assert!(render("{{json .}}", &v).unwrap().starts_with('{'));
    }

    #[test]
    fn errors_name_the_problem() {
        let v = json!({"Name": "x"});
        assert!(matches!(
            render("{{.Nope}}", &v),
            Err(TemplateError::NoField { .. })
        ));
        assert!(matches!(
            render("{{.Name", &v),
            Err(TemplateError::Unterminated(_))
        ));
        assert!(matches!(
            render("{{range .}}", &v),
            Err(TemplateError::Unsupported(_))
        ));
        assert!(validate("{{.Anything}}").is_ok());
        assert!(validate("{{if .x}}").is_err());
    }
}
