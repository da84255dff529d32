//! The routes in force, which a reload replaces while the worker runs.

use std::sync::{Arc, PoisonError, RwLock};

use crate::route::Routes;

/// The routes in force, shared by the reader (which replaces them on a
/// reload) and the settler (which reads each route's name and policy).
#[derive(Clone)]
pub struct Shared(Arc<RwLock<Arc<Routes>>>);

impl Shared {
    pub fn new(routes: Arc<Routes>) -> Shared {
        Shared(Arc::new(RwLock::new(routes)))
    }

    pub fn get(&self) -> Arc<Routes> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn set(&self, routes: Arc<Routes>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = routes;
    }
}
