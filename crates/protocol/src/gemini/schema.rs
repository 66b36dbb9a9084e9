//! JSON Schema (what OpenAI clients send for tools and `response_format`) to Gemini's `Schema`,
//! a subset of OpenAPI 3.0.
//!
//! Gemini's request parser rejects the whole request on the first field it does not know
//! (`Unknown name "additionalProperties" ... Cannot find field`), and also rejects a list as
//! `type`, `const`, `exclusiveMinimum`, `$ref`/`$defs`, `oneOf`/`allOf`, `propertyNames`,
//! `examples`, `$schema`, `strict`, non-string `enum` values and an OBJECT whose `properties`
//! is empty. So the conversion keeps an allowlist of fields and rewrites what it can:
//!
//! - `type: ["string", "null"]` -> `type: STRING, nullable: true`; several non-null types ->
//!   `anyOf`; type names are upper-cased (`OBJECT`, `STRING`, ...).
//! - `$ref` to a local definition (`#/$defs/X`, `#/definitions/X`, any `#/...` pointer) is
//!   inlined; a recursive reference is cut to `{type: OBJECT}` at its first repetition.
//! - `allOf` members are merged (properties and `required` united); `oneOf` becomes `anyOf`;
//!   a `null` alternative becomes `nullable`; a single remaining alternative is flattened.
//! - `const: "x"` -> `enum: ["x"]`; an enum of non-strings is dropped and its values are listed
//!   in the description; `exclusiveMinimum`/`exclusiveMaximum` become inclusive bounds
//!   (exact for integers).
//! - `format` is kept only where Gemini gives it meaning (`enum`, `date-time`, `float`,
//!   `double`, `int32`, `int64`); `required` is limited to the declared properties.
//!
//! Dropped: everything else (`additionalProperties`, `default`, `examples`, `title`-less
//! extras, `patternProperties`, `not`, `if/then/else`, ...). Work is bounded (node budget and
//! nesting limit), so a hostile schema cannot make the gateway loop or exhaust memory.

use serde_json::{json, Map, Value};

/// Nodes visited at most while converting one schema (after `$ref` expansion).
const MAX_NODES: usize = 20_000;
/// Deepest nesting accepted (the input JSON itself is limited to 128 by serde_json).
const MAX_DEPTH: usize = 64;

/// The schema could not be converted within the work limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SchemaTooComplex;

/// Convert any JSON Schema to Gemini's `Schema`.
pub(crate) fn to_gemini_schema(schema: &Value) -> Result<Value, SchemaTooComplex> {
    let mut c = Converter {
        root: schema,
        budget: MAX_NODES,
        refs: Vec::new(),
    };
    c.convert(schema, 0)
}

/// Convert a function's `parameters`. Gemini wants an OBJECT with at least one property, or
/// no `parameters` at all; `None` means "declare the function without parameters".
pub(crate) fn function_parameters(schema: &Value) -> Result<Option<Value>, SchemaTooComplex> {
    let mut v = to_gemini_schema(schema)?;
    let Some(obj) = v.as_object_mut() else {
        return Ok(None);
    };
    let has_properties = obj
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    if !has_properties {
        return Ok(None);
    }
    obj.insert("type".into(), json!("OBJECT"));
    obj.remove("nullable");
    obj.remove("anyOf");
    Ok(Some(v))
}

struct Converter<'a> {
    root: &'a Value,
    budget: usize,
    /// `$ref`s being expanded on the current path, to cut recursion.
    refs: Vec<String>,
}

impl Converter<'_> {
    fn convert(&mut self, v: &Value, depth: usize) -> Result<Value, SchemaTooComplex> {
        self.budget = self.budget.checked_sub(1).ok_or(SchemaTooComplex)?;
        if depth > MAX_DEPTH {
            return Err(SchemaTooComplex);
        }
        let Some(obj) = v.as_object() else {
            // `true`, `false` or garbage: no constraint Gemini can express.
            return Ok(json!({}));
        };

        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            if self.refs.iter().any(|x| x == r) {
                let mut cut = Map::new();
                cut.insert("type".into(), json!("OBJECT"));
                copy_description(obj, &mut cut);
                return Ok(Value::Object(cut));
            }
            if let Some(target) = self.resolve(r) {
                // Sibling keywords (e.g. a description next to the `$ref`) take precedence.
                let mut merged = target.as_object().cloned().unwrap_or_default();
                for (k, val) in obj {
                    if k != "$ref" {
                        merged.insert(k.clone(), val.clone());
                    }
                }
                self.refs.push(r.to_owned());
                let out = self.convert(&Value::Object(merged), depth + 1);
                self.refs.pop();
                return out;
            }
            // An unresolvable (e.g. remote) reference: keep the sibling keywords only.
        }

        if let Some(members) = obj.get("allOf").and_then(Value::as_array) {
            let mut merged = obj.clone();
            merged.remove("allOf");
            merged.remove("$ref");
            for m in members {
                self.budget = self.budget.checked_sub(1).ok_or(SchemaTooComplex)?;
                let member = self.shallow_deref(m);
                if let Some(mo) = member.as_object() {
                    merge_schema(&mut merged, mo);
                }
            }
            return self.convert(&Value::Object(merged), depth + 1);
        }

        self.convert_object(obj, depth)
    }

    fn convert_object(
        &mut self,
        obj: &Map<String, Value>,
        depth: usize,
    ) -> Result<Value, SchemaTooComplex> {
        let mut out = Map::new();
        let mut nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
        let mut extra_description: Option<String> = None;

        // Alternatives first: a single one is flattened and the outer keywords override it.
        let alternatives = obj
            .get("anyOf")
            .or_else(|| obj.get("oneOf"))
            .and_then(Value::as_array);
        if let Some(alts) = alternatives {
            let mut converted = Vec::new();
            for a in alts {
                if is_null_schema(a) {
                    nullable = true;
                    continue;
                }
                converted.push(self.convert(a, depth + 1)?);
            }
            if converted.len() == 1 {
                if let Some(Value::Object(single)) = converted.pop() {
                    if single.get("nullable") == Some(&Value::Bool(true)) {
                        nullable = true;
                    }
                    out.extend(single.into_iter().filter(|(k, _)| k != "nullable"));
                }
            } else if !converted.is_empty() {
                out.insert("anyOf".into(), Value::Array(converted));
            }
        }

        // `type`: a name or a list of names.
        let mut types: Vec<&'static str> = Vec::new();
        let names: Vec<&str> = match obj.get("type") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for n in names {
            if n == "null" {
                nullable = true;
            } else if let Some(t) = gemini_type(n) {
                if !types.contains(&t) {
                    types.push(t);
                }
            }
        }
        match types.as_slice() {
            [] => {}
            [t] => {
                out.insert("type".into(), json!(t));
            }
            many => {
                if !out.contains_key("anyOf") {
                    let alts = many.iter().map(|t| json!({ "type": t })).collect();
                    out.insert("anyOf".into(), Value::Array(alts));
                }
                out.remove("type");
            }
        }

        // `enum` / `const`: Gemini takes strings only.
        let enum_values: Option<Vec<Value>> = match (obj.get("enum"), obj.get("const")) {
            (Some(Value::Array(vals)), _) => Some(vals.clone()),
            (None, Some(c)) => Some(vec![c.clone()]),
            _ => None,
        };
        if let Some(vals) = enum_values {
            if vals.iter().any(Value::is_null) {
                nullable = true;
            }
            let non_null: Vec<&Value> = vals.iter().filter(|v| !v.is_null()).collect();
            let strings: Vec<&str> = non_null.iter().filter_map(|v| v.as_str()).collect();
            let declared = out.get("type").and_then(Value::as_str);
            let string_typed = matches!(declared, None | Some("STRING"));
            if !strings.is_empty() && strings.len() == non_null.len() && string_typed {
                out.insert("type".into(), json!("STRING"));
                out.insert("enum".into(), json!(strings));
            } else if !non_null.is_empty() {
                let listed: Vec<String> = non_null.iter().map(|v| v.to_string()).collect();
                extra_description = Some(format!("Allowed values: {}.", listed.join(", ")));
            }
        }

        let declared = out.get("type").and_then(Value::as_str).map(str::to_owned);
        if let Some(f) = obj.get("format").and_then(Value::as_str) {
            let keep = match declared.as_deref() {
                Some("STRING") => matches!(f, "enum" | "date-time"),
                Some("NUMBER") => matches!(f, "float" | "double"),
                Some("INTEGER") => matches!(f, "int32" | "int64"),
                _ => false,
            };
            if keep {
                out.insert("format".into(), json!(f));
            }
        }

        for key in ["title", "description", "pattern"] {
            if let Some(s) = obj.get(key).and_then(Value::as_str) {
                out.insert(key.into(), json!(s));
            }
        }
        if let Some(extra) = extra_description {
            let text = match out.get("description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{d} {extra}"),
                _ => extra,
            };
            out.insert("description".into(), json!(text));
        }

        for key in [
            "minItems",
            "maxItems",
            "minLength",
            "maxLength",
            "minProperties",
            "maxProperties",
        ] {
            if let Some(n) = obj.get(key).and_then(Value::as_u64) {
                out.insert(key.into(), json!(n));
            }
        }
        let integer = declared.as_deref() == Some("INTEGER");
        for (key, exclusive, step) in [
            ("minimum", "exclusiveMinimum", 1i64),
            ("maximum", "exclusiveMaximum", -1i64),
        ] {
            if let Some(n) = obj.get(key).filter(|v| v.is_number()) {
                out.insert(key.into(), n.clone());
            } else if let Some(n) = obj.get(exclusive).filter(|v| v.is_number()) {
                // Inclusive bound: exact for integers, slightly looser for numbers.
                let bound = match n.as_i64() {
                    Some(i) if integer => json!(i.saturating_add(step)),
                    _ => n.clone(),
                };
                out.insert(key.into(), bound);
            }
        }

        if let Some(items) = obj.get("items").or_else(|| obj.get("prefixItems")) {
            let converted = match items {
                Value::Array(tuple) => {
                    let mut alts = Vec::new();
                    for t in tuple {
                        alts.push(self.convert(t, depth + 1)?);
                    }
                    match alts.len() {
                        0 => None,
                        1 => alts.pop(),
                        _ => Some(json!({ "anyOf": alts })),
                    }
                }
                Value::Object(_) => Some(self.convert(items, depth + 1)?),
                _ => None,
            };
            if let Some(c) = converted {
                out.insert("items".into(), c);
            }
        }

        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            let mut converted = Map::new();
            for (name, p) in props {
                converted.insert(name.clone(), self.convert(p, depth + 1)?);
            }
            if !converted.is_empty() {
                if let Some(req) = obj.get("required").and_then(Value::as_array) {
                    let mut required: Vec<&str> = Vec::new();
                    for r in req.iter().filter_map(Value::as_str) {
                        if converted.contains_key(r) && !required.contains(&r) {
                            required.push(r);
                        }
                    }
                    if !required.is_empty() {
                        out.insert("required".into(), json!(required));
                    }
                }
                if let Some(order) = obj.get("propertyOrdering").and_then(Value::as_array) {
                    let names: Vec<&str> = order.iter().filter_map(Value::as_str).collect();
                    if names.len() == order.len()
                        && names.iter().all(|n| converted.contains_key(*n))
                    {
                        out.insert("propertyOrdering".into(), json!(names));
                    }
                }
                out.insert("properties".into(), Value::Object(converted));
            }
        }

        if nullable {
            out.insert("nullable".into(), json!(true));
        }
        Ok(Value::Object(out))
    }

    /// The target of a local reference (`#`, `#/$defs/X`, `#/definitions/X`, ...).
    fn resolve(&self, r: &str) -> Option<&Value> {
        let pointer = r.strip_prefix('#')?;
        self.root.pointer(pointer).filter(|v| v.is_object())
    }

    /// `m` itself, or the target of its `$ref` with `m`'s sibling keywords applied.
    fn shallow_deref(&self, m: &Value) -> Value {
        let Some(obj) = m.as_object() else {
            return m.clone();
        };
        let Some(target) = obj
            .get("$ref")
            .and_then(Value::as_str)
            .filter(|r| !self.refs.iter().any(|x| x == r))
            .and_then(|r| self.resolve(r))
        else {
            return m.clone();
        };
        let mut merged = target.as_object().cloned().unwrap_or_default();
        for (k, v) in obj {
            if k != "$ref" {
                merged.insert(k.clone(), v.clone());
            }
        }
        Value::Object(merged)
    }
}

/// Merge an `allOf` member into `into`: properties and `required` are united, other keywords
/// are taken where `into` has none.
fn merge_schema(into: &mut Map<String, Value>, member: &Map<String, Value>) {
    for (k, v) in member {
        match (k.as_str(), into.get_mut(k)) {
            ("properties", Some(Value::Object(existing))) => {
                if let Some(props) = v.as_object() {
                    for (name, p) in props {
                        existing.entry(name.clone()).or_insert_with(|| p.clone());
                    }
                }
            }
            ("required", Some(Value::Array(existing))) => {
                if let Some(req) = v.as_array() {
                    for r in req {
                        if !existing.contains(r) {
                            existing.push(r.clone());
                        }
                    }
                }
            }
            (_, Some(_)) => {}
            (_, None) => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

fn copy_description(from: &Map<String, Value>, to: &mut Map<String, Value>) {
    if let Some(d) = from.get("description").and_then(Value::as_str) {
        to.insert("description".into(), json!(d));
    }
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

fn gemini_type(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "string" => "STRING",
        "number" => "NUMBER",
        "integer" => "INTEGER",
        "boolean" => "BOOLEAN",
        "array" => "ARRAY",
        "object" => "OBJECT",
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn conv(v: Value) -> Value {
        to_gemini_schema(&v).unwrap()
    }

    #[test]
    fn strips_unknown_keywords_and_uppercases_types() {
        let got = conv(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "strict": true,
            "properties": {
                "city": {"type": "string", "description": "City", "default": "Paris",
                          "examples": ["Rome"], "format": "uri", "minLength": 1},
                "n": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10,
                      "multipleOf": 2, "format": "int64"},
                "x": {"type": "number", "exclusiveMinimum": 0.5},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true,
                         "maxItems": 3}
            },
            "required": ["city", "missing"]
        }));
        assert_eq!(
            got,
            json!({
                "type": "OBJECT",
                "properties": {
                    "city": {"type": "STRING", "description": "City", "minLength": 1},
                    "n": {"type": "INTEGER", "minimum": 1, "maximum": 9, "format": "int64"},
                    "x": {"type": "NUMBER", "minimum": 0.5},
                    "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn nullable_unions_and_const() {
        assert_eq!(
            conv(json!({"type": ["string", "null"]})),
            json!({"type": "STRING", "nullable": true})
        );
        assert_eq!(
            conv(json!({"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "d"})),
            json!({"type": "INTEGER", "nullable": true, "description": "d"})
        );
        assert_eq!(
            conv(json!({"type": ["string", "integer"]})),
            json!({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]})
        );
        assert_eq!(
            conv(json!({"oneOf": [{"const": "a"}, {"const": "b"}]})),
            json!({"anyOf": [{"type": "STRING", "enum": ["a"]}, {"type": "STRING", "enum": ["b"]}]})
        );
        assert_eq!(
            conv(json!({"type": "integer", "enum": [1, 2], "description": "Level."})),
            json!({"type": "INTEGER", "description": "Level. Allowed values: 1, 2."})
        );
        assert_eq!(
            conv(json!({"enum": ["a", null]})),
            json!({"type": "STRING", "enum": ["a"], "nullable": true})
        );
    }

    #[test]
    fn inlines_refs_and_cuts_recursion() {
        let got = conv(json!({
            "type": "object",
            "properties": {
                "home": {"$ref": "#/$defs/Address", "description": "Home"},
                "tree": {"$ref": "#/definitions/Node"}
            },
            "$defs": {"Address": {"type": "object", "properties": {"zip": {"type": "string"}}}},
            "definitions": {"Node": {"type": "object", "properties": {
                "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}}
            }}}
        }));
        assert_eq!(
            got,
            json!({
                "type": "OBJECT",
                "properties": {
                    "home": {"type": "OBJECT", "description": "Home",
                             "properties": {"zip": {"type": "STRING"}}},
                    "tree": {"type": "OBJECT", "properties": {
                        "children": {"type": "ARRAY", "items": {"type": "OBJECT"}}
                    }}
                }
            })
        );
    }

    #[test]
    fn merges_all_of() {
        let got = conv(json!({
            "allOf": [
                {"$ref": "#/$defs/A"},
                {"type": "object", "properties": {"b": {"type": "boolean"}}, "required": ["b"]}
            ],
            "$defs": {"A": {"type": "object", "properties": {"a": {"type": "string"}},
                            "required": ["a"]}}
        }));
        assert_eq!(
            got,
            json!({"type": "OBJECT", "properties": {"a": {"type": "STRING"}, "b": {"type": "BOOLEAN"}},
                   "required": ["a", "b"]})
        );
    }

    #[test]
    fn exponential_refs_hit_the_budget_not_the_machine() {
        // Each level references the next one twice: 2^40 nodes if fully expanded.
        let mut defs = Map::new();
        for i in 0..40 {
            defs.insert(
                format!("D{i}"),
                json!({"type": "object", "properties": {
                    "l": {"$ref": format!("#/$defs/D{}", i + 1)},
                    "r": {"$ref": format!("#/$defs/D{}", i + 1)}
                }}),
            );
        }
        defs.insert("D40".into(), json!({"type": "string"}));
        let schema = json!({"$ref": "#/$defs/D0", "$defs": defs});
        assert_eq!(to_gemini_schema(&schema), Err(SchemaTooComplex));
    }

    #[test]
    fn parameters_without_properties_are_omitted() {
        assert_eq!(
            function_parameters(&json!({"type": "object"})).unwrap(),
            None
        );
        assert_eq!(
            function_parameters(&json!({"type": "object", "properties": {}})).unwrap(),
            None
        );
        assert_eq!(function_parameters(&json!(null)).unwrap(), None);
        assert_eq!(
            function_parameters(&json!({"properties": {"a": {"type": "string"}}})).unwrap(),
            Some(json!({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}))
        );
    }

    #[test]
    fn nested_empty_object_keeps_type_only() {
        assert_eq!(
            conv(
                json!({"type": "object", "properties": {"meta": {"type": "object",
                "properties": {}, "additionalProperties": {"type": "string"}}}})
            ),
            json!({"type": "OBJECT", "properties": {"meta": {"type": "OBJECT"}}})
        );
    }
}
