//! A core-local shutdown broadcast: many tasks wait, one `trigger` wakes them all.
//! A waiter that goes away (a closed connection) removes itself, so the list stays bounded.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct State {
    triggered: Cell<bool>,
    next_id: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
}

/// Cloneable handle; all clones on a core share one signal.
#[derive(Clone, Default)]
pub struct Shutdown(Rc<State>);

impl Shutdown {
    /// Resolves once shutdown is triggered. Create it once per task and poll it by `&mut`.
    pub fn wait(&self) -> Wait {
        let id = self.0.next_id.get();
        self.0.next_id.set(id + 1);
        Wait { state: self.0.clone(), id }
    }

    pub fn trigger(&self) {
        self.0.triggered.set(true);
        let waiters: Vec<Waker> = self.0.waiters.borrow_mut().drain().map(|(_, w)| w).collect();
        for w in waiters {
            w.wake();
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.0.triggered.get()
    }
}

/// The future returned by `Shutdown::wait`.
pub struct Wait {
    state: Rc<State>,
    id: u64,
}

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.triggered.get() {
            return Poll::Ready(());
        }
        // A connection's wait is polled on every accepted stream: store the waker only when
        // it changed.
        let mut waiters = self.state.waiters.borrow_mut();
        if !waiters.get(&self.id).is_some_and(|w| w.will_wake(cx.waker())) {
            waiters.insert(self.id, cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        self.state.waiters.borrow_mut().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_waiters_and_dropped_waiters_leave() {
        glommio::LocalExecutor::default().run(async {
            let s = Shutdown::default();
            let gone = s.wait();
            let _ = futures_lite::future::poll_once(&mut Box::pin(s.wait())).await;
            drop(gone);
            assert!(s.0.waiters.borrow().is_empty(), "dropped waiters are removed");
            let s2 = s.clone();
            let waiter = glommio::spawn_local(async move { s2.wait().await });
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            assert_eq!(s.0.waiters.borrow().len(), 1);
            s.trigger();
            waiter.await;
            assert!(s.is_triggered());
        });
    }
}
