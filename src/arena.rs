//! The binary's allocator: a bump arena in front of the system allocator.
//!
//! A one-shot run (apply, hotplug, flush, status) on a small config
//! allocates a few hundred KiB and exits. The system allocator serves
//! that from size-class slabs it maps and trims one by one and from a
//! separate mapping per large buffer, unmapped again when freed: about 30
//! `mmap`/`munmap` calls in a cold apply of the seed config, a few percent
//! of the whole run. Here allocations are cut from one static region
//! instead (no system call; its pages still fault in on first touch, as
//! the heap's do); a block is given back only when it is the last one cut
//! (a stack discipline that covers temporaries and a growing `Vec`);
//! anything that does not fit, or arrives once the region is used up or
//! [`seal`]ed, goes to the system allocator. Freed blocks that are not
//! the last stay resident until exit, so a bigger config pays up to the
//! region's size in RSS; and a long-running process (`watch`) seals it
//! at start and lives on the system allocator.
//!
//! [`Global`] is what `main.rs` registers; `Arena` is the mechanism, over
//! a region of any size, so that it can be tested on its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of the binary's arena: a cold apply of the seed config uses about
/// 280 KiB of it; a config of 50 gateways or 200 rules fills it (and pays
/// about this much RSS more than without it), then goes on beside it.
pub const SIZE: usize = 512 << 10;

/// Alignment of the region's start; larger alignments go to the system.
const ALIGN: usize = 4096;

/// A region of `N` bytes, cut front to back. Only as a `static`: its
/// blocks are known by their address, so it must not move.
#[repr(C, align(4096))]
pub(crate) struct Arena<const N: usize> {
    bytes: UnsafeCell<[u8; N]>,
    /// Offset of the first free byte; `N + 1` once sealed (past the end
    /// of any block, so that giving back the last one cannot unseal it).
    next: AtomicUsize,
}

// SAFETY: the bytes are only reached through blocks handed out once each
// (the offset moves by compare-and-swap: release when a block is given
// back, acquire when one is cut, so what a thread wrote in a block it gave
// back happens before another thread writes it again).
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Arena<N> {
    /// An empty arena.
    pub const fn new() -> Self {
        Arena {
            bytes: UnsafeCell::new([0; N]),
            next: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.bytes.get() as usize
    }

    /// Whether `p` was cut from this arena.
    pub fn owns(&self, p: *const u8) -> bool {
        (p as usize).wrapping_sub(self.base()) < N
    }

    /// Bytes in use from the start to the last block (`N` once sealed).
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(N)
    }

    /// From now on every new block comes from the system allocator.
    pub fn seal(&self) {
        self.next.store(N + 1, Ordering::Relaxed);
    }

    /// The largest block the arena serves: a quarter of it, so that one
    /// big buffer does not use it up for all the small ones.
    const fn largest() -> usize {
        N / 4
    }

    /// Cuts a block for `l`, or null when it does not fit.
    fn cut(&self, l: Layout) -> *mut u8 {
        if l.size() > Self::largest() || l.align() > ALIGN {
            return std::ptr::null_mut();
        }
        let mut at = self.next.load(Ordering::Relaxed);
        loop {
            // Aligned offset: the region's start is ALIGN-aligned.
            let start = (at + l.align() - 1) & !(l.align() - 1);
            let end = start + l.size();
            if end > N {
                return std::ptr::null_mut();
            }
            match self
                .next
                .compare_exchange_weak(at, end, Ordering::Acquire, Ordering::Relaxed)
            {
                // SAFETY: start + size <= N: inside the region.
                Ok(_) => return unsafe { (self.bytes.get() as *mut u8).add(start) },
                Err(now) => at = now,
            }
        }
    }

    /// Moves the end of the last block, cut at `off` with `old` bytes, to
    /// `off + new`; false when it is not the last block or does not fit.
    fn resize_last(&self, off: usize, old: usize, new: usize) -> bool {
        new <= Self::largest()
            && off + new <= N
            && self
                .next
                .compare_exchange(off + old, off + new, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }
}

// SAFETY: blocks never overlap (each is cut by one successful
// compare-and-swap of `next`, and only the last block is given back or
// resized, by a compare-and-swap on its own end); foreign pointers and
// layouts the arena does not serve go to `System` as they came.
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = self.cut(l);
        if p.is_null() {
            // SAFETY: the caller's layout, passed on.
            unsafe { System.alloc(l) }
        } else {
            p
        }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = self.cut(l);
        if p.is_null() {
            // SAFETY: the caller's layout, passed on (fresh pages of a big
            // block stay untouched).
            return unsafe { System.alloc_zeroed(l) };
        }
        // SAFETY: a block of l.size() bytes just cut (given-back bytes may
        // be reused, so it is not known to be zero).
        unsafe { std::ptr::write_bytes(p, 0, l.size()) };
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if self.owns(p) {
            // Given back only as the last block; else kept until exit.
            let off = p as usize - self.base();
            self.resize_last(off, l.size(), 0);
        } else {
            // SAFETY: a block `System` made, as the caller promises.
            unsafe { System.dealloc(p, l) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if !self.owns(p) {
            // SAFETY: a block `System` made, passed on.
            return unsafe { System.realloc(p, l, new) };
        }
        let off = p as usize - self.base();
        if self.resize_last(off, l.size(), new) {
            return p;
        }
        if new <= l.size() {
            // Shrinking a block that is not the last: it stays as it is.
            return p;
        }
        // SAFETY: `new` is nonzero and, rounded up to the alignment, does
        // not overflow (the caller's contract for realloc).
        let grown = unsafe { Layout::from_size_align_unchecked(new, l.align()) };
        // SAFETY: a valid layout; the old block holds l.size() bytes.
        unsafe {
            let q = self.alloc(grown);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, l.size());
                self.dealloc(p, l);
            }
            q
        }
    }
}

/// The binary's arena of [`SIZE`] bytes.
static HEAP: Arena<SIZE> = Arena::new();

/// The allocator `main.rs` registers: an arena of [`SIZE`] bytes in front
/// of the system's.
pub struct Global;

// SAFETY: forwards to the arena, which is a sound allocator.
unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { HEAP.alloc(l) }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { HEAP.alloc_zeroed(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { HEAP.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { HEAP.realloc(p, l, new) }
    }
}

/// Sends every later allocation of this process to the system allocator
/// (for a process that runs on: the arena's memory is never returned).
pub fn seal() {
    HEAP.seal();
}

#[cfg(test)]
#[path = "arena_tests.rs"]
mod tests;
