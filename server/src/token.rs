//! Tokens: 32 random bytes, shown once (`moor_` and base64url), stored
//! only as their SHA-256. A token is as strong as a random key, so a fast
//! hash is enough: there is nothing to guess that a slow hash would slow.

use base64::Engine;

/// The prefix that marks a moor token (so secret scanners can find one).
pub const PREFIX: &str = "moor_";

/// A new random token.
pub fn new() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    moor::random::fill(&mut bytes)?;
    let token = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    bytes.fill(0);
    Ok(token)
}

/// What the database keeps of a token.
pub fn hash(token: &str) -> String {
    moor_proto::sha256_hex(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_kept_only_hashed() {
        let (a, b) = (new().unwrap(), new().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 43, "{a}");
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a[PREFIX.len()..]));
        assert_eq!(hash(&a), hash(&a));
    }
}
