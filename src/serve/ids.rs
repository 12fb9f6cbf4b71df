//! Random ids, as TorchServe makes them for requests and sequences without one.

/// A random (version 4) UUID, as Java's `UUID.randomUUID()` writes it.
pub(crate) fn uuid4() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    crate::uuid::with_version(b, 4)
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (super::uuid4(), super::uuid4());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]), "{a}");
    }
}
