//! docker's `--format`, as docker's own commands take it: `table` (the command's own table, or
//! `table {{.Name}}\t{{.State}}` columns under a header, aligned like docker's tabwriter),
//! `json` (one JSON object per line), or any Go `text/template` (the `gotmpl` engine) with
//! docker's functions: `json`, `join`, `upper`, `lower`, `title`, `split`, `truncate`, `pad`,
//! besides Go's own (`println`, `printf`, `index`, `len`, `eq`…, `range`/`if`/`with`).
//!
//! As in docker (`cli/command/formatter`): the format is trimmed and its literal `\t`/`\n` become
//! a tab and a newline; a row template runs once per item, followed by a newline; a table's
//! header is the same template run with functions that return their argument unchanged over a
//! map from each field to its label (`PublicIP` → `PUBLIC IP`), and errors in it are ignored.
//! Field names are exact, as in Go (`{{.Name}}`, not `{{.name}}`); an unknown one is an error.

use std::{collections::BTreeMap, sync::Arc};

use gotmpl::{MissingKey, Template, Value};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("--format {format:?} is not a template docker-euca can read: {message}")]
    Syntax { format: String, message: String },
    #[error("--format could not be applied: {0}")]
    Exec(String),
}

/// What `--format` asked for.
pub enum Format {
    /// The command's own table.
    DefaultTable,
    /// `table TEMPLATE`: these columns, under a header.
    Table {
        spec: String,
        rows: Template,
        header: Template,
    },
    /// One JSON object per line.
    Json,
    /// A template per item.
    Custom { spec: String, template: Template },
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::DefaultTable => "DefaultTable",
            Format::Table { .. } => "Table",
            Format::Json => "Json",
            Format::Custom { .. } => "Custom",
        })
    }
}

/// docker's `preFormat`: trimmed, with the escapes `\t` and `\n` made real.
fn pre_format(spec: &str) -> String {
    spec.trim().replace("\\t", "\t").replace("\\n", "\n")
}

impl Format {
    /// Parses `--format` once (so a bad template fails before anything is asked of the cloud).
    pub fn parse(spec: &str) -> Result<Format, TemplateError> {
        let trimmed = spec.trim();
        if trimmed.is_empty() || trimmed == "table" {
            return Ok(Format::DefaultTable);
        }
        if trimmed == "json" {
            return Ok(Format::Json);
        }
        if let Some(columns) = trimmed.strip_prefix("table") {
            let body = pre_format(columns);
            return Ok(Format::Table {
                spec: spec.to_string(),
                rows: compile(spec, &body, docker_functions)?,
                header: compile(spec, &body, header_functions)?,
            });
        }
        Ok(Format::Custom {
            spec: spec.to_string(),
            template: compile(spec, &pre_format(spec), docker_functions)?,
        })
    }

    fn spec(&self) -> &str {
        match self {
            Format::Table { spec, .. } | Format::Custom { spec, .. } => spec,
            Format::DefaultTable => "table",
            Format::Json => "json",
        }
    }

    /// Runs the template once over `fields` (an item with every field, empty): a function it
    /// names that does not exist fails here, before anything is asked of the cloud (Go finds
    /// it when parsing; this engine only when running).
    pub fn check<T: Serialize>(&self, fields: &T) -> Result<(), TemplateError> {
        let (Format::Table { rows: t, .. } | Format::Custom { template: t, .. }) = self else {
            return Ok(());
        };
        let sample =
            serde_json::to_value(fields).map_err(|e| TemplateError::Exec(e.to_string()))?;
        match t.execute_to_string(&to_value(&sample)) {
            Err(e @ gotmpl::TemplateError::UndefinedFunction(_)) => Err(TemplateError::Syntax {
                format: self.spec().to_string(),
                message: e.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// The output for `items` (each a row), or `None` for [`Format::DefaultTable`], which the
    /// command prints itself. `fields`: an item with every field (for a table's header when
    /// there are no items).
    pub fn render<T: Serialize>(
        &self,
        items: &[T],
        fields: &T,
    ) -> Result<Option<String>, TemplateError> {
        let values: Vec<serde_json::Value> = items
            .iter()
            .map(|i| serde_json::to_value(i).map_err(|e| TemplateError::Exec(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Some(match self {
            Format::DefaultTable => return Ok(None),
            // As docker's `{{json .}}` of a map: the keys sorted.
            Format::Json => values
                .iter()
                .map(|v| format!("{}\n", to_json(&to_value(v))))
                .collect::<String>(),
            Format::Custom { template: t, .. } => rows(t, &values)?,
            Format::Table {
                rows: t, header, ..
            } => {
                let sample =
                    serde_json::to_value(fields).map_err(|e| TemplateError::Exec(e.to_string()))?;
                // docker ignores errors in the header (what was printed before one stays).
                let mut head = String::new();
                let _ = header.execute_fmt(&mut head, &header_labels(&sample));
                aligned(&format!("{head}\n{}", rows(t, &values)?))
            }
        }))
    }
}

/// Renders one value with a template (`inspect --format`); `json` is the value as JSON.
pub fn render_one(spec: &str, value: &serde_json::Value) -> Result<String, TemplateError> {
    match Format::parse(spec)? {
        Format::Json => Ok(value.to_string()),
        Format::Custom { template: t, .. } => execute(&t, value),
        Format::DefaultTable | Format::Table { .. } => {
            Ok(serde_json::to_string_pretty(value)
                .map_err(|e| TemplateError::Exec(e.to_string()))?)
        }
    }
}

fn rows(t: &Template, values: &[serde_json::Value]) -> Result<String, TemplateError> {
    let mut out = String::new();
    for v in values {
        out.push_str(&execute(t, v)?);
        out.push('\n');
    }
    Ok(out)
}

fn execute(t: &Template, value: &serde_json::Value) -> Result<String, TemplateError> {
    t.execute_to_string(&to_value(value))
        .map_err(|e| TemplateError::Exec(e.to_string()))
}

fn compile(
    spec: &str,
    body: &str,
    functions: fn(Template) -> Template,
) -> Result<Template, TemplateError> {
    functions(Template::new("").missing_key(MissingKey::Error))
        .parse(body)
        .map_err(|e| TemplateError::Syntax {
            format: spec.to_string(),
            message: e.to_string(),
        })
}

/// Columns aligned as docker aligns them (Go's tabwriter with minwidth 10, padding 3, which
/// the `tabwriter` crate counts as minwidth 7 plus padding 3), by display width.
pub fn aligned(text: &str) -> String {
    use std::io::Write;
    let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(7).padding(3);
    tw.write_all(text.as_bytes()).expect("write to memory");
    let out = tw.into_inner().expect("flush to memory");
    // Trailing padding is not docker's: each line ends with its last cell.
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

/// A field name as a column label: `PublicIP` → `PUBLIC IP`, `URL` → `URL`.
fn label(field: &str) -> String {
    let chars: Vec<char> = field.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let prev_lower = i > 0 && chars[i - 1].is_lowercase();
        let acronym_end = i > 0
            && chars[i - 1].is_uppercase()
            && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && (prev_lower || acronym_end) {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out.replace(['_', '-'], " ")
}

fn header_labels(sample: &serde_json::Value) -> Value {
    let map: BTreeMap<Arc<str>, Value> = sample
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| (Arc::<str>::from(k.as_str()), Value::String(label(k).into())))
        .collect();
    Value::Map(Arc::new(map))
}

/// A JSON value as the template engine's (numbers stay integers where they are).
pub fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s.as_str().into()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(to_value).collect()),
        serde_json::Value::Object(o) => Value::Map(Arc::new(
            o.iter()
                .map(|(k, v)| (Arc::<str>::from(k.as_str()), to_value(v)))
                .collect(),
        )),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.to_string().into(),
        Value::List(l) => l.iter().map(to_json).collect(),
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| (k.to_string(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        _ => serde_json::Value::Null,
    }
}

fn text(s: String) -> Value {
    Value::String(s.into())
}

fn arg(name: &str, args: &[Value], i: usize) -> gotmpl::Result<Value> {
    args.get(i)
        .cloned()
        .ok_or_else(|| gotmpl::TemplateError::Exec(format!("{name} needs {} argument(s)", i + 1)))
}

fn int(name: &str, args: &[Value], i: usize) -> gotmpl::Result<usize> {
    arg(name, args, i)?
        .as_int()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            gotmpl::TemplateError::Exec(format!("{name}: argument {} must be a count", i + 1))
        })
}

/// Go's `strings.Title`: the first letter of each word upper-cased, the rest kept.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !(c.is_alphanumeric() || c == '_');
    }
    out
}

/// docker's `pad`: nothing for an empty string, else the string between so many spaces.
fn with_pad(t: Template) -> Template {
    t.func("pad", |a| {
        let s = arg("pad", a, 0)?.to_string();
        let (before, after) = (int("pad", a, 1)?, int("pad", a, 2)?);
        Ok(text(if s.is_empty() {
            s
        } else {
            format!("{}{s}{}", " ".repeat(before), " ".repeat(after))
        }))
    })
}

/// docker's template functions (`templates.basicFunctions` in docker/cli).
fn docker_functions(t: Template) -> Template {
    with_pad(t)
        .func("json", |a| {
            serde_json::to_string(&to_json(&arg("json", a, 0)?))
                .map(text)
                .map_err(|e| gotmpl::TemplateError::Exec(e.to_string()))
        })
        .func("upper", |a| {
            Ok(text(arg("upper", a, 0)?.to_string().to_uppercase()))
        })
        .func("lower", |a| {
            Ok(text(arg("lower", a, 0)?.to_string().to_lowercase()))
        })
        .func("title", |a| {
            Ok(text(title(&arg("title", a, 0)?.to_string())))
        })
        .func("split", |a| {
            let (s, sep) = (
                arg("split", a, 0)?.to_string(),
                arg("split", a, 1)?.to_string(),
            );
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| text(c.to_string())).collect()
            } else {
                s.split(sep.as_str()).map(|p| text(p.to_string())).collect()
            };
            Ok(Value::List(parts.into()))
        })
        .func("join", |a| match arg("join", a, 0)? {
            Value::List(items) => {
                let sep = arg("join", a, 1)?.to_string();
                Ok(text(
                    items
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(&sep),
                ))
            }
            other => Err(gotmpl::TemplateError::Exec(format!(
                "join: expected a list, got {}",
                other.type_name()
            ))),
        })
        .func("truncate", |a| {
            let (s, n) = (arg("truncate", a, 0)?.to_string(), int("truncate", a, 1)?);
            Ok(text(s.chars().take(n).collect()))
        })
}

/// The functions a table's header runs with: each returns its argument (the label) as it is.
fn header_functions(t: Template) -> Template {
    let same = |a: &[Value]| Ok(a.first().cloned().unwrap_or(Value::Nil));
    [
        "json", "split", "join", "title", "lower", "upper", "truncate",
    ]
    .into_iter()
    .fold(with_pad(t), |t, name| t.func(name, same))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    #[serde(rename_all = "PascalCase")]
    struct Row {
        name: String,
        state: String,
        #[serde(rename = "PublicIP")]
        public_ip: String,
        labels: Vec<String>,
    }

    fn rows() -> Vec<Row> {
        vec![
            Row {
                name: "web1".into(),
                state: "Running".into(),
                public_ip: "10.214.0.10".into(),
                labels: vec!["a=1".into(), "b=2".into()],
            },
            Row {
                name: "db-primary".into(),
                state: "Stopped".into(),
                ..Default::default()
            },
        ]
    }

    fn render(spec: &str) -> String {
        Format::parse(spec)
            .unwrap()
            .render(&rows(), &Row::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn json_is_one_object_per_line() {
        let out = render("json");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["Name"], "web1");
        assert_eq!(render("{{json .}}"), out);
    }

    #[test]
    fn table_columns_get_a_header_and_docker_alignment() {
        assert_eq!(
            render("table {{.Name}}\\t{{.State}}\\t{{.PublicIP}}"),
            "NAME         STATE     PUBLIC IP\n\
             web1         Running   10.214.0.10\n\
             db-primary   Stopped\n"
        );
        assert!(matches!(
            Format::parse("table").unwrap(),
            Format::DefaultTable
        ));
        assert!(matches!(Format::parse(" ").unwrap(), Format::DefaultTable));
    }

    #[test]
    fn go_templates_with_dockers_functions() {
        assert_eq!(
            render("{{.Name}}{{if .PublicIP}} at {{.PublicIP}}{{end}}"),
            "web1 at 10.214.0.10\ndb-primary\n"
        );
        assert_eq!(
            render("{{range $i, $l := .Labels}}{{if $i}},{{end}}{{upper $l}}{{end}}"),
            "A=1,B=2\n\n"
        );
        assert_eq!(render("{{join .Labels \";\"}}"), "a=1;b=2\n\n");
        assert_eq!(
            render("{{with .PublicIP}}{{.}}{{else}}none{{end}}"),
            "10.214.0.10\nnone\n"
        );
        assert_eq!(
            render("{{lower .State}} {{truncate .Name 3}}"),
            "running web\nstopped db-\n"
        );
        assert_eq!(
            render("{{title \"web one\"}}|{{pad .PublicIP 1 1}}|"),
            "Web One| 10.214.0.10 |\nWeb One||\n"
        );
        assert_eq!(render("{{index (split .PublicIP \".\") 0}}"), "10\n\n");
        assert_eq!(render("{{json .Labels}}"), "[\"a=1\",\"b=2\"]\n[]\n");
        assert_eq!(
            render("{{printf \"%s=%s\" .Name .State}}"),
            "web1=Running\ndb-primary=Stopped\n"
        );
    }

    #[test]
    fn a_bad_template_fails_at_parse_time_and_an_unknown_field_when_run() {
        // (gotmpl 0.6.1 takes an unterminated `{{range .}}` and a stray `{{end}}` where Go
        // refuses them, and finds an unknown function only when it runs: `check` runs the
        // template once over an empty item.)
        for bad in [
            "{{.Nope",
            "{{if}}",
            "{{nosuchfunc .Name}}",
            "{{.Name | }}",
            "{{\"x}}",
        ] {
            let err = Format::parse(bad)
                .and_then(|f| f.check(&Row::default()))
                .err()
                .unwrap_or_else(|| panic!("{bad} passed"));
            assert!(matches!(err, TemplateError::Syntax { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        let err = Format::parse("{{.Nope}}")
            .unwrap()
            .render(&rows(), &Row::default())
            .unwrap_err();
        assert!(err.to_string().contains("Nope"), "{err}");
    }

    #[test]
    fn labels_split_words_and_acronyms() {
        assert_eq!(label("PublicIP"), "PUBLIC IP");
        assert_eq!(label("URL"), "URL");
        assert_eq!(label("InstanceID"), "INSTANCE ID");
        assert_eq!(label("Name"), "NAME");
        assert_eq!(label("instance_id"), "INSTANCE ID");
    }

    #[test]
    fn one_value_renders_with_a_template_or_as_json() {
        let v = serde_json::json!({"name": "web1", "cloud": {"instance_id": "i-1"}});
        assert_eq!(render_one("{{.cloud.instance_id}}", &v).unwrap(), "i-1");
        assert_eq!(render_one("json", &v).unwrap(), v.to_string());
    }
}
