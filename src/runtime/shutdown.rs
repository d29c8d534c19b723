//! A core-local shutdown broadcast: many tasks wait, one `trigger` wakes them all.

use std::cell::Cell;
use std::rc::Rc;

use glommio::sync::Semaphore;

/// Cloneable handle; all clones on a core share one signal.
#[derive(Clone)]
pub struct Shutdown(Rc<(Semaphore, Cell<bool>)>);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown(Rc::new((Semaphore::new(0), Cell::new(false))))
    }
}

impl Shutdown {
    /// Waits until shutdown is triggered.
    pub async fn wait(&self) {
        // No permits are ever released: acquire only returns when the semaphore is closed.
        let _ = self.0.0.acquire(1).await;
    }

    pub fn trigger(&self) {
        self.0.1.set(true);
        self.0.0.close();
    }

    pub fn is_triggered(&self) -> bool {
        self.0.1.get()
    }
}
