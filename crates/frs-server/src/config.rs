//! The `[server]` section of the frs configuration.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// HTTP server settings. Every field has a default, so an empty section is valid; unknown keys are
/// rejected so a typo does not silently fall back to a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes; larger bodies are answered `FRS.0017`.
    /// The default fits a face-compare JSON body carrying two 8 MiB base64 images plus slack.
    pub body_limit_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests before closing connections.
    pub shutdown_timeout_secs: u64,
}

/// Default [`ServerConfig::body_limit_bytes`]: two maximal images plus 1 MiB for JSON or
/// multipart framing and the other parameters.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 2 * frs_service::MAX_IMAGE_BYTES + 1024 * 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            shutdown_timeout_secs: 30,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_is_the_default_and_unknown_keys_are_rejected() {
        let config: ServerConfig = serde_json::from_str("{}").expect("empty section");
        assert_eq!(config, ServerConfig::default());
        let config: ServerConfig =
            serde_json::from_str(r#"{"listen": "0.0.0.0:9000", "body_limit_bytes": 1000}"#).expect("partial section");
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.body_limit_bytes, 1000);
        assert_eq!(config.shutdown_timeout_secs, 30);
        assert!(serde_json::from_str::<ServerConfig>(r#"{"listen_addr": "0.0.0.0:9000"}"#).is_err());
    }
}
