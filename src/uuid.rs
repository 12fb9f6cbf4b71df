//! UUIDs as text: 16 bytes with their version and RFC 4122 variant set, in 8-4-4-4-12 hex.

/// `bytes` as a UUID of `version` (4: random; 8: derived by scancer's own rule).
pub(crate) fn with_version(mut bytes: [u8; 16], version: u8) -> String {
    bytes[6] = (bytes[6] & 0x0f) | (version << 4);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
