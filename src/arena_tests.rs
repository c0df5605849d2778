use super::*;

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// Fills `n` bytes at `p` with `v`.
fn fill(p: *mut u8, n: usize, v: u8) {
    // SAFETY: the tests pass blocks of at least `n` bytes.
    unsafe { std::ptr::write_bytes(p, v, n) }
}

fn holds(p: *const u8, n: usize, v: u8) -> bool {
    // SAFETY: as in `fill`.
    unsafe { std::slice::from_raw_parts(p, n).iter().all(|&b| b == v) }
}

#[test]
fn blocks_are_cut_in_order_aligned_and_apart() {
    static A: Arena<4096> = Arena::new();
    // SAFETY (all calls in these tests): valid nonzero layouts, blocks
    // given back with the layout they were made with.
    let (a, b, c) = unsafe {
        (
            A.alloc(layout(3, 1)),
            A.alloc(layout(8, 8)),
            A.alloc(layout(100, 64)),
        )
    };
    assert!(A.owns(a) && A.owns(b) && A.owns(c));
    assert_eq!(b as usize % 8, 0);
    assert_eq!(c as usize % 64, 0);
    assert!(a < b && (a as usize) + 3 <= b as usize);
    assert!((b as usize) + 8 <= c as usize);
    assert_eq!(A.used(), c as usize + 100 - a as usize);
    fill(a, 3, 1);
    fill(b, 8, 2);
    fill(c, 100, 3);
    assert!(holds(a, 3, 1) && holds(b, 8, 2) && holds(c, 100, 3));
}

#[test]
fn only_the_last_block_is_given_back() {
    static A: Arena<4096> = Arena::new();
    unsafe {
        let a = A.alloc(layout(64, 8));
        let b = A.alloc(layout(64, 8));
        A.dealloc(a, layout(64, 8)); // not the last: kept
        assert_eq!(A.used(), 128);
        A.dealloc(b, layout(64, 8)); // the last: back
        assert_eq!(A.used(), 64);
        let c = A.alloc(layout(64, 8));
        assert_eq!(c, b, "the space given back is cut again");
    }
}

#[test]
fn the_last_block_grows_and_shrinks_in_place_keeping_its_bytes() {
    static A: Arena<4096> = Arena::new();
    unsafe {
        let a = A.alloc(layout(16, 8));
        fill(a, 16, 7);
        let grown = A.realloc(a, layout(16, 8), 1000);
        assert_eq!(grown, a);
        assert!(holds(grown, 16, 7));
        assert_eq!(A.used(), 1000);
        let shrunk = A.realloc(grown, layout(1000, 8), 10);
        assert_eq!(shrunk, a);
        assert_eq!(A.used(), 10);
        assert!(holds(shrunk, 10, 7));
    }
}

#[test]
fn a_block_that_is_not_last_moves_to_grow_and_keeps_its_bytes() {
    static A: Arena<4096> = Arena::new();
    unsafe {
        let a = A.alloc(layout(32, 8));
        let b = A.alloc(layout(32, 8));
        fill(a, 32, 5);
        fill(b, 32, 6);
        let moved = A.realloc(a, layout(32, 8), 200);
        assert_ne!(moved, a);
        assert!(A.owns(moved) && moved > b);
        assert!(holds(moved, 32, 5) && holds(b, 32, 6));
        // Shrinking it where it is not last leaves it where it is.
        assert_eq!(A.realloc(b, layout(32, 8), 8), b);
        assert!(holds(b, 8, 6));
    }
}

#[test]
fn what_does_not_fit_comes_from_the_system_and_goes_back_there() {
    static A: Arena<4096> = Arena::new();
    unsafe {
        // Over a quarter of the arena, over its alignment, past its end.
        let big = A.alloc(layout(2000, 8));
        let aligned = A.alloc(layout(16, 8192));
        assert!(!A.owns(big) && !big.is_null());
        assert!(!A.owns(aligned) && aligned as usize % 8192 == 0);
        let mut inside = Vec::new();
        loop {
            let p = A.alloc(layout(1000, 8));
            if !A.owns(p) {
                fill(p, 1000, 9);
                assert!(holds(p, 1000, 9));
                A.dealloc(p, layout(1000, 8));
                break;
            }
            inside.push(p);
        }
        assert_eq!(inside.len(), 4);
        // A block of the arena that grows past what is left moves out.
        let last = *inside.last().unwrap();
        fill(last, 1000, 4);
        let out = A.realloc(last, layout(1000, 8), 3000);
        assert!(!A.owns(out) && holds(out, 1000, 4));
        let out = A.realloc(out, layout(3000, 8), 5000);
        assert!(holds(out, 1000, 4));
        A.dealloc(out, layout(5000, 8));
        A.dealloc(big, layout(2000, 8));
        A.dealloc(aligned, layout(16, 8192));
    }
}

#[test]
fn a_sealed_arena_serves_nothing_and_stays_sealed() {
    static A: Arena<4096> = Arena::new();
    unsafe {
        let a = A.alloc(layout(4096 / 4, 8));
        let b = A.alloc(layout(4096 / 4, 8));
        let c = A.alloc(layout(4096 / 4, 8));
        let d = A.alloc(layout(4096 / 4, 8));
        assert!([a, b, c, d].iter().all(|&p| A.owns(p)));
        A.seal();
        assert_eq!(A.used(), 4096);
        // The block ending at the arena's end given back: still sealed.
        A.dealloc(d, layout(4096 / 4, 8));
        let p = A.alloc(layout(8, 8));
        assert!(!A.owns(p));
        A.dealloc(p, layout(8, 8));
        // Its blocks can still grow (they move out) and be given back.
        let moved = A.realloc(c, layout(4096 / 4, 8), 4096 / 4 + 1);
        assert!(!A.owns(moved));
        A.dealloc(moved, layout(4096 / 4 + 1, 8));
        A.dealloc(a, layout(4096 / 4, 8));
    }
}

/// Threads cutting, growing and giving back blocks at once never get
/// overlapping blocks: each fills its blocks with its own byte and finds
/// them intact at the end.
#[test]
fn threads_never_share_a_block() {
    static A: Arena<{ 1 << 16 }> = Arena::new();
    let workers: Vec<_> = (1..=8u8)
        .map(|id| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                for i in 0..400usize {
                    let size = 1 + (i * 37 + id as usize * 11) % 200;
                    let l = layout(size, 1 << (i % 4));
                    unsafe {
                        let p = A.alloc(l);
                        fill(p, size, id);
                        match i % 3 {
                            0 => A.dealloc(p, l),
                            1 => {
                                let q = A.realloc(p, l, size * 2);
                                fill(q, size * 2, id);
                                kept.push((q as usize, size * 2, l.align()));
                            }
                            _ => kept.push((p as usize, size, l.align())),
                        }
                    }
                }
                for &(p, n, _) in &kept {
                    assert!(
                        holds(p as *const u8, n, id),
                        "thread {id}: a block was overwritten"
                    );
                }
                for (p, n, align) in kept {
                    unsafe { A.dealloc(p as *mut u8, layout(n, align)) };
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn the_last_block_does_not_grow_past_the_end() {
    static A: Arena<4096> = Arena::new();
    unsafe {
        for _ in 0..3 {
            A.alloc(layout(1024, 8));
        }
        A.alloc(layout(8, 8));
        let last = A.alloc(layout(1000, 8));
        assert!(A.owns(last));
        assert_eq!(last as usize - A.base(), 3080);
        fill(last, 1000, 3);
        // In place it would end at 4104, past the region.
        let moved = A.realloc(last, layout(1000, 8), 1024);
        assert!(!A.owns(moved), "grown past the end instead of moved out");
        assert!(holds(moved, 1000, 3));
        assert_eq!(A.used(), 3080, "its old place was not given back");
        A.dealloc(moved, layout(1024, 8));
        // Nor past a quarter of the region, though it would fit.
        let last = A.alloc(layout(100, 8));
        let moved = A.realloc(last, layout(100, 8), 1025);
        assert!(!A.owns(moved));
        A.dealloc(moved, layout(1025, 8));
    }
}

#[test]
fn a_moved_block_gives_back_its_old_size_not_its_new_one() {
    static A: Arena<4096> = Arena::new();
    unsafe {
        let p = A.alloc(layout(8, 8));
        let b = A.alloc(layout(1017, 1));
        assert_eq!(b as usize - p as usize, 8);
        fill(b, 1017, 2);
        // Moves to the system (over a quarter); giving back 1025 bytes at
        // `p` would rewind the arena under `b`.
        let q = A.realloc(p, layout(8, 8), 1025);
        assert!(!A.owns(q));
        assert_eq!(A.used(), 1025);
        let c = A.alloc(layout(16, 1));
        assert!(c as usize >= b as usize + 1017, "cut over a live block");
        assert!(holds(b, 1017, 2));
        A.dealloc(q, layout(1025, 8));
    }
}

#[test]
fn zeroed_blocks_are_zero_even_where_a_block_was_given_back() {
    static A: Arena<4096> = Arena::new();
    unsafe {
        let p = A.alloc(layout(64, 8));
        fill(p, 64, 0xff);
        A.dealloc(p, layout(64, 8));
        let z = A.alloc_zeroed(layout(64, 8));
        assert_eq!(z, p);
        assert!(holds(z, 64, 0));
        let big = A.alloc_zeroed(layout(8192, 8));
        assert!(!A.owns(big) && holds(big, 8192, 0));
        A.dealloc(big, layout(8192, 8));
    }
}
