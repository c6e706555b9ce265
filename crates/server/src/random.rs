//! Injected randomness: ticket ids, claim tokens, admin tokens and scheduler jitter.

use std::sync::Mutex;

/// A source of random bytes. Production uses [`SystemRandom`]; tests use [`SeededRandom`]
/// so that jitter and ids are reproducible.
pub trait Random: Send + Sync + std::fmt::Debug {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// A random number in `0..n` (0 when `n` is 0).
    fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut b = [0u8; 8];
        self.fill(&mut b);
        // The modulo bias is at most n / 2^64: irrelevant for jitter.
        u64::from_le_bytes(b) % n
    }
}

/// The operating system's CSPRNG (ring). Secrets (tokens) must come from here.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        use ring::rand::SecureRandom as _;
        if ring::rand::SystemRandom::new().fill(buf).is_err() {
            // ring fails only when the OS has no entropy source at all; fall back to the
            // clock so that ids stay distinct (never used on a working system).
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            SeededRandom::new(seed).fill(buf);
        }
    }
}

/// A deterministic generator (SplitMix64) for tests. Not for secrets.
#[derive(Debug)]
pub struct SeededRandom(Mutex<u64>);

impl SeededRandom {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom(Mutex::new(seed))
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut state = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for chunk in buf.chunks_mut(8) {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A fresh secret token of 128 random bits, lowercase hex (32 characters).
pub fn token(random: &dyn Random) -> String {
    let mut b = [0u8; 16];
    random.fill(&mut b);
    hex::encode(b)
}

/// The stored form of a secret token: SHA-256, lowercase hex. Tokens are stored and compared
/// only in this form.
pub fn hash_token(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// Whether `token` hashes to `expected_hash` (compared in constant time).
pub fn token_matches(token: &str, expected_hash: &str) -> bool {
    let got = hash_token(token);
    let expected = expected_hash.trim().to_ascii_lowercase();
    got.len() == expected.len()
        && got
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_reproducible_and_tokens_are_128_bits() {
        let a = SeededRandom::new(7);
        let b = SeededRandom::new(7);
        assert_eq!(token(&a), token(&b));
        assert_ne!(token(&a), token(&a));
        assert_eq!(token(&SystemRandom).len(), 32);
        assert_ne!(token(&SystemRandom), token(&SystemRandom));
        assert!(a.below(10) < 10);
    }

    #[test]
    fn token_hash_round_trip() {
        let t = "0123456789abcdef0123456789abcdef";
        let h = hash_token(t);
        assert!(token_matches(t, &h));
        assert!(token_matches(t, &h.to_uppercase()));
        assert!(!token_matches("0123456789abcdef0123456789abcdee", &h));
        assert!(!token_matches(t, "00"));
    }
}
