//! State shared by every worker, typed.
//!
//! The filters keep token pools, the local load board, cached metrics, leases and Vertex
//! tokens as values of their own types ([`SharedValue`]) and reach them through
//! [`Host::shared_view`](crate::host::Host::shared_view) and
//! [`Host::shared_update`](crate::host::Host::shared_update). Two stores serve those calls:
//!
//! - the host's byte store with compare-and-swap (Proxy-Wasm shared data, the mock host's
//!   map): the trait's default methods decode the bytes, apply the change and write the new
//!   encoding back with the CAS token read, retrying when another worker wrote in between;
//! - [`SharedMemory`], for hosts that share an address space with every worker (Envoy's
//!   dynamic modules): each key's value lives as itself behind a lock of its own, so a read is
//!   a lock and a look, a change is made in place, and nothing is encoded, decoded or copied.

use crate::host::SharedError;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use switchyard_policy::failover::{Lease, PoolState};
use switchyard_policy::local::LocalBoard;
use switchyard_policy::metrics::MetricEntry;
use switchyard_protocol::vertex::TokenCache;

/// A value kept in state shared by every worker. `encode`/`decode` are its form in a byte
/// store (Proxy-Wasm shared data); a typed store ([`SharedMemory`]) keeps the value itself.
pub trait SharedValue: Clone + Send + Sync + 'static {
    /// The bytes a byte store keeps.
    fn encode(&self) -> Vec<u8>;
    /// The value in `bytes`; `None` when they hold none (garbage, another format).
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// One key's value, whatever its type; `None` until first written.
type Slot = Mutex<Option<Box<dyn Any + Send + Sync>>>;

/// Typed shared state in process memory: one lock per key, values stored as themselves.
///
/// The key map is read-locked only to find a key's slot (no allocation: keys are looked up
/// as `&str`) and write-locked once per new key. A key holds one type: read as another, it
/// is absent; written as another, the new value replaces it.
#[derive(Default)]
pub struct SharedMemory {
    slots: RwLock<HashMap<Box<str>, Arc<Slot>>>,
}

/// The byte form kept for [`SharedMemory::get_bytes`]/[`SharedMemory::set_bytes`]: the bytes
/// and the version that serves as CAS token.
struct Raw {
    bytes: Vec<u8>,
    version: u32,
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Box<dyn Any + Send + Sync>>> {
    // A panic while the lock was held (caught by the host's entry point) leaves a value that
    // is still well-formed, only possibly half-updated: keep serving it.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SharedMemory {
    pub fn new() -> Self {
        SharedMemory::default()
    }

    /// How many keys hold a value (or held one).
    pub fn len(&self) -> usize {
        self.slots.read().map_or(0, |s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, key: &str) -> Option<Arc<Slot>> {
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        slots.get(key).cloned()
    }

    fn slot_or_insert(&self, key: &str) -> Arc<Slot> {
        if let Some(slot) = self.slot(key) {
            return slot;
        }
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        slots.entry(Box::from(key)).or_default().clone()
    }

    /// Look at the value under `key` (`None`: absent, or of another type) while holding its
    /// lock.
    pub fn view<T: Any + Send + Sync, R>(
        &self,
        key: &str,
        view: impl FnOnce(Option<&T>) -> R,
    ) -> R {
        let Some(slot) = self.slot(key) else {
            return view(None);
        };
        let value = lock(&slot);
        view(value.as_ref().and_then(|v| v.downcast_ref::<T>()))
    }

    /// Change the value under `key` in place, atomically (the key's lock is held throughout);
    /// an absent value (or one of another type) starts as `init()`.
    pub fn update<T: Any + Send + Sync, R>(
        &self,
        key: &str,
        init: impl FnOnce() -> T,
        update: impl FnOnce(&mut T) -> R,
    ) -> R {
        let slot = self.slot_or_insert(key);
        let mut value = lock(&slot);
        if let Some(v) = value.as_mut().and_then(|v| v.downcast_mut::<T>()) {
            return update(v);
        }
        let mut v = init();
        let r = update(&mut v);
        *value = Some(Box::new(v));
        r
    }

    /// The byte API over the same store: the bytes and CAS token under `key`.
    pub fn get_bytes(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.view(key, |raw: Option<&Raw>| match raw {
            Some(raw) => (Some(raw.bytes.clone()), Some(raw.version)),
            None => (None, None),
        })
    }

    /// Store `bytes` under `key` unless someone wrote it since `cas` was read (`None`: always).
    pub fn set_bytes(&self, key: &str, bytes: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
        let slot = self.slot_or_insert(key);
        let mut value = lock(&slot);
        let current = value.as_mut().and_then(|v| v.downcast_mut::<Raw>());
        match current {
            Some(raw) => {
                if cas.is_some_and(|want| want != raw.version) {
                    return Err(SharedError::CasMismatch);
                }
                raw.version = raw.version.wrapping_add(1);
                raw.bytes.clear();
                raw.bytes.extend_from_slice(bytes);
            }
            None => {
                *value = Some(Box::new(Raw {
                    bytes: bytes.to_vec(),
                    version: 1,
                }));
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory")
            .field("keys", &self.len())
            .finish()
    }
}

/// Token failures and rests of one provider's token list.
impl SharedValue for PoolState {
    fn encode(&self) -> Vec<u8> {
        PoolState::encode(self)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        PoolState::decode(bytes)
    }
}

/// Who runs a background job (health checks, metric polling).
impl SharedValue for Lease {
    fn encode(&self) -> Vec<u8> {
        Lease::encode(self)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        Lease::decode(bytes)
    }
}

/// The balancer's requests in flight and moving averages per provider.
impl SharedValue for LocalBoard {
    fn encode(&self) -> Vec<u8> {
        LocalBoard::encode(self)
    }

    /// A board that cannot be read is an empty one.
    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(LocalBoard::decode(bytes))
    }
}

/// One cached load metric.
impl SharedValue for MetricEntry {
    fn encode(&self) -> Vec<u8> {
        MetricEntry::encode(self)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        MetricEntry::decode(bytes)
    }
}

/// A Vertex AI access token and its refresh state (JSON).
impl SharedValue for TokenCache {
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A string as a shared value (its UTF-8 bytes), e.g. the cluster health checks go to.
impl SharedValue for String {
    fn encode(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn values_are_kept_as_themselves_and_changed_in_place() {
        let m = SharedMemory::new();
        assert_eq!(m.view("k", |v: Option<&Vec<u32>>| v.cloned()), None);
        let n = m.update("k", Vec::new, |v: &mut Vec<u32>| {
            v.push(1);
            v.len()
        });
        assert_eq!(n, 1);
        let n = m.update(
            "k",
            || vec![9, 9, 9],
            |v: &mut Vec<u32>| {
                v.push(2);
                v.len()
            },
        );
        assert_eq!(n, 2, "init only for an absent value");
        assert_eq!(
            m.view("k", |v: Option<&Vec<u32>>| v.cloned()),
            Some(vec![1, 2])
        );
        // Another type under the same key: absent to a reader, replaced by a writer.
        assert_eq!(m.view("k", |v: Option<&String>| v.cloned()), None);
        m.update("k", String::new, |s: &mut String| s.push('x'));
        assert_eq!(
            m.view("k", |v: Option<&String>| v.cloned()),
            Some("x".into())
        );
        assert_eq!(m.view("k", |v: Option<&Vec<u32>>| v.cloned()), None);
    }

    #[test]
    fn bytes_keep_compare_and_swap() {
        let m = SharedMemory::new();
        assert_eq!(m.get_bytes("b"), (None, None));
        assert_eq!(
            m.set_bytes("b", b"one", Some(7)),
            Ok(()),
            "absent: any token"
        );
        let (v, cas) = m.get_bytes("b");
        assert_eq!(v.as_deref(), Some(&b"one"[..]));
        assert_eq!(m.set_bytes("b", b"two", cas), Ok(()));
        assert_eq!(
            m.set_bytes("b", b"three", cas),
            Err(SharedError::CasMismatch),
            "a stale token loses"
        );
        assert_eq!(m.set_bytes("b", b"four", None), Ok(()));
        assert_eq!(m.get_bytes("b").0.as_deref(), Some(&b"four"[..]));
    }

    #[test]
    fn concurrent_updates_are_not_lost() {
        let m = Arc::new(SharedMemory::new());
        let threads = 4;
        let rounds = 2_000;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let m = m.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..rounds {
                        m.update("n", || 0u64, |n| *n += 1);
                        // A key of each thread's own, created while others update theirs.
                        m.update(&format!("t{t}"), || 0u64, |n| *n += 1);
                    }
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().is_ok());
        }
        let total = (threads * rounds) as u64;
        assert_eq!(m.view("n", |n: Option<&u64>| n.copied()), Some(total));
        for t in 0..threads {
            let own = m.view(&format!("t{t}"), |n: Option<&u64>| n.copied());
            assert_eq!(own, Some(rounds as u64));
        }
    }
}
