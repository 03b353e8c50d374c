//! What the fuzz targets share: a memory budget and the sample data a trigger is checked with.
//!
//! # Layout
//! - [`Budgeted`]: the global allocator of every target; it aborts (a crash libFuzzer records)
//!   when one allocation or the live heap passes its limit.
//! - [`catalog`], [`sample`]: the shipped catalogs and the sample context saving a trigger
//!   checks its templates against.
//!
//! Why an allocator of our own: libFuzzer's `-malloc_limit_mb` works through a sanitizer's
//! allocator hooks, and on stable Rust the targets are built without a sanitizer, so the flag
//! alone would never fire. `-rss_limit_mb` still works (libFuzzer samples the process's RSS
//! once a second), but a template that doubles a string in a loop reaches gigabytes between
//! two samples. Counting here makes a breach deterministic and names its size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use hookflow_engine::service::sample_entity;
use hookflow_templating::{Catalog, ContextValue, EventType, RenderContext};

/// Largest single allocation a target may make: `-malloc_limit_mb=256`, enforced.
pub const MAX_ALLOCATION: usize = 256 << 20;
/// Most heap a target may hold at once: `-rss_limit_mb=1024`, enforced on the heap alone.
pub const MAX_LIVE_HEAP: usize = 1024 << 20;

/// The system allocator under [`MAX_ALLOCATION`] and [`MAX_LIVE_HEAP`].
pub struct Budgeted;

static LIVE: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: Budgeted = Budgeted;

impl Budgeted {
    /// Books an allocation of `size` bytes, or aborts the process if that breaks the budget.
    fn book(size: usize) {
        Self::grow(size, size);
    }

    /// Books `more` bytes for a block that is `size` bytes once grown.
    fn grow(size: usize, more: usize) {
        if size >= MAX_ALLOCATION {
            breach("a single allocation of", size);
        }
        let live = LIVE.fetch_add(more, Ordering::Relaxed) + more;
        if live > MAX_LIVE_HEAP {
            breach("a live heap of", live);
        }
    }

    fn release(size: usize) {
        LIVE.fetch_sub(size, Ordering::Relaxed);
    }
}

/// Reports a breach the way libFuzzer reports its own limits, then aborts: libFuzzer catches
/// the signal and saves the input as a crash.
#[cold]
fn breach(what: &str, size: usize) -> ! {
    // Writing to stderr with `write!` formats into the unbuffered handle: no allocation here.
    let _ = writeln!(
        std::io::stderr(),
        "==hookflow-fuzz== ERROR: out-of-memory: {what} {size} bytes \
         (limits: {MAX_ALLOCATION} bytes per allocation, {MAX_LIVE_HEAP} bytes live)"
    );
    std::process::abort()
}

// SAFETY: every method forwards to `System` with the caller's layout unchanged; the counter is
// bookkeeping only.
unsafe impl GlobalAlloc for Budgeted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::book(layout.size());
        let ptr = System.alloc(layout);
        if ptr.is_null() {
            Self::release(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::book(layout.size());
        let ptr = System.alloc_zeroed(layout);
        if ptr.is_null() {
            Self::release(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        Self::release(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            Self::grow(new_size, new_size - layout.size());
        }
        let new = System.realloc(ptr, layout, new_size);
        if new.is_null() {
            if new_size > layout.size() {
                Self::release(new_size - layout.size());
            }
        } else if new_size < layout.size() {
            Self::release(layout.size() - new_size);
        }
        new
    }
}

/// The shipped catalogs, loaded once per process.
pub fn catalog() -> &'static Catalog {
    static CATALOG: LazyLock<Catalog> =
        LazyLock::new(|| Catalog::builtin().expect("the shipped catalogs load (unit-tested)"));
    &CATALOG
}

/// The event type a selector names: by name when it is one, otherwise picked by the selector's
/// bytes, so that every input reaches some type.
pub fn event_type(selector: &str) -> Arc<EventType> {
    let catalog = catalog();
    if let Some(ty) = catalog.shared(selector.trim()) {
        return ty;
    }
    let index = selector
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    let name = &catalog
        .iter()
        .nth(index % catalog.len())
        .expect("index is below the catalog's length")
        .name;
    catalog.shared(name).expect("the name was just listed")
}

/// The merge fields of a sample event of `ty`: what saving a trigger checks its templates
/// against (the engine's `sample_context`, rebuilt from public parts).
pub fn sample(ty: &Arc<EventType>) -> ContextValue {
    RenderContext {
        event_id: 1,
        event_type: ty.clone(),
        occurred_at: "2026-01-01T00:00:00Z".to_owned(),
        entity_id: "1001".to_owned(),
        shop_id: 1,
        shop_name: "Sample shop".to_owned(),
        entity: Arc::new(sample_entity(ty)),
        previous: None,
    }
    .into_value()
}

/// Splits an input at its first newline: a header line that selects what to do, and the rest.
pub fn split_header(input: &str) -> (&str, &str) {
    input.split_once('\n').unwrap_or((input, ""))
}
