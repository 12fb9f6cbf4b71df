//! A least-recently-used cache bounded by the bytes its values hold, not by their count: tiles
//! differ tenfold in size, and an opened single-level image holds its whole pyramid.

use lru::LruCache;
use std::hash::Hash;

pub(crate) struct Weighed<K: Hash + Eq, V: Clone> {
    entries: LruCache<K, (V, usize)>,
    held: usize,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> Weighed<K, V> {
    pub(crate) fn new(capacity: usize) -> Weighed<K, V> {
        Weighed {
            entries: LruCache::unbounded(),
            held: 0,
            capacity,
        }
    }

    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        self.entries.get(key).map(|(v, _)| v.clone())
    }

    pub(crate) fn remove(&mut self, key: &K) {
        if let Some((_, weight)) = self.entries.pop(key) {
            self.held -= weight;
        }
    }

    /// Keeps `value`, dropping the least recently used until the rest fits; a value larger than
    /// the whole capacity is not kept.
    pub(crate) fn put(&mut self, key: K, value: V, weight: usize) {
        if weight > self.capacity {
            return;
        }
        if let Some((_, old)) = self.entries.put(key, (value, weight)) {
            self.held -= old;
        }
        self.held += weight;
        while self.held > self.capacity {
            match self.entries.pop_lru() {
                Some((_, (_, w))) => self.held -= w,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_by_weight() {
        let mut cache = Weighed::new(10);
        cache.put("a", 1, 4);
        cache.put("b", 2, 4);
        assert_eq!(cache.get(&"a"), Some(1));
        // 4 + 4 + 4 > 10: b, the least recently used, goes.
        cache.put("c", 3, 4);
        assert_eq!(cache.get(&"b"), None);
        assert_eq!((cache.get(&"a"), cache.get(&"c")), (Some(1), Some(3)));
        cache.put("huge", 9, 11);
        assert_eq!(cache.get(&"huge"), None);
        cache.put("a", 5, 2);
        assert_eq!(cache.held, 6);
    }
}
