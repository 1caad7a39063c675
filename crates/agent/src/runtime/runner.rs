//! The runner: runs passes as tasks, at most `limit` at once, and hands back each
//! pass's result with its pool — also when the pass panicked, so a panic never loses
//! the pool (its scheduler entry would stay "running" forever).
//!
//! It does not decide what runs or when (that is the [`super::scheduler`]); it never
//! aborts a pass.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{Id, JoinSet};

use super::PoolKey;

/// A pass that panicked, with the panic's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked {
    pub message: String,
}

/// Passes in flight.
#[derive(Debug)]
pub struct Runner<T> {
    tasks: JoinSet<T>,
    keys: HashMap<Id, PoolKey>,
    limit: usize,
}

impl<T: Send + 'static> Runner<T> {
    /// A runner of at most `limit` (≥ 1) passes at once.
    pub fn new(limit: usize) -> Self {
        Self {
            tasks: JoinSet::new(),
            keys: HashMap::new(),
            limit: limit.max(1),
        }
    }

    /// Whether another pass may start.
    pub fn has_room(&self) -> bool {
        self.tasks.len() < self.limit
    }

    /// Passes in flight.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Start `pass` for `key` (the caller checks [`Runner::has_room`]).
    pub fn start<F>(&mut self, key: PoolKey, pass: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let handle = self.tasks.spawn(pass);
        self.keys.insert(handle.id(), key);
    }

    /// The next pass to end, with its pool; `None` when none is in flight.
    pub async fn next(&mut self) -> Option<(PoolKey, Result<T, Panicked>)> {
        loop {
            let (id, out) = match self.tasks.join_next_with_id().await? {
                Ok((id, out)) => (id, Ok(out)),
                Err(e) => {
                    let id = e.id();
                    let message = if e.is_panic() {
                        panic_message(e.into_panic().as_ref())
                    } else {
                        "the pass was cancelled".to_owned()
                    };
                    (id, Err(Panicked { message }))
                }
            };
            if let Some(key) = self.keys.remove(&id) {
                return Some((key, out));
            }
        }
    }

    /// Wait for every pass in flight (shutdown).
    pub async fn drain(&mut self) {
        while self.next().await.is_some() {}
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    #[allow(clippy::panic)]
    async fn a_panicking_pass_comes_back_with_its_pool_and_message() {
        let mut r: Runner<u32> = Runner::new(4);
        r.start(PoolKey::new("ns", "ok"), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            7
        });
        r.start(PoolKey::new("ns", "boom"), async {
            panic!("bad state in {}", "boom")
        });
        let (key, out) = r.next().await.unwrap();
        assert_eq!(key, PoolKey::new("ns", "boom"));
        assert_eq!(
            out,
            Err(Panicked {
                message: "bad state in boom".into()
            })
        );
        let (key, out) = r.next().await.unwrap();
        assert_eq!(key, PoolKey::new("ns", "ok"));
        assert_eq!(out, Ok(7));
        assert!(r.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn room_is_limited_and_freed_as_passes_end() {
        let mut r: Runner<()> = Runner::new(2);
        for name in ["a", "b"] {
            r.start(PoolKey::new("ns", name), async {
                tokio::time::sleep(Duration::from_secs(1)).await;
            });
        }
        assert!(!r.has_room());
        let (_, out) = r.next().await.unwrap();
        assert_eq!(out, Ok(()));
        assert!(r.has_room());
        assert_eq!(r.len(), 1);
        r.drain().await;
        assert!(r.is_empty());
    }
}
