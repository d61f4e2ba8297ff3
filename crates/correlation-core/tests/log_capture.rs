//! `LogCapture::install` called by many threads at once, as tests running in parallel
//! call it: each thread logs right after its call returns, and no record is lost because
//! another thread was still installing the capture. Alone in its process, so the first
//! install happens here.

use std::sync::Barrier;
use std::thread;

use correlation_core::test_util::LogCapture;

#[test]
fn records_logged_right_after_a_concurrent_install_are_kept() {
    const THREADS: usize = 16;
    let barrier = Barrier::new(THREADS);
    thread::scope(|scope| {
        for n in 0..THREADS {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                LogCapture::install();
                log::warn!("installer {n} logged");
            });
        }
    });
    let logs = LogCapture::install();
    for n in 0..THREADS {
        let message = format!("installer {n} logged");
        let kept = logs.filtered(|record| record.message == message);
        assert_eq!(kept.len(), 1, "{message}: {:?}", logs.records());
    }
}
