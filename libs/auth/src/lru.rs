//! A bounded map that evicts the least recently used entry when full, so a
//! flood of new tokens pushes out only the coldest ones instead of every
//! client's cached verification at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub(crate) struct Lru<V> {
    /// Key -> value and the tick of its last use.
    entries: HashMap<Arc<str>, (V, u64)>,
    /// Tick of last use -> key: the first is the least recently used.
    by_use: BTreeMap<u64, Arc<str>>,
    tick: u64,
    capacity: usize,
}

impl<V> Lru<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Lru {
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// The value of `key`, now the most recently used.
    pub(crate) fn get(&mut self, key: &str) -> Option<&V> {
        self.tick += 1;
        let (_, used) = self.entries.get_mut(key)?;
        if let Some(name) = self.by_use.remove(used) {
            self.by_use.insert(self.tick, name);
        }
        *used = self.tick;
        self.entries.get(key).map(|(v, _)| v)
    }

    /// Adds or replaces `key`, evicting the least recently used entry when full.
    pub(crate) fn insert(&mut self, key: &str, value: V) {
        self.remove(key);
        if self.entries.len() >= self.capacity
            && let Some((_, coldest)) = self.by_use.pop_first()
        {
            self.entries.remove(&coldest);
        }
        self.tick += 1;
        let key: Arc<str> = Arc::from(key);
        self.by_use.insert(self.tick, key.clone());
        self.entries.insert(key, (value, self.tick));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        if let Some((_, used)) = self.entries.remove(key) {
            self.by_use.remove(&used);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.by_use.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_entry() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get("a"), Some(&1));
        lru.insert("c", 3);
        assert_eq!(lru.get("b"), None, "b was used least recently");
        assert_eq!(lru.get("a"), Some(&1));
        assert_eq!(lru.get("c"), Some(&3));
        lru.insert("c", 4);
        assert_eq!(lru.len(), 2, "replacing does not grow it");
        lru.remove("a");
        lru.insert("d", 5);
        assert_eq!(lru.get("c"), Some(&4));
        assert_eq!(lru.get("d"), Some(&5));
        lru.clear();
        assert_eq!(lru.len(), 0);
    }
}
