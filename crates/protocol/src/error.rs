//! Errors the gateway itself answers, always in OpenAI's error shape.

use serde_json::json;

/// The class of an error; decides the HTTP status and OpenAI's `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the client's request cannot be understood or is missing a field.
    InvalidRequest,
    /// 401: credentials missing or wrong.
    Authentication,
    /// 403: not allowed.
    PermissionDenied,
    /// 404: unknown API, model or provider.
    NotFound,
    /// 413: the body exceeds the configured limit.
    PayloadTooLarge,
    /// 429: rate limited.
    RateLimited,
    /// 500: the gateway failed (e.g. a context file could not be fetched).
    Internal,
    /// 502: the vendor answered something unusable.
    BadGateway,
    /// 503: no provider can take the request.
    Unavailable,
    /// 504: the vendor did not answer in time.
    Timeout,
}

impl ErrorKind {
    /// HTTP status for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RateLimited => 429,
            ErrorKind::Internal => 500,
            ErrorKind::BadGateway => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
        }
    }

    /// OpenAI's `error.type` for this kind.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::PayloadTooLarge => {
                "invalid_request_error"
            }
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Internal
            | ErrorKind::BadGateway
            | ErrorKind::Unavailable
            | ErrorKind::Timeout => "api_error",
        }
    }

    /// The kind that best describes an HTTP status a vendor answered with.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            400 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::PayloadTooLarge,
            429 => ErrorKind::RateLimited,
            502 => ErrorKind::BadGateway,
            503 | 529 => ErrorKind::Unavailable,
            504 => ErrorKind::Timeout,
            _ => ErrorKind::Internal,
        }
    }
}

/// An error answered by the gateway: status plus OpenAI-style JSON body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    pub kind: ErrorKind,
    /// Human-readable message; never contains a secret.
    pub message: String,
    /// Machine-readable code (OpenAI's `error.code`), e.g. `invalid_json`.
    pub code: &'static str,
    /// The request field at fault, if any (OpenAI's `error.param`).
    pub param: Option<&'static str>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
            code,
            param: None,
        }
    }

    /// Same error, naming the request field at fault.
    pub fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, code, message)
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// `{"error":{"message","type","param","code"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind.type_name(),
                "param": self.param,
                "code": self.code,
            }
        })
    }

    pub fn body(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }
}

/// OpenAI-shaped error body for a vendor error, keeping the vendor's message and type.
pub fn vendor_error_body(status: u16, vendor_type: Option<&str>, message: &str) -> Vec<u8> {
    let kind = ErrorKind::from_status(status);
    json!({
        "error": {
            "message": message,
            "type": vendor_type.unwrap_or(kind.type_name()),
            "param": null,
            "code": status.to_string(),
        }
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_openai_shape() {
        let e = GatewayError::invalid("invalid_json", "body is not JSON").with_param("model");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(e.status(), 400);
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "invalid_json");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["message"], "body is not JSON");
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(ErrorKind::from_status(529), ErrorKind::Unavailable);
        assert_eq!(ErrorKind::from_status(418), ErrorKind::Internal);
        assert_eq!(ErrorKind::from_status(429).type_name(), "rate_limit_error");
    }
}
