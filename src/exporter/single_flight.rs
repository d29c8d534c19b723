//! At most one connect attempt per backend per core; concurrent requests wait for it.
//!
//! (glommio 0.9's `Semaphore` lost wake-ups for waiters here, leaving requests hung; this
//! is the few lines we need, with a guard so a cancelled attempt still releases waiters.)

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// A single-flight gate for one core.
#[derive(Default)]
pub struct SingleFlight {
    busy: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

/// Held by the one task doing the work; dropping it lets waiters go.
pub struct Turn<'a>(&'a SingleFlight);

impl SingleFlight {
    /// The turn, if nobody else has it.
    pub fn try_begin(&self) -> Option<Turn<'_>> {
        // `then`, not `then_some`: an eagerly built `Turn` would be dropped on refusal, and its
        // `Drop` would end the turn that is still running.
        (!self.busy.replace(true)).then(|| Turn(self))
    }

    /// Waits until whoever has the turn is done.
    pub async fn wait_idle(&self) {
        poll_fn(|cx| {
            if !self.busy.get() {
                return Poll::Ready(());
            }
            self.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.busy.set(false);
        for w in self.0.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_turn_at_a_time_and_waiters_are_released() {
        let sf = SingleFlight::default();
        let turn = sf.try_begin();
        assert!(turn.is_some());
        assert!(sf.try_begin().is_none());
        assert!(sf.try_begin().is_none(), "a refused attempt does not end the running turn");
        drop(turn);
        assert!(sf.try_begin().is_some());
    }

    #[test]
    fn waiters_wake_when_the_turn_ends() {
        glommio::LocalExecutor::default().run(async {
            let sf = std::rc::Rc::new(SingleFlight::default());
            let turn = sf.try_begin();
            let sf2 = sf.clone();
            let waiter = glommio::spawn_local(async move { sf2.wait_idle().await });
            glommio::yield_if_needed().await;
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            drop(turn);
            waiter.await;
        });
    }
}
