//! A global allocator that counts every allocation and reallocation, for the whole process and
//! for the current thread, and otherwise passes each call to the system allocator. Shared by the
//! allocation tests; each is its own test binary, since a global allocator is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static PROCESS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

pub struct Counting;

fn bump() {
    PROCESS.fetch_add(1, Ordering::Relaxed);
    // `try_with`: a thread being torn down may still allocate.
    let _ = THREAD.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on unchanged to the system allocator, which upholds
// GlobalAlloc's contract; counting (an atomic add and a thread-local that never allocates)
// changes nothing.
#[allow(unsafe_code, reason = "a counting global allocator is an unsafe impl")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: the caller's contract for `alloc_zeroed` is the system allocator's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: `ptr` came from this allocator, that is from the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations so far in the whole process (the gate's threads included).
#[allow(dead_code, reason = "each test binary reads one of the two counts")]
pub fn in_process() -> u64 {
    PROCESS.load(Ordering::SeqCst)
}

/// Allocations so far by the current thread (tests running in parallel do not disturb it).
#[allow(dead_code, reason = "each test binary reads one of the two counts")]
pub fn on_this_thread() -> u64 {
    THREAD.with(Cell::get)
}
