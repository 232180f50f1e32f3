//! Live connections: how many there are (for max_connections) and where a
//! CancelRequest's process id and secret key lead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use datafusion_postgres::pgwire::messages::startup::SecretKey;

use crate::session::Session;

#[derive(Debug, Default)]
pub struct Registry {
    max_connections: usize,
    connections: AtomicUsize,
    next_pid: AtomicI32,
    sessions: Mutex<HashMap<i32, (SecretKey, Weak<Session>)>>,
}

/// A slot among max_connections; released when dropped.
#[derive(Debug)]
pub struct Admission {
    registry: Arc<Registry>,
    pid: Option<i32>,
}

impl Registry {
    pub fn new(max_connections: usize) -> Self {
        Registry {
            max_connections,
            connections: AtomicUsize::new(0),
            next_pid: AtomicI32::new(10_000),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Take a slot, or None when max_connections are in use.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let previous = self.connections.fetch_add(1, Ordering::SeqCst);
        if self.max_connections > 0 && previous >= self.max_connections {
            self.connections.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Admission {
            registry: self.clone(),
            pid: None,
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Cancel the running statement of the session with this pid and secret.
    pub fn cancel(&self, pid: i32, secret: &SecretKey) -> bool {
        let session = self.sessions.lock().ok().and_then(|sessions| {
            sessions
                .get(&pid)
                .filter(|(key, _)| key.eq_value(secret))
                .and_then(|(_, session)| session.upgrade())
        });
        match session {
            Some(session) => {
                session.cancel();
                true
            }
            None => false,
        }
    }

    /// Stop every session (server shutdown): running statements end with 57P01.
    pub fn terminate_all(&self) {
        let sessions: Vec<Arc<Session>> = self
            .sessions
            .lock()
            .map(|s| s.values().filter_map(|(_, w)| w.upgrade()).collect())
            .unwrap_or_default();
        for session in sessions {
            session.terminate();
        }
    }
}

impl Admission {
    /// Register the authenticated session; returns its process id and secret key.
    pub fn register(&mut self, session: &Arc<Session>) -> (i32, SecretKey) {
        let pid = self.registry.next_pid.fetch_add(1, Ordering::SeqCst);
        let secret = SecretKey::I32(rand::random::<i32>());
        if let Ok(mut sessions) = self.registry.sessions.lock() {
            sessions.insert(pid, (secret.clone(), Arc::downgrade(session)));
        }
        self.pid = Some(pid);
        (pid, secret)
    }

    /// The pid the next registration will get (sessions know their pid before registering).
    pub fn next_pid(&self) -> i32 {
        self.registry.next_pid.load(Ordering::SeqCst)
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.registry.connections.fetch_sub(1, Ordering::SeqCst);
        if let Some(pid) = self.pid {
            if let Ok(mut sessions) = self.registry.sessions.lock() {
                sessions.remove(&pid);
            }
        }
    }
}
