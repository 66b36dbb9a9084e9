//! Configuration errors that name the field at fault.

/// A refused configuration: `field` is a path like `providers[1].apiTokens`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config at `{field}`: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefix the field path, e.g. `_rules_[2]` + `provider.type`.
    pub fn within(mut self, outer: &str) -> Self {
        self.field = if self.field.is_empty() || self.field == "." {
            outer.to_string()
        } else if self.field.starts_with('[') {
            format!("{outer}{}", self.field)
        } else {
            format!("{outer}.{}", self.field)
        };
        self
    }
}

/// Deserialize `T` from a JSON value, reporting the path of a field with a wrong type.
pub fn from_value<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        ConfigError::new(if path == "." { String::new() } else { path }, inner)
    })
}

/// Parse plugin configuration bytes: JSON (what Higress and the CLI pass).
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ConfigError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(bytes).map_err(|e| ConfigError::new("", format!("not JSON: {e}")))
}
