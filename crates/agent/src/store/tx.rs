//! Write transactions that either commit or leave nothing behind, and the store's
//! commit health.
//!
//! sqlx's `Transaction` keeps its own count of open transactions per connection and
//! assumes a failed `COMMIT` leaves the transaction open. SQLite may instead roll it
//! back by itself (a full disk), after which sqlx's rollback fails, the count stays one
//! too high, the next `begin()` issues a `SAVEPOINT` (which opens a real transaction),
//! and after a second failed commit the connection is left inside a transaction that is
//! never committed again: later writes were acknowledged, seen by this connection only,
//! held the write lock, and vanished on restart (issue #12). So the store issues
//! `BEGIN` / `COMMIT` itself, and a connection whose transaction did not commit — a
//! failed statement, a failed `COMMIT`, or a future dropped half-way — is closed, never
//! returned to the pool (closing rolls back whatever is left).

use std::sync::Mutex;

use sqlx::Any;
use sqlx::pool::PoolConnection;

use super::StoreError;

pub(crate) fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// Whether the store can commit writes, as its last write found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    /// The last write committed (or none has been tried).
    Ok,
    /// The last write could not be committed (disk full, I/O error, ...); nothing of it
    /// was kept. Cleared by the next write that commits (e.g. `Store::probe`).
    Failing { reason: String },
}

/// Shared record of [`StoreHealth`]: set by every write, read by `/readyz` and the
/// runtime (which does not act on the cloud while the store cannot record).
#[derive(Debug, Default)]
pub(crate) struct HealthCell(Mutex<Option<String>>);

impl HealthCell {
    pub(crate) fn get(&self) -> StoreHealth {
        match &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            None => StoreHealth::Ok,
            Some(reason) => StoreHealth::Failing {
                reason: reason.clone(),
            },
        }
    }

    /// Notes the outcome of a write: a query failure makes the store failing, a write
    /// that committed makes it healthy again. Refusals (version mismatch, conflict, not
    /// found, fenced) say nothing about the store's health.
    pub(crate) fn note<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        let mut cell = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &r {
            Ok(_) => {
                if cell.take().is_some() {
                    tracing::info!("store commits again");
                }
            }
            Err(e) if e.is_unavailable() => {
                if cell.is_none() {
                    tracing::error!(error = %e, "store cannot commit writes");
                }
                *cell = Some(e.to_string());
            }
            Err(_) => {}
        }
        r
    }
}

/// A write transaction on a pooled connection of its own.
pub(crate) struct WriteTx {
    conn: PoolConnection<Any>,
    committed: bool,
}

impl WriteTx {
    /// `begin`: the backend's statement (`BEGIN IMMEDIATE` for SQLite takes the write
    /// lock at once rather than on the first write).
    pub(crate) async fn begin(
        pool: &sqlx::AnyPool,
        begin: &'static str,
        what: &'static str,
    ) -> Result<Self, StoreError> {
        let mut conn = pool.acquire().await.map_err(q(what))?;
        if let Err(e) = sqlx::query(begin).execute(&mut *conn).await {
            conn.close_on_drop();
            return Err(q(what)(e));
        }
        Ok(Self {
            conn,
            committed: false,
        })
    }

    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::query("COMMIT")
            .execute(&mut *self.conn)
            .await
            .map_err(q("commit"))?;
        self.committed = true;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}
