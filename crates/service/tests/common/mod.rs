//! What the service's test files share: the test server's settings.

use ppdnn_paillier::KeyPolicy;
use ppdnn_protocol::Mode;
use ppdnn_service::ServerConfig;

/// The test key size.
pub const BITS: u32 = 1024;

/// Small messages and chunks (so that rounds are chunked), the test key
/// size, both modes.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        max_message_bytes: 1 << 20,
        max_chunk_bytes: 64 << 10,
        key_bits: vec![BITS],
        key_policy: KeyPolicy::INSECURE_TESTING,
        modes: vec![Mode::Fast, Mode::Private],
        ..ServerConfig::default()
    }
}
