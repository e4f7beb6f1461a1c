//! The 8-character face id.

use std::fmt;

use rand::RngExt;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// 8-character face id, characters `[0-9A-Za-z]`, as FRS's `face_id` (`"PexOpqRj"`).
///
/// Ordered as its string (byte order: digits < upper case < lower case); search breaks cosine ties
/// by this order. Serialised as the string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaceId([u8; 8]);

impl FaceId {
    /// A new id drawn uniformly from the 62^8 possible ids by the thread-local CSPRNG, so ids cannot
    /// be guessed from one another. Collisions (one in 2.2·10^14 per pair) are the caller's to check.
    pub fn random() -> FaceId {
        let mut rng = rand::rng();
        let mut bytes = [0u8; 8];
        for byte in &mut bytes {
            *byte = ALPHABET[rng.random_range(0..ALPHABET.len())];
        }
        FaceId(bytes)
    }

    /// The id spelled by `text`; `None` unless it is exactly 8 characters of `[0-9A-Za-z]`.
    pub fn parse(text: &str) -> Option<FaceId> {
        let bytes: [u8; 8] = text.as_bytes().try_into().ok()?;
        bytes.iter().all(u8::is_ascii_alphanumeric).then_some(FaceId(bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // NOTE: every constructor checks the bytes are ASCII alphanumerics, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for FaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for FaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaceId({})", self.as_str())
    }
}

impl serde::Serialize for FaceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for FaceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = FaceId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an 8-character face id of [0-9A-Za-z]")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<FaceId, E> {
                FaceId::parse(text).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_exactly_eight_alphanumerics() {
        let id = FaceId::parse("PexOpqRj").expect("valid");
        assert_eq!(id.as_str(), "PexOpqRj");
        assert_eq!(id.to_string(), "PexOpqRj");
        for bad in ["", "PexOpqR", "PexOpqRjX", "Pex-pqRj", "Pex pqRj", "PexOpqRé", "张三张三"] {
            assert_eq!(FaceId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn random_ids_are_valid_and_distinct() {
        let ids: std::collections::HashSet<FaceId> = (0..1000).map(|_| FaceId::random()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(FaceId::parse(id.as_str()), Some(*id));
        }
        // Every character of the alphabet turns up (8000 draws from 62 symbols).
        let used: std::collections::HashSet<u8> = ids.iter().flat_map(|id| id.as_str().bytes()).collect();
        assert_eq!(used.len(), 62);
    }

    #[test]
    fn order_is_string_order() {
        let mut ids: Vec<FaceId> = ["zzzzzzzz", "00000000", "AAAAAAAA", "aaaaaaaa", "Zzzzzzzz"]
            .into_iter()
            .filter_map(FaceId::parse)
            .collect();
        ids.sort();
        let mut texts: Vec<&str> = ids.iter().map(FaceId::as_str).collect();
        let sorted = texts.clone();
        texts.sort_unstable();
        assert_eq!(texts, sorted);
    }

    #[test]
    fn serde_as_string() {
        let id = FaceId::parse("PexOpqRj").expect("valid");
        assert_eq!(serde_json::to_string(&id).expect("serialise"), "\"PexOpqRj\"");
        assert_eq!(serde_json::from_str::<FaceId>("\"PexOpqRj\"").expect("deserialise"), id);
        assert!(serde_json::from_str::<FaceId>("\"Pex\"").is_err());
        assert!(serde_json::from_str::<FaceId>("12345678").is_err());
    }
}
