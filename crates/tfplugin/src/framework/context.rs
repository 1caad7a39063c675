//! The per-call context handed to provider code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::diag::{Diagnostic, Diagnostics};
use crate::framework::private::Private;

/// Per-call context: the configured provider data, cancellation (Terraform's `StopProvider`),
/// the operation's timeout and the resource's private state.
#[derive(Debug)]
pub struct Ctx<D> {
    data: Option<Arc<D>>,
    cancel: CancellationToken,
    timeout: Option<Duration>,
    private: Mutex<Private>,
    partial: Mutex<Option<serde_json::Value>>,
}

impl<D> Ctx<D> {
    pub(crate) fn new(
        data: Option<Arc<D>>,
        cancel: CancellationToken,
        timeout: Option<Duration>,
        private: Private,
    ) -> Self {
        Ctx {
            data,
            cancel,
            timeout,
            private: Mutex::new(private),
            partial: Mutex::new(None),
        }
    }

    /// The value `Provider::configure` returned. An error diagnostic if the provider has not
    /// been configured in this process (Terraform always configures before CRUD calls).
    pub fn data(&self) -> Result<&D, Diagnostics> {
        self.data.as_deref().ok_or_else(|| {
            Diagnostic::error(
                "Provider not configured",
                "the provider was used before ConfigureProvider succeeded",
            )
            .into()
        })
    }

    /// True once Terraform asked the provider to stop (Ctrl-C).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when Terraform asks the provider to stop; race long waits against it.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// A clone of the cancellation token (to hand to spawned work).
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The timeout for this operation from the resource's `timeouts` block (or its default);
    /// `None` when the resource declares no timeouts.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Reads a key of the resource's private state.
    pub fn private_get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.private.lock().ok().and_then(|p| p.get(key))
    }

    /// Sets a key of the resource's private state (saved with the state, never shown).
    pub fn private_set<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), Diagnostics> {
        let mut p = self
            .private
            .lock()
            .map_err(|_| Diagnostic::error("Private state unavailable", "lock poisoned"))?;
        p.set(key, value)
    }

    /// Removes a key of the resource's private state.
    pub fn private_remove(&self, key: &str) {
        if let Ok(mut p) = self.private.lock() {
            p.remove(key);
        }
    }

    /// Records the object as it exists so far during a create or update. If the call then
    /// fails (an error, or the operation's timeout), this object is saved in the state —
    /// Terraform marks it tainted — instead of being forgotten. Call it as soon as the remote
    /// object exists (e.g. right after the API created it, before waiting for readiness).
    pub fn keep_partial<M: serde::Serialize>(&self, model: &M) -> Result<(), Diagnostics> {
        let v = serde_json::to_value(model)
            .map_err(|e| Diagnostic::from_error("Cannot record partial state", &e))?;
        if let Ok(mut p) = self.partial.lock() {
            *p = Some(v);
        }
        Ok(())
    }

    pub(crate) fn take_partial(&self) -> Option<serde_json::Value> {
        self.partial.lock().ok().and_then(|mut p| p.take())
    }

    pub(crate) fn take_private(&self) -> Private {
        self.private.lock().map(|p| p.clone()).unwrap_or_default()
    }
}
