//! The operations the component exports, written against the ports so they run natively in tests.

use crate::catalog::{self, Recorded};
use crate::error::Result;
use crate::ports::Ctx;
use crate::schema::{self, SchemaStatus};
use crate::url::normalize_base_url;
use crate::version::{self, Detected};

/// Opens the schema (applying migrations).
pub fn open(ctx: &Ctx<'_>) -> Result<SchemaStatus> {
    schema::open(ctx.store, ctx.host.now_ms())
}

/// Detects and records the version of the environment at `base_url`.
pub fn detect_version(ctx: &Ctx<'_>, base_url: &str) -> Result<(Detected, Recorded)> {
    let base_url = normalize_base_url(base_url)?;
    let detected = version::detect(ctx, &base_url, true)?;
    let recorded = catalog::record(ctx.store, &detected, ctx.host.now_ms())?;
    Ok((detected, recorded))
}

/// Syncs the environment at `base_url`.
pub fn sync(ctx: &Ctx<'_>, base_url: &str, options: &crate::sync::SyncOptions) -> Result<crate::sync::SyncReport> {
    crate::sync::sync(ctx, base_url, options)
}

/// Recorded syncs, newest first.
pub fn history(ctx: &Ctx<'_>, base_url: Option<&str>, limit: u32) -> Result<Vec<crate::sync::history::SyncRun>> {
    let url = base_url.map(normalize_base_url).transpose()?;
    crate::sync::history::list(ctx.store, url.as_deref(), limit)
}

/// Removes what nothing references.
pub fn gc(ctx: &Ctx<'_>, keep_days: u32) -> Result<crate::gc::GcReport> {
    crate::gc::collect(ctx.store, keep_days, ctx.host.now_ms())
}
