//! Community slugs: what Metagov allows (`[-A-Za-z0-9_]`, at most 36 characters), and nothing
//! else, so a slug is always safe in a path, a storage key and a log line.

use crate::ActorError;

pub const SLUG_MAX: usize = 36;

pub fn validate_slug(slug: &str) -> Result<(), ActorError> {
    if slug.is_empty() || slug.len() > SLUG_MAX {
        return Err(ActorError::InvalidSlug(format!(
            "a slug has 1 to {SLUG_MAX} characters; this one has {}",
            slug.chars().count()
        )));
    }
    if let Some(c) = slug
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(ActorError::InvalidSlug(format!(
            "a slug may contain only letters, digits, '-' and '_'; found {c:?}"
        )));
    }
    Ok(())
}

/// A random (version 4) UUID in its hyphenated form, as Metagov gives slug-less communities.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_metagov_rules() {
        assert!(validate_slug("bench-1_A").is_ok());
        assert!(validate_slug(&"a".repeat(36)).is_ok());
        for bad in [
            "",
            "../x",
            "a b",
            "ünï",
            "a\0b",
            &"a".repeat(37),
            "a/b",
            "a.b",
        ] {
            assert!(validate_slug(bad).is_err(), "{bad:?} accepted");
        }
    }
}
