//! Heap allocations on the request path, counted per thread: accepting an incoming ID and
//! entering its scope allocate nothing; generating an ID allocates once.
//!
//! The counting global allocator comes from `allocation-counter` (a `GlobalAlloc` wrapper
//! over `System` with thread-local counters) because the workspace forbids `unsafe_code`,
//! which an allocator needs, and a `forbid` cannot be lifted for one test file. Its
//! counters are per thread, so the test harness and other tests never pollute a count.
//! `count_total` counts every `alloc`, `alloc_zeroed` and `realloc`.
// Tests start tasks and threads outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use allocation_counter::measure;
use correlation_bench_support::shared_header_value;
use correlation_core::http::HeaderValue;
use correlation_core::strategy::{HyphenatedUuidV4, IdGenerator, UuidV4, UuidV7};
use correlation_core::{CorrelationConfig, CorrelationId, Outcome, current, scope, sync_scope};

const VALID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

/// Heap allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    measure(f).count_total
}

/// Without this, every "allocates nothing" assertion below could pass vacuously.
#[test]
fn the_counting_allocator_is_installed_and_counts_this_thread() {
    assert_eq!(allocations(|| drop(black_box(Box::new(7_u64)))), 1);
    assert_eq!(allocations(|| drop(black_box(vec![1_u8; 3]))), 1);
    assert_eq!(allocations(|| {}), 0);
}

#[test]
fn deciding_an_accepted_incoming_id_allocates_nothing() {
    let config = CorrelationConfig::default();
    for value in [HeaderValue::from_static(VALID), shared_header_value(VALID)] {
        let mut decision = None;
        let count = allocations(|| decision = Some(config.decide_value(Some(&value))));
        let decision = decision.unwrap();
        assert_eq!(decision.outcome, Outcome::Accepted);
        // Shared, not copied.
        assert_eq!(decision.id.as_bytes().as_ptr(), value.as_bytes().as_ptr());
        assert_eq!(count, 0, "accepting {value:?} allocated");
        assert_eq!(allocations(|| drop(decision)), 0);
    }
}

/// A `HeaderValue` freshly parsed from a `&str` (as `Request::builder().header(..)` makes
/// it) owns a `Bytes` made from a `Vec`, which the `bytes` crate promotes to a shared
/// buffer on its first clone: one allocation, once per value, inside `bytes`. Hyper's
/// values are already shared (see `shared_header_value`), so a server never pays it.
#[test]
fn the_first_clone_of_a_freshly_parsed_header_value_allocates_once_inside_bytes() {
    let config = CorrelationConfig::default();
    let value: HeaderValue = VALID.parse().unwrap();
    let first = allocations(|| drop(black_box(config.decide_value(Some(&value)))));
    let second = allocations(|| drop(black_box(config.decide_value(Some(&value)))));
    assert_eq!((first, second), (1, 0));
}

#[test]
fn deciding_with_a_header_map_allocates_nothing_when_accepted() {
    let config = CorrelationConfig::default();
    let mut headers = correlation_core::http::HeaderMap::new();
    headers.insert("x-request-id", HeaderValue::from_static(VALID));
    let count = allocations(|| {
        let decision = config.decide(&headers);
        assert_eq!(decision.outcome, Outcome::Accepted);
    });
    assert_eq!(count, 0);
}

#[test]
fn sync_scope_round_trip_allocates_nothing() {
    let id = CorrelationId::from_static(VALID);
    let mut seen = None;
    let count = allocations(|| seen = sync_scope(id.clone(), current));
    assert_eq!(seen.as_ref(), Some(&id));
    assert_eq!(count, 0);

    let id = CorrelationId::new(VALID).unwrap();
    drop(id.clone()); // promote once, as any ID in use already is
    let count = allocations(|| {
        let len = sync_scope(id.clone(), || current().map(|id| id.len()));
        assert_eq!(len, Some(36));
    });
    assert_eq!(count, 0);
}

#[test]
fn scope_of_a_ready_future_allocates_nothing() {
    let id = CorrelationId::from_static(VALID);
    let mut cx = Context::from_waker(Waker::noop());
    let mut seen = None;
    let count = allocations(|| {
        let mut future = pin!(scope(id.clone(), async { current() }));
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            seen = Some(value);
        }
    });
    assert_eq!(seen, Some(Some(id)));
    assert_eq!(count, 0);
}

#[test]
fn current_allocates_nothing() {
    assert_eq!(allocations(|| assert_eq!(current(), None)), 0);
    let id = CorrelationId::from_static(VALID);
    sync_scope(id, || {
        let count = allocations(|| assert!(black_box(current()).is_some()));
        assert_eq!(count, 0);
    });
}

/// Generation allocates exactly once: the ID's buffer (`Bytes::from_owner`), shared by
/// every clone. The random number generator is warmed up first: the first UUID on a
/// thread also initialises the thread's RNG, a one-off cost per thread.
#[test]
fn generating_an_id_allocates_at_most_once() {
    let config = CorrelationConfig::default();
    drop(UuidV4::new_id());
    let first_on_thread = std::thread::spawn(|| allocations(|| drop(UuidV4::new_id())))
        .join()
        .unwrap();
    println!("first UuidV4 on a fresh thread: {first_on_thread} allocation(s)");

    assert_eq!(allocations(|| drop(black_box(UuidV4::new_id()))), 1);
    assert_eq!(allocations(|| drop(black_box(config.generate()))), 1);
    for generator in [&UuidV4 as &dyn IdGenerator, &HyphenatedUuidV4, &UuidV7] {
        drop(generator.generate());
        let count = allocations(|| drop(black_box(generator.generate())));
        assert_eq!(count, 1);
    }

    let mut decision = None;
    let count = allocations(|| decision = Some(config.decide_value(None)));
    assert_eq!(decision.as_ref().unwrap().outcome, Outcome::Generated);
    assert_eq!(count, 1);
    // Clones share the one buffer.
    let id = decision.unwrap().id;
    assert_eq!(allocations(|| drop(black_box(id.clone()))), 0);
    assert_eq!(allocations(|| drop(black_box(id.to_header_value()))), 0);
}

/// With no logger installed the warning costs nothing, so a replaced ID costs what a
/// generated one does.
#[test]
fn replacing_an_invalid_id_allocates_once_without_a_logger() {
    let config = CorrelationConfig::default();
    let value = HeaderValue::from_static("not-a-uuid");
    drop(config.generate());
    let mut decision = None;
    let count = allocations(|| decision = Some(config.decide_value(Some(&value))));
    assert_eq!(decision.unwrap().outcome, Outcome::Replaced);
    assert_eq!(count, 1);
}
