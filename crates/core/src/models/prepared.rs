//! A value a model derives from its own parameters on first use and keeps
//! (the boosted trees' QuickScorer, a logistic model's layout over raw
//! inputs), so that scoring one customer does not derive it again.

use std::sync::OnceLock;

/// Prepared once, on first use, then shared. It is not part of what a
/// model is: it compares equal to any other, clones empty and is never
/// serialized (fields holding it are `#[serde(skip)]`). Edit the model's
/// parameters only before its first prediction.
pub(crate) struct Prepared<T>(OnceLock<T>);

impl<T> Prepared<T> {
    /// The value, derived by `init` on the first call.
    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        self.0.get_or_init(init)
    }
}

impl<T> Default for Prepared<T> {
    fn default() -> Self {
        Prepared(OnceLock::new())
    }
}

impl<T> Clone for Prepared<T> {
    fn clone(&self) -> Self {
        Prepared::default()
    }
}

impl<T> PartialEq for Prepared<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> std::fmt::Debug for Prepared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prepared")
    }
}
