//! JSON schemas turned into GBNF, llama.cpp's grammar language, so a reply constrained by the
//! grammar always parses and matches the schema (OpenAI's `response_format`).
//!
//! What is understood: `type` (one or a list), `object` with `properties`, `required` and
//! `additionalProperties` (a map when there are no properties), `array` with `items`,
//! `minItems` and `maxItems`, `string` with `minLength` and `maxLength`, `number`, `integer`,
//! `boolean`, `null`, `enum`, `const`, `anyOf` / `oneOf`, a one-element `allOf`, and `$ref` to
//! `#/$defs/...` or `#/definitions/...` (what pydantic writes). Annotations (`title`,
//! `description`, `default`, `examples`...) are ignored. Anything else is refused with its
//! keyword and place: a grammar that let through what the schema forbids would be a lie.
//!
//! Properties are written in the schema's order (as llama.cpp's converter does); whitespace is
//! bounded, so a small model cannot pad a reply with spaces until its token limit.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why a schema cannot be turned into a grammar, in words for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("the JSON schema uses {keyword:?} at {at}, which localbrain cannot enforce yet")]
    Unsupported { keyword: String, at: String },
    #[error("the JSON schema is not valid at {at}: {why}")]
    Invalid { at: String, why: String },
}

/// Keywords that say nothing about what is valid.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$defs",
    "definitions",
];

/// The grammar's building blocks: JSON's own values, with whitespace bounded.
const PRIMITIVES: &str = r#"space ::= | " " | "\n" [ \t]{0,20}
char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt/] | "u" [0-9a-fA-F]{4})
string ::= "\"" char* "\"" space
integral-part ::= [0] | [1-9] [0-9]{0,15}
number ::= "-"? integral-part ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,4})? space
integer ::= "-"? integral-part space
boolean ::= ("true" | "false") space
null ::= "null" space
value ::= object | array | string | number | boolean | null
object ::= "{" space (string ":" space value ("," space string ":" space value)*)? "}" space
array ::= "[" space (value ("," space value)*)? "]" space
"#;

/// The grammar for any JSON object (`response_format: {"type": "json_object"}`).
pub fn any_object() -> String {
    format!("root ::= space object\n{PRIMITIVES}")
}

/// The grammar for JSON matching `schema`.
pub fn to_gbnf(schema: &Value) -> Result<String, SchemaError> {
    let mut rules = Rules::default();
    let root = rules.add(schema, "root-value")?;
    Ok(rules.grammar(&format!("space {root}")))
}

/// The rules of several schemas in one grammar (a tool call's arguments, one schema per tool).
#[derive(Default)]
pub struct Rules {
    rules: BTreeMap<String, String>,
    schemas: usize,
}

impl Rules {
    /// Adds the rules for `schema`; the expression matching it. `hint` names its rules.
    pub fn add(&mut self, schema: &Value, hint: &str) -> Result<String, SchemaError> {
        // Each schema's `$defs` are its own: their rules are named apart from another schema's.
        let prefix = if self.schemas == 0 { String::new() } else { format!("s{}-", self.schemas) };
        self.schemas += 1;
        let mut c = Converter { root: schema, rules: std::mem::take(&mut self.rules), prefix };
        let expr = c.visit(schema, "#", hint);
        self.rules = c.rules;
        expr
    }

    /// The whole grammar: `root ::= {root}`, JSON's primitives, and every rule added.
    pub fn grammar(&self, root: &str) -> String {
        let mut out = format!("root ::= {root}\n{PRIMITIVES}");
        for (name, body) in &self.rules {
            out.push_str(&format!("{name} ::= {body}\n"));
        }
        out
    }
}

struct Converter<'a> {
    root: &'a Value,
    /// Named rules made so far (a `$ref` is made once, so recursive schemas terminate).
    rules: BTreeMap<String, String>,
    /// Put before `$ref` rule names, so two schemas' definitions of one name stay apart.
    prefix: String,
}

impl<'a> Converter<'a> {
    /// A grammar expression for `schema` at JSON pointer `at`; `hint` names its rules.
    fn visit(&mut self, schema: &'a Value, at: &str, hint: &str) -> Result<String, SchemaError> {
        let map = match schema {
            Value::Bool(true) => return Ok("value".into()),
            Value::Bool(false) => return Err(invalid(at, "false accepts nothing")),
            Value::Object(m) => m,
            _ => return Err(invalid(at, "a schema must be an object or a boolean")),
        };
        if let Some(r) = map.get("$ref") {
            self.only(map, at, &["$ref"])?;
            return self.reference(r, at);
        }
        if let Some(c) = map.get("const") {
            self.only(map, at, &["const", "type"])?;
            return Ok(literal(c));
        }
        if let Some(e) = map.get("enum") {
            self.only(map, at, &["enum", "type"])?;
            let values =
                e.as_array().filter(|v| !v.is_empty()).ok_or_else(|| invalid(at, "enum must be a non-empty list"))?;
            return Ok(group(values.iter().map(literal).collect()));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(list) = map.get(key) {
                self.only(map, at, &[key])?;
                let list =
                    list.as_array().filter(|v| !v.is_empty()).ok_or_else(|| invalid(at, "must be a non-empty list"))?;
                let alts = list
                    .iter()
                    .enumerate()
                    .map(|(i, s)| self.visit(s, &format!("{at}/{key}/{i}"), &format!("{hint}-{i}")))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(group(alts));
            }
        }
        if let Some(list) = map.get("allOf") {
            self.only(map, at, &["allOf"])?;
            return match list.as_array().map(Vec::as_slice) {
                Some([one]) => self.visit(one, &format!("{at}/allOf/0"), hint),
                _ => Err(unsupported("allOf with more than one schema", at)),
            };
        }
        match map.get("type") {
            None if map.contains_key("properties") => self.object(map, at, hint),
            None if map.contains_key("items") => self.array(map, at, hint),
            None => {
                self.only(map, at, &[])?;
                Ok("value".into())
            }
            Some(Value::String(t)) => self.typed(t, map, at, hint),
            Some(Value::Array(types)) => {
                let alts = types
                    .iter()
                    .map(|t| match t {
                        Value::String(t) => self.typed(t, map, at, &format!("{hint}-{t}")),
                        _ => Err(invalid(at, "type must name a type")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(group(alts))
            }
            Some(_) => Err(invalid(at, "type must be a string or a list of strings")),
        }
    }

    fn typed(&mut self, t: &str, map: &'a Map<String, Value>, at: &str, hint: &str) -> Result<String, SchemaError> {
        match t {
            "object" => self.object(map, at, hint),
            "array" => self.array(map, at, hint),
            "string" => self.string(map, at, hint),
            "number" | "integer" | "boolean" | "null" => {
                self.only(map, at, &["type"])?;
                Ok(t.to_string())
            }
            other => Err(invalid(at, &format!("{other:?} is not a JSON schema type"))),
        }
    }

    fn string(&mut self, map: &Map<String, Value>, at: &str, hint: &str) -> Result<String, SchemaError> {
        self.only(map, at, &["type", "minLength", "maxLength"])?;
        let min = count(map, "minLength", at)?.unwrap_or(0);
        let max = count(map, "maxLength", at)?;
        if min == 0 && max.is_none() {
            return Ok("string".into());
        }
        if max.is_some_and(|m| m < min) {
            return Err(invalid(at, "maxLength is less than minLength"));
        }
        let name = self.name(hint, "string");
        let body = format!("\"\\\"\" char{} \"\\\"\" space", repeat(min, max));
        self.rules.insert(name.clone(), body);
        Ok(name)
    }

    fn array(&mut self, map: &'a Map<String, Value>, at: &str, hint: &str) -> Result<String, SchemaError> {
        self.only(map, at, &["type", "items", "minItems", "maxItems"])?;
        let item = match map.get("items") {
            Some(s) => self.visit(s, &format!("{at}/items"), &format!("{hint}-item"))?,
            None => "value".into(),
        };
        let min = count(map, "minItems", at)?.unwrap_or(0);
        let max = count(map, "maxItems", at)?;
        if max.is_some_and(|m| m < min) {
            return Err(invalid(at, "maxItems is less than minItems"));
        }
        let rest = format!("(\",\" space {item}){}", repeat(min.saturating_sub(1), max.map(|m| m.saturating_sub(1))));
        let items = if max == Some(0) { String::new() } else { format!("{item} {rest}") };
        let body = match (min, items.is_empty()) {
            (_, true) => "\"[\" space \"]\" space".to_string(),
            (0, false) => format!("\"[\" space ({items})? \"]\" space"),
            _ => format!("\"[\" space {items} \"]\" space"),
        };
        let name = self.name(hint, "array");
        self.rules.insert(name.clone(), body);
        Ok(name)
    }

    fn object(&mut self, map: &'a Map<String, Value>, at: &str, hint: &str) -> Result<String, SchemaError> {
        self.only(map, at, &["type", "properties", "required", "additionalProperties"])?;
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        let props = match map.get("properties") {
            None => &*EMPTY,
            Some(Value::Object(p)) => p,
            Some(_) => return Err(invalid(at, "properties must be an object")),
        };
        let required: Vec<&str> = match map.get("required") {
            None => Vec::new(),
            Some(Value::Array(r)) => r
                .iter()
                .map(|v| v.as_str().ok_or_else(|| invalid(at, "required must list names")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid(at, "required must be a list")),
        };
        if let Some(missing) = required.iter().find(|r| !props.contains_key(**r)) {
            return Err(unsupported(&format!("required {missing:?} without a schema in properties"), at));
        }
        let name = self.name(hint, "object");
        if props.is_empty() {
            // A map: any names, values as additionalProperties says (any JSON by default).
            let value = match map.get("additionalProperties") {
                None | Some(Value::Bool(true)) => "value".to_string(),
                Some(Value::Bool(false)) => {
                    self.rules.insert(name.clone(), "\"{\" space \"}\" space".into());
                    return Ok(name);
                }
                Some(s) => self.visit(s, &format!("{at}/additionalProperties"), &format!("{hint}-value"))?,
            };
            let kv = format!("string \":\" space {value}");
            self.rules.insert(name.clone(), format!("\"{{\" space ({kv} (\",\" space {kv})*)? \"}}\" space"));
            return Ok(name);
        }
        // Properties in the schema's order; the required ones always, the others if the model
        // writes them. `first(i)`: properties i.. when none has been written yet.
        let mut kvs = Vec::new();
        for (key, schema) in props {
            let value = self.visit(schema, &format!("{at}/properties/{key}"), &format!("{hint}-{}", sanitize(key)))?;
            kvs.push((literal(&Value::String(key.clone())), value, required.contains(&key.as_str())));
        }
        let kv = |i: usize| format!("{} \":\" space {}", kvs[i].0, kvs[i].1);
        let after = |from: usize| {
            (from..kvs.len())
                .map(|j| if kvs[j].2 { format!("\",\" space {}", kv(j)) } else { format!("(\",\" space {})?", kv(j)) })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut first_rules: Vec<String> = vec![String::new(); kvs.len() + 1];
        for i in (0..kvs.len()).rev() {
            let written = format!("{} {}", kv(i), after(i + 1));
            first_rules[i] = if kvs[i].2 {
                written
            } else if i + 1 == kvs.len() {
                format!("({written})?")
            } else {
                let next = format!("{name}-from-{}", i + 1);
                format!("({written}) | {next}")
            };
        }
        for i in 1..kvs.len() {
            if !kvs[i - 1].2 {
                let rule = first_rules[i].clone();
                // An empty alternative is written as "()" so the rule is never blank.
                self.rules.insert(format!("{name}-from-{i}"), if rule.is_empty() { "\"\"".into() } else { rule });
            }
        }
        self.rules.insert(name.clone(), format!("\"{{\" space {} \"}}\" space", first_rules[0]));
        Ok(name)
    }

    /// The rule for `$ref` `r`, made once.
    fn reference(&mut self, r: &Value, at: &str) -> Result<String, SchemaError> {
        let r = r.as_str().ok_or_else(|| invalid(at, "$ref must be a string"))?;
        let Some(def) = r.strip_prefix("#/$defs/").or_else(|| r.strip_prefix("#/definitions/")) else {
            return Err(unsupported(&format!("$ref {r:?} (only #/$defs/... and #/definitions/...)"), at));
        };
        let name = format!("{}ref-{}", self.prefix, sanitize(def));
        if self.rules.contains_key(&name) {
            return Ok(name);
        }
        let container = if r.starts_with("#/$defs/") { "$defs" } else { "definitions" };
        let root = self.root;
        let target = root
            .get(container)
            .and_then(|d| d.get(def))
            .ok_or_else(|| invalid(at, &format!("$ref {r:?} points at nothing")))?;
        // Named before it is visited: a schema that refers to itself ends here.
        self.rules.insert(name.clone(), String::new());
        let body = self.visit(target, r, &name)?;
        self.rules.insert(name.clone(), body);
        Ok(name)
    }

    /// Refuses any keyword of `map` other than `allowed` and the annotations.
    fn only(&self, map: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), SchemaError> {
        match map.keys().find(|k| !allowed.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str())) {
            Some(k) => Err(unsupported(k, at)),
            None => Ok(()),
        }
    }

    /// A rule name from `hint`, not yet taken.
    fn name(&self, hint: &str, kind: &str) -> String {
        let base = if hint.is_empty() { kind.to_string() } else { sanitize(hint) };
        let mut name = base.clone();
        let mut n = 1;
        while self.rules.contains_key(&name)
            || [
                "root",
                "space",
                "char",
                "string",
                "number",
                "integer",
                "boolean",
                "null",
                "value",
                "object",
                "array",
                "integral-part",
            ]
            .contains(&name.as_str())
        {
            n += 1;
            name = format!("{base}-{n}");
        }
        name
    }
}

/// `value`'s JSON text as a GBNF literal, followed by optional whitespace.
fn literal(value: &Value) -> String {
    format!("{} space", literal_text(&serde_json::to_string(value).unwrap_or_default()))
}

/// `text` as a GBNF string literal, escaped.
pub fn literal_text(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `alts` as one alternation.
fn group(alts: Vec<String>) -> String {
    if alts.len() == 1 { alts.into_iter().next().unwrap_or_default() } else { format!("({})", alts.join(" | ")) }
}

/// GBNF's repetition of `min` to `max` (unbounded when `None`).
fn repeat(min: u64, max: Option<u64>) -> String {
    match (min, max) {
        (0, None) => "*".into(),
        (1, None) => "+".into(),
        (m, None) => format!("{{{m},}}"),
        (m, Some(n)) if m == n => format!("{{{m}}}"),
        (m, Some(n)) => format!("{{{m},{n}}}"),
    }
}

/// A non-negative integer keyword of `map`.
fn count(map: &Map<String, Value>, key: &str, at: &str) -> Result<Option<u64>, SchemaError> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| invalid(at, &format!("{key} must be a whole number"))),
    }
}

/// Rule-name characters only (`[a-zA-Z0-9-]`).
fn sanitize(s: &str) -> String {
    let out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    if out.is_empty() { "x".into() } else { out }
}

fn unsupported(keyword: &str, at: &str) -> SchemaError {
    SchemaError::Unsupported { keyword: keyword.to_string(), at: at.to_string() }
}

fn invalid(at: &str, why: &str) -> SchemaError {
    SchemaError::Invalid { at: at.to_string(), why: why.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pydantic_schema_becomes_rules_for_each_part() {
        let schema = json!({
            "$defs": {"Colour": {"enum": ["red", "green"], "title": "Colour", "type": "string"}},
            "properties": {
                "name": {"maxLength": 20, "title": "Name", "type": "string"},
                "age": {"title": "Age", "type": "integer"},
                "colour": {"$ref": "#/$defs/Colour"},
                "tags": {"items": {"type": "string"}, "maxItems": 3, "type": "array"},
                "nick": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null}
            },
            "required": ["name", "age", "colour", "tags"],
            "title": "Person",
            "type": "object"
        });
        let g = to_gbnf(&schema).unwrap();
        assert!(g.starts_with("root ::= space root-value\n"), "{g}");
        assert!(g.contains(r#"ref-Colour ::= ("\"red\"" space | "\"green\"" space)"#), "{g}");
        assert!(g.contains(r#"char{0,20}"#), "{g}");
        assert!(g.contains(r#"("," space string){0,2}"#) || g.contains(r#"("," space string){0,2}"#), "{g}");
        // The optional last property may be left out; the required ones never.
        assert!(g.contains(r#"("," space "\"nick\"" space ":" space (string | null))?"#), "{g}");
    }

    #[test]
    fn what_cannot_be_enforced_is_refused_by_name_and_place() {
        for (schema, keyword, at) in [
            (json!({"type": "string", "pattern": "^a"}), "pattern", "#"),
            (
                json!({"type": "object", "properties": {"d": {"type": "string", "format": "date"}}}),
                "format",
                "#/properties/d",
            ),
            (json!({"type": "integer", "minimum": 0}), "minimum", "#"),
            (json!({"type": "array", "prefixItems": []}), "prefixItems", "#"),
            (
                json!({"$ref": "https://example.com/s.json"}),
                "$ref \"https://example.com/s.json\" (only #/$defs/... and #/definitions/...)",
                "#",
            ),
        ] {
            match to_gbnf(&schema) {
                Err(SchemaError::Unsupported { keyword: k, at: a }) => {
                    assert_eq!((k.as_str(), a.as_str()), (keyword, at))
                }
                other => panic!("{schema}: {other:?}"),
            }
        }
        assert!(matches!(to_gbnf(&json!({"$ref": "#/$defs/Nope"})), Err(SchemaError::Invalid { .. })));
        assert!(matches!(to_gbnf(&json!({"type": "strng"})), Err(SchemaError::Invalid { .. })));
    }

    #[test]
    fn a_recursive_schema_ends() {
        let schema = json!({
            "$defs": {"Node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
            "$ref": "#/$defs/Node"
        });
        let g = to_gbnf(&schema).unwrap();
        assert!(g.contains("ref-Node ::= "), "{g}");
    }

    #[test]
    fn literals_are_escaped_for_gbnf() {
        assert_eq!(literal(&json!("a\"b\nc")), r#""\"a\\\"b\\nc\"" space"#);
        assert_eq!(repeat(0, None), "*");
        assert_eq!(repeat(2, Some(2)), "{2}");
        assert_eq!(repeat(1, Some(3)), "{1,3}");
        assert_eq!(sanitize("a b_c"), "a-b-c");
    }
}
