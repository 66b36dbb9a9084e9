//! Higress-compatible `modelMapping`: exact names, prefixes (`gpt-4-*`), regexes (`~...` with
//! `$1` capture groups) and a `*` fallback. An empty target keeps the requested model.
//!
//! Precedence is fixed (Higress iterates a Go map, so its order among prefixes is random):
//! exact, then the longest matching prefix, then regexes in config order, then `*`.

use crate::ConfigError;
use regex_lite::Regex;
use serde::de::{Deserializer, MapAccess, Visitor};
use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, Default)]
pub struct ModelMapping {
    exact: HashMap<String, String>,
    /// Sorted longest prefix first.
    prefixes: Vec<(String, String)>,
    regexes: Vec<(Regex, String)>,
    fallback: Option<String>,
}

impl ModelMapping {
    /// Build from `(pattern, target)` pairs in config order.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, ConfigError> {
        let mut m = ModelMapping::default();
        for (k, v) in pairs {
            if k == "*" {
                m.fallback = Some(v);
            } else if let Some(re) = k.strip_prefix('~') {
                let compiled = Regex::new(re)
                    .map_err(|e| ConfigError::new(format!("modelMapping.{k}"), e.to_string()))?;
                m.regexes.push((compiled, v));
            } else if let Some(prefix) = k.strip_suffix('*') {
                m.prefixes.push((prefix.to_string(), v));
            } else {
                m.exact.insert(k, v);
            }
        }
        m.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Ok(m)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.prefixes.is_empty()
            && self.regexes.is_empty()
            && self.fallback.is_none()
    }

    /// Whether the mapping names `model` literally: an exact key, or a target without
    /// capture-group references. Metric labels keep such models; others become `other`.
    pub fn names(&self, model: &str) -> bool {
        let literal = |t: &str| !t.is_empty() && t == model && !t.contains('$');
        self.exact.contains_key(model)
            || self.exact.values().any(|t| literal(t))
            || self.prefixes.iter().any(|(_, t)| literal(t))
            || self.regexes.iter().any(|(_, t)| literal(t))
            || self.fallback.as_deref().is_some_and(literal)
    }

    /// The exact model names the mapping accepts (its keys without wildcards), sorted.
    pub fn exact_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.exact.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The model to send upstream for `model`.
    pub fn map(&self, model: &str) -> String {
        let keep = |target: &str| {
            if target.is_empty() {
                model.to_string()
            } else {
                target.to_string()
            }
        };
        if let Some(v) = self.exact.get(model) {
            return keep(v);
        }
        if let Some((_, v)) = self
            .prefixes
            .iter()
            .find(|(p, _)| model.starts_with(p.as_str()))
        {
            return keep(v);
        }
        for (re, v) in &self.regexes {
            if re.is_match(model) {
                if v.is_empty() {
                    return model.to_string();
                }
                return re.replace_all(model, v.as_str()).into_owned();
            }
        }
        match &self.fallback {
            Some(v) => keep(v),
            None => model.to_string(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ModelMapping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of model name patterns to model names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    pairs.push((k, v));
                }
                Ok(pairs)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
        }
        let pairs = d.deserialize_any(PairsVisitor)?;
        ModelMapping::from_pairs(pairs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(pairs: &[(&str, &str)]) -> ModelMapping {
        ModelMapping::from_pairs(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn names_only_literal_models() {
        let m = mapping(&[
            ("gpt-4o", "qwen-max"),
            ("gpt-3*", "qwen-turbo"),
            ("~^claude-(.*)$", "qwen-$1"),
            ("keep", ""),
            ("*", "qwen-plus"),
        ]);
        for named in ["gpt-4o", "qwen-max", "qwen-turbo", "keep", "qwen-plus"] {
            assert!(m.names(named), "{named}");
        }
        for other in ["gpt-3.5", "claude-x", "qwen-$1", "", "made-up"] {
            assert!(!m.names(other), "{other}");
        }
    }

    #[test]
    fn precedence_exact_prefix_regex_wildcard() {
        let m = mapping(&[
            ("*", "fallback"),
            ("~^gpt-(\\d+)$", "qwen-max-$1"),
            ("gpt-4-*", "qwen-plus"),
            ("gpt-4-turbo*", "qwen-turbo"),
            ("gpt-4-turbo", "exact-turbo"),
            ("keep-me", ""),
        ]);
        assert_eq!(m.map("gpt-4-turbo"), "exact-turbo");
        assert_eq!(
            m.map("gpt-4-turbo-2024"),
            "qwen-turbo",
            "longest prefix wins"
        );
        assert_eq!(m.map("gpt-4-0613"), "qwen-plus");
        assert_eq!(m.map("gpt-5"), "qwen-max-5");
        assert_eq!(m.map("claude"), "fallback");
        assert_eq!(m.map("keep-me"), "keep-me");
    }

    #[test]
    fn empty_mapping_keeps_model() {
        let m = ModelMapping::default();
        assert!(m.is_empty());
        assert_eq!(m.map("x"), "x");
        assert_eq!(mapping(&[("*", "")]).map("y"), "y");
    }

    #[test]
    fn parses_from_json_in_config_order() {
        let m: ModelMapping =
            serde_json::from_str(r#"{"~^a(.*)":"first$1","~^ab(.*)":"second$1"}"#).unwrap();
        assert_eq!(m.map("abc"), "firstbc");
        let err = serde_json::from_str::<ModelMapping>(r#"{"~(":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("modelMapping.~("), "{err}");
        assert!(serde_json::from_str::<ModelMapping>(r#"{"a":5}"#).is_err());
    }
}
