//! Repeated ids in a stream too large to keep its ids: a first pass keeps one 64-bit hash per
//! record, and a second pass confirms the hashes that repeat against the real ids, so a hash
//! collision is never reported as a duplicate.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The hash the first pass keeps for `id`.
pub(crate) fn id_hash(id: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// The second pass: sees the records again and names the first place of a repeated id.
pub(crate) struct RepeatedIds {
    /// Hashes seen more than once, sorted, each once.
    repeated: Vec<u64>,
    /// Ids under a repeated hash, with the place they were first seen.
    seen: HashMap<String, usize>,
}

impl RepeatedIds {
    /// From the first pass's hashes; `None` when none repeats (then no id does).
    pub(crate) fn from_hashes(mut hashes: Vec<u64>) -> Option<Self> {
        hashes.sort_unstable();
        let mut repeated: Vec<u64> = hashes
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        drop(hashes);
        repeated.dedup();
        (!repeated.is_empty()).then(|| RepeatedIds {
            repeated,
            seen: HashMap::new(),
        })
    }

    /// The place where `id` was seen before, if it was (places are the caller's: a line or a
    /// row).
    pub(crate) fn earlier(&mut self, id: &str, place: usize) -> Option<usize> {
        if self.repeated.binary_search(&id_hash(id)).is_err() {
            return None;
        }
        self.seen.insert(id.to_string(), place)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_found_at_their_second_place_only() {
        let ids = ["a", "b", "c", "b", "d", "a"];
        assert!(RepeatedIds::from_hashes(ids[..3].iter().map(|i| id_hash(i)).collect()).is_none());
        let mut r = RepeatedIds::from_hashes(ids.iter().map(|i| id_hash(i)).collect()).unwrap();
        let found: Vec<_> = ids
            .iter()
            .enumerate()
            .filter_map(|(p, id)| r.earlier(id, p).map(|first| (first, p)))
            .collect();
        assert_eq!(found, vec![(1, 3), (0, 5)]);
    }
}
