//! Concurrency checks (`linearizable_increments`, `atomic_transfers`), their
//! racing tasks, and the executor-agnostic join handle behind
//! `Conformance::spawn`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll, Waker};

use time::Duration;

use super::helpers::{commit, count_of, counter, get, get1, put, random_group, real_now};
use super::{Conformance, Failure};
use crate::store::{CodeStore, Commit, KeyKind, StoreKey, Version};

impl<S: CodeStore + 'static> Conformance<S> {
    pub(super) fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        let slot = Arc::new(Mutex::new(SlotState {
            done: None,
            waker: None,
        }));
        let mut completer = Completer {
            slot: slot.clone(),
            value: None,
        };
        (self.spawn)(Box::pin(async move {
            completer.value = Some(work.await);
            drop(completer);
        }));
        JoinHandle { slot }
    }

    /// Many tasks race read-modify-conditional-write increments on one key:
    /// no update is lost, no two writes succeed from one version, and a read
    /// after a write sees it.
    pub async fn linearizable_increments(&self) -> Result<(), Failure> {
        const C: &str = "linearizable_increments";
        let store = self.store();
        let key = StoreKey::new(KeyKind::Subject, random_group(), [7; 8]);
        let increments = self.increments;
        let handles: Vec<_> = (0..self.tasks)
            .map(|_| {
                let store = store.clone();
                self.spawn(async move { increment_task(&*store, key, increments).await })
            })
            .collect();
        let mut from: Vec<Option<Version>> = Vec::new();
        for h in handles {
            from.extend(joined(C, h.await)??);
        }
        let total = self.tasks * increments;
        let end = get1(C, &*store, key, real_now()).await?;
        let count = count_of(C, end.as_ref())?;
        ensure!(
            C,
            usize::try_from(count).ok() == Some(total),
            "{total} increments applied, the key counts {count}: updates were lost or duplicated"
        );
        ensure!(
            C,
            from.len() == total,
            "{} writes applied for {total} increments",
            from.len()
        );
        from.sort_unstable_by_key(|v| v.map(|v| v.0));
        let before = from.len();
        from.dedup();
        ensure!(
            C,
            from.len() == before,
            "two conditional writes succeeded from the same version"
        );
        Ok(())
    }

    /// Racing two-key commits in one group conserve a sum.
    pub async fn atomic_transfers(&self) -> Result<(), Failure> {
        const C: &str = "atomic_transfers";
        let store = self.store();
        let g = random_group();
        let from = StoreKey::new(KeyKind::Subject, g, [1; 8]);
        let to = StoreKey::new(KeyKind::Subject, g, [2; 8]);
        let per_task = self.increments.div_ceil(2);
        let total = u32::try_from(self.tasks * per_task)
            .map_err(|_| Failure::new(C, "too many transfers"))?;
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(2));
        ensure!(
            C,
            commit(C, &*store, &[put(from, counter(total), None, exp)], now).await?
                == Commit::Applied,
            "create conflicted"
        );
        let handles: Vec<_> = (0..self.tasks)
            .map(|_| {
                let store = store.clone();
                self.spawn(async move { transfer_task(&*store, from, to, per_task).await })
            })
            .collect();
        for h in handles {
            joined(C, h.await)??;
        }
        let got = get(C, &*store, &[from, to], real_now()).await?;
        let (left, moved) = (count_of(C, got[0].as_ref())?, count_of(C, got[1].as_ref())?);
        ensure!(
            C,
            left == 0 && moved == total,
            "after {total} transfers the keys hold {left} and {moved}"
        );
        Ok(())
    }
}

async fn increment_task<S: CodeStore>(
    store: &S,
    key: StoreKey,
    increments: usize,
) -> Result<Vec<Option<Version>>, Failure> {
    const C: &str = "linearizable_increments";
    let mut applied_from = Vec::with_capacity(increments);
    for _ in 0..increments {
        let mut done = false;
        for _ in 0..100_000 {
            let now = real_now();
            let current = get1(C, store, key, now).await?;
            let n = count_of(C, current.as_ref())?;
            let expected = current.map(|v| v.version);
            let write = put(
                key,
                counter(n + 1),
                expected,
                now.saturating_add(Duration::hours(1)),
            );
            if commit(C, store, &[write], now).await? == Commit::Applied {
                applied_from.push(expected);
                let after = get1(C, store, key, real_now()).await?;
                let seen = count_of(C, after.as_ref())?;
                ensure!(
                    C,
                    seen > n,
                    "a read after an applied write to {} saw {seen}",
                    n + 1
                );
                done = true;
                break;
            }
        }
        ensure!(C, done, "an increment conflicted 100000 times in a row");
    }
    Ok(applied_from)
}

async fn transfer_task<S: CodeStore>(
    store: &S,
    from: StoreKey,
    to: StoreKey,
    transfers: usize,
) -> Result<(), Failure> {
    const C: &str = "atomic_transfers";
    for _ in 0..transfers {
        let mut done = false;
        for _ in 0..100_000 {
            let now = real_now();
            let exp = now.saturating_add(Duration::hours(1));
            let got = get(C, store, &[from, to], now).await?;
            let (left, moved) = (count_of(C, got[0].as_ref())?, count_of(C, got[1].as_ref())?);
            ensure!(
                C,
                left > 0,
                "the source ran dry early: a transfer was applied twice"
            );
            let writes = [
                put(
                    from,
                    counter(left - 1),
                    got[0].as_ref().map(|v| v.version),
                    exp,
                ),
                put(
                    to,
                    counter(moved + 1),
                    got[1].as_ref().map(|v| v.version),
                    exp,
                ),
            ];
            if commit(C, store, &writes, now).await? == Commit::Applied {
                done = true;
                break;
            }
        }
        ensure!(C, done, "a transfer conflicted 100000 times in a row");
    }
    Ok(())
}

/// Unwraps a joined task's value, failing the check if the task never
/// finished (it panicked, or the executor dropped it).
pub(super) fn joined<T>(check: &'static str, value: Option<T>) -> Result<T, Failure> {
    value.ok_or_else(|| {
        Failure::new(
            check,
            "a concurrent task panicked or was dropped by the executor",
        )
    })
}

struct SlotState<T> {
    /// `Some(Some(v))`: finished with `v`; `Some(None)`: dropped unfinished.
    done: Option<Option<T>>,
    waker: Option<Waker>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets the slot when dropped: with the value when the task finished, empty
/// when it panicked or was dropped unfinished.
struct Completer<T> {
    slot: Arc<Mutex<SlotState<T>>>,
    value: Option<T>,
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = lock(&self.slot);
            s.done = Some(self.value.take());
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Resolves to the task's value, or `None` if it never finished.
pub(super) struct JoinHandle<T> {
    slot: Arc<Mutex<SlotState<T>>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        let mut s = lock(&self.slot);
        match s.done.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
